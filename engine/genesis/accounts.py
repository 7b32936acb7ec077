"""The accounts service, invoked as `ledger`: balances, scrip and compute transfers
(rescues), rate moves, artifact transfers and spawning agents, as methods any principal
can invoke. The books themselves are `engine.ledger`; this is their public counter."""

from __future__ import annotations

from typing import Any

from ..errors import Refusal
from ..events import (
    BucketChanged,
    ComputeTransferred,
    RateTransferred,
    ScripTransferred,
)
from ..bounds import CAPACITY, COMPUTE, PRICE, RATE, RATE_OR_ZERO, SCRIP, shown
from ..ledger import MICRO, to_micro
from .base import GenesisArtifact, Param, method
from .custody import move_artifact


class AccountsArtifact(GenesisArtifact):
    id = "ledger"
    description = "Balances and transfers of scrip, compute and compute rate; spawning agents."

    def _not_a_service(self, to: object, what: str) -> None:
        if isinstance(to, str) and to in self.world.services:
            raise Refusal(f"{to} is a service; it cannot hold {what}", "invalid", "to")

    @method("balance", "Balances of a principal (yourself when omitted).", optional=("of",),
            of="principal id")
    def balance(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        who = args.get("of", caller)
        return self.world.balances(self.world.ledger.require(who))

    @method("transfer", "Give whole scrip to another principal.",
            to="recipient principal id", amount=Param("", SCRIP))
    def transfer(self, caller: str, args: dict[str, Any], now: float) -> None:
        world = self.world
        to = args["to"]
        if type(to) is not str:
            raise Refusal(f"unknown recipient {shown(to)}", "unknown", "to")
        if to in world.services:
            raise Refusal(f"{to} is a service; it takes scrip only through its methods", "invalid", "to")
        amount = world.ledger.transfer_scrip(caller, to, args["amount"])
        world.bus.emit(ScripTransferred, now, (caller, to, amount))

    @method("transfer_compute",
            "Rescue: give compute from your positive balance; clamped at the receiver's capacity.",
            to="recipient principal id", amount=Param("", COMPUTE))
    def transfer_compute(self, caller: str, args: dict[str, Any], now: float) -> dict[str, float]:
        world = self.world
        to, amount = args["to"], args["amount"]
        self._not_a_service(to, "compute")
        credited = world.ledger.transfer_compute(caller, to, amount, now)
        world.bus.publish(ComputeTransferred(now, caller, to, amount, credited))
        world.count("rescue")
        return {"credited": credited, "kept": amount - credited}

    @method("transfer_rate", "Move part of your compute rate (units/s) to another principal.",
            to="recipient principal id", amount=Param("", RATE))
    def transfer_rate(self, caller: str, args: dict[str, Any], now: float) -> dict[str, float]:
        world = self.world
        self._not_a_service(args["to"], "rate")
        moved = world.ledger.transfer_rate(caller, args["to"], args["amount"], now)
        world.bus.publish(RateTransferred(now, caller, args["to"], moved))
        world.count("rate_moved")
        world.rate_changed(caller)
        world.rate_changed(args["to"])
        return {"moved": moved}

    @method("transfer_artifact", "Give an artifact you own to another principal.",
            artifact="artifact id", to="recipient principal id")
    def transfer_artifact(self, caller: str, args: dict[str, Any], now: float) -> None:
        to = self.world.ledger.require(args["to"], "recipient", "to")
        if to in self.world.services:
            raise Refusal(f"{to} is a service: artifacts reach it only through its methods (market.list)", "invalid", "to")
        move_artifact(self.world, args["artifact"], caller, to, now)

    @method("spawn", "Start a new agent, paying its scrip and compute rate from your own.",
            optional=("scrip", "capacity", "params", "agent_id"),
            brain="brain name", rate=Param("compute rate to give it", RATE),
            scrip=Param("scrip to give it (default 0)", PRICE), capacity=Param("its bucket's capacity", CAPACITY),
            params="brain parameters (table)", agent_id="id for the new agent")
    def spawn(self, caller: str, args: dict[str, Any], now: float) -> dict[str, str]:
        agent_id = self.world.spawn_agent(
            parent=caller,
            brain=args["brain"],
            rate=args["rate"],
            scrip=args.get("scrip", 0),
            capacity=args.get("capacity"),
            params=args.get("params"),
            agent_id=args.get("agent_id"),
        )
        return {"agent_id": agent_id}

    @method("set_rate", "Set an agent's compute rate, moving the difference to or from the "
            "operator's reserve.", operator_only=True,
            agent="agent id", rate=Param("the new rate", RATE_OR_ZERO))
    def set_rate(self, caller: str, args: dict[str, Any], now: float) -> dict[str, float]:
        world = self.world
        ledger = world.ledger
        agent = world.require_agent(args["agent"])
        # The new rate in micro-units, and the difference, before anything moves.
        delta = to_micro(args["rate"]) - ledger.rate_micro[agent.id]
        if delta == 0:
            return {"rate": ledger.buckets[agent.id].rate}
        if delta > 0:
            ledger.move_rate(caller, agent.id, delta, now)
            world.bus.publish(RateTransferred(now, caller, agent.id, delta / MICRO))
        else:
            ledger.move_rate(agent.id, caller, -delta, now)
            world.bus.publish(RateTransferred(now, agent.id, caller, -delta / MICRO))
        world.rate_changed(agent.id)
        b = ledger.buckets[agent.id]
        world.bus.publish(BucketChanged(now, agent.id, b.rate, b.capacity))
        return {"rate": b.rate}

    @method("set_capacity", "Set an agent's bucket capacity.", operator_only=True,
            agent="agent id", capacity=Param("the new capacity", CAPACITY))
    def set_capacity(self, caller: str, args: dict[str, Any], now: float) -> dict[str, float]:
        world = self.world
        agent = world.require_agent(args["agent"])
        world.ledger.set_capacity(agent.id, args["capacity"], now)
        b = world.ledger.buckets[agent.id]
        world.bus.publish(BucketChanged(now, agent.id, b.rate, b.capacity))
        world.rate_changed(agent.id)
        return {"capacity": b.capacity}


__all__ = ["AccountsArtifact"]
