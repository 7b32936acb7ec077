"""How the app writes the world's numbers, times and events: one place, so every panel
reads alike (fixed widths, one colour per meaning, world time only — never the machine's)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rich.text import Text

from engine.events import Event
from engine.ids import ACTING, CRASHED, FROZEN, OPERATOR, PAUSED, SLEEPING, STOPPED, THINKING

# One colour per agent status, used everywhere a status is shown.
STATUS_STYLE = {
    THINKING: "cyan",
    ACTING: "green",
    SLEEPING: "dim",
    FROZEN: "bold blue",
    PAUSED: "yellow",
    CRASHED: "bold red",
    STOPPED: "red",
}
CONTRACT_STYLE = {
    "offered": "cyan",
    "active": "yellow",
    "repaid": "green",
    "defaulted": "bold red",
    "cancelled": "dim",
}
CONTAINER_STYLE = {
    "running": "green",
    "starting": "cyan",
    "replacing": "yellow",
    "stopped": "dim",
    "gone": "red",
}
OPERATOR_STYLE = "bold magenta"  # the person at the keyboard, wherever they appear


def status_text(status: str) -> Text:
    return Text(status, STATUS_STYLE.get(status, ""))


def principal_text(principal: str | None) -> Text:
    """A principal's id; the operator stands out because that is the reader."""
    if principal is None:
        return Text("—", "dim")
    return Text(principal, OPERATOR_STYLE if principal == OPERATOR else "")


def num(value: float) -> str:
    """Scrip and counts: whole numbers with thousands separators."""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.0f}"


def compute_text(balance: float, width: int = 0) -> Text:
    """A compute balance; below zero it is debt and the agent is frozen."""
    s = f"{balance:,.2f}".rjust(width)
    if balance < 0:
        return Text(s, "bold blue")
    return Text(s)


