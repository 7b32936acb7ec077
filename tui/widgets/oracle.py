"""The Oracle panel: the open bids of the next resolution (ranked as the oracle will rank
them, the winning slots marked), the countdown, and the record of past resolutions."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from ..format import duration, num, principal_text, world_t
from .line import Line, retitle
from .live_table import Col, LiveTable
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World

BID_COLUMNS = (
    Col("artifact", "artifact", 12),
    Col("rank", "#", 3, "right"),
    Col("bidder", "bidder", 9),
    Col("amount", "amount", 7, "right"),
    Col("placed", "placed", 8, "right"),
    Col("standing", "standing", 9),
)
RESOLUTION_COLUMNS = (
    Col("index", "#", 4),
    Col("at", "at", 8, "right"),
    Col("trigger", "by", 8),
    Col("bids", "bids", 4, "right"),
    Col("price", "price", 5, "right"),
    Col("minted", "minted", 6, "right"),
    Col("ubi", "UBI", 4, "right"),
    Col("winners", "winners (score)", 40),
)
KEEP = 50  # resolutions shown; the detail of older ones is in the report


class OraclePanel(Panel):
    TITLE = "Oracle"
    SELECTS: ClassVar[dict[str, str]] = {"bids-table": "bid", "resolutions-table": "resolution"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "app.bid", "Bid"),
        Binding("x", "app.cancel_bid", "Cancel bid"),
        Binding("r", "app.resolve_now", "Resolve now"),
        Binding("w", "app.write_artifact", "Write artifact"),
        Binding("h", "app.agent_history", "History"),
    ]

    def compose(self) -> ComposeResult:
        yield Line(id="oracle-summary", classes="summary")
        with Vertical(id="bids-box", classes="box"):
            yield LiveTable(BID_COLUMNS, id="bids-table")
        with Vertical(id="resolutions-box", classes="box"):
            yield LiveTable(RESOLUTION_COLUMNS, id="resolutions-table")

    def on_mount(self) -> None:
        self.query_one("#bids-box").border_title = "Open bids"
        self.query_one("#resolutions-box").border_title = "Resolutions"

    def refresh_view(self, world: World, now: float) -> None:
        oracle = world.oracle
        cfg = oracle.cfg
        ranked = oracle.ranked()
        k = cfg.slots
        price = ranked[k].amount if len(ranked) > k else cfg.min_bid
        left = world.next_resolution_in(now)
        self.query_one("#oracle-summary", Line).show(Text.assemble(
            ("next resolution in ", "dim"), (duration(left), "bold"), (f" (at {world_t(now + left)})", "dim"),
            ("  │  ", "dim"), (f"{k} slots", ""), (f", min bid {cfg.min_bid}, mint 1 per {cfg.mint_ratio:g} points", "dim"),
            ("  │  ", "dim"), ("resolved ", "dim"), (num(oracle.resolved), ""), ("  minted ", "dim"), (num(oracle.minted_total), ""),
        ))
        bids = self.query_one("#bids-table", LiveTable)
        seen: dict[str, object] = {}
        for b in ranked:
            seen.setdefault(b.artifact_id, b)
        bids.set_keys(list(seen))
        rows = []
        for rank, b in enumerate(seen.values(), 1):
            winning = rank <= k
            rows.append((b.artifact_id, (
                b.artifact_id,
                str(rank),
                principal_text(b.bidder),
                num(b.amount),
                world_t(b.t),
                Text(f"wins @{price}", "green") if winning else Text("outbid", "dim"),
            )))
        bids.update_rows(rows)
        held = world.ledger.held.get("oracle", 0)
        retitle(self.query_one("#bids-box"), f"Open bids [{len(ranked)}]")
        retitle(self.query_one("#bids-box"), subtitle=f"{num(held)} scrip held")

        records = list(oracle.resolutions)[-KEEP:]
        res = self.query_one("#resolutions-table", LiveTable)
        keys = [f"#{r['index']}" for r in reversed(records)]  # newest first
        res.set_keys(keys)
        res.update_rows((f"#{r['index']}", self.resolution_row(r)) for r in records)
        retitle(self.query_one("#resolutions-box"), f"Resolutions [{oracle.resolved}]")

    @staticmethod
    def resolution_row(r: dict) -> tuple:
        winners = Text()
        for i, w in enumerate(r["winners"]):
            if i:
                winners.append(", ")
            winners.append(w["artifact"])
            winners.append(f" ({'failed' if w['score'] is None else w['score']})", "dim")
        return (
            f"#{r['index']}",
            world_t(r["t"]),
            Text(r["trigger"], "bold magenta" if r["trigger"] == "operator" else "dim"),
            str(r["bids"]),
            "—" if r["price"] is None else str(r["price"]),
            Text(num(r["minted"]), "green" if r["minted"] else "dim"),
            str(r["ubi"]["pool"]),
            winners if r["winners"] else Text("no bids", "dim"),
        )
