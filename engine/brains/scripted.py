"""Built-in scripted brains: seeded, deterministic, no network.

Together they make the default world lively: money circulates (boltzmann, philanthropist),
expensive thinkers write artifacts and fall into compute debt (dreamer), rescuers pay off
frozen agents' debt with their own compute (rescuer), and the rich found new agents
(founder). Issue 3's economy brains (builders, traders, lenders) join them later.
"""

from __future__ import annotations

from ..actions import NOOP, Action, Delete, Invoke, ScripAtLeast, Sleep, Write
from ..brain_params import BoltzmannParams, DreamerParams, FounderParams, PhilanthropistParams, RescuerParams
from .base import Brain


# One gift action per recipient, shared by every Boltzmann brain. An action handed to the
# world is never changed afterwards (the world keeps it: the agent's last action, the app's
# history), and a Boltzmann world takes hundreds of thousands of these a second: a lookup
# here costs what re-aiming one action object did, and a new object each turn more.
_GIFTS: dict[str, Invoke] = {}


def _gift(to: str) -> Invoke:
    give = _GIFTS[to] = Invoke("ledger", "transfer", {"to": to, "amount": 1})
    return give


class Boltzmann(Brain[BoltzmannParams]):
    """Gives one scrip to a random other agent (Boltzmann wealth model)."""

    name = "boltzmann"
    summary = "gives 1 scrip to a random other agent"

    Params = BoltzmannParams

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self._broke = (Sleep(until_event="scrip_transferred", timeout=60.0, only_mine=True)
                       if params.when_broke == "sleep" else NOOP)

    def decide(self, view) -> Action:
        if view.scrip <= 0:
            return self._broke
        other = view.random_other()
        if other is None:
            return NOOP
        return _GIFTS.get(other) or _gift(other)


class Philanthropist(Brain[PhilanthropistParams]):
    """Gives part of its scrip to the poorest of a few agents it looks at."""

    name = "philanthropist"
    summary = "gives scrip to the poorest agent it sees"

    Params = PhilanthropistParams

    def decide(self, view) -> Action:
        p = self.params
        if view.scrip < p.keep + p.gift:
            return Sleep(until_event="scrip_transferred", timeout=p.patience, only_mine=True)
        candidates = [o for o in (view.random_other() for _ in range(p.sample)) if o is not None]
        if not candidates:
            return Sleep(seconds=p.patience)
        poorest = min(candidates, key=lambda a: (view.scrip_of(a), a))
        return Invoke("ledger", "transfer", {"to": poorest, "amount": p.gift})


class Dreamer(Brain[DreamerParams]):
    """An expensive thinker: long thoughts, each written down as an artifact. It falls into
    compute debt and freezes until accrual (or a rescuer) pays it off."""

    name = "dreamer"
    summary = "expensive thoughts written as artifacts; often frozen"
    memory = ("written",)

    Params = DreamerParams

    VOCAB = (
        "scrip", "compute", "debt", "oracle", "bid", "market", "rate", "right", "loan",
        "freeze", "thaw", "rescue", "artifact", "owner", "ledger", "time", "market",
        "price", "value", "trust", "interest", "claim", "holder", "budget", "quota",
    )

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self.written: list[str] = []

    def decide(self, view) -> Action:
        if view.last_result is not None and view.last_result.ok and isinstance(view.last_result.value, dict):
            new_id = view.last_result.value.get("artifact_id")
            if new_id and new_id not in self.written:
                self.written.append(new_id)
        if len(self.written) > self.params.keep_artifacts:
            return Delete(self.written.pop(0))
        words = " ".join(self.rng.choice(self.VOCAB) for _ in range(self.params.words))
        return Write(f"{view.wall_time} {view.id} dreams: {words}")


class Rescuer(Brain[RescuerParams]):
    """Pays off frozen agents' compute debt from its own positive balance."""

    name = "rescuer"
    summary = "transfers compute to frozen agents"

    Params = RescuerParams

    def decide(self, view) -> Action:
        p = self.params
        frozen = view.frozen_agents()
        if frozen and view.compute >= p.reserve + p.amount:
            target = frozen[int(self.rng.random() * len(frozen))]
            if target != view.id:
                return Invoke("ledger", "transfer_compute", {"to": target, "amount": p.amount})
        return Sleep(until_event="agent_status", timeout=p.patience)


class Founder(Brain[FounderParams]):
    """Saves scrip (sleeping until it is rich enough) and then founds a new agent,
    paying it scrip and a slice of its own compute rate."""

    name = "founder"
    summary = "saves up, then spawns a child agent"
    memory = ("children",)

    Params = FounderParams

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self.children = 0

    def decide(self, view) -> Action:
        p = self.params
        if self.children >= p.max_children:  # done founding: circulate what it has
            other = view.random_other()
            if view.scrip > 0 and other is not None:
                return Invoke("ledger", "transfer", {"to": other, "amount": 1})
            return Sleep(seconds=30.0)
        if view.scrip < p.threshold:
            return Sleep(until=ScripAtLeast(p.threshold), timeout=120.0)
        self.children += 1
        return Invoke(
            "ledger",
            "spawn",
            {
                "brain": p.child_brain,
                "rate": round(view.rate * p.rate_share, 6),
                "scrip": p.endowment,
            },
        )
