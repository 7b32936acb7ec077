"""Checkpoints: the whole world at one instant, composed from each part's own dump.

A checkpoint keeps everything the world needs to go on exactly as it would have: the
ledger (balances, buckets, rates, escrow), the artifact store, the services' books (bids,
listings, contracts, resolutions, the scorer's memory), the metrics' open window, the
waist's and the world's counters, every agent's loop state with its brain's memory and
random stream, who sleeps until which event, and the scheduler's calendar in its order
(agents' wake-ups and the services' timers, by name). Each part dumps and loads itself
(`Ledger.dump`, `Agent.dump`, `Scheduler.dump`, ...); this module only composes them and
names the items the calendar and the bus hold ("a:ID" an agent, "t:NAME" a service's timer).

Not kept: sandboxes (restarted on the next code run), the UI's rings (recent events, agents'
histories), async work in flight (an LLM call: its agent starts that turn afresh), and a
sleep's condition no checkpoint can write down (a brain's own lambda: it then holds at the
next change of the agent's holdings). The built-in brains use conditions that are data.

`encode`/`decode` make the bytes stored in the journal: JSON, zlib-compressed. `decode` and
`restore` read hostile input: a damaged or forged checkpoint is refused (`CheckpointError`)
before a world is handed out.
"""

from __future__ import annotations

import gc
import json
import os
import zlib
from contextlib import contextmanager
from itertools import compress as selected, count
from operator import attrgetter, is_not, ne
from typing import TYPE_CHECKING, Any, Callable, Iterator

import orjson

from .agent import Agent
from .clock import RealClock, VirtualClock
from .random_stream import StreamCursor, StreamError

if TYPE_CHECKING:
    from .config import WorldConfig
    from .world import World

FORMAT = 1
# Written by a writer whose plain values tag what orjson cannot keep (integers past 64 bits,
# non-finite floats: engine/plain.py), so `decode` may read it with orjson. Checkpoints
# from before lack it and are read by the standard library, exactly.
TAGGED = 2
_TAGGED_HEAD = b'{"format":%d,"plain":%d,' % (FORMAT, TAGGED)
# The standard library's encoder, for what orjson will not write (see `_json`).
_stdlib_json = json.JSONEncoder(separators=(",", ":")).encode
MAX_BYTES = 2**31  # a checkpoint larger than this (decompressed) is not one this engine wrote


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored (damaged, forged or from another format)."""


class _Fragments:
    """The JSON of many items (artifacts, agents, kept records), each kept under what would
    change it (its signature): `joined` encodes again only the items whose signature
    changed since the last call. The comparison runs in C (`map` with `operator.ne` or
    `is_not`), as a Python loop over every artifact had become the largest part of a
    capture once the encoding was fast; only changed items cost Python time."""

    __slots__ = ("sigs", "json")

    def __init__(self) -> None:
        self.sigs: dict[Any, Any] = {}
        self.json: dict[Any, bytes] = {}

    def joined(self, keys: list[Any], sigs: list[Any], encode_one: Callable[[int], bytes],
               changed: Callable[[Any, Any], bool] = ne, kept: Callable[[Any], Any] | None = None) -> bytes:
        """The items' JSON, comma-joined in `keys`' order; `encode_one(i)` encodes item i,
        `kept(sig)` is what to keep of a signature (a copy of what may change in place)."""
        cached, fragments = self.sigs, self.json
        for i in selected(count(), map(changed, sigs, map(cached.get, keys))):
            key = keys[i]
            cached[key] = sigs[i] if kept is None else kept(sigs[i])
            fragments[key] = encode_one(i)
        if len(cached) > len(keys):  # items gone since the last call: forget them
            live = set(keys)
            for key in [k for k in cached if k not in live]:
                del cached[key], fragments[key]
        return b",".join(map(fragments.__getitem__, keys))


class Cursors:
    """What a writer remembers between checkpoints: where each random stream was, and the
    JSON of what did not change since (most of a world's artifacts, about 40% of its agents
    between two checkpoints 10 world seconds apart, every kept record)."""

    def __init__(self) -> None:
        self.streams: dict[str, StreamCursor] = {}
        self.artifacts = _Fragments()  # by id, under the fields a change moves (see `capture_json`)
        self.agents = _Fragments()  # by id, under `Agent.dump_key`
        # Records that never change once made (closed metrics windows, past resolutions,
        # closed listings), by the record object's identity (the cache holds the object,
        # so its id cannot be reused while cached).
        self.records = {"windows": _Fragments(), "resolutions": _Fragments(), "closed": _Fragments()}

    def stream(self, agent_id: str) -> StreamCursor:
        cursor = self.streams.get(agent_id)
        if cursor is None:
            cursor = self.streams[agent_id] = StreamCursor()
        return cursor


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a while (as it was after: a caller may have
    turned it off itself). Taking a checkpoint makes tens of thousands of short-lived
    tables, and restoring one as many long-lived objects: either way the collector,
    counting allocations, would run (full collections of the whole heap among them) for
    nothing to free."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _json(value: Any) -> bytes:
    """Compact JSON, as the standard library writes it in meaning. orjson encodes a
    checkpoint's fragments about ten times faster (an agent's in about 1 us), and the
    capture is work the engine waits for. It would write a non-finite float as null and
    refuses integers past 64 bits: plain values tag both (engine/plain.py), and the
    engine's own figures are finite and bounded. What it still refuses (keys that are not
    strings) goes to the standard library."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _stdlib_json(value).encode()


