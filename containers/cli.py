"""`ecology containers build` and `ecology containers calibrate`, as argparse subcommands.

The main CLI calls `add_subcommands(subparsers)`; each leaf sets `func(args) -> int`.
`python -m containers.cli ...` runs them on their own.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from containers.calibrate import DEFAULT_COMPUTE_PER_CPU, calibrate
from containers.images import AGENT_IMAGE, OFFLINE_BASE, ONLINE_BASE


def add_subcommands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `containers {build,calibrate}` to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "containers", help="agent sandboxes: build the agent image, calibrate compute"
    )
    commands = parser.add_subparsers(dest="containers_command", metavar="{build,calibrate}")
    parser.set_defaults(func=lambda args: _usage(parser))

    build = commands.add_parser("build", help="build the agent image for the docker sandbox")
    build.add_argument(
        "--base",
        help=f"base image (default: {OFFLINE_BASE} if present, else {ONLINE_BASE})",
    )
    build.add_argument(
        "--offline",
        action="store_true",
        help=f"first make {OFFLINE_BASE} with debootstrap from this machine's Debian mirror "
        "(root; no Docker Hub needed)",
    )
    build.add_argument("--mirror", help="Debian mirror for --offline (default: from apt's sources)")
    build.add_argument("--tag", default=AGENT_IMAGE, help=f"image tag (default: {AGENT_IMAGE})")
    build.set_defaults(func=cmd_build)

    cal = commands.add_parser(
        "calibrate",
        help="measure the total compute rate the CPU/memory limits sustain; suggest total_rate",
    )
    cal.add_argument(
        "--sandbox",
        choices=("auto", "docker", "bwrap", "subprocess"),
        default="auto",
        help="which sandbox to measure (default: what a world would choose)",
    )
    cal.add_argument("--sandboxes", type=int, default=None, help="how many at once (default: CPUs)")
    cal.add_argument("--seconds", type=float, default=3.0, help="how long each spins (default: 3)")
    cal.add_argument(
        "--cpus-each", type=float, default=1.0, help="CPU quota of each sandbox (default: 1)"
    )
    cal.add_argument(
        "--compute-per-cpu",
        type=float,
        default=DEFAULT_COMPUTE_PER_CPU,
        help="compute units per CPU-second, the world's exchange rate (default: %(default)s)",
    )
    cal.add_argument(
        "--headroom",
        type=float,
        default=0.1,
        help="fraction kept back for the engine and the UI (default: %(default)s)",
    )
    cal.set_defaults(func=cmd_calibrate)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_build(args: argparse.Namespace) -> int:
    from containers.choose import probe_daemon_blocking
    from containers.images import build_agent_image, build_offline_base

    probe = probe_daemon_blocking(timeout=3.0)
    if probe.client is None:
        print(f"no Docker daemon at {probe.where}: {probe.detail}", file=sys.stderr)
        return 1
    try:
        base = args.base
        if args.offline:
            print(f"making {OFFLINE_BASE} with debootstrap (about a minute)...", file=sys.stderr)
            mirror = build_offline_base(probe.client, args.mirror)
            print(f"{OFFLINE_BASE} made from {mirror}", file=sys.stderr)
            base = base or OFFLINE_BASE
        used = build_agent_image(probe.client, base=base, tag=args.tag)
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it does not trace back
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    finally:
        probe.client.close()
    print(f"built {args.tag} FROM {used}")
    return 0


async def _calibrate(args: argparse.Namespace) -> int:
    from containers.choose import choose_sandbox

    try:
        choice = await choose_sandbox("calibrate", prefer=args.sandbox)
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(choice.reason, file=sys.stderr)
    if choice.sandbox is None:
        return 1
    try:
        result = await calibrate(
            choice.sandbox,
            sandboxes=args.sandboxes,
            seconds=args.seconds,
            cpus_each=args.cpus_each,
            compute_per_cpu=args.compute_per_cpu,
            headroom=args.headroom,
        )
    finally:
        await choice.sandbox.close()
    print(result.report())
    return 0 if result.failures == 0 else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.cpus_each <= 0 or args.compute_per_cpu <= 0:
        print("--seconds, --cpus-each and --compute-per-cpu must be positive", file=sys.stderr)
        return 2
    if not 0 <= args.headroom < 1:
        print("--headroom must be in [0, 1)", file=sys.stderr)
        return 2
    return anyio.run(_calibrate, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ecology")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
