"""The `ecology` command fails loudly and safely, run as real processes (issue 13): one writer
per journal; a journal that cannot be written ends a headless run in bounded time (exit 3);
SIGINT and SIGTERM end a run promptly with a consistent journal; files that are not
journals are left byte-identical; a deleted -wal is reported; the top speed ends; output
paths are checked before the run; a very large world says how far its building has got.

Each test waits on what the child writes (its journal, its output), never on a fixed sleep;
the bounds on elapsed time are what the issue promises.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.journal import iter_events, read_state
from engine.journal_file import readonly_uri, sidecar

ROOT = Path(__file__).resolve().parents[2]
ECOLOGY = Path(sys.executable).with_name("ecology")

pytestmark = pytest.mark.skipif(not ECOLOGY.exists(), reason=f"the ecology command is not installed at {ECOLOGY}")


def ecology(*args: str, prefix: tuple[str, ...] = (), **kw) -> subprocess.Popen:
    return subprocess.Popen([*prefix, str(ECOLOGY), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=kw.pop("cwd", ROOT), **kw)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, float]:
    """(exit code, stderr, seconds it took to end from now)."""
    started = time.monotonic()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"ecology did not end within {timeout} s: {err[-2000:]}")
    return proc.returncode, err, time.monotonic() - started


def run(*args: str, timeout: float = 120, **kw) -> tuple[int, str, float]:
    return finish(ecology(*args, **kw), timeout)


def last_commit(path: Path) -> tuple[int, float, float] | None:
    """(n, world t, wall) of the journal's last commit, read as any reader may."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(readonly_uri(path), uri=True)
        try:
            return db.execute("SELECT n, t, wall FROM commits ORDER BY n DESC LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None  # not created yet


def wait_for_commits(path: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = last_commit(path)
        if row and row[0] >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the writer ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"{path} did not reach {n} commits in {timeout} s")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def contiguous(path: Path) -> bool:
    seqs = [e["seq"] for e in iter_events(path)]
    return seqs == list(range(1, len(seqs) + 1))


def resume_cleanly(journal: Path, tmp: Path, *extra: str) -> tuple[dict, str]:
    """Resume the journal on virtual time for a minute: exit 0, every invariant true."""
    report = tmp / f"resumed-{time.monotonic_ns()}.json"
    code, err, _ = run("run", "--headless", "--resume", str(journal), "--virtual-time", "--duration", "60",
                       "--report", str(report), *extra)
    assert code == 0, err[-2000:]
    data = json.loads(report.read_text())
    assert data["invariants"] and all(data["invariants"].values()), data["invariants"]
    assert data["cut_short"] is None
    return data, err


# -- one writer per journal ------------------------------------------------------------------------
def test_a_second_writer_is_refused_at_once_and_the_journal_stays_whole(tmp_path):
    journal = tmp_path / "world.db"
    writer = ecology("run", "--headless", "--journal", str(journal), "--speed", "20")
    try:
        wait_for_commits(journal, writer, 5)
        refusal = f"{journal} is being written by process {writer.pid}"
        for args in (
            ("run", "--headless", "--resume", str(journal), "--duration", "5"),  # a second headless run
            ("--resume", str(journal)),  # the app
            ("run", "--headless", "--journal", str(journal)),  # a new recording onto it
        ):
            code, err, took = run(*args, timeout=60)
            assert code == 2 and refusal in err, (args, code, err[-1000:])
            assert "Traceback" not in err
        # Readers stay allowed while it writes.
        code, err, _ = run("export", str(journal), "--out", str(tmp_path / "live"), timeout=60)
        assert code == 0, err
        assert (tmp_path / "live.events.jsonl").stat().st_size > 0
        assert writer.poll() is None, "the first writer runs on"
    finally:
        writer.send_signal(signal.SIGINT)
        code, err, _ = finish(writer)
    assert code == 130, err[-2000:]
    # Every event once, in order: nothing was written by a second process.
    assert contiguous(journal)
    resumed, _ = resume_cleanly(journal, tmp_path)
    assert resumed["duration_s"] > 0
    assert contiguous(journal)  # and the resumed run appended after it, in order


# -- interrupts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_ends_a_headless_run_within_a_second_with_a_last_commit(tmp_path, signum, code):
    journal, report = tmp_path / "world.db", tmp_path / "r.json"
    writer = ecology("run", "--headless", "--journal", str(journal), "--speed", "20",
                     "--commit-interval", "1", "--report", str(report))
    wait_for_commits(journal, writer, 3)
    signalled_wall = time.time()
    writer.send_signal(signum)
    got, err, took = finish(writer)
    assert got == code, err[-2000:]
    assert took < 1.0, f"it took {took:.2f} s to end"
    assert "Traceback" not in err
    # The last commit came after the signal (commits are a second apart here), so the
    # journal holds the world as it stood when the run ended.
    n, t, wall = last_commit(journal)
    assert wall >= signalled_wall
    data = json.loads(report.read_text())
    assert data["cut_short"] == f"interrupted by {signal.Signals(signum).name}"
    assert t == pytest.approx(data["duration_s"], abs=20 * 0.5)  # the report came just after
    resume_cleanly(journal, tmp_path)


# A headless run whose loop a bug holds for ever (a brain that never returns): the first
# interrupt cannot stop it gracefully, so the watchdog ends the process a second later.
WEDGED = r"""
import sys
from engine.brains import register
from engine.brains.scripted import Boltzmann
from engine.config import load_scenario, parse_world
from engine.headless import Interrupts, main_headless
from engine.world import World

@register
class Wedged(Boltzmann):
    name = "test_wedged"

    def decide(self, view):
        if view.now >= 30.0:
            print("WEDGED", file=sys.stderr, flush=True)
            while True:
                pass
        return super().decide(view)

data = load_scenario("default").model_dump()
data["agents"].append({"brain": "test_wedged", "count": 1, "rate": 1.0, "prefix": "w"})
data["compute"]["total_rate"] = None
data["clock"]["speed"] = 20.0
world = World(parse_world(data, source="wedged"))
world.attach_journal(sys.argv[1], commit_interval=0.05)
sys.exit(main_headless(world, None, None, interrupts=Interrupts().install()))
"""


def test_an_interrupt_ends_even_a_run_whose_loop_is_held(tmp_path):
    journal = tmp_path / "world.db"
    child = subprocess.Popen([sys.executable, "-c", WEDGED, str(journal)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for line in child.stderr:  # its own words say when the loop is held
        if line.startswith("WEDGED"):
            break
    child.send_signal(signal.SIGINT)
    code, err, took = finish(child, timeout=60)
    assert code == 130, err[-2000:]
    assert "did not stop within 1 s of SIGINT" in err
    assert took < 2.0, took
    # Ended without a last commit, as SIGKILL would: the journal is whole at its last one.
    meta, tables = read_state(journal)
    assert json.loads(tables["world"]["clock"])["now"] > 0
    assert contiguous(journal)


# -- journals that cannot be written -------------------------------------------------------------
@pytest.fixture
def small_tmpfs(tmp_path):
    """A 512 KB tmpfs, mounted for the test (needs root, as in CI)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (CI runs as root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_ends_a_headless_run_with_exit_3_and_the_journal_at_its_last_commit(tmp_path, small_tmpfs):
    journal, report = small_tmpfs / "world.db", tmp_path / "r.json"
    started = time.monotonic()
    code, err, _ = run("run", "--headless", "--journal", str(journal), "--speed", "50",
                       "--journal-retry", "1", "--report", str(report), timeout=180)
    took = time.monotonic() - started
    assert code == 3, err[-2000:]
    assert "journal failed" in err and "database or disk is full" in err
    assert "cut short" in err and "Traceback" not in err
    assert took < 90, took  # bounded: it filled the disk, retried for a second, and ended
    data = json.loads(report.read_text())
    assert "the journal failed" in data["cut_short"] and "full" in data["cut_short"]
    # Consistent at its last commit: copied where there is room, it resumes with every
    # invariant true and nothing reported lost.
    n, t, _ = last_commit(journal)
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in (journal, journal.with_name("world.db-wal"), sidecar(journal)):
        if p.exists():
            shutil.copy(p, copy / p.name)
    state_now = json.loads(read_state(copy / "world.db")[1]["world"]["clock"])["now"]
    assert state_now == pytest.approx(t, abs=1.0)  # the state of that last commit
    resumed, out = resume_cleanly(copy / "world.db", tmp_path)
    assert "lost" not in out
    assert resumed["duration_s"] == pytest.approx(state_now + 60)


def test_a_new_journal_on_a_full_disk_is_refused_with_exit_3_and_leaves_nothing(small_tmpfs):
    fd = os.open(small_tmpfs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    before = listing(small_tmpfs)
    code, err, took = run("run", "--headless", "--journal", str(small_tmpfs / "new.db"), "--duration", "600",
                          timeout=60)
    assert code == 3 and "journal failed" in err and "No space left" in err, err[-2000:]
    assert listing(small_tmpfs) == before  # no half-made journal or lock file stays


def test_a_read_only_journal_ends_a_headless_run_with_exit_3_and_is_left_as_it_was(tmp_path):
    journal = tmp_path / "world.db"
    code, err, _ = run("run", "--headless", "--journal", str(journal), "--virtual-time", "--duration", "30")
    assert code == 0, err[-2000:]
    journal.chmod(0o444)
    before, files = digest(journal), listing(tmp_path)
    # Root writes any file; without CAP_DAC_OVERRIDE it honours the mode, as a user would.
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        prefix = (setpriv, "--bounding-set", "-dac_override,-dac_read_search")
    started = time.monotonic()
    code, err, _ = run("run", "--headless", "--resume", str(journal), "--duration", "600", prefix=prefix, timeout=60)
    assert code == 3, err[-2000:]
    assert "journal failed" in err and "cannot be written" in err
    assert time.monotonic() - started < 30
    assert digest(journal) == before and listing(tmp_path) == files


# -- files that are not journals ---------------------------------------------------------------------
def _foreign_files(d: Path) -> list[Path]:
    rollback = d / "rollback.db"
    db = sqlite3.connect(rollback)
    db.execute("CREATE TABLE notes (x)")
    db.execute("INSERT INTO notes VALUES ('mine')")
    db.commit()
    db.close()
    wal = d / "wal.db"
    db = sqlite3.connect(wal)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()  # closed cleanly: no -wal beside it
    future = d / "future.db"
    db = sqlite3.connect(future)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', 'agent-ecology-journal/2')")
    db.commit()
    db.close()
    empty = d / "empty.db"
    empty.touch()
    text = d / "notes.txt"
    text.write_text("not a database\n" * 100)
    return [rollback, wal, future, empty, text]


def test_resume_and_export_leave_files_that_are_not_journals_byte_identical(tmp_path):
    files = _foreign_files(tmp_path)
    before = {p: digest(p) for p in files}
    names = listing(tmp_path)
    expected = {
        "rollback.db": "not an Agent Ecology journal", "wal.db": "not an Agent Ecology journal",
        "future.db": "schema version '2'", "empty.db": "is empty", "notes.txt": "not an SQLite database",
    }
    for p in files:
        for args in (("run", "--headless", "--resume", str(p), "--duration", "5"), ("export", str(p))):
            code, err, _ = run(*args, timeout=60)
            assert code == 2 and expected[p.name] in err, (args, err[-1000:])
            assert "Traceback" not in err
    assert {p: digest(p) for p in files} == before
    assert listing(tmp_path) == names  # no -wal, -shm or -lock appeared


# -- a deleted or truncated -wal -----------------------------------------------------------------
def _what_sqlite_sees(journal: Path, scratch: Path) -> tuple[int, float]:
    """The last commit SQLite recovers from the journal's files as they are now (a copy is
    opened, so the journal itself is first opened by the resume, as a user's would be)."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for p in (journal, journal.with_name(journal.name + "-wal")):
        if p.exists():
            shutil.copy(p, scratch / p.name)
    db = sqlite3.connect(readonly_uri(scratch / journal.name), uri=True)
    try:
        row = db.execute("SELECT n, t FROM commits ORDER BY n DESC LIMIT 1").fetchone()
    finally:
        db.close()
    return (0, 0.0) if row is None else row


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_lost_wal_is_reported_with_the_world_time_lost(tmp_path, damage):
    journal = tmp_path / "j" / "world.db"
    journal.parent.mkdir()
    wal = journal.with_name("world.db-wal")
    for _ in range(3):  # the kill must find commits that are only in the -wal (nearly always)
        for p in journal.parent.iterdir():
            p.unlink()
        writer = ecology("run", "--headless", "--journal", str(journal), "--speed", "20")
        wait_for_commits(journal, writer, 40)  # past the first checkpoint (every 2 s)
        writer.kill()
        finish(writer)
        marked = sidecar(journal).read_text().split()
        mark_n, mark_t = int(marked[1]), float(marked[2])
        if damage == "deleted":
            wal.unlink()
        else:
            os.truncate(wal, wal.stat().st_size // 2)
        kept_n, kept_t = _what_sqlite_sees(journal, tmp_path / "scratch")
        if kept_n >= 1 and mark_n > kept_n:
            break
    else:
        pytest.fail("no kill found commits only in the -wal")
    _, err = resume_cleanly(journal, tmp_path)
    assert f"lost its last {mark_n - kept_n:,} commits" in err, err[-2000:]
    assert f"{mark_t - kept_t:,.1f} world seconds lost" in err, err[-2000:]
    # The warning is in the journal's history too.
    assert any(e["kind"] == "world_control" and "world seconds lost" in e.get("detail", "")
               for e in iter_events(journal))


# -- bounds and output paths ----------------------------------------------------------------------
def test_the_top_speed_runs_and_ends_in_seconds(tmp_path):
    code, err, took = run("run", "--headless", "--speed", "1e6", "--duration", "1", timeout=60)
    assert code == 0 and "all invariants hold" in err, err[-2000:]
    assert took < 30
    # Three real seconds at a million: windows close once per jump, each covering many
    # intervals, and they tile the whole run.
    report = tmp_path / "r.json"
    code, err, took = run("run", "--headless", "--speed", "1e6", "--duration", "3e6", "--report", str(report),
                          timeout=120)
    assert code == 0, err[-2000:]
    windows = json.loads(report.read_text())["windows"]
    assert windows and all(w["invariants_ok"] for w in windows)
    assert all(a["end"] == b["start"] for a, b in zip(windows, windows[1:]))  # no gaps
    spans = [w["end"] - w["start"] for w in windows]
    assert min(spans) >= 10 - 1e-6 and max(spans) >= 100 * 10  # one window for a jump of 100 intervals
    assert windows[-1]["index"] + 1 < 3e6 / 10 / 10  # far fewer windows than intervals
    for speed, message in (("2e6", "--speed: Input should be less than or equal to 1000000"),
                           ("nan", "--speed: must be a finite number"),
                           ("1e300", "--speed: Input should be less than or equal to 1000000")):
        code, err, took = run("run", "--headless", "--speed", speed, "--duration", "1", timeout=60)
        assert code == 2 and message in err, err


def test_output_paths_are_refused_before_the_run(tmp_path):
    (tmp_path / "adir").mkdir()
    for args, message in (
        (("--report", str(tmp_path / "adir")), "is a directory"),
        (("--report", str(tmp_path / "missing" / "r.json")), "no such directory"),
        (("--journal", str(tmp_path / "adir")), "is a directory"),
    ):
        # A real-time run of ten minutes: refused before it starts, or this takes 600 s.
        code, err, took = run("run", "--headless", "--duration", "600", *args, timeout=60)
        assert code == 2 and message in err and "Traceback" not in err, err[-2000:]
        assert took < 30
    journal = tmp_path / "w.db"
    code, err, _ = run("run", "--headless", "--journal", str(journal), "--virtual-time", "--duration", "10")
    assert code == 0, err
    code, err, _ = run("export", str(journal), "--out", str(tmp_path / "missing" / "x"), timeout=60)
    assert code == 2 and "no such directory" in err


def test_a_very_large_world_says_how_far_its_building_has_got(tmp_path):
    proc = ecology("run", "--headless", "--scenario", "boltzmann", "--agents", "1000000", "--duration", "1")
    counts = []
    started = time.monotonic()
    try:
        for line in proc.stderr:  # the child's own progress lines pace the test
            if line.startswith("building the world:"):
                counts.append(int(line.split()[3].replace(",", "")))
                if len(counts) >= 3:
                    break
            assert time.monotonic() - started < 120
    finally:
        proc.send_signal(signal.SIGTERM)
        code, err, took = finish(proc, timeout=60)
    assert counts[0] == 0 and counts == sorted(counts) and counts[-1] > 0, counts
    assert "of 1,000,000 agents" in line
    assert code == 143, err[-2000:]  # an interrupt ends the build too
