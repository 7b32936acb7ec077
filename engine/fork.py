"""Forking a recorded world: a new journal that starts from the world as of a moment.

`world_at(path, t)` is that world: the journal's last checkpoint at or before `t`, run on
to `t` when the recording is on virtual time (a seeded world on virtual time is
deterministic, and operator actions are checkpointed, so between two checkpoints the
world does exactly what it did). A real-time recording is exact only at its checkpoints:
its world is taken at the last one before `t`.

`fork_journal` writes that world into a new journal (the parent is only read) whose meta
names the parent and the moment, optionally with another seed and changed settings of the
world file (`--set oracle.slots=4`, validated as a world file is). Everything is checked,
and the world built, before the new file is made: a refusal writes nothing.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .checkpoint import CheckpointError, capture
from .checkpoint import restore as restore_checkpoint
from .config import ConfigError, WorldConfig, _read_float, parse_world
from .journal_file import JournalError, inspect
from .journal_read import CheckpointInfo, list_checkpoints, read_checkpoint
from .paths import check_output
from .resume import checkpoint_every_of, load_config

if TYPE_CHECKING:
    from .world import World

__all__ = ["ForkResult", "apply_sets", "fork_journal", "parse_at", "pick_checkpoint", "world_at", "format_t"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$")
_SPAN = re.compile(r"^(?:T\+)?((?:\d+(?:\.\d+)?[smhd])+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_at(text: object) -> float:
    """A world time: seconds (`754.5`), `HH:MM:SS` (`01:23:45`) or a span from the world's
    start (`T+5m`, `T+1h30m`, `90s`). ConfigError for anything else."""
    if not isinstance(text, str) or len(text) > 64:
        raise ConfigError(f"--at: a world time, e.g. 754.5, 01:23:45 or T+5m; got {text!r}")
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        value = None
    if value is None:
        m = _CLOCK.match(s)
        if m:
            value = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        else:
            m = _SPAN.match(s)
            if m:
                value = sum(float(n) * _UNITS[u] for n, u in _PART.findall(m[1]))
    if value is None or not math.isfinite(value) or value < 0:
        raise ConfigError(f"--at: a world time >= 0, e.g. 754.5, 01:23:45 or T+5m; got {text!r}")
    return value


def format_t(t: float) -> str:
    h, rest = divmod(t, 3600)
    m, sec = divmod(rest, 60)
    return f"{int(h):02d}:{int(m):02d}:{sec:06.3f}"


def apply_sets(config: WorldConfig, sets: list[str]) -> WorldConfig:
    """The config with each `PATH=VALUE` applied: PATH a dotted path into the world file
    that exists (`oracle.slots`, `agents.0.params.gift`), VALUE a TOML value (a bare word is
    a string); the result validated as a world file is. ConfigError naming what is wrong."""
    if not sets:
        return config
    data = config.model_dump()
    for item in sets:
        path, eq, text = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not eq or not path:
            raise ConfigError(f"--set {item!r}: write PATH=VALUE, e.g. oracle.slots=4")
        try:
            value = tomllib.loads(f"v = {text}", parse_float=_read_float)["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word: a string, for the world file's checks to judge
        node: Any = data
        parts = path.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[:i + 1])
            if isinstance(node, dict) and part in node and not (part == "params" and last):
                if last:
                    node[part] = value
                else:
                    node = node[part]
            elif isinstance(node, dict) and i > 0 and parts[i - 1] == "params" and last:
                node[part] = value  # a brain's parameter the group did not set: its checks judge it
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            else:
                known = ", ".join(sorted(node)) if isinstance(node, dict) else f"0 to {len(node) - 1}" \
                    if isinstance(node, list) else "nothing below it"
                raise ConfigError(f"--set {item!r}: the world file has no setting {where} (there: {known})")
    return parse_world(data, source="--set")


def pick_checkpoint(infos: list[CheckpointInfo], t: float) -> CheckpointInfo:
    """The checkpoint to start from for the world at `t`: the last at or before it; of
    several at one time, the last that is not a run's end (an end has closed the run's
    last metrics window, which an uninterrupted world would not have)."""
    before = [c for c in infos if c.t <= t]
    if not before:
        raise ConfigError(f"--at {format_t(t)} is before the recording's first checkpoint ({format_t(infos[0].t)})")
    at = before[-1].t
    same = [c for c in before if c.t == at]
    usable = [c for c in same if c.reason != "end"]
    return (usable or same)[-1]


async def advance(world: World, to: float) -> None:
    """Run a restored world on to world time `to` (no final window: a moment, not an end)."""
    if to > world.clock.now():
        await world.run(final_window=False, until=to)


def recording_bounds(path: Path) -> tuple[list[CheckpointInfo], float]:
    """The checkpoints and the world time of the last commit (the end of the recording)."""
    infos = list_checkpoints(path)
    last = inspect(path).last_commit
    end = max(infos[-1].t, last.t if last is not None else 0.0)
    return infos, end


def world_at(path: str | Path, t: float, *, config: WorldConfig | None = None,
             memo: dict | None = None) -> tuple[World, CheckpointInfo, bool]:
    """(the world at `t`, the checkpoint it started from, exact: False when a real-time
    recording's world had to be taken at that checkpoint instead). Synchronous: it runs
    the world forward in its own event loop (`world_at_async` inside one)."""
    return anyio.run(lambda: world_at_async(path, t, config=config, memo=memo))


async def world_at_async(path: str | Path, t: float, *, config: WorldConfig | None = None,
                         memo: dict | None = None) -> tuple[World, CheckpointInfo, bool]:
    path = Path(path)
    infos, end = recording_bounds(path)
    if not infos[0].t <= t <= end:
        raise ConfigError(f"--at {format_t(t)} is outside the recording, which runs from "
                          f"{format_t(infos[0].t)} to {format_t(end)}")
    meta = inspect(path).meta
    recorded = load_config(path, meta)
    info = pick_checkpoint(infos, t)
    state = read_checkpoint(path, info.n)
    virtual = meta.get("clock") == "virtual"
    try:
        world = restore_checkpoint(recorded, state, virtual=True, memo=memo)
    except CheckpointError as e:
        raise JournalError(f"{path}: checkpoint {info.n}: {e}") from None
    exact = virtual or t == info.t
    if virtual and t > info.t:
        await advance(world, t)
    if config is not None and config != recorded:
        # The moment's world under the changed settings: services read them as they go.
        world = restore_checkpoint(config, capture(world), virtual=True, memo=memo)
    return world, info, exact


@dataclass(frozen=True)
class ForkResult:
    path: Path
    t: float  # the world time the fork starts at
    checkpoint: CheckpointInfo
    exact: bool


def fork_journal(parent: str | Path, at: float, new: str | Path, *, seed: int | None = None,
                 sets: list[str] | None = None, checkpoint_every: float | None = None,
                 commit_interval: float = 0.1) -> ForkResult:
    """Write NEW, a journal of the world as of `at` in PARENT (only read). Raises
    ConfigError, JournalError or OutputPathError having written nothing."""
    parent, new = Path(parent), Path(new)
    check_output(new, "--journal", new=True)
    if parent.resolve() == new.resolve():
        raise ConfigError("a fork is written to a new journal, never into its parent")
    meta = inspect(parent).meta
    recorded = load_config(parent, meta)
    config = apply_sets(recorded, list(sets or ()))
    if seed is not None:
        if type(seed) is not int:
            raise ConfigError(f"--seed must be a whole number, got {seed!r}")
        config = config.model_copy(update={"seed": seed})
    world, info, exact = world_at(parent, at, config=config)
    t = world.clock.now() if exact else info.t
    if seed is not None and seed != world.seed:
        # Another seed: every agent's random stream starts afresh from it (from the fork on).
        world.seed = seed
        for agent_id, agent in world.agents.items():
            agent.rng_seed = world.stream_seed(f"{agent_id}@{t!r}")
            agent.rng.seed(agent.rng_seed)
    fork_meta = {"parent": str(parent.resolve()), "forked_at": repr(t), "fork_checkpoint": str(info.n),
                 "fork_set": json.dumps(list(sets or ())), "fork_seed": "" if seed is None else str(seed)}
    every = checkpoint_every_of(meta) if checkpoint_every is None else checkpoint_every
    journal = world.attach_journal(new, commit_interval, checkpoint_every=every, meta=fork_meta)
    try:
        journal.checkpoint(t, "fork")
        if not journal.commit():
            raise JournalError(f"{new}: the fork could not be written: {journal.failed}")
    finally:
        journal.close()
    return ForkResult(new, t, info, exact)
