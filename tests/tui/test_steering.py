"""Every steering action of SPEC §9, driven through the app with Pilot: the engine's state
changes as asked, and a bad input changes nothing and says why (inline, or in the engine's
words under the field, or as an error notice for one-key actions).

The engine does not run here (the world is stopped at a fixed instant), so any change is
the operator's doing, through `world.invoke`."""

from __future__ import annotations

import io

import pytest
from demo import demo_config
from tuikit import (
    SIZE,
    field_error,
    fill,
    fingerprint,
    form,
    make_app,
    notices,
    offered,
    refused,
    show,
    shown,
    submit,
)

from engine.clock import RealClock
from engine.world import World
from tui.screens.confirm import ConfirmScreen
from tui.screens.detail import DetailScreen
from tui.screens.form import FormScreen
from tui.screens.help import HelpScreen
from tui.widgets.panel import Panel
from tui.widgets.panel_tabs import PanelTabs

pytestmark = pytest.mark.anyio


def offer_to_operator(world, lender: str = "l001", principal: int = 10) -> str:
    """An agent offers the operator a loan (the operator is a principal like any other)."""
    from engine.actions import Invoke

    r = world.waist.perform(lender, Invoke("contracts", "offer", {
        "debtor": "operator", "principal": principal, "rate_per_day": 10.0, "due_in": 600.0}), world.clock.now())
    assert r.ok, r
    return r.value["contract"]


