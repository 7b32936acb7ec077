"""Snapshots of every panel and of the states worth a picture (a frozen agent, a bid form
with the engine's refusal, a defaulted contract, a container OOM kill), from the seeded
demo world stopped at a fixed instant: the same pixels on every run.

    pytest tests/tui/test_snapshots.py                      # compare
    pytest tests/tui/test_snapshots.py --snapshot-update    # accept new pictures (look first!)
"""

from __future__ import annotations

from tuikit import make_app, show

from engine.actions import Invoke

WIDE = (120, 36)
SMALL = (80, 24)


class TestPanels:
    def test_agents(self, snap_compare):
        assert snap_compare(make_app(), terminal_size=WIDE)

    def test_agents_at_80x24(self, snap_compare):
        assert snap_compare(make_app(), terminal_size=SMALL)

    def test_containers_with_an_oom_kill(self, snap_compare):
        assert snap_compare(make_app(), press=["2"], terminal_size=WIDE)

    def test_oracle(self, snap_compare):
        assert snap_compare(make_app(), press=["3"], terminal_size=WIDE)

    def test_rights(self, snap_compare):
        assert snap_compare(make_app(), press=["4"], terminal_size=WIDE)

    def test_contracts_with_defaults(self, snap_compare):
        assert snap_compare(make_app(), press=["5"], terminal_size=WIDE)

    def test_events(self, snap_compare):
        assert snap_compare(make_app(), press=["6"], terminal_size=WIDE)

    def test_metrics(self, snap_compare):
        assert snap_compare(make_app(), press=["7"], terminal_size=WIDE)

    def test_metrics_at_80x24(self, snap_compare):
        assert snap_compare(make_app(), press=["7"], terminal_size=SMALL)

    def test_metrics_wide_every_window(self, snap_compare):
        """Line charts over every window kept (the span key, w, pressed twice: 10 min, 1 hour, all)."""
        assert snap_compare(make_app(), press=["7", "w", "w"], terminal_size=(160, 45))

    def test_wide_and_tall_adds_inspector_and_events(self, snap_compare):
        assert snap_compare(make_app(), terminal_size=(160, 48))


class TestStates:
    def test_frozen_agent_details(self, snap_compare):
        app = make_app()
        assert app.world.agents["d001"].status == "frozen"

        async def select(pilot):
            await show(pilot, "1", "agents-table", "d001")

        assert snap_compare(app, run_before=select, press=["enter"], terminal_size=WIDE)

    def test_bid_form_shows_the_engines_refusal(self, snap_compare):
        async def bad_bid(pilot):
            await show(pilot, "3", "bids-table", "field-guide")
            await pilot.press("b")
            await pilot.pause()
            await pilot.press("0", "ctrl+s")  # focus starts on the first empty field: amount

        assert snap_compare(make_app(), run_before=bad_bid, terminal_size=WIDE)

    def test_inline_error_before_submitting(self, snap_compare):
        async def typo(pilot):
            await pilot.press("t")
            await pilot.pause()
            await pilot.press(*"1O")  # a letter O for a zero; the recipient is the selected agent

        assert snap_compare(make_app(), run_before=typo, terminal_size=SMALL)

    def test_defaulted_contract_details(self, snap_compare):
        async def select(pilot):
            await show(pilot, "5", "contracts-table", "loan-4")

        assert snap_compare(make_app(), run_before=select, press=["enter"], terminal_size=WIDE)

    def test_container_details_after_oom(self, snap_compare):
        async def select(pilot):
            await show(pilot, "2", "containers-table", "c002")

        assert snap_compare(make_app(), run_before=select, press=["enter"], terminal_size=WIDE)

    def test_paused_world(self, snap_compare):
        app = make_app()
        assert app.world.invoke("world", "pause").ok
        assert snap_compare(app, terminal_size=SMALL)

    def test_crashed_and_stopped_agents(self, snap_compare):
        app = make_app()
        world = app.world
        agent = world.agents["t001"]
        agent.crashed, agent.last_error = True, "RuntimeError: the brain gave up"
        agent.refresh_held()
        agent._set_status("crashed", agent.last_error)
        assert world.invoke("world", "stop_agent", agent="a012").ok
        world.agents["a012"]._set_status("stopped")
        r = world.waist.perform("operator", Invoke("world", "pause_agent", {"agent": "w002"}), world.clock.now())
        assert r.ok
        world.agents["w002"]._set_status("paused")
        assert snap_compare(app, press=["s", "s", "s", "s"], terminal_size=WIDE)  # sorted by status

    def test_agent_history(self, snap_compare):
        """d001's story: each costly action, the freeze it caused, how long, who rescued it."""
        async def select(pilot):
            await show(pilot, "1", "agents-table", "d001")

        assert snap_compare(make_app(), run_before=select, press=["enter"], terminal_size=(120, 40))

    def test_agent_history_of_a_loans_debtor(self, snap_compare):
        """h on a defaulted loan asks whose history (debtor, lender, holder); the debtor's."""
        async def select(pilot):
            await show(pilot, "5", "contracts-table", "loan-4")
            await pilot.press("h")
            await pilot.pause()
            await pilot.press("ctrl+s")

        assert snap_compare(make_app(), run_before=select, terminal_size=(120, 40))

    def test_transfer_form_completes_agent_ids(self, snap_compare):
        async def typing(pilot):
            await pilot.press("t")
            await pilot.pause()
            to = pilot.app.screen.widget_for("to")
            to.value = ""
            to.focus()
            await pilot.pause()
            await pilot.press("b", "0")

        assert snap_compare(make_app(), run_before=typing, terminal_size=SMALL)

    def test_bid_form_offers_a_select(self, snap_compare):
        async def choose(pilot):
            await show(pilot, "3")
            await pilot.press("b")
            await pilot.pause()
            select = pilot.app.screen.widget_for("artifact")
            select.focus()
            await pilot.pause()
            await pilot.press("enter")

        assert snap_compare(make_app(), run_before=choose, terminal_size=SMALL)

    def test_spawn_form_fits_80x24(self, snap_compare):
        assert snap_compare(make_app(), press=["n"], terminal_size=SMALL)

    def test_help(self, snap_compare):
        assert snap_compare(make_app(), press=["question_mark"], terminal_size=SMALL)

    def test_command_palette_finds_steering(self, snap_compare):
        async def search(pilot):
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"loan")
            await pilot.pause(0.3)

        assert snap_compare(make_app(), run_before=search, terminal_size=WIDE)
