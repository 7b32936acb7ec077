"""The rights registry: each agent's configuration is an artifact (its config right).

Whoever owns an agent's config right may change its configuration; the agent follows the
new settings at its next loop turn. Nobody can change balances through a config.
"""

from __future__ import annotations

from typing import Any

from ..bounds import PRICE, RATE, THINK_DELAY, shown
from .. import brain_params
from ..errors import Refusal
from ..events import ConfigChanged, RateSliced
from ..ledger import MICRO, to_micro
from .base import GenesisArtifact, Param, method

CONFIG_FIELDS = ("brain", "params", "think_delay")


class RightsArtifact(GenesisArtifact):
    id = "rights"
    description = "Config rights: the owner of an agent's config right may change its configuration."

    @method("configure", "Change an agent's brain, params or think delay (config right owner only).",
            optional=("brain", "params", "think_delay"),
            agent="agent id", brain="brain name", params="brain parameters (table; replaces the old)",
            think_delay=Param("how long each thought takes", THINK_DELAY))
    def configure(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        agent = world.require_agent(args["agent"])
        cfg = agent.config_artifact
        if cfg.owner != caller:
            raise Refusal(
                f"cannot configure {agent.id}: its config right is owned by {cfg.owner}, not {caller}",
                "not_owner", "agent",
            )
        changes = {k: args[k] for k in CONFIG_FIELDS if k in args}
        if not changes:
            raise Refusal("nothing to change: give brain, params or think_delay", "invalid")
        new = {**cfg.content, **changes}
        brain_params.params_for(new["brain"])  # an unknown brain is refused as such
        if not isinstance(new.get("params", {}), dict):
            raise Refusal(f"params must be a table, got {shown(new['params'])}", "invalid", "params")
        if "brain" in changes and "params" not in changes and changes["brain"] != cfg.content["brain"]:
            new["params"] = {}  # another brain's parameters would not fit
        try:
            brain_params.validate(new["brain"], new.get("params"))
        except Exception as e:
            raise Refusal(f"bad params for {new['brain']}: {e}".replace("\n", " "), "invalid", "params") from None
        THINK_DELAY.check(new.get("think_delay", 0.0), "think_delay")
        world.ledger.undo.attrs(cfg, "content", "version", "updated")
        cfg.content = new
        cfg.version += 1
        cfg.updated = now
        world.bus.publish(ConfigChanged(now, agent.id, caller, changes))
        world.count("config_changed")
        return {"agent": agent.id, "version": cfg.version}

    @method("owner", "Who owns an agent's config right.", agent="agent id")
    def owner(self, caller: str, args: dict[str, Any], now: float) -> dict[str, str]:
        agent = self.world.require_agent(args["agent"])
        return {"agent": agent.id, "config_right": agent.config_artifact.id, "owner": agent.config_artifact.owner}

    # -- rate rights: slices of compute rate as artifacts that follow their owner ---------------
    @method("slice_rate", "Make part of your compute rate a rate-slice artifact you can sell or give; "
            "its rate keeps flowing to whoever owns it.", amount=Param("the slice's rate", RATE))
    def slice_rate(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        micro = world.ledger.slice_rate(caller, args["amount"])
        art = self._make_slice(caller, micro, now)
        return {"artifact": art.id, "rate": micro / MICRO}

    @method("split", "Split a rate slice you own in two.", artifact="rate slice id",
            amount=Param("the new slice's rate", RATE))
    def split(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        art = self._own_slice(caller, args["artifact"])
        micro = to_micro(args["amount"])
        if not 0 < micro < art.content["micro"]:
            raise Refusal(f"split amount must be between 0 and {art.content['micro'] / MICRO:g} "
                          "(both excluded), in steps of 1e-6", "invalid", "amount")
        self.world.ledger.undo.attrs(art, "content", "version", "updated")
        art.content = {"rate": (art.content["micro"] - micro) / MICRO, "micro": art.content["micro"] - micro}
        art.version += 1
        art.updated = now
        new = self._make_slice(caller, micro, now, how="split")
        return {"artifact": new.id, "rate": micro / MICRO, "left": art.content["rate"]}

    @method("dissolve", "Turn a rate slice you own back into plain rate.", artifact="rate slice id")
    def dissolve(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        art = self._own_slice(caller, args["artifact"])
        world = self.world
        world.ledger.unslice_rate(caller, art.content["micro"])
        world.ledger.undo.item(world.artifacts.by_id, art.id)
        del world.artifacts.by_id[art.id]
        world.bus.publish(RateSliced(now, caller, art.id, art.content["rate"], "dissolved"))
        return {"rate": art.content["rate"]}

    @method("set_price", "Set the scrip others pay to run a code artifact you own.",
            artifact="code artifact id", price=Param("each run", PRICE))
    def set_price(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        art = self.world.artifacts.get(args["artifact"])
        if art.kind != "code":
            raise Refusal(f"{art.id} is a {art.kind} artifact; only code has a price to run", "invalid", "artifact")
        if art.owner != caller:
            raise Refusal(f"cannot price {art.id}: it is owned by {art.owner}, not {caller}", "not_owner", "artifact")
        price = args["price"]
        self.world.ledger.undo.item(art.meta, "price")
        art.meta["price"] = price
        return {"artifact": art.id, "price": price}

    @method("rights", "Who owns every agent's config right, and every rate slice.")
    def rights(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        return {
            "config": {a.id: a.config_artifact.owner for a in world.agents.values()},
            "rate_slices": [
                {"artifact": a.id, "owner": a.owner, "rate": a.content["rate"]}
                for a in world.artifacts.by_id.values() if a.kind == "rate"
            ],
        }

    def _make_slice(self, owner: str, micro: int, now: float, how: str = "sliced"):
        world = self.world
        art = world.artifacts.create(owner, "rate", {"rate": micro / MICRO, "micro": micro}, now, charge_disk=False)
        world.bus.publish(RateSliced(now, owner, art.id, micro / MICRO, how))
        return art

    def _own_slice(self, caller: str, artifact_id: object):
        art = self.world.artifacts.get(artifact_id)
        if art.kind != "rate":
            raise Refusal(f"{art.id} is a {art.kind} artifact, not a rate slice", "invalid", "artifact")
        if art.owner != caller:
            raise Refusal(f"{art.id} is owned by {art.owner}, not {caller}", "not_owner", "artifact")
        return art
