"""Resuming a journalled world: the world as of the journal's last commit, journalling on.

When the journal's last checkpoint is the world as of its last commit (a run that ended,
a fork just written), the world is restored from it exactly: brains' memories, random
streams, agents' waits and the scheduler's calendar, so it goes on as if it had never
stopped. Otherwise (a run killed between checkpoints) it is rebuilt from the state rows
(`persist.restore`): balances, artifacts, books and agents as committed, brains rebuilt
from their configs, every agent queued afresh.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import CheckpointError
from .checkpoint import restore as restore_checkpoint
from .events import WorldControl
from .journal import DEFAULT_CHECKPOINT_EVERY, Journal
from .journal_file import JournalError, WriterLock, check_writable, inspect
from .journal_read import list_checkpoints, read_checkpoint, read_state

if TYPE_CHECKING:
    from .config import WorldConfig
    from .world import World

__all__ = ["resume_world", "load_config"]


def load_config(path: Path, meta: dict[str, str]) -> WorldConfig:
    from pydantic import ValidationError

    from .config import WorldConfig

    try:
        return WorldConfig.model_validate_json(meta["config"])
    except (ValidationError, KeyError) as e:
        raise JournalError(f"{path}: its world config no longer loads: {e}") from None


def checkpoint_every_of(meta: dict[str, str]) -> float:
    try:
        every = float(meta.get("checkpoint_every", DEFAULT_CHECKPOINT_EVERY))
    except ValueError:
        return DEFAULT_CHECKPOINT_EVERY
    return every if 0 <= every <= 10**6 else DEFAULT_CHECKPOINT_EVERY


def resume_world(path: str | Path, *, virtual: bool | None = None, sandbox_factory=None,
                 commit_interval: float = 0.1) -> World:
    """The world a journal describes, as of its last commit, journalling on in the same file.

    World time resumes where it stood; buckets accrue from their last update, so the time
    that passed before the crash is credited as usual and nothing is credited twice.
    """
    from .clock import RealClock, VirtualClock
    from .persist import restore
    from .world import World

    path = Path(path)
    inspect(path)  # a journal, or refused before anything is locked or written
    check_writable(path)
    lock = WriterLock.acquire(path)  # refused at once while another process writes it
    try:
        # Read under the lock: the state resumed is the state the file holds, with no
        # writer between the read and this process's first commit.
        meta, tables = read_state(path)
        config = load_config(path, meta)
        world_row = json.loads(tables["world"]["clock"])
        now = world_row["now"]
        seq = json.loads(tables["world"]["counters"])["bus_seq"]
        state = _checkpoint_at(path, now, seq)
        if state is not None:
            try:
                world = restore_checkpoint(config, state, virtual=virtual, sandbox_factory=sandbox_factory)
            except CheckpointError as e:
                raise JournalError(f"{path}: {e}") from None
        else:
            ck = config.clock
            virtual = ck.virtual if virtual is None else virtual
            clock = VirtualClock(ck.epoch, start=now) if virtual else RealClock(ck.speed, ck.epoch, start=now)
            world = World(config.model_copy(update={"agents": []}), clock=clock, sandbox_factory=sandbox_factory)
            world.config = config
            restore(world, tables)
        journal = world.journal = Journal(world, path, commit_interval, fresh=False, lock=lock,
                                          checkpoint_every=checkpoint_every_of(meta))
    except BaseException:
        lock.release()
        raise
    warning = journal.lost_warning()
    if warning:  # in the journal's history and the events panel, and printed by the CLI
        world.bus.publish(WorldControl(world.clock.now(), "journal", warning))
    return world


def _checkpoint_at(path: Path, now: float, seq: int) -> dict | None:
    """The last checkpoint, when it is the committed world (same time, same events)."""
    try:
        infos = list_checkpoints(path)
    except JournalError:
        return None  # an older journal, or none yet: the rows
    last = infos[-1]
    if last.t != now or last.seq != seq:
        return None
    return read_checkpoint(path, last.n)