def capture(world: World, cursors: Cursors | None = None, parts: bool = True) -> dict[str, Any]:
    """The world as it stands, as plain values (see the module doc); without the artifact
    store, the agents and the kept records (closed listings, past resolutions) when
    `parts` is False (`capture_json` adds them from JSON fragments)."""
    cursors = cursors or Cursors()
    timer_names = {id(timer): f"t:{name}" for name, timer in world.timers().items()}

    def name_of(item: Any) -> str | None:
        if item.__class__ is Agent:
            return "a:" + item.id
        agent = getattr(item, "agent", None)  # an agent's ticket with the event bus
        if agent is not None and agent.__class__ is Agent:
            return "a:" + agent.id
        return timer_names.get(id(item))

    return {
        "format": FORMAT,
        "plain": TAGGED,
        "t": world.clock.now(),
        "world": world.dump_state(),
        "ledger": world.ledger.dump(),
        **({"artifacts": world.artifacts.dump()} if parts else {}),
        "oracle": world.oracle.dump(None if parts else 0),
        "market": world.market.dump(None if parts else 0),
        "contracts": world.contracts.dump(),
        "metrics": world.metrics.dump(),
        "waist": world.waist.dump(),
        **({"agents": [[aid, agent.dump(cursors.stream(aid))] for aid, agent in world.agents.items()]} if parts else {}),
        "bus": world.bus.dump(name_of),
        "scheduler": world.scheduler.dump(name_of),
    }


def capture_encoded(world: World, cursors: Cursors) -> bytes:
    """`encode(capture(world))`, the same bytes' meaning, made faster for a writer that
    checkpoints the same world again and again: unchanged artifacts and agents reuse their
    JSON. `capture_json` and `compress` are its two halves (a writer compresses in a
    thread: zlib lets go of the GIL, so the engine runs on meanwhile)."""
    return compress(capture_json(world, cursors))


def compress(text: bytes) -> bytes:
    # Level 1: a checkpoint is mostly numbers that compress little more at higher levels.
    return zlib.compress(text, 1)


# What a change to an artifact moves (its content changes only with `version`): the
# signature a writer keeps its JSON under, after the artifact object itself (one deleted
# and made again under its id is another object) and with a copy of `meta` (changed in
# place). The cache holding the object keeps it from being compared with a stranger.
_artifact_fields = attrgetter("version", "owner", "created", "updated", "size", "charged", "meta")


def _kept_artifact_sig(sig: tuple) -> tuple:
    art, fields = sig
    return art, (*fields[:-1], dict(fields[-1]))


def capture_json(world: World, cursors: Cursors) -> bytes:
    """The JSON of `capture(world)`, from cached fragments where nothing changed."""
    state = capture(world, cursors, parts=False)
    store = world.artifacts
    ids, artifacts = list(store.by_id), list(store.by_id.values())
    artifact_rows = cursors.artifacts.joined(ids, list(zip(artifacts, map(_artifact_fields, artifacts))),
                                             lambda i: _json(store.row(artifacts[i])), kept=_kept_artifact_sig)
    aids, agents = list(world.agents), list(world.agents.values())
    agent_rows = cursors.agents.joined(aids, list(map(Agent.dump_key, agents)),
                                       lambda i: _json([aids[i], agents[i].dump(cursors.stream(aids[i]))]))
    # Kept records: their JSON, put in place of a placeholder in the rest.
    nonce = os.urandom(8).hex()  # no string an agent wrote can pass for a placeholder
    raw: list[bytes] = []

    def records(name: str, objects: Any, row: Callable[[Any], Any] | None = None) -> str:
        objects = list(objects)
        raw.append(b"[" + cursors.records[name].joined(
            list(map(id, objects)), objects, lambda i: _json(objects[i] if row is None else row(objects[i])),
            changed=is_not) + b"]")
        return f"\x00raw{len(raw) - 1}:{nonce}\x00"

    state["metrics"]["windows"] = records("windows", world.metrics.windows)
    state["oracle"]["resolutions"] = records("resolutions", world.oracle.resolutions)
    state["market"]["closed"] = records("closed", world.market.closed, world.market.row)
    head = _json(state)
    for i, fragment in enumerate(raw):
        head = head.replace(f'"\\u0000raw{i}:{nonce}\\u0000"'.encode(), fragment, 1)
    return b"".join((head[:-1], b',"agents":[', agent_rows, b'],"artifacts":{"counter":', str(store.counter).encode(),
                     b',"artifacts":[', artifact_rows, b"]}}"))


