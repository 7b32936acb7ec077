"""Write the README's screenshots: every panel and a few telling states, as SVG, from the
seeded demo world (tests/tui/demo.py, the snapshot tests' fixture) stopped at a fixed
instant — the same pictures every time.

    .venv/bin/python tests/tui/screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's packages

from demo import demo_config, demo_world  # noqa: E402 - tests/tui, this script's directory
from textual._doc import take_svg_screenshot  # noqa: E402
from textual.pilot import Pilot  # noqa: E402

from tui.app import EcologyApp  # noqa: E402
from tui.widgets.live_table import LiveTable  # noqa: E402

WIDE = (120, 36)
SMALL = (80, 24)


def _select(panel_key: str, table: str, row: str) -> Callable[[Pilot], Awaitable[None]]:
    async def run(pilot: Pilot) -> None:
        await pilot.press(panel_key)
        t = pilot.app.query_one(f"#{table}", LiveTable)
        t.focus()
        t.select(row)
        await pilot.pause()

    return run


async def _bad_bid(pilot: Pilot) -> None:
    await _select("3", "bids-table", "field-guide")(pilot)
    await pilot.press("b")
    await pilot.pause()
    await pilot.press("0", "ctrl+s")  # the amount field has focus: the artifact is the selected bid's


async def _loan_debtor_history(pilot: Pilot) -> None:
    await _select("5", "contracts-table", "loan-4")(pilot)
    await pilot.press("h")  # whose history? the debtor is offered first
    await pilot.pause()
    await pilot.press("ctrl+s")


async def _completing(pilot: Pilot) -> None:
    await pilot.press("t")
    await pilot.pause()
    to = pilot.app.screen.widget_for("to")  # type: ignore[attr-defined]
    to.value = ""
    to.focus()
    await pilot.pause()
    await pilot.press("b", "0")


# name -> (title, keys, terminal size, what to do first)
SHOTS: dict[str, tuple[str, list[str], tuple[int, int], Callable[[Pilot], Awaitable[None]] | None]] = {
    "1-agents": ("Agents", [], WIDE, None),
    "2-containers": ("Containers", ["2"], WIDE, None),
    "3-oracle": ("Oracle", ["3"], WIDE, None),
    "4-rights": ("Rights and market", ["4"], WIDE, None),
    "5-contracts": ("Contracts", ["5"], WIDE, None),
    "6-events": ("Events", ["6"], WIDE, None),
    "7-metrics": ("Metrics", ["7"], WIDE, None),
    "agents-80x24": ("Agents at 80x24", [], SMALL, None),
    "agents-wide": ("Agents on a big terminal: inspector and events", [], (160, 48), None),
    "metrics-wide": ("Metrics on a big terminal, every window", ["7", "w", "w"], (160, 45), None),
    "frozen-agent": ("A frozen agent and its history", ["enter"], (120, 40), _select("1", "agents-table", "d001")),
    "agent-history": ("h on a defaulted loan: the debtor's history", [], (120, 40), _loan_debtor_history),
    "completion": ("A transfer form completing agent ids", [], SMALL, _completing),
    "defaulted-contract": ("A defaulted loan", ["enter"], WIDE, _select("5", "contracts-table", "loan-4")),
    "oom-sandbox": ("A sandbox after an OOM kill", ["enter"], WIDE, _select("2", "containers-table", "c002")),
    "bid-refused": ("A bid the engine refused", [], WIDE, _bad_bid),
    "help": ("Every key", ["question_mark"], WIDE, None),
}


def write_screenshots(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (title, keys, size, before) in SHOTS.items():
        app = EcologyApp(demo_config(), world=demo_world(), run_engine=False, cursor_blink=False)
        svg = take_svg_screenshot(app=app, press=keys, terminal_size=size, run_before=before,
                                  title=f"Agent Ecology — {title}")
        path = out / f"{name}.svg"
        path.write_text(svg, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="screenshots", help="directory for the SVGs (default: screenshots)")
    args = parser.parse_args()
    for path in write_screenshots(Path(args.out)):
        print(path)


if __name__ == "__main__":
    main()
