"""The `ecology` command, run in-process (issue 2, item 4)."""

from __future__ import annotations

import json

import pytest

from engine.config import scenario_names
from tui.cli import build_parser, main, world_config

AGENT_FIELDS = {"id", "scrip", "compute_balance", "status", "actions"}
TOTAL_FIELDS = {"scrip_supply", "initial_scrip", "minted"}


def run(tmp_path, name: str, *argv: str) -> tuple[int, dict]:
    report = tmp_path / name
    code = main(["run", "--headless", *argv, "--report", str(report)])
    return code, json.loads(report.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_boltzmann_thousand_agents_has_the_known_wealth_distribution(tmp_path, capsys):
    code, report = run(
        tmp_path, "r.json",
        "--scenario", "boltzmann", "--agents", "1000", "--virtual-time", "--duration", "600", "--seed", "1",
    )
    assert code == 0
    assert "all invariants hold" in capsys.readouterr().err
    assert report["invariants"] and all(report["invariants"].values()), report["invariants"]
    assert report["seed"] == 1 and report["duration_s"] == 600.0 and report["clock"] == "virtual"
    agents = report["agents"]
    assert len(agents) == 1000 and len({a["id"] for a in agents}) == 1000
    for a in agents:
        assert AGENT_FIELDS <= set(a)
        assert type(a["scrip"]) is int and a["scrip"] >= 0
        assert a["actions"] > 0
    totals = report["totals"]
    assert TOTAL_FIELDS <= set(totals)
    assert totals["initial_scrip"] == 1000 and totals["minted"] == 0
    assert totals["scrip_supply"] == totals["initial_scrip"] + totals["minted"] == sum(a["scrip"] for a in agents)
    assert 0.55 <= totals["scrip_gini"] <= 0.72
    windows = report["windows"]
    assert len(windows) >= 10 and all(w["invariants_ok"] for w in windows)
    assert sum(w["actions"] for w in windows) == totals["actions"]
    assert 0.55 <= windows[-1]["gini"] <= 0.72


def test_same_seed_and_config_give_an_identical_report(tmp_path):
    args = ("--virtual-time", "--duration", "120", "--seed", "5")
    code1, _ = run(tmp_path, "one.json", *args)
    code2, _ = run(tmp_path, "two.json", *args)
    assert code1 == code2 == 0
    one = (tmp_path / "one.json").read_bytes()
    assert one == (tmp_path / "two.json").read_bytes()
    report = json.loads(one)
    assert report["world"] == "default" and report["seed"] == 5
    assert report["totals"]["actions"] > 1000  # a lively world, not an empty one
    code3, other = run(tmp_path, "three.json", "--virtual-time", "--duration", "120", "--seed", "6")
    assert code3 == 0 and other["agents"] != report["agents"]  # the seed matters


def test_agents_option_scales_the_world(tmp_path):
    code, report = run(tmp_path, "r.json", "--scenario", "boltzmann", "--agents", "7", "--virtual-time", "--duration", "10")
    assert code == 0
    assert len(report["agents"]) == 7 and report["totals"]["initial_scrip"] == 7
    assert report["duration_s"] == 10.0


def test_world_file_option(tmp_path):
    world = tmp_path / "w.toml"
    world.write_text('name = "tiny"\nseed = 2\n[[agents]]\nbrain = "boltzmann"\ncount = 3\nscrip = 4\n', encoding="utf-8")
    code, report = run(tmp_path, "r.json", "--world", str(world), "--virtual-time", "--duration", "30")
    assert code == 0
    assert report["world"] == "tiny" and report["seed"] == 2
    assert report["totals"]["scrip_supply"] == 12 + report["totals"]["operator_scrip"]


def test_scenarios_command_lists_the_embedded_worlds(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in scenario_names():
        assert name in out
    assert "Boltzmann wealth model" in out


def test_options_override_the_world():
    args = build_parser().parse_args(["run", "--headless", "--scenario", "boltzmann", "--seed", "9", "--virtual-time", "--speed", "4"])
    config = world_config(args)
    assert config.seed == 9 and config.clock.virtual and config.clock.speed == 4.0
    assert world_config(build_parser().parse_args(["run"])).name == "default"


def test_duration_without_headless_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--duration", "5"])
    assert e.value.code == 2 and "--headless" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--speed", "nan"], "--speed: must be a finite number"),
    (["--speed", "inf"], "--speed: must be a finite number"),
    (["--speed", "1e300"], "--speed: Input should be less than or equal to 1000000"),
    (["--speed", "0"], "--speed: Input should be greater than 0"),
    (["--agents", "1000001"], "--agents: Input should be less than or equal to 1000000"),
    (["--agents", "0"], "--agents: Input should be greater than or equal to 1"),
    (["--duration", "nan"], "--duration: must be a finite number"),
    (["--duration", "-1"], "--duration: Input should be greater than 0"),
    (["--commit-interval", "61"], "--commit-interval: Input should be less than or equal to 60"),
    (["--journal-retry", "0"], "--journal-retry: Input should be greater than 0"),
])
def test_options_are_held_to_the_world_files_bounds(argv, message, capsys):
    assert main(["run", "--headless", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_world_file_and_the_command_line_say_the_same(tmp_path, capsys):
    world = tmp_path / "w.toml"
    world.write_text('[clock]\nspeed = nan\n[[agents]]\nbrain = "boltzmann"\n', encoding="utf-8")
    assert main(["run", "--headless", "--world", str(world)]) == 2
    assert f"{world}: clock.speed: must be a finite number" in capsys.readouterr().err
    world.write_text('[clock]\nspeed = 2e6\n[[agents]]\nbrain = "boltzmann"\n', encoding="utf-8")
    assert main(["run", "--headless", "--world", str(world)]) == 2
    assert "clock.speed: Input should be less than or equal to 1000000" in capsys.readouterr().err


def test_a_report_naming_a_directory_is_refused_before_the_run(tmp_path, capsys):
    # Real time, ten minutes: it returns at once only because nothing ran.
    assert main(["run", "--headless", "--duration", "600", "--report", str(tmp_path)]) == 2
    assert f"--report {tmp_path} is a directory" in capsys.readouterr().err
