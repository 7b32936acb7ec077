"""`ecology serve` options (issue 19): the command each connection runs carries the world
options, quoted for the shell textual-serve starts it through; bad options and recorded
worlds are refused before anything listens."""

from __future__ import annotations

import shlex
import sys

import pytest

from tui.cli import build_parser, main
from tui.serve import app_command


def parsed(*argv: str):
    return build_parser().parse_args(["serve", *argv])


def test_each_connection_runs_the_app_with_the_world_options():
    args = parsed("--scenario", "boltzmann", "--agents", "50", "--seed", "3", "--virtual-time",
                  "--speed", "2.5", "--sandbox", "none", "--port", "8123")
    assert shlex.split(app_command(args)) == [
        sys.executable, "-m", "tui.cli", "--scenario", "boltzmann", "--agents", "50", "--seed", "3",
        "--virtual-time", "--speed", "2.5", "--sandbox", "none",
    ]
    assert (args.host, args.port) == ("127.0.0.1", 8123)


def test_a_hostile_world_path_stays_one_argument(tmp_path):
    path = tmp_path / "w; touch pwned $(id).toml"
    args = parsed("--world", str(path))
    argv = shlex.split(app_command(args))
    assert argv[3:] == ["--world", str(path.resolve())]


@pytest.mark.parametrize("argv, says", [
    (["serve", "--port", "0"], "port number from 1 to 65535"),
    (["serve", "--port", "http"], "whole number"),
    (["serve", "--journal", "x.db"], "records none"),
    (["serve", "--resume", "x.db"], "records none"),
])
def test_bad_options_are_refused_before_serving(argv, says, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    assert code == 2
    assert says in capsys.readouterr().err


def test_a_bad_world_file_is_refused_once_not_per_connection(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[clock]\nspeed = -1\n")
    assert main(["serve", "--world", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "speed" in err and str(bad) in err
