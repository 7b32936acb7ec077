"""`ecology serve`: the same app in a web browser, through textual-serve (an optional
extra: `pip install -e '.[serve]'`).

One world per connection. textual-serve runs the app as a child process for each browser
connection and pipes its terminal over a websocket, so each visitor gets a world of their
own, started from the same options (the same seed gives the same world). A shared world
would need the engine in one process and the UIs in others talking to it over an API the
engine does not have; it would also let any visitor pause, steer or stop the world for
everyone. Recorded worlds (--journal, --resume) are refused here: several connections
would write one journal at once.

The server listens on 127.0.0.1 by default. Every connection costs a process and a world,
so expose it beyond this machine (--host 0.0.0.0) only to people you trust.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from engine.config import ConfigError, WorldConfig

TITLE = "Agent Ecology"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {value}")
    return value


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--public-url", metavar="URL",
                   help="the address browsers reach the server by, if not http://HOST:PORT (a proxy, 0.0.0.0)")


def app_command(args: argparse.Namespace) -> str:
    """The command each connection runs: `ecology` with the world options given to serve,
    as one shell-quoted line (textual-serve starts it through a shell)."""
    argv = [sys.executable, "-m", "tui.cli"]
    if args.world:
        argv += ["--world", str(Path(args.world).resolve())]
    if args.scenario:
        argv += ["--scenario", args.scenario]
    if args.agents is not None:
        argv += ["--agents", str(args.agents)]
    if args.seed is not None:
        argv += ["--seed", str(args.seed)]
    if args.virtual_time:
        argv.append("--virtual-time")
    if args.speed is not None:
        argv += ["--speed", repr(args.speed)]
    if args.sandbox:
        argv += ["--sandbox", args.sandbox]
    return shlex.join(argv)


def main_serve(args: argparse.Namespace, world_config: Callable[[argparse.Namespace], WorldConfig]) -> int:
    """Serve the app; `world_config` reads the world the options name (the command line's
    own reader, passed in: the command line imports this module, not the other way round)."""
    if args.resume or args.journal:
        print("ecology: error: serve starts one world per connection and records none: "
              "it takes no --resume or --journal", file=sys.stderr)
        return 2
    try:
        world_config(args)  # a bad world file fails here, once, not in every connection
    except (ConfigError, ValueError) as e:
        print(f"ecology: error: {e}", file=sys.stderr)
        return 2
    try:
        from textual_serve.server import Server
    except ImportError:
        print("ecology: error: serving needs the serve extra: pip install -e '.[serve]'", file=sys.stderr)
        return 2
    server = Server(app_command(args), host=args.host, port=args.port, title=TITLE, public_url=args.public_url)
    server.serve()
    return 0
