"""The header: one line that answers "what is the world doing right now" — running or
paused, world clock, speed, countdown to the oracle, sandbox in use, how many agents and
how many frozen, what the operator holds, LLM dollars against the budget and the local
model being served. Narrow terminals drop the least important
parts first instead of wrapping."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

from engine.ids import OPERATOR

from ..format import OPERATOR_STYLE, duration, num, world_t

# How a world whose code calls are refused (no safe sandbox here) says so: containers.choose.REFUSED.
SANDBOX_REFUSED = "no sandbox: agents' code is refused"

if TYPE_CHECKING:
    from engine.world import World


class WorldHeader(Widget):
    DEFAULT_CSS = """
    WorldHeader { height: 1; }
    """

    engine_state = "running"  # set by the app: running | detached | ended | failed | replay

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._state: tuple[World, float] | None = None

    def show(self, world: World, now: float) -> None:
        self._state = (world, now)
        self.refresh()

    def render(self) -> Text:
        # Rendered at the current width, so a resize re-fits the line without a new frame.
        if self._state is None:
            return Text("")
        world, now = self._state
        return self.line_for(world, now, self.size.width or 80)

    def line_for(self, world: World, now: float, width: int) -> Text:
        clock = world.clock
        if self.engine_state == "replay":
            state = Text(" ⏮ REPLAY ", "bold white on dark_blue")
        elif self.engine_state == "failed":
            state = Text(" ✖ ENGINE FAILED ", "bold white on red")
        elif self.engine_state == "ended":
            state = Text(" ■ ENDED ", "black on grey70")
        elif world.paused:
            state = Text(" ⏸ PAUSED ", "bold black on yellow")
        else:
            state = Text(" ▶ RUNNING ", "bold black on green")
        wall = clock.wall_time(now).replace("T", " ").removesuffix("+00:00")
        speed = "virtual" if clock.kind == "virtual" else f"×{clock.speed:g}"
        ledger = world.ledger
        sandbox = getattr(world.sandbox, "name", None) or (
            "refused" if getattr(world, "sandbox_reason", "").startswith(SANDBOX_REFUSED) else "none")
        frozen = len(world.frozen)
        # (priority, text): lower numbers survive narrower terminals.
        parts: list[tuple[int, Text]] = [
            (0, Text(f" {world.config.name} ", "bold")),
            (0, state),
            (1, Text(f" {wall[11:] if width < 110 else wall[5:]}", "bold")),
            (6, Text(f"T+{world_t(now)}", "dim")),
            (2, Text(f" {speed}")),
            (3, Text.assemble(" oracle ", (duration(world.next_resolution_in(now)), "bold"))),
            (4, Text.assemble(" sandbox ", (sandbox, "bold" if sandbox != "none" else "dim"))),
            (5, Text.assemble(f" {num(len(world.live_ids))} agents ",
                              (f"{num(frozen)} frozen", "bold blue" if frozen else "dim"))),
            (7, Text.assemble(" you ", (f"{num(ledger.scrip[OPERATOR])} scrip", OPERATOR_STYLE))),
        ]
        if ledger.llm_budget > 0 or ledger.llm_spent > 0:  # LLM dollars spent against the budget
            parts.append((8, Text.assemble(" llm ", (f"${ledger.llm_spent:.4f}", "bold"), f" of ${ledger.llm_budget:g}")))
        local = sys.modules.get("engine.local_llm")  # a local model server this process started
        for server in local.running_servers() if local is not None else ():
            parts.append((9, Text.assemble(" model ", (server.describe(), "bold"))))
        sep = Text(" │", "dim")
        keep = sorted(range(len(parts)), key=lambda i: parts[i][0])
        chosen: set[int] = set()
        used = 0
        for i in keep:
            w = parts[i][1].cell_len + (sep.cell_len if i > 1 else 0) + 1
            if used + w > width:
                break
            used += w
            chosen.add(i)
        line = Text(no_wrap=True, overflow="crop")
        for i, (_, text) in enumerate(parts):
            if i in chosen:
                if i == 3:  # world time since start rides with the clock
                    line.append(" ")
                elif i > 1 and line.cell_len:
                    line.append_text(sep)
                line.append_text(text)
        return line
