"""The `ecology` command: opens the app, or runs a world headless, or manages sandboxes.

    ecology [--world FILE | --scenario NAME] [--agents N] [--seed N] [--virtual-time]
            [--local-model [PATH.gguf]] [--llm-replay FILE.db]
    ecology run --headless [same options] [--duration SECONDS] [--report FILE.json]
    ecology scenarios
    ecology serve [same options] [--host 127.0.0.1] [--port 8000]   (the app in a browser)
    ecology sweep SWEEP.toml [--out DIR] [--workers N] [--ray auto|ADDRESS]
    ecology replay FILE.db [--at TIME]                              (read-only, with a timeline)
    ecology fork FILE.db --at TIME --journal NEW.db [--seed N] [--set PATH=VALUE ...]
    ecology export FILE.db [--at TIME]

Textual is imported only when the app opens, so headless runs start fast and need no UI.
Exit codes: 0 ok, 1 an invariant broke, 2 bad input (checked before the world is built:
options by the world files' bounds, output paths, journals), 3 the journal could not be
written, 130/143 interrupted (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from engine.config import (
    ConfigError,
    RunOptions,
    WorldConfig,
    check_run_options,
    load_scenario,
    load_world,
    scenario_names,
)
from engine.paths import OutputPathError, check_output

BAD_INPUT, JOURNAL_FAILED = 2, 3
BIG_WORLD = 20_000  # agents; a world this large says how far its building has got


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _number(text: str) -> float:
    # Only parsed here: bounds (and nan or inf) are RunOptions' to check, as in world files.
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _world_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--resume", metavar="FILE.db", help="continue a journalled world where its journal ends")
    src.add_argument("--world", metavar="FILE", help="a world file (TOML)")
    src.add_argument("--scenario", metavar="NAME", help=f"a built-in world: {', '.join(scenario_names())}")
    p.add_argument("--agents", type=_whole, metavar="N", help="scale the world to N agents (1 to 1,000,000)")
    p.add_argument("--seed", type=_whole, metavar="N", help="the world's random seed")
    p.add_argument("--virtual-time", action="store_true", help="time jumps to the next wake-up when all agents wait")
    p.add_argument("--speed", type=_number, metavar="X", help="world seconds per real second (at most 1e6)")
    p.add_argument("--journal", metavar="FILE.db", help="record the world in this SQLite journal (a new file)")
    p.add_argument("--commit-interval", type=_number, default=0.1, metavar="SECONDS",
                   help="how often the journal commits (default 0.1, at most 60)")
    p.add_argument("--checkpoint-every", type=_number, default=None, metavar="SECONDS",
                   help="world seconds between the journal's checkpoints, for replay and fork "
                   "(default 10; 0: only at operator actions and where runs end)")
    p.add_argument("--local-model", nargs="?", const="", metavar="PATH.gguf",
                   help="LLM agents think with a local model: the llama.cpp server started here on loopback "
                   "(default model: the one the [local-llm] extra installs)")
    p.add_argument("--llm-replay", metavar="FILE.db",
                   help="answer every LLM request from this journal's recording; no model is called")
    p.add_argument(
        "--sandbox", choices=("auto", "docker", "bwrap", "subprocess", "none"), default=None,
        help="where agents' code runs: auto (Docker when a daemon answers, else bubblewrap, else "
        "code is refused; the app's default) or none (the headless default: reports stay deterministic)",
    )
    p.add_argument("--unsafe-sandbox", action="store_true",
                   help="allow --sandbox subprocess without root: agents' code then runs as you")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecology", description="A live economy of autonomous agents.")
    _world_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a world (headless with --headless)")
    _world_options(run)
    run.add_argument("--headless", action="store_true", help="no UI: print a live summary")
    run.add_argument("--duration", type=_number, metavar="SECONDS", help="world seconds to run (default: forever)")
    run.add_argument("--report", metavar="FILE.json", help="write the JSON report here at the end")
    run.add_argument("--journal-retry", type=_number, default=5.0, metavar="SECONDS",
                     help="headless: how long failing journal commits are retried before the run "
                     "ends with exit code 3 (default 5)")
    sub.add_parser("scenarios", help="list the built-in worlds")
    from .serve import add_options as serve_options

    serve = sub.add_parser("serve", help="serve the app to web browsers (one world per connection)")
    _world_options(serve)
    serve_options(serve)
    export = sub.add_parser("export", help="export a journal's events and metrics for analysis")
    export.add_argument("journal", metavar="FILE.db")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--out", metavar="PREFIX", help="output prefix (default: the journal's path without .db)")
    export.add_argument("--at", metavar="TIME", help="the state at that moment as JSON (seconds, 01:23:45 or T+5m)")
    replay = sub.add_parser("replay", help="open a recorded world in the app, read-only, with a timeline")
    replay.add_argument("journal", metavar="FILE.db")
    replay.add_argument("--at", metavar="TIME", help="start at this moment (default: the first)")
    replay.set_defaults(func=_replay)
    fork = sub.add_parser("fork", help="branch a new journal from a recorded world at a moment")
    fork.add_argument("journal", metavar="FILE.db", help="the recorded world (only read)")
    fork.add_argument("--at", required=True, metavar="TIME", help="world time: seconds, 01:23:45 or T+5m")
    fork.add_argument("--journal", dest="new", required=True, metavar="NEW.db", help="the fork's journal (a new file)")
    fork.add_argument("--seed", type=_whole, metavar="N", help="a new seed for every random stream from the fork on")
    fork.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                      help="change the world file's setting at PATH (e.g. oracle.slots=4); repeatable")
    fork.add_argument("--checkpoint-every", type=_number, default=None, metavar="SECONDS",
                      help="the fork journal's checkpoint cadence (default: the parent's)")
    fork.set_defaults(func=_fork)
    sweep = sub.add_parser("sweep", help="run many headless worlds over parameters and seeds into one table")
    sweep.add_argument("file", metavar="SWEEP.toml")
    sweep.add_argument("--out", metavar="DIR", help="where tables and runs go (default: the file's name, no .toml)")
    sweep.add_argument("--workers", type=_whole, metavar="N", help="local workers (default: one per core)")
    sweep.add_argument("--ray", metavar="auto|ADDRESS", help="run on Ray: auto (local) or a cluster's address")
    sweep.add_argument("--retry-failed", action="store_true", help="run again the runs stored as not ok")
    sweep.set_defaults(func=_sweep)
    try:
        from containers.cli import add_subcommands
    except ImportError:  # the containers package is optional for the engine and the app
        pass
    else:
        add_subcommands(sub)
    return parser


def _sweep(args: argparse.Namespace) -> int:
    from engine.sweep import main_sweep

    return main_sweep(args.file, args.out, args.workers, args.ray, args.retry_failed)


def _replay(args: argparse.Namespace) -> int:
    """The replay app; when it ends by forking, the app opens on the branch, live."""
    from engine.fork import parse_at
    from engine.journal_file import JournalError
    from engine.replay import Recording

    try:
        at = None if args.at is None else parse_at(args.at)
        recording = Recording(args.journal)
        if at is not None and not recording.start <= at <= recording.end:
            raise ConfigError(f"--at {args.at} is outside the recording ({recording.start:g} to {recording.end:g} s)")
    except (ConfigError, JournalError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return BAD_INPUT
    from .replay import ReplayApp

    app = ReplayApp(recording, at)
    app.run()
    if app.forked is None:
        return 0
    print(f"forked into {app.forked}; opening it", file=sys.stderr)
    args = build_parser().parse_args(["--resume", str(app.forked)])
    world, code = open_world(args, sandbox_factory("auto"))
    if world is None:
        return code
    from tui.app import run_app

    return run_app(world.config, world=world)


def _fork(args: argparse.Namespace) -> int:
    from engine.fork import fork_journal, format_t, parse_at
    from engine.journal_file import JournalError, JournalUnwritable

    try:
        every = _checkpoint_every(args.checkpoint_every)
        at = parse_at(args.at)
        result = fork_journal(args.journal, at, args.new, seed=args.seed, sets=args.set, checkpoint_every=every)
    except JournalUnwritable as e:
        print(f"ecology: journal failed: {e}", file=sys.stderr)
        return JOURNAL_FAILED
    except (ConfigError, JournalError, OutputPathError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return BAD_INPUT
    note = "" if result.exact else (f" (a real-time recording is exact only at its checkpoints: forked at the "
                                     f"last one before {format_t(at)})")
    print(f"forked {args.journal} at t={result.t:g}s ({format_t(result.t)}) into {result.path}{note}")
    print(f"continue it: ecology run --headless --resume {result.path} --duration SECONDS, or ecology --resume "
          f"{result.path}")
    return 0


def _checkpoint_every(value: float | None) -> float | None:
    import math

    if value is not None and not (math.isfinite(value) and 0 <= value <= 10**6):
        raise ConfigError(f"--checkpoint-every: world seconds in [0, 1e6], got {value!r}")
    return value


def check_options(args: argparse.Namespace) -> RunOptions:
    """Every number by the world files' bounds, and every output path, before anything is
    built or written (ConfigError or OutputPathError: exit code 2)."""
    options = check_run_options({
        "speed": args.speed, "agents": args.agents, "duration": getattr(args, "duration", None),
        "commit_interval": args.commit_interval, "journal_retry": getattr(args, "journal_retry", None),
    })
    if args.resume and (args.world or args.scenario or args.agents or args.seed is not None or args.journal):
        raise ConfigError("--resume continues a recorded world: it takes no --world, "
                          "--scenario, --agents, --seed or --journal")
    _checkpoint_every(args.checkpoint_every)
    if getattr(args, "report", None):
        check_output(args.report, "--report")
    if args.journal:
        from engine.journal_file import writer_of

        writer = writer_of(args.journal)
        if writer:
            raise ConfigError(f"{args.journal} is being written by {writer}")
        check_output(args.journal, "--journal", new=True)
    return options


def build_world(args: argparse.Namespace, factory, progress=None):
    """A new world from the options, or a journalled one resumed; recorded when asked.
    Raises ConfigError, JournalError (JournalUnwritable: the journal's storage failed)."""
    from engine.resume import resume_world
    from engine.world import World

    if args.resume:
        world = resume_world(args.resume, virtual=True if args.virtual_time else None,
                             sandbox_factory=factory, commit_interval=args.commit_interval)
        if args.llm_replay:
            use_llm_replay(world, args.llm_replay)
        return world
    config = world_config(args)
    world = World(config, sandbox_factory=factory,
                  progress=progress if progress is not None and config.agent_count >= BIG_WORLD else None)
    if args.llm_replay:
        use_llm_replay(world, args.llm_replay)
    if args.journal:
        options = {} if args.checkpoint_every is None else {"checkpoint_every": args.checkpoint_every}
        world.attach_journal(args.journal, args.commit_interval, **options)
    return world


def build_progress():
    """Prints how many agents are built, at most once a second, from the first one."""
    last = [-1.0]

    def progress(built: int, total: int) -> None:
        now = time.monotonic()
        if last[0] < 0 or now - last[0] >= 1.0:
            last[0] = now
            print(f"building the world: {built:,} of {total:,} agents", file=sys.stderr, flush=True)

    return progress


def open_world(args: argparse.Namespace, factory) -> tuple[object | None, int]:
    """(world, 0), or (None, exit code) after saying why it could not be opened."""
    from engine.journal import JournalError, JournalUnwritable

    try:
        return build_world(args, factory, build_progress()), 0
    except JournalUnwritable as e:
        print(f"ecology: journal failed: {e}", file=sys.stderr)
        return None, JOURNAL_FAILED
    except (ConfigError, JournalError, ValueError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return None, BAD_INPUT


def use_llm_replay(world, path: str) -> None:
    """Answer the world's LLM requests from a recording (a journal's llm_calls)."""
    from engine.llm_access import llm_settings
    from engine.llm_record import Recording, RecordingError

    try:
        llm_settings(world).replay = Recording.load(path)
    except RecordingError as e:
        raise ValueError(str(e)) from None


def world_config(args: argparse.Namespace) -> WorldConfig:
    if args.world:
        config = load_world(args.world)
    else:
        config = load_scenario(args.scenario or "default")
    if args.agents is not None:
        config = config.with_agents(args.agents)
    update: dict = {}
    if args.seed is not None:
        update["seed"] = args.seed
    clock = {}
    if args.virtual_time:
        clock["virtual"] = True
    if args.speed is not None:
        clock["speed"] = args.speed
    if clock:
        update["clock"] = config.clock.model_copy(update=clock)
    config = config.model_copy(update=update) if update else config
    if args.local_model is not None:
        from engine.local_llm import LocalModelError, resolve_model, with_local_model

        model = args.local_model or None
        if not args.llm_replay:  # a replay calls no model: it needs neither the server nor the file
            try:
                model = str(resolve_model(model))
            except LocalModelError as e:
                raise ConfigError(f"--local-model: {e}") from None
        config = with_local_model(config, model)
    return config


def sandbox_factory(prefer: str, unsafe: bool = False):
    """How the world gets its sandbox when it starts: chosen by containers/, never the engine."""
    if prefer == "none":
        return None

    async def open_sandbox(world):
        from containers import choose_sandbox

        # The world's name labels its containers, so a crashed run's orphans are found and
        # removed by the next run of the same world.
        choice = await choose_sandbox(
            world.config.name, reporter=world.report_sandbox, prefer=None if prefer == "auto" else prefer,
            unsafe=unsafe or None, hosts=world.config.sandbox.hosts,
        )
        return choice.sandbox, choice.reason

    return open_sandbox


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "scenarios":
        for name in scenario_names():
            print(f"{name:12} {load_scenario(name).description}")
        return 0
    if args.command == "export":
        from engine.export import export_journal
        from engine.journal import JournalError

        try:
            if args.at is not None:
                from engine.export import export_state_at
                from engine.fork import parse_at

                print(export_state_at(args.journal, parse_at(args.at), args.out))
                return 0
            for path in export_journal(args.journal, args.format, args.out):
                print(path)
        except (ConfigError, JournalError, OutputPathError) as e:
            print(f"ecology: error: {e}", file=sys.stderr)
            return BAD_INPUT
        return 0
    if args.command == "serve":
        from .serve import main_serve

        return main_serve(args, world_config)
    if args.command not in (None, "run"):
        return args.func(args)
    headless = args.command == "run" and args.headless
    if args.command == "run" and not headless and (args.duration or args.report):
        parser.error("--duration and --report need --headless")
    try:
        options = check_options(args)
    except (ConfigError, OutputPathError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return BAD_INPUT
    if headless:
        return run_headless_command(args, options, settle=argv is None)
    # The app opens a world exactly as the headless runner does (file, scenario, resume,
    # journal), with a sandbox by default: Docker when a daemon answers, else bubblewrap.
    world, code = open_world(args, sandbox_factory(args.sandbox or "auto", args.unsafe_sandbox))
    if world is None:
        return code
    if world.journal is not None and (warning := world.journal.lost_warning()):
        print(f"ecology: warning: {warning}", file=sys.stderr)
    from tui.app import run_app

    try:
        return run_app(world.config, world=world)
    finally:
        _end_llm(world)


def _end_llm(world) -> None:
    """Stop the local model server this run started, and say how a replay went."""
    import sys as _sys

    if "engine.local_llm" in _sys.modules:
        from engine.local_llm import stop_local_servers

        stop_local_servers()
    from engine.llm_access import llm_settings

    replay = llm_settings(world).replay
    if replay is not None:
        print(f"LLM replay from {replay.source}: {replay.served} answers served, "
              f"{replay.missing} requests not in the recording", file=sys.stderr)


def run_headless_command(args: argparse.Namespace, options: RunOptions, settle: bool) -> int:
    from engine.headless import Interrupted, Interrupts, main_headless

    # SIGINT and SIGTERM are this process's from the start: a world of a million agents
    # takes a while to build, and an interrupt then must end it as promptly as mid-run.
    interrupts = Interrupts().install() if threading.current_thread() is threading.main_thread() else None
    world = None
    try:
        world, code = open_world(args, sandbox_factory(args.sandbox or "none", args.unsafe_sandbox))
        if world is None:
            return code
        if settle:  # run as the `ecology` command, not called (tests): the process is ours
            from engine import heap

            heap.settle()  # it runs one world, for long: out of the collector's way
        return main_headless(world, options.duration, args.report, journal_retry=options.journal_retry,
                             interrupts=interrupts)
    except Interrupted as e:
        print("interrupted", file=sys.stderr)
        if world is not None and world.journal is not None:
            world.journal.close()
        return e.code
    finally:
        if interrupts is not None:
            interrupts.restore()
        if world is not None:
            _end_llm(world)


if __name__ == "__main__":
    sys.exit(main())
