"""The `ecology` command: opens the app, or runs a world headless, or manages sandboxes.

    ecology [--world FILE | --scenario NAME] [--agents N] [--seed N] [--virtual-time]
            [--local-model [PATH.gguf]] [--llm-replay FILE.db]
    ecology run --headless [same options] [--duration SECONDS] [--report FILE.json]
    ecology scenarios

Textual is imported only when the app opens, so headless runs start fast and need no UI.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from engine.config import ConfigError, WorldConfig, load_scenario, load_world, scenario_names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _world_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--resume", metavar="FILE.db", help="continue a journalled world where its journal ends")
    src.add_argument("--world", metavar="FILE", help="a world file (TOML)")
    src.add_argument("--scenario", metavar="NAME", help=f"a built-in world: {', '.join(scenario_names())}")
    p.add_argument("--agents", type=_positive_int, metavar="N", help="scale the world to N agents")
    p.add_argument("--seed", type=_int, metavar="N", help="the world's random seed")
    p.add_argument("--virtual-time", action="store_true", help="time jumps to the next wake-up when all agents wait")
    p.add_argument("--speed", type=_positive_float, metavar="X", help="world seconds per real second")
    p.add_argument("--journal", metavar="FILE.db", help="record the world in this SQLite journal")
    p.add_argument("--commit-interval", type=_positive_float, default=0.1, metavar="SECONDS",
                   help="how often the journal commits (default 0.1)")
    p.add_argument("--local-model", nargs="?", const="", metavar="PATH.gguf",
                   help="LLM agents think with a local model: the llama.cpp server started here on loopback "
                   "(default model: the one the [local-llm] extra installs)")
    p.add_argument("--llm-replay", metavar="FILE.db",
                   help="answer every LLM request from this journal's recording; no model is called")
    p.add_argument(
        "--sandbox", choices=("auto", "docker", "subprocess", "none"), default=None,
        help="where agents' code runs: auto (Docker when a daemon answers, else subprocesses; the "
        "app's default) or none (the headless default: reports stay deterministic)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecology", description="A live economy of autonomous agents.")
    _world_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a world (headless with --headless)")
    _world_options(run)
    run.add_argument("--headless", action="store_true", help="no UI: print a live summary")
    run.add_argument("--duration", type=_positive_float, metavar="SECONDS", help="world seconds to run (default: forever)")
    run.add_argument("--report", metavar="FILE.json", help="write the JSON report here at the end")
    sub.add_parser("scenarios", help="list the built-in worlds")
    export = sub.add_parser("export", help="export a journal's events and metrics for analysis")
    export.add_argument("journal", metavar="FILE.db")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--out", metavar="PREFIX", help="output prefix (default: the journal's path without .db)")
    try:
        from containers.cli import add_subcommands
    except ImportError:  # the containers package is optional for the engine and the app
        pass
    else:
        add_subcommands(sub)
    return parser


def build_world(args: argparse.Namespace, factory):
    """A new world from the options, or a journalled one resumed; recorded when asked."""
    from engine.journal import JournalError, resume_world
    from engine.world import World

    try:
        if args.resume:
            if args.world or args.scenario or args.agents or args.seed is not None or args.journal:
                raise ValueError("--resume continues a recorded world: it takes no --world, "
                                 "--scenario, --agents, --seed or --journal")
            world = resume_world(args.resume, virtual=True if args.virtual_time else None,
                                 sandbox_factory=factory, commit_interval=args.commit_interval)
            if args.llm_replay:
                use_llm_replay(world, args.llm_replay)
            return world
        world = World(world_config(args), sandbox_factory=factory)
        if args.llm_replay:
            use_llm_replay(world, args.llm_replay)
        if args.journal:
            if Path(args.journal).exists():
                raise ValueError(f"{args.journal} exists: resume it with --resume, or choose a new file")
            world.attach_journal(args.journal, args.commit_interval)
        return world
    except JournalError as e:
        raise ValueError(str(e)) from None


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


def sandbox_factory(prefer: str):
    """How the world gets its sandbox when it starts: chosen by containers/, never the engine."""
    if prefer == "none":
        return None

    async def open_sandbox(world):
        from containers import choose_sandbox

        # The world's name labels its containers, so a crashed run's orphans are found and
        # removed by the next run of the same world.
        choice = await choose_sandbox(
            world.config.name, reporter=world.report_sandbox, prefer=None if prefer == "auto" else prefer,
            hosts=world.config.sandbox.hosts,
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
            for path in export_journal(args.journal, args.format, args.out):
                print(path)
        except JournalError as e:
            print(f"ecology: error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.command not in (None, "run"):
        return args.func(args)
    headless = args.command == "run" and args.headless
    if headless:
        from engine.headless import main_headless

        try:
            world = build_world(args, sandbox_factory(args.sandbox or "none"))
        except (ConfigError, ValueError) as e:
            print(f"ecology: error: {e}", file=sys.stderr)
            return 2
        if argv is None:  # run as the `ecology` command, not called (tests): the process is ours
            from engine import heap

            heap.settle()  # it runs one world, for long: out of the collector's way
        try:
            return main_headless(world, args.duration, args.report)
        finally:
            _end_llm(world)
    if args.command == "run" and (args.duration or args.report):
        parser.error("--duration and --report need --headless")
    # The app opens a world exactly as the headless runner does (file, scenario, resume,
    # journal), with a sandbox by default: Docker when a daemon answers, else subprocesses.
    try:
        world = build_world(args, sandbox_factory(args.sandbox or "auto"))
    except (ConfigError, ValueError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
