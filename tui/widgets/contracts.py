"""The Contracts panel: every loan, its status, what is owed now, who holds the claim,
and when it falls due. Defaults stand out; the history is in each contract's detail."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical

from ..format import CONTRACT_STYLE, duration, num, principal_text
from .line import Line, retitle
from .live_table import Col, LiveTable
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World

COLUMNS = (
    Col("contract", "contract", 9),
    Col("status", "status", 9),
    Col("lender", "lender", 9),
    Col("debtor", "debtor", 9),
    Col("holder", "holder", 9),
    Col("principal", "principal", 9, "right"),
    Col("owed", "owed", 6, "right"),
    Col("repaid", "repaid", 6, "right"),
    Col("rate", "rate/day", 8, "right"),
    Col("due", "due in", 8, "right"),
)


class ContractsPanel(Panel):
    TITLE = "Contracts"
    SELECTS: ClassVar[dict[str, str]] = {"contracts-table": "contract"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "app.offer_loan", "Offer"),
        Binding("a", "app.accept_loan", "Accept"),
        Binding("y", "app.repay_loan", "Repay"),
        Binding("s", "app.sell_claim", "Sell claim"),
        Binding("d", "app.decline_loan", "Decline", show=False),
        Binding("x", "app.cancel_loan", "Cancel offer", show=False),
        Binding("h", "app.agent_history", "History"),
    ]

    def compose(self) -> ComposeResult:
        yield Line(id="contracts-summary", classes="summary")
        with Vertical(id="contracts-box", classes="box"):
            yield LiveTable(COLUMNS, id="contracts-table")

    def on_mount(self) -> None:
        self.query_one("#contracts-box").border_title = "Loans"

    def refresh_view(self, world: World, now: float) -> None:
        contracts = world.contracts
        ids = list(contracts.contracts)
        table = self.query_one("#contracts-table", LiveTable)
        table.set_keys(ids)
        keys = dict.fromkeys(table.visible_keys() + table.rolling_keys(64))
        table.update_rows((cid, self.row(world, cid, now)) for cid in keys)
        counts = Counter(a.content["status"] for a in contracts.contracts.values())
        outstanding = sum(contracts.owed(a.content, now) for a in contracts.contracts.values()
                          if a.content["status"] in ("active", "defaulted"))
        line = Text(no_wrap=True, overflow="ellipsis")
        for status in ("offered", "active", "repaid", "defaulted", "cancelled"):
            n = counts.get(status, 0)
            line.append(f"{status} ", "dim")
            line.append(f"{n}  ", CONTRACT_STYLE[status] if n else "dim")
        line.append("│ owed now ", "dim")
        line.append(num(outstanding), "bold")
        line.append(" scrip", "dim")
        self.query_one("#contracts-summary", Line).show(line)
        retitle(self.query_one("#contracts-box"), f"Loans [{len(ids)}]")

    @staticmethod
    def row(world: World, contract_id: str, now: float) -> tuple:
        contracts = world.contracts
        c = contracts.contracts[contract_id].content
        status = c["status"]
        if c["due"] is None:
            due = Text("—", "dim")
        elif status in ("active",):
            left = c["due"] - now
            due = Text(duration(left), "yellow" if left < 60 else "")
        else:
            due = Text(duration(c["due"] - now) if c["due"] > now else "past", "dim")
        return (
            contract_id,
            Text(status, CONTRACT_STYLE.get(status, "")),
            principal_text(c["lender"]),
            principal_text(c["debtor"]),
            principal_text(contracts.holder(contract_id)),
            num(c["principal"]),
            Text(num(contracts.owed(c, now)), "bold red" if status == "defaulted" else ""),
            num(c["repaid"]),
            f"{c['rate_per_day']:g}",
            due,
        )
