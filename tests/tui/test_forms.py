"""Forms that offer choices (issue 19): id fields offer the ids that fit (the operator's own
artifacts for a bid or a sale, live agents for a transfer, open listings for a buy), as a
completion dropdown when there are many and a select when there are few; tab takes the
highlighted choice. Enter moves to the next field before the next key is handled, so a
burst of keys lands in the fields it was typed for."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from textual.widgets import Input, Select
from tuikit import SIZE, burst, field_error, form, make_app, offered, show, submit

from engine.actions import Invoke, Result, Write
from tui.screens.form import Choices, Field, FormScreen

pytestmark = pytest.mark.anyio


def write_many(world, ids):
    now = world.clock.now()
    for artifact_id in ids:
        r = world.waist.perform("operator", Write(f"notes on {artifact_id}: " + "x" * len(artifact_id), artifact_id), now)
        assert r.ok, r


def dropdown(pilot, name: str) -> list[str]:
    """The ids the completion dropdown under a field shows now ([] when hidden)."""
    choices = next(c for c in form(pilot).query(Choices) if c.field.name == name)
    if not choices.display:
        return []
    ol = choices.option_list
    return [ol.get_option_at_index(i).value for i in range(ol.option_count)]


class TestChoices:
    async def test_a_bid_offers_the_operators_own_artifacts_and_completes_them(self, world):
        ids = ["memo-10", *(f"memo-1{i:02d}" for i in range(12)), "essay"]
        write_many(world, ids)
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3")
            await pilot.press("b")
            # 15 of its own data artifacts (these and field-guide), newest first; nobody else's.
            mine = [a.id for a in world.artifacts.owned_by("operator") if a.kind in ("data", "code")]
            assert offered(pilot, "artifact") == mine[::-1]
            assert "data-172" not in offered(pilot, "artifact")  # w001's, bid on in the oracle
            artifact = form(pilot).widget_for("artifact")
            assert isinstance(artifact, Input)  # many choices: completion, not a select
            assert artifact.value == "essay"  # the newest it has not bid on
            artifact.value = ""
            artifact.focus()
            await pilot.press(*"memo-10")
            # Those starting with what was typed, in the field's order (newest first).
            assert dropdown(pilot, "artifact") == [*(f"memo-10{i}" for i in range(9, -1, -1)), "memo-10"]
            await pilot.press(*["backspace"] * 7, *"ess")
            assert dropdown(pilot, "artifact") == ["essay"]
            await pilot.press("tab")  # takes the highlighted choice
            assert artifact.value == "essay" and artifact.has_focus

    async def test_a_transfer_offers_live_agents_only(self, world):
        r = world.invoke("world", "stop_agent", agent="b003")
        assert r.ok, r
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("t")
            assert offered(pilot, "to") == [a for a in world.live_ids]
            assert "b003" not in offered(pilot, "to") and "operator" not in offered(pilot, "to")
            to = form(pilot).widget_for("to")
            to.value = ""
            to.focus()
            await pilot.press("b", "0")
            assert dropdown(pilot, "to") == ["b001", "b002"]  # b003 is stopped
            await pilot.press("down", "tab")  # the second choice
            assert to.value == "b002"

    async def test_a_buy_offers_open_listings_the_operator_may_buy(self, world):
        now = world.clock.now()
        made = []
        for seller, buyer in (("t002", None), ("t003", "operator"), ("t003", "a001")):
            r = world.waist.perform(seller, Invoke("rights", "slice_rate", {"amount": 0.1}), now)
            assert r.ok, r
            args = {"artifact": r.value["artifact"], "price": 3} | ({"buyer": buyer} if buyer else {})
            r = world.waist.perform(seller, Invoke("market", "list", args), now)
            assert r.ok, r
            made.append(r.value["listing"])
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "4")
            await pilot.press("y")
            # Not the operator's own listing, not one reserved for a001: a select of two, and
            # the selected row (the operator's listing-24), kept for the engine to refuse.
            assert isinstance(form(pilot).widget_for("listing"), Select)
            assert offered(pilot, "listing") == [*made[:2], "listing-24"]

    async def test_few_choices_make_a_select_and_choosing_moves_on(self, world):
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3")
            await pilot.press("b")
            select = form(pilot).widget_for("artifact")
            assert isinstance(select, Select) and offered(pilot, "artifact") == ["field-guide"]
            select.clear()
            select.focus()
            await pilot.press("enter")  # opens the menu
            assert select.expanded
            await pilot.press("down", "enter")  # choose field-guide
            assert select.value == "field-guide"
            assert form(pilot).widget_for("amount").has_focus


class TestBursts:
    async def test_enter_in_a_burst_moves_on_before_the_next_key(self, world):
        """The issue's report: `data-10`, Enter, `5` typed in one burst put `data-105` into
        the artifact field. Every key here reaches the app before it has handled one."""
        write_many(world, ["memo-10", *(f"memo-1{i:02d}" for i in range(12))])
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "3")
            await pilot.press("b")
            form(pilot).widget_for("artifact").value = ""
            form(pilot).widget_for("artifact").focus()
            await pilot.pause()
            await burst(pilot, *"memo-10", "enter", "5")
            screen = form(pilot)
            # Enter kept what was typed (the dropdown offered memo-109 first) and moved on.
            assert screen.text_of("artifact") == "memo-10"
            assert screen.text_of("amount") == "5"
            await burst(pilot, "enter")  # on the last field: submit
        assert world.oracle.bids[("operator", "memo-10")].amount == 5

    async def test_a_whole_form_typed_in_one_burst(self, world):
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "5")
            await pilot.press("o")  # offer a loan: debtor, principal, rate/day, due in
            assert form(pilot).widget_for("debtor").has_focus
            await burst(pilot, *"b002", "enter", *"20", "enter", *"1.5", "enter", *"300")
            screen = form(pilot)
            assert [screen.text_of(n) for n in ("debtor", "principal", "rate_per_day", "due_in")] == ["b002", "20", "1.5", "300"]
            await burst(pilot, "enter")
        [loan] = [a.content for a in world.contracts.contracts.values()
                  if a.content["lender"] == "operator" and a.content["principal"] == 20 and a.content["rate_per_day"] == 1.5]
        assert (loan["debtor"], loan["principal"], loan["rate_per_day"], loan["due_in"]) == ("b002", 20, 1.5, 300.0)

    async def test_a_whole_form_and_its_submitting_enter_in_one_burst(self, world):
        """The last field's text and the enter that submits it in one burst (a terminal sends
        `T+1m` and a return in one write): the form is submitted with that text, not with
        what the field held before the keys were handled."""
        app = make_app(world)
        async with app.run_test(size=SIZE) as pilot:
            await show(pilot, "5")
            await pilot.press("o")
            await burst(pilot, *"b002", "enter", *"21", "enter", *"1.5", "enter", *"300", "enter")
            await pilot.pause()
            assert not isinstance(app.screen, FormScreen)  # submitted, and the engine said yes
        [loan] = [a.content for a in world.contracts.contracts.values()
                  if a.content["lender"] == "operator" and a.content["principal"] == 21]
        assert (loan["debtor"], loan["rate_per_day"], loan["due_in"]) == ("b002", 1.5, 300.0)


FIELDS = [
    Field("to", "to", "id", choices=["a001", "b002"]),
    Field("scrip", "scrip", "int"),
    Field("amount", "amount", "int"),
    Field("contract", "contract", "id", argument="artifact"),  # sent as market.list's `artifact`
]
FILLED = {"to": "a001", "scrip": "3", "amount": "10", "contract": "loan-1"}


@asynccontextmanager
async def refused_form(world, answer: Result, **values: str):
    """A form of FIELDS submitted with `values`, the engine answering `answer`: yields the
    pilot and the arguments the engine was sent."""
    sent: list[dict] = []

    def ask(args: dict) -> Result:
        sent.append(args)
        return answer

    app = make_app(world)
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(FormScreen("Try", FIELDS, ask, blink=False))
        await pilot.pause()
        await submit(pilot, **{**FILLED, **values})
        yield pilot, sent


class TestRefusalPlacement:
    """A refusal is shown under the field the engine names in `Result.arg` (issue 15), never
    under a field whose name the sentence happens to contain."""

    async def test_the_argument_named_not_the_words_said(self, world):
        said = "insufficient scrip: have 5, need 10"
        async with refused_form(world, Result(False, None, said, "insufficient", "amount")) as (pilot, sent):
            assert field_error(pilot, "amount") == said
            assert field_error(pilot, "scrip") == "" and field_error(pilot) == ""
            # The contract field became the engine's `artifact` argument.
            assert sent == [{"to": "a001", "scrip": 3, "amount": 10, "artifact": "loan-1"}]

    async def test_a_field_sent_under_another_name_is_marked_by_that_name(self, world):
        said = "cannot list loan-1: it is owned by b002, not operator"
        async with refused_form(world, Result(False, None, said, "not_owner", "artifact")) as (pilot, _):
            assert field_error(pilot, "contract") == said

    async def test_no_argument_named_the_whole_form(self, world):
        said = "amount and scrip: nothing to do"  # two fields' names, and no argument
        async with refused_form(world, Result(False, None, said, "invalid")) as (pilot, _):
            assert field_error(pilot) == said
            assert all(field_error(pilot, f.name) == "" for f in FIELDS)
        said = "b002 is already stopped"  # an id typed in `to`, but no argument named: no guess
        async with refused_form(world, Result(False, None, said, "invalid"), to="b002") as (pilot, _):
            assert field_error(pilot) == said and field_error(pilot, "to") == ""

    def test_the_engine_names_the_argument_of_the_refusals_forms_meet(self, world):
        """The refusals a form can meet carry their argument, so no form has to guess."""
        agent = sorted(world.agents)[0]
        assert world.invoke("world", "stop_agent", agent=agent).ok
        for target, method, args, arg in [
            ("world", "stop_agent", {"agent": agent}, "agent"),  # already stopped
            ("world", "resume_agent", {"agent": agent}, "agent"),  # not paused
            ("world", "pause_agent", {"agent": "nobody"}, "agent"),
            ("ledger", "transfer_artifact", {"artifact": "nothing-1", "to": agent}, "artifact"),
            ("ledger", "transfer_artifact", {"artifact": "nothing-1", "to": "nobody"}, "to"),
            ("market", "buy", {"listing": "listing-404"}, "listing"),
            ("rights", "dissolve", {"artifact": "nothing-1"}, "artifact"),
            ("contracts", "accept", {"contract": "loan-404"}, "contract"),
        ]:
            r = world.invoke(target, method, args)
            assert not r.ok and r.arg == arg, (target, method, r)
