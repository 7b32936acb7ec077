"""The Rights panel: who owns each agent's config right, who owns which slice of compute
rate, and what is for sale on the market (rights, slices, claims, data)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical

from engine.ids import OPERATOR

from ..format import num, principal_text, world_t
from .line import Line, retitle
from .live_table import Col, LiveTable
from .panel import Panel

if TYPE_CHECKING:
    from engine.world import World

CONFIG_COLUMNS = (
    Col("agent", "agent", 8),
    Col("owner", "owner", 9),
    Col("brain", "brain", 14),
    Col("rate", "rate/s", 6, "right"),
    Col("version", "v", 3, "right"),
)
SLICE_COLUMNS = (
    Col("slice", "slice", 9),
    Col("owner", "owner", 9),
    Col("rate", "rate/s", 6, "right"),
    Col("listed", "listed", 10),
)
LISTING_COLUMNS = (
    Col("listing", "listing", 10),
    Col("artifact", "artifact", 11),
    Col("price", "price", 5, "right"),
    Col("seller", "seller", 8),
    Col("kind", "kind", 8),
    Col("buyer", "for", 8),
    Col("since", "since", 8, "right"),
)
ROLLING = 64


class RightsPanel(Panel):
    TITLE = "Rights"
    SELECTS: ClassVar[dict[str, str]] = {
        "config-table": "config", "slices-table": "slice", "listings-table": "listing",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "app.list_artifact", "Sell"),
        Binding("y", "app.buy_listing", "Buy"),
        Binding("g", "app.transfer_artifact", "Give"),
        Binding("x", "app.cancel_listing", "Delist"),
        Binding("e", "app.configure", "Config"),
        Binding("v", "app.slice_rate", "Slice rate", show=False),
        Binding("h", "app.agent_history", "History"),
    ]

    def compose(self) -> ComposeResult:
        yield Line(id="rights-summary", classes="summary")
        with Horizontal(id="rights-body"):
            with Vertical(id="config-box", classes="box"):
                yield LiveTable(CONFIG_COLUMNS, id="config-table")
            with Vertical(id="rights-side"):
                with Vertical(id="slices-box", classes="box"):
                    yield LiveTable(SLICE_COLUMNS, id="slices-table")
                with Vertical(id="listings-box", classes="box"):
                    yield LiveTable(LISTING_COLUMNS, id="listings-table")

    def on_mount(self) -> None:
        self.query_one("#config-box").border_title = "Config rights"
        self.query_one("#slices-box").border_title = "Rate slices"
        self.query_one("#listings-box").border_title = "Market"

    def refresh_view(self, world: World, now: float) -> None:
        ledger = world.ledger
        # Config rights: a thousand rows, refreshed like the agents table.
        config = self.query_one("#config-table", LiveTable)
        config.set_keys(list(world.agents))
        keys = dict.fromkeys(config.visible_keys() + config.rolling_keys(ROLLING))
        config.update_rows((k, self.config_row(world, k)) for k in keys)
        traded = sum(1 for a in world.agents.values() if a.config_artifact.owner != a.id)
        yours = sum(1 for a in world.agents.values() if a.config_artifact.owner == OPERATOR)
        retitle(self.query_one("#config-box"), subtitle=f"{traded} not self-owned · {yours} yours")

        slices = [a for a in world.artifacts.by_id.values() if a.kind == "rate"]
        table = self.query_one("#slices-table", LiveTable)
        table.set_keys([a.id for a in slices])
        table.update_rows((a.id, (
            a.id, principal_text(world.market.seller_of(a.id) if a.owner == "market" else a.owner),
            f"{a.content['rate']:g}", world.market.by_artifact.get(a.id, ""),
        )) for a in slices)
        retitle(self.query_one("#slices-box"), f"Rate slices [{len(slices)}]")

        listings = list(world.market.open.values())
        table = self.query_one("#listings-table", LiveTable)
        table.set_keys([x.id for x in listings])
        table.update_rows((x.id, (
            x.id, x.artifact_id, num(x.price), principal_text(x.seller), x.artifact_kind,
            principal_text(x.buyer) if x.buyer else Text("anyone", "dim"), world_t(x.t),
        )) for x in listings)
        retitle(self.query_one("#listings-box"), f"Market [{len(listings)} open]")
        retitle(self.query_one("#listings-box"), subtitle=f"{num(world.market.sold)} sold")

        total = ledger.total_rate_micro / 1_000_000
        self.query_one("#rights-summary", Line).show(Text.assemble(
            ("total compute rate ", "dim"), (f"{total:g}/s", "bold"),
            ("  │  operator reserve ", "dim"), (f"{ledger.buckets[OPERATOR].rate:g}/s", "bold magenta"),
            ("  │  sliced ", "dim"), (f"{sum(ledger.sliced_micro.values()) / 1_000_000:g}/s", ""),
            ("  │  config rights traded ", "dim"), (str(world.mechanisms.get('config_right_changed_hands', 0)), ""),
        ))

    @staticmethod
    def config_row(world: World, agent_id: str) -> tuple:
        agent = world.agents[agent_id]
        cfg = agent.config_artifact
        owner = cfg.owner
        if owner == "market":
            owner_text = Text.assemble(("market", "cyan"), (f" ({world.market.seller_of(cfg.id)})", "dim"))
        elif owner == agent_id:
            owner_text = Text("self", "dim")
        else:
            owner_text = principal_text(owner)
        return (
            agent_id,
            owner_text,
            str(cfg.content.get("brain")),
            f"{world.ledger.buckets[agent_id].rate:g}",
            str(cfg.version),
        )
