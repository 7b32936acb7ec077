"""The rights registry: each agent's configuration is an artifact (its config right).

Whoever owns an agent's config right may change its configuration; the agent follows the
new settings at its next loop turn. Nobody can change balances through a config.
"""

from __future__ import annotations

import math
from typing import Any

from ..brains import brain_class
from ..errors import Refusal
from ..events import ConfigChanged
from .base import GenesisArtifact, method

CONFIG_FIELDS = ("brain", "params", "think_delay")


class RightsArtifact(GenesisArtifact):
    id = "rights"
    description = "Config rights: the owner of an agent's config right may change its configuration."

    @method("configure", "Change an agent's brain, params or think delay (config right owner only).",
            optional=("brain", "params", "think_delay"),
            agent="agent id", brain="brain name", params="brain parameters (table; replaces the old)",
            think_delay="seconds each thought takes (>= 0)")
    def configure(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        agent = world.require_agent(args["agent"])
        cfg = agent.config_artifact
        if cfg.owner != caller:
            raise Refusal(
                f"cannot configure {agent.id}: its config right is owned by {cfg.owner}, not {caller}",
                "not_owner",
            )
        changes = {k: args[k] for k in CONFIG_FIELDS if k in args}
        if not changes:
            raise Refusal("nothing to change: give brain, params or think_delay", "invalid")
        new = {**cfg.content, **changes}
        cls = brain_class(new["brain"])
        if not isinstance(new.get("params", {}), dict):
            raise Refusal(f"params must be a table, got {new['params']!r}", "invalid")
        if "brain" in changes and "params" not in changes and changes["brain"] != cfg.content["brain"]:
            new["params"] = {}  # another brain's parameters would not fit
        try:
            cls.validate_params(new.get("params"))
        except Exception as e:
            raise Refusal(f"bad params for {new['brain']}: {e}".replace("\n", " "), "invalid") from None
        delay = new.get("think_delay", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
            raise Refusal(f"think_delay must be a number >= 0, got {delay!r}", "invalid")
        cfg.content = new
        cfg.version += 1
        cfg.updated = now
        world.bus.publish(ConfigChanged(now, agent.id, caller, changes))
        return {"agent": agent.id, "version": cfg.version}

    @method("owner", "Who owns an agent's config right.", agent="agent id")
    def owner(self, caller: str, args: dict[str, Any], now: float) -> dict[str, str]:
        agent = self.world.require_agent(args["agent"])
        return {"agent": agent.id, "config_right": agent.config_artifact.id, "owner": agent.config_artifact.owner}