def encode(state: dict[str, Any], level: int = 1) -> bytes:
    # Level 1: a checkpoint is mostly numbers that compress little more at higher levels,
    # and it is made on the engine's loop.
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), level)


def decode(blob: bytes) -> dict[str, Any]:
    try:
        d = zlib.decompressobj()
        raw = d.decompress(blob, MAX_BYTES)
        if d.unconsumed_tail:
            raise CheckpointError("a checkpoint larger than any this engine writes")
        try:
            # (about twice as fast as the standard library: a seek reads a checkpoint)
            state = orjson.loads(raw) if raw.startswith(_TAGGED_HEAD) else json.loads(raw)
        except orjson.JSONDecodeError:
            state = json.loads(raw)  # which says what is wrong in its own words
    except (zlib.error, ValueError, TypeError, RecursionError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"a damaged checkpoint: {e}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"a checkpoint of another format ({state.get('format') if isinstance(state, dict) else '?'!r}); "
                              f"this version of ecology reads format {FORMAT}")
    return state


def restore(config: WorldConfig, state: dict[str, Any], *, virtual: bool | None = None,
            sandbox_factory: Any = None, memo: dict | None = None) -> World:
    """A new world, not yet running, exactly as the checkpoint has it, under `config` (the
    recorded world's, or a fork's changed one). Its clock stands at the checkpoint's time:
    virtual or real as the config says, unless `virtual` says otherwise."""
    from .world import World

    try:
        return _restore(World, config, state, virtual, sandbox_factory, memo)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, StreamError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise CheckpointError(f"a damaged checkpoint: {what}") from None


def _restore(World: type, config: WorldConfig, state: dict[str, Any], virtual: bool | None, sandbox_factory: Any,
             memo: dict | None) -> World:
    t = state["t"]
    if type(t) not in (float, int) or not 0 <= t < float("inf"):
        raise CheckpointError("a checkpoint's time must be a number >= 0")
    ck = config.clock
    virtual = ck.virtual if virtual is None else virtual
    clock = VirtualClock(ck.epoch, start=float(t)) if virtual else RealClock(ck.speed, ck.epoch, start=float(t))
    world = World(config.model_copy(update={"agents": []}), clock=clock, sandbox_factory=sandbox_factory)
    world.config = config
    world.ledger.load(state["ledger"])
    world.artifacts.load(state["artifacts"])
    world.oracle.load(state["oracle"])
    world.market.load(state["market"])
    world.contracts.load(state["contracts"])
    world.metrics.load(state["metrics"])
    world.waist.load(state["waist"])
    store = world.artifacts.by_id
    requeue = []
    rows = state["agents"]
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 and type(r[0]) is str for r in rows):
        raise CheckpointError("a checkpoint's agents must be [id, state] rows")
    for aid, agent_state in rows:
        cfg = store.get(f"config:{aid}")
        if aid in world.agents or cfg is None or cfg.kind != "config" or not world.ledger.has(aid):
            raise CheckpointError(f"agent {aid!r} has no account or config right, or is listed twice")
        if not isinstance(agent_state, dict) or type(agent_state.get("parent")) is not str:
            raise CheckpointError(f"agent {aid!r}: its state is not a table with a parent")
        agent = Agent(world, aid, cfg, agent_state["parent"])
        world.agents[aid] = agent
        if agent.load(agent_state, memo):
            requeue.append(agent)
    world.load_state(state["world"])
    timers = {f"t:{name}": timer for name, timer in world.timers().items()}

    def item(name: Any) -> Any:
        if type(name) is str and name.startswith("a:") and name[2:] in world.agents:
            return world.agents[name[2:]]
        if type(name) is str and name in timers:
            return timers[name]
        raise CheckpointError(f"the calendar names {name!r}, which the world does not have")

    world.bus.load(state["bus"], lambda name: item(name).ticket())
    sched = state["scheduler"]
    if not (isinstance(sched, dict) and isinstance(sched.get("calendar"), list) and isinstance(sched.get("ready"), list)
            and all(isinstance(e, list) and len(e) == 2 and type(e[0]) in (float, int) and isinstance(e[1], list)
                    for e in sched["calendar"])):
        raise CheckpointError("a checkpoint's calendar must be [time, names] rows")

    def due(name: Any, at: float | None) -> Any:
        found = item(name)
        if at is not None and found.__class__ is not Agent:
            found.due = at
        return found.due(at) if found.__class__ is Agent else found

    world.scheduler.load(sched, due)
    for agent in requeue:
        world.scheduler.ready(agent)
    return world


__all__ = ["CheckpointError", "Cursors", "capture", "capture_encoded", "capture_json", "collector_paused", "compress",
           "decode", "encode", "restore", "FORMAT"]
