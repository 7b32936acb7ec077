"""World control: the operator's levers (pause, speed, stop and restart agents), offered
as a genesis artifact so steering goes through the same invoke path and checks as agents."""

from __future__ import annotations

from typing import Any

from ..bounds import SPEED
from ..errors import Refusal
from ..events import WorldControl
from .base import GenesisArtifact, Param, method


class WorldControlArtifact(GenesisArtifact):
    id = "world"
    description = "The operator's controls: pause, resume, speed, stop, restart and pause agents."

    @method("pause", "Pause the world: time stops, no agent acts.", operator_only=True)
    def pause(self, caller: str, args: dict[str, Any], now: float) -> None:
        if self.world.paused:
            raise Refusal("the world is already paused", "invalid")
        self.world.ledger.undo.call(self.world.set_paused, False)
        self.world.set_paused(True)
        self.world.bus.publish(WorldControl(now, "paused"))

    @method("resume", "Resume a paused world.", operator_only=True)
    def resume(self, caller: str, args: dict[str, Any], now: float) -> None:
        if not self.world.paused:
            raise Refusal("the world is not paused", "invalid")
        self.world.ledger.undo.call(self.world.set_paused, True)
        self.world.set_paused(False)
        self.world.bus.publish(WorldControl(now, "resumed"))

    @method("set_speed", "World seconds per real second (real-time clocks only).", operator_only=True,
            speed=Param("the new speed", SPEED))
    def set_speed(self, caller: str, args: dict[str, Any], now: float) -> dict[str, float]:
        clock = self.world.clock
        if not hasattr(clock, "set_speed"):
            raise Refusal("this world runs on virtual time; it has no speed to set", "invalid")
        speed = args["speed"]
        self.world.ledger.undo.call(clock.set_speed, clock.speed)
        clock.set_speed(speed)
        self.world.bus.publish(WorldControl(now, "speed", f"{speed:g}"))
        return {"speed": clock.speed}

    @method("stop_agent", "Stop an agent for good (it keeps its assets).", operator_only=True, agent="agent id")
    def stop_agent(self, caller: str, args: dict[str, Any], now: float) -> None:
        agent = self.world.require_agent(args["agent"])
        if agent.stopped:
            raise Refusal(f"{agent.id} is already stopped", "invalid", "agent")
        undo = self.world.ledger.undo
        if undo.on:
            undo.attrs(agent, "stopped", "held")
            undo.items(self.world.live_ids)
            undo.mapping(self.world.frozen)
        agent.stopped = True
        agent.refresh_held()
        self.world.agent_stopped(agent.id)

    @method("restart_agent", "Restart a crashed agent.", operator_only=True, agent="agent id")
    def restart_agent(self, caller: str, args: dict[str, Any], now: float) -> None:
        agent = self.world.require_agent(args["agent"])
        if not agent.crashed:
            raise Refusal(f"{agent.id} has not crashed (it is {agent.status})", "invalid", "agent")
        self.world.ledger.undo.attrs(agent, "crashed", "failures", "last_error", "held")
        agent.restart()

    @method("pause_agent", "Pause one agent.", operator_only=True, agent="agent id")
    def pause_agent(self, caller: str, args: dict[str, Any], now: float) -> None:
        agent = self.world.require_agent(args["agent"])
        if agent.paused or agent.stopped:
            raise Refusal(f"{agent.id} is already {'stopped' if agent.stopped else 'paused'}", "invalid", "agent")
        self.world.ledger.undo.attrs(agent, "paused", "held")
        agent.paused = True
        agent.refresh_held()

    @method("resume_agent", "Resume a paused agent.", operator_only=True, agent="agent id")
    def resume_agent(self, caller: str, args: dict[str, Any], now: float) -> None:
        agent = self.world.require_agent(args["agent"])
        if not agent.paused:
            raise Refusal(f"{agent.id} is not paused", "invalid", "agent")
        self.world.ledger.undo.attrs(agent, "paused", "held")
        agent.paused = False
        agent.refresh_held()
