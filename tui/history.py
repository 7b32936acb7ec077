"""The story behind an agent: its recent history as one timeline, newest first.

Three sources, merged by world time:
* what the agent remembers of itself (engine/agent.py): its last actions with their cost
  and result, and its last freezes with the action that caused each, how long it lasted
  and how it ended;
* the news the app collects from its event subscription (`AgentNews`, filed per agent as
  frames drain it): rescues received, bids and mints, sales, loans, incidents, status;
* the payments in the bus's recent ring (the app does not subscribe to the per-transfer
  firehose, so transfers reach back only as far as the engine's own ring).

An event the agent caused itself while its action ring covers that time is left out: the
action's own line says the same, with its arguments and cost.
"""

from __future__ import annotations

import itertools
import reprlib
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from engine.actions import Invoke
from engine.events import Event
from engine.ids import FROZEN

from .format import duration, event_parts, short, world_t

if TYPE_CHECKING:
    from engine.world import World

KEEP = 32  # news lines kept per agent
SHOW = 30  # timeline lines shown

# The fields of each event kind that name principals: the agents it concerns.
NAMES: dict[str, tuple[str, ...]] = {
    "scrip_transferred": ("frm", "to"),
    "compute_transferred": ("frm", "to"),
    "rate_transferred": ("frm", "to"),
    "rate_changed": ("agent_id",),
    "agent_spawned": ("agent_id", "parent"),
    "agent_status": ("agent_id",),
    "artifact_written": ("owner",),
    "artifact_transferred": ("frm", "to"),
    "config_changed": ("agent_id", "by"),
    "action_refused": ("principal",),
    "brain_failed": ("agent_id",),
    "sandbox_incident": ("agent_id",),
    "bid_placed": ("bidder",),
    "bid_cancelled": ("bidder",),
    "scrip_minted": ("to",),
    "listing_created": ("seller", "buyer"),
    "listing_sold": ("seller", "buyer"),
    "listing_cancelled": ("seller",),
    "rate_sliced": ("owner",),
    "loan": ("lender", "debtor", "holder"),
}

# The field naming who acted, for kinds that one principal's own action causes.
ACTOR: dict[str, str] = {
    "scrip_transferred": "frm",
    "compute_transferred": "frm",
    "rate_transferred": "frm",
    "artifact_written": "owner",
    "artifact_transferred": "frm",
    "config_changed": "by",
    "action_refused": "principal",
    "bid_placed": "bidder",
    "listing_created": "seller",
    "listing_cancelled": "seller",
    "listing_sold": "buyer",
    "rate_sliced": "owner",
    "agent_spawned": "parent",
}
LOAN_ACTOR = {"offered": "lender", "cancelled": "lender", "accepted": "debtor", "declined": "debtor",
              "repayment": "debtor"}


def named(ev: Event) -> set[str]:
    """The principals an event names."""
    return {p for f in NAMES.get(ev.kind, ()) if isinstance(p := getattr(ev, f, None), str)}


def actor(ev: Event) -> str | None:
    """Who caused an event by acting, if one principal's action did."""
    if ev.kind == "loan":
        field = LOAN_ACTOR.get(ev.what)
        return getattr(ev, field) if field else None
    field = ACTOR.get(ev.kind)
    return getattr(ev, field, None) if field else None


