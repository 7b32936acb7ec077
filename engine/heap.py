"""The process's garbage collector around a long-running world.

A world keeps hundreds of thousands of objects alive for as long as it runs (agents,
brains, artifacts, the config; in the app, its widgets too). CPython's full collections
walk all of them: with 1,000 agents they paused the loop 40–70 ms headless and 100–200 ms
in the app (measured here), long enough to push a journal commit past its interval or to
hold a keypress. Freezing what exists once the world is built takes it out of every later
collection, and higher thresholds make collections rarer: the engine's objects are freed
by reference counting, so little waits for the cycle collector.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once, freeze every surviving object, and raise the thresholds. Call it once
    the world (and the app) is built.

    Frozen objects are still freed when their last reference goes; only reference cycles
    among them are never collected. So this is for a process that runs one world, as the
    `ecology` command does, not for a library call (tests build many worlds in a process).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
