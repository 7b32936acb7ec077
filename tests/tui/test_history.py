"""The story behind an agent (issue 19): its detail shows a timeline of its actions with
their cost, its freezes with their cause and length, rescues received, payments, bids,
loans and sandbox incidents; `h` reaches it from every panel that names an agent, and asks
which agent when a row names several or none."""

from __future__ import annotations

import pytest
from tuikit import SIZE, form, offered, screen_text, show, shown

from engine.actions import Invoke
from tui.format import duration, world_t
from tui.history import AgentNews, timeline
from tui.screens.detail import DetailScreen

pytestmark = pytest.mark.anyio
TALL = (120, 40)


def history_lines(text: str) -> list[str]:
    """The lines under "History, newest first" in a detail, up to the next heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "History, newest first" in line)
    col = lines[start].index("History, newest first")  # the detail's left edge: the table behind is left of it
    out = []
    for line in lines[start + 1:]:
        inner = line[col:].rstrip().rstrip("▎▊▐▌█│").strip()
        if not inner or inner.startswith("Config right"):
            break
        out.append(inner)
    return out


class TestTimeline:
    def test_a_frozen_agent_says_why_and_for_how_long(self, world):
        """d001, a dreamer, freezes after each costly write or delete: the timeline names the
        action, the debt, how long each freeze lasted and who rescued it."""
        agent = world.agents["d001"]
        rows = timeline(world, "d001", AgentNews(), world.clock.now())
        text = [f"{tag.plain} {what.plain}" for _, _, tag, what in rows]
        newest = agent.freezes[-1]
        assert agent.status == "frozen" and newest.length is None
        so_far = duration(world.clock.now() - newest.t)
        assert text[0] == f"frozen debt {newest.debt:.2f} after {newest.cause.describe()}; frozen {so_far} so far"
        t, action, _, think = agent.recent_actions[-1]
        assert text[1] == f"act {action.describe()}  cost {think + world.waist.cost_of(action):.2f}"
        # Freezes that are over have a length; one thawed sooner than debt / rate says so.
        shown_since = rows[-1][0][0]  # the timeline shows its newest rows only
        over = [f for f in agent.freezes if f.length is not None and f.t > shown_since]
        assert over and all(f"{f.debt:.2f} after {f.cause.describe()}" in " ".join(text) for f in over)
        sooner = [f for f in over if f.length < f.debt / f.rate * 0.99]
        assert sum("sooner than by accrual" in line for line in text) == len(sooner)
        assert [r[0][0] for r in rows] == sorted((r[0][0] for r in rows), reverse=True)

    def test_rescues_and_payments_received_are_in_it(self, world):
        now = world.clock.now()
        news = AgentNews()
        sub = world.bus.subscribe()
        world.invoke("ledger", "transfer_compute", to="a003", amount=2.0)
        r = world.waist.perform("p001", Invoke("ledger", "transfer", {"to": "a003", "amount": 3}), now)
        assert r.ok, r
        news.ingest(sub.drain(), world.agents)
        text = [f"{tag.plain} {what.plain}" for _, _, tag, what in timeline(world, "a003", news, now)]
        assert "rescue operator → a003 2.0 compute" in text
        assert "paid +3 scrip from p001" in text
        # p001's own payment is its action's line (with the arguments), not a second line.
        p001 = [f"{tag.plain} {what.plain}" for _, _, tag, what in timeline(world, "p001", news, now)]
        assert not any(line.startswith("pay ") and "a003" in line for line in p001)

    def test_news_is_bounded_per_agent(self, world):
        news = AgentNews(keep=4)
        sub = world.bus.subscribe()
        for _ in range(10):
            world.invoke("ledger", "transfer_compute", to="a003", amount=0.1)
        news.ingest(sub.drain(), world.agents)
        assert len(news.of("a003")) == 4 and news.of("operator") == []  # agents only


class TestReachable:
    async def test_enter_on_an_agent_shows_its_history(self, app, world):
        async with app.run_test(size=TALL) as pilot:
            await show(pilot, "1", "agents-table", "d001")
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen)
            lines = history_lines(await shown(pilot))
            newest = world.agents["d001"].freezes[-1]
            assert lines[0].startswith(f"{world_t(newest.t)}  frozen")
            assert f"after {newest.cause.describe()}" in lines[0]

    async def test_h_from_a_container_opens_its_agent_with_the_incident(self, app):
        async with app.run_test(size=TALL) as pilot:
            await show(pilot, "2", "containers-table", "c002")
            await pilot.press("h")
            assert isinstance(app.screen, DetailScreen) and app.screen.title_text == "Agent c002"
            assert any("sandbox" in line and "c002 oom: memory limit 128 MiB" in line
                       for line in history_lines(await shown(pilot)))

    async def test_h_from_a_bid_opens_its_bidder(self, app, world):
        bid = next(b for b in world.oracle.ranked() if b.bidder != "operator")
        async with app.run_test(size=TALL) as pilot:
            await show(pilot, "3", "bids-table", bid.artifact_id)
            await pilot.press("h")
            assert app.screen.title_text == f"Agent {bid.bidder}"

    async def test_h_on_a_loan_asks_whose_history(self, app, world):
        c = world.contracts.contracts["loan-4"].content
        async with app.run_test(size=TALL) as pilot:
            await show(pilot, "5", "contracts-table", "loan-4")
            await pilot.press("h")
            # debtor first, then lender, then whoever holds the claim now (agents only)
            holder = world.contracts.holder("loan-4")
            assert offered(pilot, "agent") == list(dict.fromkeys(
                a for a in (c["debtor"], c["lender"], holder) if a in world.agents))
            assert form(pilot).text_of("agent") == c["debtor"]
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, DetailScreen) and app.screen.title_text == f"Agent {c['debtor']}"
            assert "loan-4" in "\n".join(history_lines(screen_text(app)))

    async def test_h_on_the_events_panel_offers_every_live_agent(self, app, world):
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("6")
            await pilot.press("h")
            assert offered(pilot, "agent") == list(world.live_ids)
            await pilot.press(*"f00", "tab", "ctrl+s")  # completes to f001
            assert app.screen.title_text == "Agent f001"
