"""Sweep files: bad ones are refused with a message naming the field, and good ones plan
into the runs they say (cells in a fixed order, seeds, dotted paths, keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweeptest import SMALL_SWEEP

from engine.sweep import SweepError, load_sweep
from tui.cli import main

HEAD = 'duration = 10.0\nseeds = 2\n[base]\nscenario = "boltzmann"\n'


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BAD = {
    "no base": ('duration = 10.0\nseeds = 2\n', ["base: Field required"]),
    "two bases": (HEAD + 'world = "w.toml"\n', ["base: name exactly one of `scenario` or `world` (got both)"]),
    "journal and fork time": ('duration = 10.0\nseeds = 2\n[base]\njournal = "w.db"\nfork_at = 600.0\n',
                              ["base: a journal plus a fork time needs forking", "cannot do yet"]),
    "unknown scenario": ('duration = 10.0\nseeds = 2\n[base]\nscenario = "nope"\n',
                         ["base.scenario: unknown scenario 'nope'; known: boltzmann"]),
    "missing world file": ('duration = 10.0\nseeds = 2\n[base]\nworld = "missing.toml"\n',
                           ["base.world:", "missing.toml: no such world file"]),
    "no seeds": ('duration = 10.0\n[base]\nscenario = "boltzmann"\n', ["seeds: Field required"]),
    "seed count 0": (HEAD.replace("seeds = 2", "seeds = 0"), ["seeds: a seed count must be between 1 and 100000, got 0"]),
    "seed twice": (HEAD.replace("seeds = 2", "seeds = [4, 4]"), ["seeds: a seed is listed twice"]),
    "seeds as text": (HEAD.replace("seeds = 2", 'seeds = "3"'), ["seeds: a count of seeds or a list", "got '3'"]),
    "seeds as bools": (HEAD.replace("seeds = 2", "seeds = [true]"), ["seeds: a count of seeds or a list"]),
    "negative duration": (HEAD.replace("duration = 10.0", "duration = -1.0"), ["duration: Input should be greater than 0"]),
    "duration as text": (HEAD.replace("duration = 10.0", 'duration = "10"'), ["duration: Input should be a valid number"]),
    "virtual time as text": ('virtual_time = "yes"\n' + HEAD, ["virtual_time: Input should be a valid boolean"]),
    "unknown top-level field": ("workers = 3\n" + HEAD, ["workers: unknown field"]),
    "unknown base field": (HEAD + "agentz = 3\n", ["base.agentz: unknown field"]),
    "zero agents": (HEAD + "agents = 0\n", ["base.agents: Input should be greater than or equal to 1"]),
    "unknown field on the path": (HEAD + '[parameters]\n"oracle.slotz" = [1, 2]\n',
                                  ['parameters."oracle.slotz": unknown field \'slotz\' in oracle (known: keep,']),
    "unknown agent group": (HEAD + '[parameters]\n"agents.lender.params.rate_per_day" = [12.0]\n',
                            ['parameters."agents.lender.params.rate_per_day": no agent group has brain or prefix '
                             "'lender' (known: a, boltzmann)"]),
    "agent group without a field": (HEAD + '[parameters]\n"agents.boltzmann" = [1]\n',
                                    ['parameters."agents.boltzmann": name an agent group and its field']),
    "a table, not a value": (HEAD + '[parameters]\n"oracle" = [1]\n',
                             ['parameters."oracle": oracle is a table, not a value']),
    "a value out of bounds": (HEAD + '[parameters]\n"oracle.slots" = [1, 0]\n',
                              ["cell 1 (oracle.slots=0): oracle.slots: Input should be greater than or equal to 1"]),
    "a value of the wrong type": (HEAD + '[parameters]\n"oracle.slots" = ["two"]\n',
                                  ["cell 0 (oracle.slots='two'): oracle.slots: Input should be a valid integer"]),
    "a brain parameter that does not exist": (
        HEAD + '[parameters]\n"agents.boltzmann.params.think_kost" = [1.0]\n',
        ["cell 0 (agents.boltzmann.params.think_kost=1.0)", "params.think_kost: unknown field"]),
    "a negative cost": (HEAD + '[parameters]\n"costs.oracle.bid" = [-1.0]\n',
                        ["cell 0 (costs.oracle.bid=-1.0): costs: cost 'oracle.bid' must be a number in [0, 10^12] compute units, got -1.0"]),
    "no values": (HEAD + '[parameters]\n"oracle.slots" = []\n', ['parameters: "oracle.slots": no values']),
    "a value twice": (HEAD + '[parameters]\n"oracle.slots" = [2, 2]\n', ['"oracle.slots": a value is listed twice']),
    "a bare value": (HEAD + '[parameters]\n"oracle.slots" = 3\n', ['"oracle.slots": a list of values, or']),
    "a range on a grid": (HEAD + '[parameters]\n"oracle.slots" = { low = 1, high = 4 }\n',
                          ['parameters."oracle.slots": a range needs sampling.method = "random"']),
    "a range upside down": (HEAD + '[sampling]\nmethod = "random"\nsamples = 2\n[parameters]\n'
                            '"oracle.slots" = { low = 4, high = 1 }\n', ["high (1) must be greater than low (4)"]),
    "a range with a misspelt end": (HEAD + '[sampling]\nmethod = "random"\nsamples = 2\n[parameters]\n'
                                    '"oracle.slots" = { low = 1, hi = 3 }\n',
                                    ['parameters."oracle.slots".high: Field required; '
                                     'parameters."oracle.slots".hi: unknown field']),
    "random without samples": (HEAD + '[sampling]\nmethod = "random"\n[parameters]\n"oracle.slots" = [1, 2]\n',
                               ["sampling: random sampling needs `samples = N`"]),
    "samples on a grid": (HEAD + '[sampling]\nsamples = 3\n', ["sampling: `samples` is for random sampling"]),
    "more samples than cells": (HEAD + '[sampling]\nmethod = "random"\nsamples = 3\n[parameters]\n'
                                '"oracle.slots" = [1, 2]\n', ["sampling.samples: 3 is more than the 2 distinct cells"]),
    "unknown sampling method": (HEAD + '[sampling]\nmethod = "latin"\n', ["sampling.method: Input should be 'grid' or 'random'"]),
    "a grid too large": (HEAD + "[parameters]\n" + "".join(
        f'"agents.boltzmann.{f}" = [{", ".join(str(i) for i in range(1, 101))}]\n' for f in ("scrip", "count", "rate")
    ), ["parameters: 1,000,000 cells x 2 seeds is more than 1,000,000 runs"]),
    "a summary column that is no metric": ('summary = ["gini"]\n' + HEAD, ["summary: 'gini' is not a metric column"]),
    "not TOML": ("duration = = 3", ["not valid TOML"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_files_are_refused_naming_the_field(tmp_path, case):
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(SweepError) as e:
        load_sweep(path)
    message = str(e.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, message


def test_a_missing_sweep_file_is_refused(tmp_path):
    with pytest.raises(SweepError, match="no such sweep file"):
        load_sweep(tmp_path / "absent.toml")


def test_the_command_exits_2_on_a_bad_sweep_file_and_writes_nothing(tmp_path, capsys):
    path = write(tmp_path, HEAD + '[parameters]\n"oracle.slots" = [1, 0]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ecology: error:" in err and "oracle.slots: Input should be greater than or equal to 1" in err
    assert not out.exists()


def test_the_command_refuses_workers_with_ray(tmp_path, capsys):
    path = write(tmp_path, HEAD)
    assert main(["sweep", str(path), "--workers", "2", "--ray", "auto"]) == 2
    assert "--workers sizes the local pool" in capsys.readouterr().err


def test_a_grid_plans_every_cell_and_seed_in_the_files_order(tmp_path):
    sweep = load_sweep(write(tmp_path, SMALL_SWEEP))
    cells = [(r.cell, r.params["agents.boltzmann.scrip"], r.params["agents.boltzmann.params.think_cost"], r.seed)
             for r in sweep.runs]
    assert cells == [(c, s, t, seed) for c, (s, t) in enumerate([(1, 0.5), (1, 1.0), (3, 0.5), (3, 1.0)])
                     for seed in (0, 1, 2)]
    run = sweep.runs[-1]
    group = run.config.agents[0]
    assert (group.count, group.scrip, group.params, run.config.seed) == (20, 3, {"think_cost": 1.0}, 2)
    assert run.config.clock.virtual is True and run.duration == 120.0
    assert len({r.key for r in sweep.runs}) == 12


def test_agent_groups_are_named_by_brain_prefix_or_index(tmp_path):
    text = ('duration = 10.0\nseeds = [5, 9]\n[base]\nscenario = "default"\n[parameters]\n'
            '"agents.lender.params.rate_per_day" = [12.0, 48.0]\n"agents.t.count" = [3]\n"agents.0.rate" = [2.0]\n'
            '"oracle.slots" = [4]\n"costs.ledger.transfer" = [0.25]\n')
    sweep = load_sweep(write(tmp_path, text))
    assert [r.seed for r in sweep.runs] == [5, 9, 5, 9]
    config = sweep.runs[0].config
    lenders = [g for g in config.agents if g.brain == "lender"]
    assert lenders and all(g.params["rate_per_day"] == 12.0 and g.params["principal"] == 12 for g in lenders)
    traders = [g for g in config.agents if g.prefix == "t"]
    assert len(traders) == 2 and all(g.count == 3 for g in traders)  # both groups with prefix t
    assert config.agents[0].rate == 2.0 and config.oracle.slots == 4
    assert config.costs.table()["ledger.transfer"] == 0.25
    assert sweep.runs[2].config.agents[[g.brain for g in config.agents].index("lender")].params["rate_per_day"] == 48.0


def test_random_sampling_draws_the_same_cells_for_the_same_seed(tmp_path):
    text = ('duration = 10.0\nseeds = 1\n[base]\nscenario = "boltzmann"\n[sampling]\nmethod = "random"\n'
            'samples = 5\nseed = 11\n[parameters]\n"agents.boltzmann.scrip" = { low = 1, high = 50 }\n'
            '"agents.boltzmann.rate" = { low = 0.5, high = 2.0 }\n"oracle.slots" = [1, 2, 4]\n')
    one = [r.params for r in load_sweep(write(tmp_path, text)).runs]
    two = [r.params for r in load_sweep(write(tmp_path, text, "again.toml")).runs]
    assert one == two and len(one) == 5
    assert all(type(p["agents.boltzmann.scrip"]) is int and 1 <= p["agents.boltzmann.scrip"] <= 50 for p in one)
    assert all(0.5 <= p["agents.boltzmann.rate"] <= 2.0 for p in one)
    assert all(p["oracle.slots"] in (1, 2, 4) for p in one)
    other = [r.params for r in load_sweep(write(tmp_path, text.replace("seed = 11", "seed = 12"), "o.toml")).runs]
    assert other != one


def test_random_sampling_of_lists_draws_distinct_grid_cells(tmp_path):
    text = ('duration = 10.0\nseeds = 1\n[base]\nscenario = "boltzmann"\n[sampling]\nmethod = "random"\n'
            'samples = 6\n[parameters]\n"agents.boltzmann.scrip" = [1, 2, 3]\n"oracle.slots" = [1, 2]\n')
    cells = [tuple(r.params.values()) for r in load_sweep(write(tmp_path, text)).runs]
    assert sorted(cells) == [(s, k) for s in (1, 2, 3) for k in (1, 2)]  # all six, none twice


def test_a_runs_key_changes_with_anything_that_decides_its_outcome(tmp_path):
    base = load_sweep(write(tmp_path, SMALL_SWEEP)).runs
    assert [r.key for r in load_sweep(write(tmp_path, SMALL_SWEEP, "same.toml")).runs] == [r.key for r in base]
    longer = load_sweep(write(tmp_path, SMALL_SWEEP.replace("duration = 120.0", "duration = 121.0"), "d.toml")).runs
    assert not {r.key for r in longer} & {r.key for r in base}
    real = load_sweep(write(tmp_path, SMALL_SWEEP.replace("virtual_time = true", "virtual_time = false"), "v.toml"))
    assert not {r.key for r in real.runs} & {r.key for r in base}
    # a cell added in front moves the others' indices, not their keys
    more = load_sweep(write(tmp_path, SMALL_SWEEP.replace("[1, 3]", "[0, 1, 3]"), "m.toml")).runs
    assert {r.key for r in base} < {r.key for r in more}


def test_a_world_file_is_found_beside_the_sweep_file(tmp_path):
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "w.toml").write_text(
        'name = "mine"\n[[agents]]\nbrain = "boltzmann"\ncount = 4\nscrip = 2\n', encoding="utf-8")
    sweep = load_sweep(write(tmp_path, 'duration = 10.0\nseeds = 1\n[base]\nworld = "worlds/w.toml"\n'))
    assert [(r.config.name, r.config.agent_count) for r in sweep.runs] == [("mine", 4)]


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1:1", "cannot reach Ray at 127.0.0.1:1: [Errno 111] Connection refused"),
    ("ray://127.0.0.1:1", "cannot reach Ray at ray://127.0.0.1:1"),
    ("somewhere", "--ray takes auto, HOST:PORT or ray://HOST:PORT, got 'somewhere'"),
])
def test_the_command_refuses_a_ray_address_nobody_answers_at(tmp_path, capsys, address, expected):
    path = write(tmp_path, HEAD)
    assert main(["sweep", str(path), "--ray", address, "--out", str(tmp_path / "out")]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written


def test_the_command_exits_2_when_its_directory_cannot_be_made(tmp_path, capsys):
    path = write(tmp_path, HEAD)
    (tmp_path / "taken").write_text("a file, not a directory")
    assert main(["sweep", str(path), "--out", str(tmp_path / "taken"), "--workers", "1"]) == 2
    assert "ecology: error: cannot write the sweep's results" in capsys.readouterr().err
