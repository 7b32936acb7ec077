"""Every steering action, named once: the command palette lists them, the help screen
explains them, and key bindings run the same app actions. Adding a lever here makes it
reachable by palette and documented in help at once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .panels import PANELS


@dataclass(frozen=True, slots=True)
class Command:
    action: str  # the app action it runs (EcologyApp.action_<action>)
    title: str  # palette entry
    help: str  # one line: what it does, in the engine's terms


STEERING: tuple[Command, ...] = (
    Command("toggle_pause", "Pause / resume the world", "world.pause or world.resume: time stops, no agent acts"),
    Command("faster", "Faster (speed ×2)", "world.set_speed: twice as many world seconds per real second"),
    Command("slower", "Slower (speed ÷2)", "world.set_speed: half as many world seconds per real second"),
    Command("set_speed", "Set speed…", "world.set_speed to any speed in (0, 1e6)"),
    Command("spawn", "Spawn an agent…", "ledger.spawn: a new agent paid from your scrip and compute rate"),
    Command("stop_agent", "Stop an agent…", "world.stop_agent: stops for good; it keeps its assets"),
    Command("pause_agent", "Pause an agent…", "world.pause_agent: one agent stops acting until resumed"),
    Command("resume_agent", "Resume an agent…", "world.resume_agent"),
    Command("restart_agent", "Restart a crashed agent…", "world.restart_agent: clears the crash"),
    Command("transfer_scrip", "Transfer scrip…", "ledger.transfer: give whole scrip to a principal"),
    Command("transfer_compute", "Transfer compute (rescue)…", "ledger.transfer_compute: compute from your balance; thaws a frozen agent"),
    Command("transfer_rate", "Transfer compute rate…", "ledger.transfer_rate: move part of your rate to another bucket"),
    Command("set_rate", "Set an agent's compute rate…", "ledger.set_rate: the difference moves to or from your reserve"),
    Command("set_capacity", "Set an agent's bucket capacity…", "ledger.set_capacity"),
    Command("configure", "Edit an agent's config…", "rights.configure: brain, params, think delay (if you own its config right)"),
    Command("write_artifact", "Write an artifact…", "write: a data artifact you own (to bid on or sell)"),
    Command("bid", "Place a bid…", "oracle.bid: bid on an artifact you own; the amount is held"),
    Command("cancel_bid", "Cancel a bid…", "oracle.cancel: release your bid's hold"),
    Command("resolve_now", "Resolve the oracle now", "oracle.resolve_now: resolve open bids at once (schedule unchanged)"),
    Command("list_artifact", "Sell an artifact or right…", "market.list: the market holds it until sold or delisted"),
    Command("buy_listing", "Buy a listing…", "market.buy: price to the seller, artifact to you, atomically"),
    Command("cancel_listing", "Delist…", "market.cancel: the artifact goes back to its seller"),
    Command("transfer_artifact", "Transfer an artifact or right…", "ledger.transfer_artifact: give something you own"),
    Command("slice_rate", "Slice your compute rate…", "rights.slice_rate: part of your rate as a sellable artifact"),
    Command("offer_loan", "Offer a loan…", "contracts.offer: principal held until the debtor accepts"),
    Command("accept_loan", "Accept a loan…", "contracts.accept: a loan offered to you"),
    Command("decline_loan", "Decline a loan…", "contracts.decline: a loan offered to you"),
    Command("cancel_loan", "Cancel a loan offer…", "contracts.cancel: your offer, before it is accepted"),
    Command("repay_loan", "Repay a loan…", "contracts.repay: to whoever holds the claim now"),
    Command("sell_claim", "Sell a debt claim…", "market.list of a contract you hold: future payments follow the buyer"),
)
BY_ACTION = {c.action: c for c in STEERING}
# Keys that find things rather than steer, explained in the help.
NAVIGATION = {
    "agent_history": "the agent the selected row names: its actions and their cost, freezes (cause, "
                     "length, rescuers), payments, bids, loans, incidents; asks which when it names "
                     "several or none",
    "cycle_span": "the span every chart follows: the last 10 minutes, the last hour, every window kept",
}


class SteeringCommands(Provider):
    """The palette's steering commands and panel switches (ctrl+p)."""

    def _commands(self) -> list[tuple[str, str, str]]:
        items = [(c.title, c.action, c.help) for c in STEERING]
        items += [(f"Show {title}", f"show_panel('{pid}')", f"key {key}") for key, pid, title in PANELS]
        items.append(("Show an agent's history", "agent_history", "key h: the selected row's agent, or choose one"))
        items.append(("Help: every key", "help", "key ?"))
        return items

    async def discover(self) -> Hits:
        for title, action, help in self._commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=help)