# -- the world ------------------------------------------------------------------------------------
class TestWorld:
    async def test_space_pauses_and_resumes_the_world(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("space")
            assert world.paused and world.clock.paused
            assert "PAUSED" in await shown(pilot)
            await pilot.press("space")
            assert not world.paused
            assert "RUNNING" in await shown(pilot)

    async def test_speed_keys_and_form_change_a_real_clock(self):
        world = World(demo_config(), clock=RealClock(1.0))
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("plus")
            assert world.clock.speed == 2.0
            await pilot.press("minus", "minus")
            assert world.clock.speed == 0.5
            await pilot.press("ctrl+p")
            await pilot.press(*"Set speed", "enter")
            await submit(pilot, speed="8")
            assert world.clock.speed == 8.0 and not isinstance(app.screen, FormScreen)
            assert "×8" in await shown(pilot)

    async def test_bad_speed_changes_nothing(self):
        world = World(demo_config(), clock=RealClock(1.0))
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            app.action_set_speed()
            await pilot.pause()
            await fill(pilot, speed="fast")
            assert field_error(pilot, "speed") == "a number, not 'fast'"
            await submit(pilot, speed="0")
            assert "speed" in refused(pilot, "speed")
            assert world.clock.speed == 1.0 and isinstance(app.screen, FormScreen)

    async def test_virtual_time_has_no_speed_and_says_so(self, app, world):
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("plus")
            assert len(notices(app, "error")) == 1 and "virtual" in notices(app, "error")[0]
        assert fingerprint(world) == before


# -- agents ---------------------------------------------------------------------------------------------
class TestAgents:
    async def test_spawn(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await submit(pilot, brain="boltzmann", rate="1.5", scrip="25", params='{"think_cost": 0.5}', agent_id="newbie")
            assert not isinstance(app.screen, FormScreen)
        agent = world.agents["newbie"]
        assert agent.config["brain"] == "boltzmann" and world.ledger.scrip["newbie"] == 25
        assert world.ledger.buckets["newbie"].rate == 1.5 and world.ledger.scrip["operator"] == 968 - 25
        assert "spawned newbie" in notices(app)

    async def test_spawn_refusals_are_shown_under_the_field(self, app, world):
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            # The brain is a select of the engine's brains: none chosen is the only way wrong.
            await submit(pilot, brain="", rate="1")
            assert field_error(pilot, "brain") == "required"
            await submit(pilot, brain="boltzmann", rate="1", params="{oops")
            assert field_error(pilot, "params").startswith("not JSON")
            await submit(pilot, brain="boltzmann", rate="1", params="", agent_id="a001")
            assert "a001" in refused(pilot, "agent_id")
            await submit(pilot, agent_id="", rate="1000")
            assert "insufficient" in refused(pilot, "rate")
            assert isinstance(app.screen, FormScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, FormScreen)
        assert fingerprint(world) == before and "newbie" not in world.agents

    async def test_stop_agent_asks_first(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a002")
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert not world.agents["a002"].stopped
            await pilot.press("x")
            await pilot.press("y")
            assert world.agents["a002"].stopped and "a002" not in world.live_ids
            before = fingerprint(world)
            await pilot.press("x", "y")  # again: refused by the engine
            assert "a002" in notices(app, "error")[-1]
        assert fingerprint(world) == before

    async def test_pause_and_resume_an_agent(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "w001")
            await pilot.press("p")
            assert world.agents["w001"].paused
            await pilot.press("p")
            assert not world.agents["w001"].paused
            app.action_resume_agent()  # resuming a running agent: refused
            await pilot.pause()
            assert "w001" in notices(app, "error")[-1]

    async def test_restart_a_crashed_agent(self, app, world):
        crashed = world.agents["t001"]
        crashed.crashed = True
        crashed.refresh_held()
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "t002")
            before = fingerprint(world)
            await pilot.press("R")
            assert "t002" in notices(app, "error")[-1]
            assert fingerprint(world) == before
            await show(pilot, "1", "agents-table", "t001")
            await pilot.press("R")
            assert not crashed.crashed

    async def test_transfer_scrip(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a003")
            await pilot.press("t")
            assert form(pilot).query_one("#field-to").value == "a003"  # the selected agent
            await pilot.press(*"15", "enter")
        assert world.ledger.scrip["a003"] == 15 and world.ledger.scrip["operator"] == 968 - 15

    async def test_bad_transfers_change_nothing(self, app, world):
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("t")
            await fill(pilot, amount="ten")
            assert field_error(pilot, "amount") == "a whole number, not 'ten'"
            await submit(pilot)
            assert field_error(pilot) == "fix the fields marked above"
            await submit(pilot, amount="5000")
            assert "insufficient scrip" in refused(pilot, "amount")
            await submit(pilot, to="nobody", amount="5")
            assert "nobody" in refused(pilot, "to")
            await submit(pilot, to="a001", amount="-3")
            assert "-3" in refused(pilot, "amount")
        assert fingerprint(world) == before

    async def test_rescue_a_frozen_agent_with_compute(self, app, world):
        now = world.clock.now()
        assert world.agents["a001"].status == "frozen"
        debt = world.ledger.buckets["a001"].peek(now)
        assert debt < 0
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a001")
            await pilot.press("c")
            await submit(pilot, amount="3")
            assert notices(app)[-1] == "credited 3.00 compute"
            assert world.ledger.buckets["a001"].peek(now) == pytest.approx(debt + 3.0)
            before = fingerprint(world)
            await pilot.press("c")
            await submit(pilot, amount="-1")
            assert "-1" in refused(pilot, "amount")
        assert fingerprint(world) == before

    async def test_transfer_rate(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a004")
            await pilot.press("g")
            await submit(pilot, amount="0.5")
            assert world.ledger.buckets["a004"].rate == 1.5
            before = fingerprint(world)
            await pilot.press("g")
            await submit(pilot, amount="500")
            assert "insufficient" in refused(pilot, "amount")
        assert fingerprint(world) == before

    async def test_set_rate_and_capacity(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a005")
            await pilot.press("k")
            assert form(pilot).query_one("#field-rate").value == "1"
            await submit(pilot, rate="3")
            assert world.ledger.buckets["a005"].rate == 3.0
            await pilot.press("K")
            await submit(pilot, capacity="40")
            assert world.ledger.buckets["a005"].capacity == 40.0
            before = fingerprint(world)
            await pilot.press("k")
            await submit(pilot, rate="-2")
            assert "-2" in refused(pilot, "rate")
            await pilot.press("escape", "K")
            await submit(pilot, capacity="-1")
            assert "capacity" in refused(pilot, "capacity")
        assert fingerprint(world) == before

    async def test_configure_an_agent_the_operator_owns(self, app, world):
        from engine.actions import Invoke

        r = world.waist.perform("a006", Invoke("ledger", "transfer_artifact",
                                               {"artifact": "config:a006", "to": "operator"}), world.clock.now())
        assert r.ok, r
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a006")
            await pilot.press("e")
            assert form(pilot).query_one("#field-brain").value == "boltzmann"
            await submit(pilot, think_delay="0.5", params='{"think_cost": 0.25}')
            assert notices(app)[-1] == "config changed"
        cfg = world.agents["a006"].config_artifact
        assert cfg.content["think_delay"] == 0.5 and cfg.content["params"] == {"think_cost": 0.25}

    async def test_configure_is_refused_without_the_config_right(self, app, world):
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "1", "agents-table", "a007")
            await pilot.press("e")
            await submit(pilot, think_delay="2")
            assert "owned by a007" in refused(pilot, "agent")
        assert fingerprint(world) == before


# -- the oracle ------------------------------------------------------------------------------------------
class TestOracle:
    async def test_write_then_bid(self, app, world):
        held = world.ledger.held["oracle"]
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3", "bids-table")
            await pilot.press("w")
            await submit(pilot, content="an essay on scarcity and rescue", artifact_id="essay")
            assert world.artifacts.by_id["essay"].owner == "operator"
            await pilot.press("b")
            assert form(pilot).query_one("#field-artifact").value == "essay"  # the newest un-bid artifact
            await submit(pilot, amount="30")
        assert world.oracle.bids[("operator", "essay")].amount == 30
        assert world.ledger.held["oracle"] == held + 30

    async def test_bad_bids_change_nothing(self, app, world):
        theirs = next(a for a in world.artifacts.by_id.values() if a.kind == "data" and a.owner != "operator")
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3", "bids-table")
            await pilot.press("b")
            # Only the operator's own artifacts are offered: another's cannot be chosen.
            assert offered(pilot, "artifact") == ["field-guide"] and theirs.id not in offered(pilot, "artifact")
            await submit(pilot, artifact="field-guide", amount="0")
            assert "0" in refused(pilot, "amount")
            await submit(pilot, artifact="", amount="5")
            assert field_error(pilot, "artifact") == "required"
            await submit(pilot, artifact="field-guide", amount="99999")
            assert "insufficient scrip" in refused(pilot, "amount")
        assert fingerprint(world) == before

    async def test_cancel_the_selected_bid(self, app, world):
        held = world.ledger.held["oracle"]
        bidder, theirs = next(key for key in world.oracle.bids if key[0] != "operator")
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3", "bids-table", theirs)
            before = fingerprint(world)
            await pilot.press("x")  # another bidder's bid, not the operator's: refused
            assert theirs in notices(app, "error")[-1]
            assert fingerprint(world) == before
            await show(pilot, "3", "bids-table", "field-guide")
            await pilot.press("x")
        assert ("operator", "field-guide") not in world.oracle.bids
        assert world.ledger.held["oracle"] == held - 12

    async def test_resolve_now(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3", "bids-table")
            await pilot.press("r")
            assert world.oracle.resolved == 5 and not world.oracle.bids
            record = world.oracle.resolutions[-1]
            assert record["trigger"] == "operator" and len(record["winners"]) == 2
            assert "#4" in await shown(pilot)


# -- market and rights -----------------------------------------------------------------------------------
class TestMarket:
    async def test_sell_and_delist_a_rate_slice(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "4")
            await pilot.press("v")
            await submit(pilot, amount="1.5")
            slice_id = max((a for a in world.artifacts.by_id.values() if a.kind == "rate" and a.owner == "operator"),
                           key=lambda a: a.created).id
            await pilot.press("l")
            await submit(pilot, artifact=slice_id, price="9", buyer="t001")
            listing = next(x for x in world.market.open.values() if x.artifact_id == slice_id)
            assert listing.price == 9 and listing.buyer == "t001" and world.artifacts.by_id[slice_id].owner == "market"
            await show(pilot, "4", "listings-table", listing.id)
            await pilot.press("x")
        assert listing.id not in world.market.open and world.artifacts.by_id[slice_id].owner == "operator"

    async def test_bad_listing_changes_nothing(self, app, world):
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "4", "config-table", "a001")
            await pilot.press("l")
            # a001's config right is its own: not offered, and not prefilled from the selection.
            assert "config:a001" not in offered(pilot, "artifact")
            assert set(offered(pilot, "artifact")) == {a.id for a in world.artifacts.owned_by("operator")
                                                         if not a.id.startswith("genesis")}
            await submit(pilot, artifact="field-guide", price="-5")
            assert "-5" in refused(pilot, "price")
        assert fingerprint(world) == before

    async def test_buy_a_listing(self, app, world):
        from engine.actions import Invoke

        r = world.waist.perform("t002", Invoke("rights", "slice_rate", {"amount": 0.1}), world.clock.now())
        slice_id = r.value["artifact"]
        r = world.waist.perform("t002", Invoke("market", "list", {"artifact": slice_id, "price": 7}), world.clock.now())
        listing = r.value["listing"]
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "4", "listings-table", "listing-24")  # the operator's own listing
            before = fingerprint(world)
            await pilot.press("y")
            await pilot.press("enter")
            assert "your own listing" in refused(pilot, "listing")
            assert fingerprint(world) == before
            await submit(pilot, listing=listing)
        assert world.artifacts.by_id[slice_id].owner == "operator"
        assert world.ledger.scrip["operator"] == 968 - 7

    async def test_give_an_artifact(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "4")
            await pilot.press("g")
            await submit(pilot, artifact="field-guide", to="nobody")
            assert "nobody" in refused(pilot, "to")
            await submit(pilot, to="w003")
        assert world.artifacts.by_id["field-guide"].owner == "w003"


# -- contracts -------------------------------------------------------------------------------------------
class TestContracts:
    async def test_offer_a_loan(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "5", "contracts-table")
            await pilot.press("o")
            await submit(pilot, debtor="b001", principal="15", rate_per_day="5", due_in="600")
        c = world.contracts.contracts["loan-12"].content
        assert (c["lender"], c["debtor"], c["principal"], c["status"]) == ("operator", "b001", 15, "offered")
        assert world.ledger.held["contracts"] == 20 + 15

    async def test_bad_loan_offers_change_nothing(self, app, world):
        before = fingerprint(world)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5", "o")
            await submit(pilot, debtor="b001", principal="15", rate_per_day="5000", due_in="600")
            assert "5000" in refused(pilot, "rate_per_day")
            await submit(pilot, rate_per_day="5", due_in="0")
            assert "due_in" in refused(pilot, "due_in")
            await submit(pilot, debtor="operator", due_in="60")
            assert "yourself" in refused(pilot, "debtor")
        assert fingerprint(world) == before

    async def test_accept_then_repay(self, app, world):
        loan = offer_to_operator(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "5", "contracts-table", loan)
            await pilot.press("a")
            assert world.contracts.contracts[loan].content["status"] == "active"
            assert world.ledger.scrip["operator"] == 968 + 10
            await pilot.press("y")
            assert form(pilot).query_one("#field-amount").value == "10"  # what is owed now
            await submit(pilot, amount="11")
            assert "owe 10" in refused(pilot, "amount")
            await submit(pilot, amount="10")
        assert world.contracts.contracts[loan].content["status"] == "repaid"

    async def test_decline_and_cancel(self, app, world):
        loan = offer_to_operator(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "5", "contracts-table", "loan-11")  # the operator's own offer
            before = fingerprint(world)
            await pilot.press("a")  # accept your own offer: refused
            assert "b002" in notices(app, "error")[-1]
            assert fingerprint(world) == before
            await pilot.press("x")
            assert world.contracts.contracts["loan-11"].content["status"] == "cancelled"
            await show(pilot, "5", "contracts-table", loan)
            await pilot.press("d")
        assert world.contracts.contracts[loan].content["status"] == "cancelled"
        assert world.ledger.held["contracts"] == 0

    async def test_sell_a_debt_claim(self, app, world):
        from engine.actions import Invoke

        r = world.waist.perform("b002", Invoke("contracts", "accept", {"contract": "loan-11"}), world.clock.now())
        assert r.ok, r
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "5", "contracts-table", "loan-1")  # held by t001: not the operator's to sell
            before = fingerprint(world)
            await pilot.press("s")
            await submit(pilot, price="5")
            assert "owned by t001" in refused(pilot, "contract")
            assert fingerprint(world) == before
            await submit(pilot, contract="loan-11", price="18")
        listing = next(x for x in world.market.open.values() if x.artifact_id == "loan-11")
        assert listing.price == 18 and listing.seller == "operator"


# -- finding things ----------------------------------------------------------------------------------------
class TestNavigation:
    async def test_number_keys_switch_panels(self, app):
        async with app.run_test(size=SIZE) as pilot:
            tabs = app.query_one(PanelTabs)
            for key, title in (("2", "Sandboxes"), ("3", "Open bids"), ("4", "Config rights"),
                               ("5", "Loans"), ("6", "filter: all"), ("7", "Scrip supply"), ("1", "Agents [39]")):
                await pilot.press(key)
                assert title in await shown(pilot), key
                # the switcher line highlights the panel shown, and only it
                lit = [p for k, p, _ in tabs.panels if f"[reverse bold][@click=app.show_panel('{p}')]" in tabs.content.markup]
                assert lit == [app.active_panel.id], (key, lit)

    async def test_enter_opens_details(self, app):
        async with app.run_test(size=SIZE) as pilot:
            for key, table, row, expect in (
                ("1", "agents-table", "a001", "thaws in"),
                ("2", "containers-table", "c002", "OOM kills"),
                ("3", "bids-table", "field-guide", "outbid (rank 3 of 5"),
                ("3", "resolutions-table", "#3", "Winners"),
                ("4", "config-table", "t003", "t002"),
                ("4", "slices-table", "rate-13", "flowing to its owner"),
                ("4", "listings-table", "listing-24", "anyone"),
                ("5", "contracts-table", "loan-1", "defaulted"),
            ):
                await show(pilot, key, table, row)
                await pilot.press("enter")
                assert isinstance(app.screen, DetailScreen), (table, row)
                assert expect in await shown(pilot), (table, row)
                await pilot.press("escape")

    async def test_wide_tables_scroll_sideways_keeping_the_id_column(self, app):
        async with app.run_test(size=SIZE) as pilot:
            assert "last action" not in await shown(pilot)
            await pilot.press("right", "right", "right")
            header = (await shown(pilot)).splitlines()[4]
            assert header.split()[1:3] == ["agent", "act/min"] and "last action" in header
            await pilot.press("left", "left", "left")
            assert (await shown(pilot)).splitlines()[4].split()[1:3] == ["agent", "status"]

    async def test_palette_runs_steering_commands(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+p")
            await pilot.press(*"resolve the oracle")
            await pilot.pause(0.3)
            await pilot.press("enter")
        assert world.oracle.resolved == 5

    async def test_help_lists_every_key_and_command(self, app):
        from rich.console import Console
        from textual.widgets import Static

        from tui.commands import STEERING

        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            console = Console(width=120, record=True, file=io.StringIO())
            console.print(app.screen.query_one(Static).content)
            text = console.export_text()
            for binding in [*app.BINDINGS, *(b for p in app.query(Panel) for b in p.BINDINGS)]:
                assert binding.description in text, binding
            for command in STEERING:
                assert command.title in text and command.help in text, command
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