def duration(seconds: float | None) -> str:
    """A span of world time, short: 45s, 4m05s, 2h03m, 3d04h."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if math.isinf(seconds):
        return "never"
    if abs(seconds) < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"  # a frozen agent thaws in tenths of a second
    s = round(seconds)
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{sign}{s // 86400}d{s % 86400 // 3600:02d}h"


def world_t(t: float) -> str:
    """World time since start as a clock face: 04:45 or 1:02:03."""
    s = int(t)
    if s < 3600:
        return f"{s // 60:02d}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def nbytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
    return f"{n:.0f} TiB"  # pragma: no cover


def bar(fraction: float, width: int = 10, style: str = "green") -> Text:
    """A horizontal gauge, eighths of a cell resolution (like btop's meters)."""
    fraction = 0.0 if math.isnan(fraction) else max(0.0, min(1.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    if fraction >= 0.9:
        style = "bold red"
    elif fraction >= 0.7:
        style = "yellow"
    return Text(text.ljust(width), style)


def short(value: Any, limit: int = 60) -> str:
    """A one-line preview of an artifact's content."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# One entry per event kind: its tag, the tag's style, and its line (None: not news).
# A table, so the events panel and an agent's history say each event the same way.
Parts = tuple[str, str, str]


def _status(ev: Any) -> Parts | None:
    if ev.status == FROZEN:
        return None  # frequent for agents paying as they go; the table shows it
    return ev.status, STATUS_STYLE.get(ev.status, ""), f"{ev.agent_id} {ev.detail}".rstrip()


def _written(ev: Any) -> Parts | None:
    if not ev.created:
        return None
    return "write", "cyan", f"{ev.owner} {ev.artifact_id} ({ev.artifact_kind}, {ev.size} B)"


def _given(ev: Any) -> Parts | None:
    if ev.to == "market" or ev.frm == "market":
        return None  # custody moves of a listing: the listing lines say it
    return "give", "cyan", f"{ev.frm} → {ev.to} {ev.artifact_id}"


def _bid(ev: Any) -> Parts:
    was = f" (was {ev.replaced})" if ev.replaced is not None else ""
    return "bid", "green", f"{ev.bidder} bids {ev.amount} on {ev.artifact_id}{was}"


def _resolved(ev: Any) -> Parts:
    winners = ", ".join(ev.winners) or "no winners"
    return "oracle", "bold green", f"resolution #{ev.index}: {winners}; price {ev.price}, minted {ev.minted}, UBI {ev.ubi}"


def _listed(ev: Any) -> Parts:
    only = f" for {ev.buyer} only" if ev.buyer else ""
    return "list", "cyan", f"{ev.seller} lists {ev.artifact_id} ({ev.artifact_kind}) at {ev.price}{only}"


EVENT_LINES: dict[str, Callable[[Any], Parts | None]] = {
    "scrip_transferred": lambda ev: None,  # the circulation itself: shown as totals, not line by line
    "compute_transferred": lambda ev: ("rescue", "blue", f"{ev.frm} → {ev.to} {ev.credited:.1f} compute"),
    "rate_transferred": lambda ev: ("rate", "magenta", f"{ev.frm} → {ev.to} {ev.amount:g}/s"),
    "rate_changed": lambda ev: ("bucket", "magenta", f"{ev.agent_id} rate {ev.rate:g}/s capacity {ev.capacity:g}"),
    "agent_spawned": lambda ev: ("spawn", "green",
                                 f"{ev.parent} founded {ev.agent_id} ({ev.brain}, {ev.scrip} scrip, {ev.rate:g}/s)"),
    "agent_status": _status,
    "artifact_written": _written,
    "artifact_transferred": _given,
    "config_changed": lambda ev: ("config", "yellow", f"{ev.by} changed {ev.agent_id}: {', '.join(ev.changes)}"),
    "action_refused": lambda ev: ("refused", "red", f"{ev.principal} {ev.action}: {ev.reason}"),
    "brain_failed": lambda ev: ("failed", "red", f"{ev.agent_id}: {ev.error}"),
    # a bug in the engine (issue 12): loud, with what was undone and any broken invariant
    "engine_error": lambda ev: ("ENGINE", "bold white on red", (
        f"{ev.method} by {ev.principal} failed: {ev.error} "
        f"({ev.undone} changes undone{'; BROKEN ' + ', '.join(ev.broken) if ev.broken else ''})")),
    "world_control": lambda ev: ("world", "bold yellow", f"{ev.what} {ev.detail}".rstrip()),
    "sandbox_incident": lambda ev: ("sandbox", "bold red", f"{ev.agent_id} {ev.failure}: {ev.detail}"),
    "bid_placed": _bid,
    "bid_cancelled": lambda ev: ("unbid", "dim", f"{ev.bidder} {ev.artifact_id} {ev.amount} released: {ev.reason}"),
    "oracle_resolved": _resolved,
    "scrip_minted": lambda ev: ("mint", "green", f"{ev.to} +{ev.amount} for {ev.artifact_id} (score {ev.score})"),
    "listing_created": _listed,
    "listing_sold": lambda ev: ("sold", "green", f"{ev.seller} → {ev.buyer} {ev.artifact_id} for {ev.price}"),
    "listing_cancelled": lambda ev: ("delist", "dim", f"{ev.seller} {ev.listing_id} ({ev.artifact_id})"),
    "rate_sliced": lambda ev: ("slice", "magenta", f"{ev.owner} {ev.how} {ev.artifact_id} ({ev.amount:g}/s)"),
    "loan": lambda ev: ("loan", CONTRACT_STYLE.get(ev.status, ""),
                        f"{ev.contract_id} {ev.what} {ev.amount} ({ev.lender} → {ev.debtor}, holder {ev.holder})"),
}


def event_parts(ev: Event) -> Parts | None:
    """(tag, style, text) for an event; None for events too frequent to be news."""
    describe = EVENT_LINES.get(ev.kind)
    return describe(ev) if describe is not None else None


def describe_event(ev: Event) -> Text | None:
    """One line for the event stream; None for events too frequent to be news."""
    parts = event_parts(ev)
    if parts is None:
        return None
    tag, style, text = parts
    return Text.assemble(Text(f"{world_t(ev.t):>8} ", "dim"), (f"{tag:<9}", style), text)
