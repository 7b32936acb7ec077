"""The operator's levers, as app actions. Every one goes through `world.invoke` as the
operator — the same narrow waist and the same checks as the agents — so the UI has no
rules of its own to get wrong: a form only checks that a number is a number, and the
engine's refusal, word for word, is what the person sees.

Actions that need an object use the selected row when there is one (k9s-style: select,
then act) and otherwise open a form that asks for it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.actions import Result, Write
from engine.ids import OPERATOR

from .screens.confirm import ConfirmScreen
from .screens.form import Field, FormScreen

if TYPE_CHECKING:
    from engine.world import World

MAX_SPEED = 1024.0
MIN_SPEED = 1 / 64


def operator_invoke(world: World, target: str, method: str, args: dict[str, Any]) -> Result:
    """`world.invoke` as the operator, the arguments as a dict (a method argument may be
    named `principal`, like the caller keyword: contracts.offer's loan principal)."""
    return world.invoke(target, method, dict(args))


def _brains() -> list[str]:
    from engine.brains import BRAINS, brain_class

    with contextlib.suppress(Exception):  # suggestions only: an empty list is fine
        brain_class("boltzmann")  # loads the built-in brains into the registry
    # The engine's own brains: a brain registered elsewhere (a test's, a plugin's) is
    # still accepted when typed, but not offered.
    return sorted(name for name, cls in BRAINS.items() if cls.__module__.startswith("engine.brains."))


class SteeringMixin:
    """Mixed into EcologyApp; expects `world`, `selected(kind)`, `refresh_view()`,
    `push_screen`, `notify` and `cursor_blink_forms`."""

    world: World
    cursor_blink_forms: bool

    # -- plumbing ----------------------------------------------------------------------------
    def invoke(self, target: str, method: str, done: Callable[[Result], str] | str | None = None, **args: Any) -> Result:
        """Invoke as the operator; say what happened either way."""
        result = operator_invoke(self.world, target, method, args)
        self._report(result, done)
        return result

    def _report(self, result: Result, done: Callable[[Result], str] | str | None) -> None:
        if result.ok:
            if self.world.journal is not None:
                # A recorded world confirms an operator's action only once it is committed.
                self.run_worker(self._confirm_committed(result, done), group="journal")
            elif done:
                self.notify(done(result) if callable(done) else done, timeout=3)
        else:
            self.notify(result.error or "refused", title="Refused", severity="error", timeout=6)
        self.refresh_view()

    async def _confirm_committed(self, result: Result, done: Callable[[Result], str] | str | None) -> None:
        journal = self.world.journal
        if await journal.flush():
            self.notify((done(result) if callable(done) else done) if done else "done", timeout=3)
        else:
            self.notify(f"applied, but not yet recorded: the journal is failing ({journal.failed})",
                        title="Journal", severity="warning", timeout=8)

    def call(self, target: str, method: str) -> Callable[[dict[str, Any]], Result]:
        return lambda args: operator_invoke(self.world, target, method, args)

    def form(self, title: str, fields: list[Field], submit: Callable[[dict[str, Any]], Result],
             done: Callable[[Result], str] | str | None = None, description: str = "", ok: str = "Submit") -> None:
        def closed(result: Result | None) -> None:
            if result is not None:
                self._report(result, done)

        self.push_screen(
            FormScreen(title, fields, submit, description=description, ok=ok, blink=self.cursor_blink_forms),
            closed,
        )

    # choices for id fields: what fits, best first, with a hint each
    def _agents(self, keep: Callable[[Any], bool] | None = None) -> list[str]:
        """Live agents (not stopped), or those `keep` accepts."""
        agents = self.world.agents
        return [a for a in self.world.live_ids if keep is None or keep(agents[a])]

    def _agent_hints(self) -> dict[str, str]:
        world = self.world
        scrip = world.ledger.scrip
        return {a.id: f"{a.status}, {scrip[a.id]:,} scrip" for a in world.agents.values()}

    def _principals(self) -> list[str]:
        return [*self._agents(), OPERATOR]

    def _mine(self, *kinds: str) -> list[str]:
        """The operator's own artifacts (newest first), of `kinds` if given."""
        owned = [a.id for a in self.world.artifacts.owned_by(OPERATOR) if not kinds or a.kind in kinds]
        return owned[::-1]

    def _artifact_hints(self, ids: list[str]) -> dict[str, str]:
        by_id = self.world.artifacts.by_id
        return {i: f"{by_id[i].kind}, {by_id[i].size} B" for i in ids if i in by_id}

    def _agent_field(self, name: str = "agent", label: str = "agent", value: str | None = None,
                     keep: Callable[[Any], bool] | None = None, **kw: Any) -> Field:
        return Field(name, label, "id", value or self.selected("agent") or "", choices=self._agents(keep),
                     closed=True, hints=self._agent_hints(), **kw)

    # -- the world -------------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        if self.world.paused:
            self.invoke("world", "resume", "world resumed")
        else:
            self.invoke("world", "pause", "world paused")

    def _speed(self, factor: float) -> None:
        speed = min(MAX_SPEED, max(MIN_SPEED, self.world.clock.speed * factor))
        if self.world.clock.kind == "virtual":
            speed = 1.0  # the engine refuses, and says why
        self.invoke("world", "set_speed", lambda r: f"speed ×{r.value['speed']:g}", speed=speed)

    def action_faster(self) -> None:
        self._speed(2.0)

    def action_slower(self) -> None:
        self._speed(0.5)

    def action_set_speed(self) -> None:
        self.form("Set speed", [Field("speed", "speed", "float", f"{self.world.clock.speed:g}",
                                      placeholder="world seconds per real second")],
                  self.call("world", "set_speed"), lambda r: f"speed ×{r.value['speed']:g}")

    # -- agents ------------------------------------------------------------------------------------
    def action_spawn(self) -> None:
        brains = _brains()
        self.form(
            "Spawn an agent",
            [
                Field("brain", "brain", "id", placeholder="a brain", choices=brains, closed=True),
                Field("rate", "rate/s", "float", placeholder="compute rate from your reserve, e.g. 1.0"),
                Field("scrip", "scrip", "int", optional=True, placeholder="from your scrip (default 0)"),
                Field("capacity", "capacity", "float", optional=True, placeholder="bucket capacity"),
                Field("params", "params", "json", optional=True, placeholder='JSON, e.g. {"think_cost": 0.5}'),
                Field("agent_id", "id", "id", optional=True, placeholder="default: the next free id"),
            ],
            self.call("ledger", "spawn"),
            lambda r: f"spawned {r.value['agent_id']}",
            description="Paid by you: its scrip and compute rate come from yours.",
        )

    def _agent_action(self, method: str, title: str, done: str, confirm: str | None = None,
                      keep: Callable[[Any], bool] | None = None) -> None:
        agent = self.selected("agent")
        if agent is None:
            self.form(title, [self._agent_field(keep=keep)], self.call("world", method), done)
            return

        def go(yes: bool | None = True) -> None:
            if yes:
                self.invoke("world", method, f"{agent}: {done}", agent=agent)

        if confirm:
            self.push_screen(ConfirmScreen(confirm.format(agent=agent), "It keeps its assets; this cannot be undone."), go)
        else:
            go()

    def action_stop_agent(self) -> None:
        self._agent_action("stop_agent", "Stop an agent", "stopped", confirm="Stop {agent} for good?")

    def action_pause_agent(self) -> None:
        self._agent_action("pause_agent", "Pause an agent", "paused", keep=lambda a: not a.paused)

    def action_resume_agent(self) -> None:
        self._agent_action("resume_agent", "Resume an agent", "resumed", keep=lambda a: a.paused)

    def action_toggle_agent_pause(self) -> None:
        agent = self.world.agents.get(self.selected("agent") or "")
        if agent is not None and agent.paused:
            self.action_resume_agent()
        else:
            self.action_pause_agent()

    def action_restart_agent(self) -> None:
        self._agent_action("restart_agent", "Restart a crashed agent", "restarted", keep=lambda a: a.crashed)

    def action_transfer_scrip(self) -> None:
        have = self.world.ledger.scrip[OPERATOR]
        self.form(
            "Transfer scrip",
            [
                self._agent_field("to", "to"),
                Field("amount", "amount", "int", placeholder=f"whole scrip (you have {have:,})"),
            ],
            self.call("ledger", "transfer"),
            "scrip sent",
        )

    def action_transfer_compute(self) -> None:
        have = self.world.ledger.buckets[OPERATOR].peek(self.world.clock.now())
        self.form(
            "Transfer compute (rescue)",
            [
                self._agent_field("to", "to"),
                Field("amount", "amount", "float", placeholder=f"compute units (you have {have:,.1f})"),
            ],
            self.call("ledger", "transfer_compute"),
            lambda r: f"credited {r.value['credited']:.2f} compute" + (f", {r.value['kept']:.2f} kept (capacity)" if r.value["kept"] else ""),
            description="Clamped at the receiver's capacity; a frozen agent thaws when its debt is paid.",
        )

    def action_transfer_rate(self) -> None:
        have = self.world.ledger.buckets[OPERATOR].rate
        self.form(
            "Transfer compute rate",
            [
                self._agent_field("to", "to"),
                Field("amount", "rate/s", "float", placeholder=f"units/s (your reserve: {have:g}/s)"),
            ],
            self.call("ledger", "transfer_rate"),
            lambda r: f"moved {r.value['moved']:g}/s",
        )

    def action_set_rate(self) -> None:
        agent = self.selected("agent")
        current = f"{self.world.ledger.buckets[agent].rate:g}" if agent else ""
        self.form(
            "Set an agent's compute rate",
            [self._agent_field(), Field("rate", "rate/s", "float", current, placeholder="units/s")],
            self.call("ledger", "set_rate"),
            lambda r: f"rate now {r.value['rate']:g}/s",
            description=f"The difference moves to or from your reserve ({self.world.ledger.buckets[OPERATOR].rate:g}/s).",
        )

    def action_set_capacity(self) -> None:
        agent = self.selected("agent")
        current = f"{self.world.ledger.buckets[agent].capacity:g}" if agent else ""
        self.form(
            "Set an agent's bucket capacity",
            [self._agent_field(), Field("capacity", "capacity", "float", current)],
            self.call("ledger", "set_capacity"),
            lambda r: f"capacity now {r.value['capacity']:g}",
        )

    def action_configure(self) -> None:
        agent_id = self.selected("agent") or self.selected("config")
        agent = self.world.agents.get(agent_id or "")
        cfg = agent.config_artifact.content if agent else {}
        brains = _brains()
        fields = [
            self._agent_field(value=agent_id),
            Field("brain", "brain", "id", str(cfg.get("brain", "")), choices=brains, closed=True),
            Field("params", "params", "json", json.dumps(cfg.get("params", {}), sort_keys=True) if agent else "",
                  optional=True),
            Field("think_delay", "think delay", "float", f"{cfg.get('think_delay', 0.0):g}" if agent else "",
                  optional=True),
        ]

        def submit(args: dict[str, Any]) -> Result:
            # Send only what changed: changing the brain alone lets the engine reset params.
            target = self.world.agents.get(args.get("agent", ""))
            now = target.config_artifact.content if target else {}
            changes = {k: v for k, v in args.items() if k != "agent" and v != now.get(k)}
            return operator_invoke(self.world, "rights", "configure", {"agent": args["agent"], **changes})

        self.form("Edit an agent's config", fields, submit, "config changed",
                  description="Only the owner of an agent's config right may change it.")

    # -- the oracle ----------------------------------------------------------------------------------
    def action_write_artifact(self) -> None:
        def submit(args: dict[str, Any]) -> Result:
            # A write is an action, not a service's method: World.act, beside World.invoke.
            return self.world.act(Write(args["content"], args.get("artifact_id")))

        self.form(
            "Write an artifact",
            [
                Field("content", "content", "text", placeholder="text to store (the oracle scores distinctiveness)"),
                Field("artifact_id", "id", "id", optional=True, placeholder="default: a new id"),
            ],
            submit,
            lambda r: f"wrote {r.value['artifact_id']} ({r.value['size']} B)",
        )

    def _my_bid_artifact(self) -> str:
        selected = self.selected("bid")
        if selected and (OPERATOR, selected) in self.world.oracle.bids:
            return selected
        return ""

    def action_bid(self) -> None:
        mine = self._mine("data", "code")
        unbid = [a for a in mine if (OPERATOR, a) not in self.world.oracle.bids]
        cfg = self.world.oracle.cfg
        self.form(
            "Place a bid",
            [
                Field("artifact", "artifact", "id", self._my_bid_artifact() or (unbid[0] if unbid else ""),
                      placeholder="an artifact you own (w writes one)", choices=mine, closed=True,
                      hints=self._artifact_hints(mine)),
                Field("amount", "amount", "int", placeholder=f"whole scrip >= {cfg.min_bid}"),
            ],
            self.call("oracle", "bid"),
            lambda r: f"bid held; resolves in {r.value['resolves_in']:.0f}s",
            description=f"{cfg.slots} slots; winners pay the ({cfg.slots}+1)-th highest bid. A new bid on the same artifact replaces yours.",
        )

    def action_cancel_bid(self) -> None:
        selected = self.selected("bid")
        if selected:
            self.invoke("oracle", "cancel", lambda r: f"released {r.value['released']}", artifact=selected)
            return
        mine = [a for (bidder, a) in self.world.oracle.bids if bidder == OPERATOR]
        self.form("Cancel a bid", [Field("artifact", "artifact", "id", mine[0] if mine else "", choices=mine,
                                         closed=True, placeholder="one of your bids")],
                  self.call("oracle", "cancel"), lambda r: f"released {r.value['released']}")

    def action_resolve_now(self) -> None:
        self.invoke("oracle", "resolve_now",
                    lambda r: f"resolution #{r.value['index']}: {len(r.value['winners'])} winners, minted {r.value['minted']}")

    # -- the market and rights -------------------------------------------------------------------------
    def _my_selected_thing(self) -> str:
        """The selected config right, slice or contract, if it is yours."""
        world = self.world
        for kind in ("config", "slice", "contract"):
            key = self.selected(kind)
            if not key:
                continue
            art_id = f"config:{key}" if kind == "config" else key
            art = world.artifacts.by_id.get(art_id)
            if art is not None and art.owner == OPERATOR:
                return art_id
        return ""

    def action_list_artifact(self) -> None:
        mine = [a for a in self._mine() if not a.startswith("genesis")]
        self.form(
            "Sell an artifact or right",
            [
                Field("artifact", "artifact", "id", self._my_selected_thing(), choices=mine, closed=True,
                      hints=self._artifact_hints(mine),
                      placeholder="config:<agent>, a rate slice, a contract, data…"),
                Field("price", "price", "int", placeholder="whole scrip >= 0"),
                Field("buyer", "only for", "id", optional=True, choices=self._principals(),
                      hints=self._agent_hints(), placeholder="anyone"),
            ],
            self.call("market", "list"),
            lambda r: f"listed as {r.value['listing']}",
            description="The market holds it until someone buys it or you delist it.",
        )

    def action_buy_listing(self) -> None:
        listing = self.selected("listing") or ""
        open_ = self.world.market.open
        price = f" for {open_[listing].price} scrip" if listing in open_ else ""
        # What the operator may buy: open, not its own, and for anyone or for it.
        buyable = [x.id for x in open_.values() if x.seller != OPERATOR and x.buyer in (None, OPERATOR)]
        hints = {x.id: f"{x.artifact_id} ({x.artifact_kind}) at {x.price:,}" for x in open_.values()}
        self.form(
            "Buy a listing",
            [Field("listing", "listing", "id", listing, choices=buyable, closed=True, hints=hints,
                   placeholder="an open listing")],
            self.call("market", "buy"),
            lambda r: f"bought {r.value['artifact']} for {r.value['paid']}",
            description=f"Atomic: the price goes to the seller and the artifact to you{price}, or nothing happens.",
            ok="Buy",
        )

    def action_cancel_listing(self) -> None:
        listing = self.selected("listing")
        if listing:
            self.invoke("market", "cancel", f"{listing} delisted", listing=listing)
            return
        mine = [x.id for x in self.world.market.open.values() if x.seller == OPERATOR]
        self.form("Delist", [Field("listing", "listing", "id", choices=mine, closed=True,
                                   placeholder="one of your listings")],
                  self.call("market", "cancel"), "delisted")

    def action_transfer_artifact(self) -> None:
        self.form(
            "Transfer an artifact or right",
            [
                Field("artifact", "artifact", "id", self._my_selected_thing(), choices=self._mine(), closed=True,
                      hints=self._artifact_hints(self._mine())),
                Field("to", "to", "id", choices=self._agents(), closed=True, hints=self._agent_hints()),
            ],
            self.call("ledger", "transfer_artifact"),
            "transferred",
        )

    def action_slice_rate(self) -> None:
        have = self.world.ledger.buckets[OPERATOR].rate
        self.form(
            "Slice your compute rate",
            [Field("amount", "rate/s", "float", placeholder=f"units/s (your reserve: {have:g}/s)")],
            self.call("rights", "slice_rate"),
            lambda r: f"made {r.value['artifact']} ({r.value['rate']:g}/s); sell it with l",
        )

    # -- contracts ---------------------------------------------------------------------------------------
    def _contracts(self, *statuses: str, role: str) -> list[str]:
        """The operator's contracts in `statuses` where it is the `role` (lender, debtor or
        holder), newest first."""
        contracts = self.world.contracts
        out = []
        for cid, art in contracts.contracts.items():
            c = art.content
            who = contracts.holder(cid) if role == "holder" else c[role]
            if who == OPERATOR and c["status"] in statuses:
                out.append(cid)
        return out[::-1]

    def _contract_field(self, choices: list[str], value: str | None = None, **kw: Any) -> Field:
        selected = self.selected("contract") or ""
        contracts = self.world.contracts.contracts
        hints = {cid: f"{contracts[cid].content['status']}, {contracts[cid].content['principal']:,} "
                      f"{contracts[cid].content['lender']}→{contracts[cid].content['debtor']}" for cid in choices}
        return Field("contract", "contract", "id", selected if value is None else value, choices=choices,
                     closed=True, hints=hints, **kw)

    def action_offer_loan(self) -> None:
        cap = self.world.config.contracts.max_rate_per_day
        debtor = self.selected("agent") or ""
        self.form(
            "Offer a loan",
            [
                Field("debtor", "debtor", "id", debtor, choices=self._agents(), closed=True, hints=self._agent_hints()),
                Field("principal", "principal", "int", placeholder="whole scrip, held until accepted"),
                Field("rate_per_day", "rate/day", "float", placeholder=f"simple interest per day, 0 to {cap:g}"),
                Field("due_in", "due in", "float", placeholder="seconds from acceptance"),
            ],
            self.call("contracts", "offer"),
            lambda r: f"offered {r.value['contract']}",
        )

    def _contract_action(self, method: str, title: str, done: str, role: str) -> None:
        selected = self.selected("contract")
        if selected:
            self.invoke("contracts", method, f"{selected}: {done}", contract=selected)
            return
        choices = self._contracts("offered", role=role)
        self.form(title, [self._contract_field(choices, placeholder=f"a loan offered {'to' if role == 'debtor' else 'by'} you")],
                  self.call("contracts", method), done)

    def action_accept_loan(self) -> None:
        self._contract_action("accept", "Accept a loan", "accepted", "debtor")

    def action_decline_loan(self) -> None:
        self._contract_action("decline", "Decline a loan", "declined", "debtor")

    def action_cancel_loan(self) -> None:
        self._contract_action("cancel", "Cancel a loan offer", "offer cancelled", "lender")

    def action_repay_loan(self) -> None:
        world = self.world
        selected = self.selected("contract") or ""
        owed = ""
        art = world.contracts.contracts.get(selected)
        if art is not None:
            owed = str(world.contracts.owed(art.content, world.clock.now()) or "")
        self.form(
            "Repay a loan",
            [self._contract_field(self._contracts("active", "defaulted", role="debtor")),
             Field("amount", "amount", "int", owed, placeholder="whole scrip, at most what you owe")],
            self.call("contracts", "repay"),
            lambda r: f"paid {r.value['paid']}; owed now {r.value['owed']} ({r.value['status']})",
        )

    def action_sell_claim(self) -> None:
        self.form(
            "Sell a debt claim",
            [
                # A claim is sold as any artifact: the contract field is market.list's `artifact`.
                self._contract_field(self._contracts("active", "defaulted", role="holder"), argument="artifact"),
                Field("price", "price", "int", placeholder="whole scrip >= 0"),
                Field("buyer", "only for", "id", optional=True, choices=self._principals(),
                      hints=self._agent_hints(), placeholder="anyone"),
            ],
            self.call("market", "list"),
            lambda r: f"claim listed as {r.value['listing']}",
            description="Future payments go to whoever holds the claim.",
        )
