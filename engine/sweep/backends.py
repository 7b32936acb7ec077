"""Where a sweep's runs execute: a local process pool (the default, one worker per core) or
a Ray cluster (one Ray task per run; `ray` is imported only here, only when asked for).

Both yield each run's record as it finishes, in whatever order runs finish: the tables put
them back in the sweep's order. Both retry a run whose worker died (up to `retries` more
times), and both kill a run that overruns its time limit by more than `grace` seconds: the
run's own limit is checked inside the world at every await (engine/sweep/worker.py), this
is the backstop for a worker that stopped answering.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, TimeoutError as FutureTimeout, wait
from typing import Any, Protocol

from .spec import Run
from .worker import record, run_one

Job = Callable[[Run], dict[str, Any]]
GRACE = 30.0  # seconds past a run's time limit before its worker is killed


class BackendError(RuntimeError):
    """The backend cannot start (Ray missing or unreachable); nothing ran."""


class Backend(Protocol):
    name: str

    def execute(self, runs: Sequence[Run], retries: int) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


def _died(run: Run, attempts: int, why: str) -> dict[str, Any]:
    return record(run, "died", f"its worker died on each of {attempts} attempts ({why})", 0.0, attempts=attempts)


def _overran(run: Run, grace: float, attempts: int) -> dict[str, Any]:
    return record(run, "timeout", f"no answer within the time limit of {run.time_limit:g} s plus {grace:g} s: "
                  "its worker was killed", run.time_limit + grace, attempts=attempts)


def _raised(run: Run, e: BaseException, attempts: int) -> dict[str, Any]:
    return record(run, "error", f"{type(e).__name__}: {e}", 0.0, attempts=attempts)


# Ctrl-C reaches the whole process group. The sweep stops its pool and says how to go on;
# its workers should not each die with a traceback, even one still starting up. An ignored
# SIGINT survives exec, and Python then leaves it ignored: the workers spawned with the
# pool get it from the parent, any spawned later (after a death) from the initializer.
def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _interrupts_ignored_by_new_workers() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread handles signals; workers still get the initializer
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class PoolBackend:
    """A local pool of worker processes (pebble): a dead worker fails only the run it held,
    and a run past its limit is killed on its own, which concurrent.futures cannot do."""

    name = "pool"

    def __init__(self, workers: int, job: Job = run_one, grace: float = GRACE) -> None:
        from pebble import ProcessPool

        # spawn, not fork: the parent runs threads (the progress bar, the pool's own), and a
        # forked child of a threaded parent can inherit a held lock.
        self.pool = ProcessPool(max_workers=workers, context=multiprocessing.get_context("spawn"),
                                initializer=_ignore_interrupts)
        self.workers = workers
        self.job = job
        self.grace = grace

    def execute(self, runs: Sequence[Run], retries: int) -> Iterator[dict[str, Any]]:
        from pebble import ProcessExpired

        attempts: dict[str, int] = {}
        pending: dict[Any, Run] = {}

        def submit(run: Run) -> None:
            attempts[run.key] = attempts.get(run.key, 0) + 1
            # pebble's timeout counts from when a worker takes the run, not from submission
            pending[self.pool.schedule(self.job, args=(run,), timeout=run.time_limit + self.grace)] = run

        with _interrupts_ignored_by_new_workers():
            for run in runs:  # the first submission spawns the workers
                submit(run)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                run = pending.pop(future)
                n = attempts[run.key]
                try:
                    out = future.result()
                except FutureTimeout:
                    yield _overran(run, self.grace, n)
                except ProcessExpired as e:
                    if n <= retries:
                        submit(run)
                    else:
                        yield _died(run, n, f"last exit code {e.exitcode}")
                except Exception as e:  # the job itself raised: its row says why
                    yield _raised(run, e, n)
                else:
                    out["sweep"]["attempts"] = n
                    yield out

    def close(self) -> None:
        self.pool.stop()
        self.pool.join()


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Refuse an address nobody answers at: ray.init() would retry it for good."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BackendError(f"--ray takes auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise BackendError(f"cannot reach Ray at {address}: {e}") from None


class RayBackend:
    """One Ray task per run, on a local instance (`auto`) or a cluster (`ADDRESS`). Ray's own
    retries are off: this backend retries a run whose worker died, so it can count them."""

    name = "ray"

    def __init__(self, address: str = "auto", job: Job = run_one, grace: float = GRACE) -> None:
        try:
            import ray
        except ImportError:
            raise BackendError("--ray needs Ray: pip install 'agent-ecology[ray]'") from None
        self.ray = ray
        # A caller (a test, a notebook) may have started Ray itself: use it, leave it running.
        self.owns = not ray.is_initialized()
        if self.owns:
            if address != "auto":
                check_reachable(address)
            try:
                # auto: a cluster started here with `ray start`, or else a new local instance
                ray.init(address=None if address == "auto" else address, include_dashboard=False,
                         log_to_driver=False)
            except Exception as e:  # ConnectionError, ValueError, RuntimeError, by version
                raise BackendError(f"cannot reach Ray at {address}: {e}") from None
        self.remote = ray.remote(num_cpus=1, max_retries=0)(job)
        self.grace = grace

    def execute(self, runs: Sequence[Run], retries: int) -> Iterator[dict[str, Any]]:
        ray = self.ray
        from ray.exceptions import RayError, RayTaskError, TaskCancelledError

        queue = deque(runs)
        attempts: dict[str, int] = {}
        # At most one run in flight per CPU of the cluster, so a run starts about when it is
        # submitted and its deadline (counted from submission) is close to its own limit.
        inflight: dict[Any, tuple[Run, float]] = {}
        try:
            while queue or inflight:
                slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
                while queue and len(inflight) < slots:
                    run = queue.popleft()
                    attempts[run.key] = attempts.get(run.key, 0) + 1
                    deadline = time.monotonic() + run.time_limit + self.grace
                    inflight[self.remote.remote(run)] = (run, deadline)
                nearest = min(deadline for _, deadline in inflight.values())
                ready, _ = ray.wait(list(inflight), num_returns=1,
                                    timeout=max(0.0, nearest - time.monotonic()))
                for ref in ready:
                    run, _ = inflight.pop(ref)
                    n = attempts[run.key]
                    try:
                        out = ray.get(ref)
                    except RayTaskError as e:  # the job itself raised
                        yield _raised(run, e.cause if e.cause is not None else e, n)
                    except (RayError, TaskCancelledError) as e:  # the worker or its node died
                        if n <= retries:
                            queue.appendleft(run)
                        else:
                            yield _died(run, n, type(e).__name__)
                    else:
                        out["sweep"]["attempts"] = n
                        yield out
                now = time.monotonic()
                for ref, (run, deadline) in list(inflight.items()):
                    if deadline <= now:
                        del inflight[ref]
                        ray.cancel(ref, force=True)  # force: kills the worker process
                        yield _overran(run, self.grace, attempts[run.key])
        finally:
            for ref in inflight:  # the sweep stopped early: its runs in flight stop too
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.owns:
            self.ray.shutdown()
