"""The app run by an ordinary user (uid 4242 under `setpriv`, from a virtualenv on
/usr/bin/python3 that tests/containers/unprivileged.py builds): what `--sandbox auto` does
without Docker, bubblewrap or root, and every attack of attacks.py against bubblewrap and
against the subprocess backend that user can opt into."""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

import attacks  # tests/containers/attacks.py
import pytest
import unprivileged
from attacks import ATTACKS, UNSAFE_SUBPROCESS_DOES_NOT_HOLD, Context, leftovers, problems

from containers.choose import INSTALL, REFUSED


@pytest.fixture(scope="module")
def env() -> unprivileged.Env:
    why = unprivileged.missing()
    if why:
        pytest.fail(f"these tests run the app as uid {unprivileged.UID}, but {why}")
    return unprivileged.build()


def test_auto_without_docker_bwrap_or_root_refuses_code_and_the_world_runs(
    env: unprivileged.Env,
) -> None:
    work = env.workdir(f"refused-{secrets.token_hex(4)}")
    journal, report = work / "world.db", work / "report.json"
    done = env.run(
        [env.python, "-m", "tui.cli", "run", "--headless", "--scenario", "default",
         "--virtual-time", "--duration", "120", "--sandbox", "auto",
         "--journal", str(journal), "--report", str(report)],
        # No bwrap on PATH, no Docker daemon at DOCKER_HOST, and not root.
        env={"PATH": "/nonexistent", "HOME": str(work), "LANG": "C.UTF-8",
             "DOCKER_HOST": f"unix://{work}/no-docker.sock"},
        cwd=work, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = " ".join((done.stdout + done.stderr).split())  # the console wraps long lines
    assert REFUSED in shown and "install bubblewrap" in shown, shown[-2000:]
    result = json.loads(report.read_text())
    assert result["sandbox"].startswith(REFUSED) and result["sandbox"].endswith(INSTALL)
    assert "bubblewrap (bwrap) is not installed" in result["sandbox"]
    # The world ran: agents acted, no invariant broke, and no code ran anywhere.
    assert result["totals"]["actions"] > 1000
    assert all(result["invariants"].values()), result["invariants"]
    assert result["mechanisms"]["code_run"] == 0
    # Each code call was refused with the reason, in the journal (created 0600).
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
    from engine.export import iter_events

    refusals = [e for e in iter_events(journal) if e["kind"] == "action_refused"
                and e["action"].startswith("invoke code")]
    assert refusals, "no agent tried to run code: the test proves nothing"
    assert all(REFUSED in e["reason"] and INSTALL in e["reason"] for e in refusals), refusals[0]
    assert unprivileged.processes_of() == []


def run_attacks_as_user(env: unprivileged.Env, backend: str, names: list[str]
                        ) -> tuple[dict[str, Any], Context]:
    work = env.workdir(f"{backend}-{secrets.token_hex(4)}")
    project = work / "project"
    project.mkdir()
    os.chown(project, unprivileged.UID, unprivileged.UID)
    ctx = Context(
        token=f"ecology-attack-{secrets.token_hex(6)}", home=str(work / "home"),
        secret=f"sk-ecology-{secrets.token_hex(12)}", journal=str(project / "world.db"),
        app_pid=0,  # the driver's own pid, filled in by it
        outside_dirs=[str(work / "home"), str(project), "/tmp", "/var/tmp", "/dev/shm"],
    )
    (work / "context.json").write_text(json.dumps(ctx.__dict__))
    out = work / "records.json"
    try:
        done = env.run(
            [env.python, str(env.base / "attacks.py"), "--backend", backend,
             "--context", str(work / "context.json"), "--out", str(out), "--attacks", *names],
            env={"PATH": "/usr/bin:/bin", "HOME": ctx.home, "LANG": "C.UTF-8",
                 "OPENAI_API_KEY": ctx.secret},
            cwd=work, timeout=600,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        result = json.loads(out.read_text())
        assert result["uid"] == unprivileged.UID
        result["context"]["app_pid"] = result["context"]["app_pid"]
        return result, Context(**result["context"])
    finally:
        for leftover in attacks.files_named(ctx.token, ctx.outside_dirs):
            os.unlink(leftover)


def judge(result: dict[str, Any], ctx: Context, names: list[str]) -> None:
    records = result["records"]
    assert [r["attack"] for r in records] == names
    found = {r["attack"]: problems(r, ctx) for r in records}
    assert {name: p for name, p in found.items() if p} == {}
    assert leftovers(result["closed"]) == []
    # The app (the driver) has exited: nothing of its uid runs on, nothing it was made to
    # write stays.
    assert unprivileged.processes_of() == []
    assert attacks.processes_with(ctx.token) == []
    assert attacks.files_named(ctx.token, ctx.outside_dirs) == []


@pytest.mark.bwrap
def test_every_attack_is_contained_by_bwrap_for_an_ordinary_user(
    env: unprivileged.Env, bwrap_path: str
) -> None:
    names = [a.name for a in ATTACKS]
    result, ctx = run_attacks_as_user(env, "bwrap", names)
    judge(result, ctx, names)


def test_the_unsafe_subprocess_backend_holds_what_it_promises_for_an_ordinary_user(
    env: unprivileged.Env,
) -> None:
    # Not the rest: without root it runs agents' code as the user (see its docstring), so
    # those attacks are left out here, and the backend runs only with --unsafe-sandbox.
    names = [a.name for a in ATTACKS if a.name not in UNSAFE_SUBPROCESS_DOES_NOT_HOLD]
    result, ctx = run_attacks_as_user(env, "subprocess", names)
    judge(result, ctx, names)