class AgentNews:
    """The news lines that name each agent, in bounded rings (filed as the app's frames
    drain its subscription; nothing here reads the engine)."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.by_agent: dict[str, deque[Event]] = {}

    def ingest(self, events: Iterable[Event], agents: Any) -> None:
        """File each event under every agent it names (`agents`: the world's agents)."""
        for ev in events:
            if ev.kind not in NAMES:
                continue
            for principal in named(ev):
                if principal in agents:
                    ring = self.by_agent.get(principal)
                    if ring is None:
                        ring = self.by_agent[principal] = deque(maxlen=self.keep)
                    ring.append(ev)

    def of(self, agent_id: str) -> list[Event]:
        return list(self.by_agent.get(agent_id, ()))


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 24  # agents choose the arguments: bound what is formatted


def _args(action: Any) -> str:
    """An invoke's first few arguments, each cut short, whatever size an agent made them."""
    if type(action) is Invoke and isinstance(action.args, dict) and action.args:
        parts = []
        for k, v in itertools.islice(action.args.items(), 4):
            text = v if isinstance(v, str) and len(v) <= 24 else _REPR.repr(v)
            parts.append(f"{str(k)[:24]}={text}")
        return " " + short(" ".join(parts), 60)
    return ""


# At one instant, newest first: a freeze follows the action that caused it, and an action
# the events it caused (which sit at the same instant).
EVENT, ACTION, FREEZE = 0, 1, 2


def _row(order: tuple[float, int, int], tag: str, style: str, what: Text | str) -> tuple:
    t = order[0]
    return (order, Text(world_t(t), "dim"), Text(tag, style), what if isinstance(what, Text) else Text(what))


def timeline(world: World, agent_id: str, news: AgentNews | None, now: float, limit: int = SHOW) -> list[tuple]:
    """The agent's recent history: rows of (order, time, tag, what), newest first."""
    agent = world.agents.get(agent_id)
    rows: list[tuple] = []
    if agent is None:
        return rows
    cost_of = world.waist.cost_of
    actions = list(agent.recent_actions or ())
    since = actions[0][0] if actions else float("inf")  # the action ring covers [since, now]
    for i, (t, action, result, think) in enumerate(actions):
        what = Text(action.describe() + _args(action))
        what.append(f"  cost {think + cost_of(action):.2f}", "dim")
        if not result.ok:
            what.append(f"  refused: {short(str(result.error)[:200], 90)}", "red")
        rows.append(_row((t, ACTION, i), "act", "green" if result.ok else "red", what))
    # Rescues, found among the news, name who ended a freeze early.
    events = [*(news.of(agent_id) if news is not None else ()),
              *(ev for ev in world.bus.recent if ev.kind == "scrip_transferred" and agent_id in (ev.frm, ev.to))]
    rescues = [ev for ev in events if ev.kind == "compute_transferred" and ev.to == agent_id]
    for i, f in enumerate(agent.freezes or ()):
        what = Text(f"debt {f.debt:.2f}")
        if f.cause is not None:
            what.append(" after ")
            what.append(f.cause.describe(), "bold")
        end = f.t + f.length if f.length is not None else now
        helpers = [f"{ev.frm} +{ev.credited:.1f}" for ev in rescues if ev.seq > f.seq and ev.t <= end]
        alone = f.debt / f.rate if f.rate > 0 else float("inf")  # the thaw by accrual alone
        if f.length is None:
            what.append(f"; frozen {duration(now - f.t)} so far", "bold blue")
        else:
            what.append(f"; {duration(f.length)}, {f.ended}")
            if f.ended == "paid off" and f.length < alone * 0.99:
                what.append(f", {duration(alone - f.length)} sooner than by accrual", "blue")
        if helpers:
            what.append(f"; rescue from {', '.join(helpers)}", "blue")
        rows.append(_row((f.t, FREEZE, i), FROZEN, "bold blue", what))
    seen: set[int] = set()
    for ev in events:
        if ev.seq in seen:
            continue
        seen.add(ev.seq)
        if ev.t >= since and actor(ev) == agent_id:
            continue  # its own action's line says this
        if ev.kind == "scrip_transferred":
            other = ev.to if ev.frm == agent_id else ev.frm
            sign = "-" if ev.frm == agent_id else "+"
            rows.append(_row((ev.t, EVENT, ev.seq), "pay" if sign == "-" else "paid", "cyan",
                             f"{sign}{ev.amount:,} scrip {'to' if sign == '-' else 'from'} {other}"))
            continue
        parts = event_parts(ev)
        if parts is not None:
            rows.append(_row((ev.t, EVENT, ev.seq), *parts))
    rows.sort(key=lambda r: r[0], reverse=True)
    return rows[:limit]


def history_table(rows: list[tuple]) -> RenderableType:
    if not rows:
        return Text("  nothing recorded yet", "dim")
    table = Table(box=None, padding=(0, 1), show_edge=False, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, min_width=7)
    table.add_column(overflow="fold")
    for _, at, tag, what in rows:
        table.add_row(at, tag, what)
    return table
