"""Sweep files: which base world, what to vary, over which seeds, for how long.

A sweep file is TOML validated by pydantic; every error is a `SweepError` that names the
file and the field. `plan()` turns a sweep into its runs: one per parameter cell and seed,
each with a world config validated exactly as a world file is, and a key that changes
whenever anything that decides the run's outcome changes (so a resumed sweep skips only
runs that really are the same).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import ConfigError, WorldConfig, load_scenario, load_world, parse_world, read_toml

MAX_RUNS = 1_000_000  # a sweep is planned in memory: refuse a grid nobody meant to run
Scalar = int | float | str | bool


class SweepError(ValueError):
    """A sweep file is wrong; the message says where and how."""


class Strict(BaseModel):
    # strict: `seeds = "3"` or `duration = true` is a mistake, not something to coerce
    model_config = ConfigDict(extra="forbid", strict=True)


class BaseWorld(Strict):
    """The world every run starts from."""

    scenario: str | None = Field(None, description="a built-in world (`ecology scenarios`)")
    world: str | None = Field(None, description="a world file, relative to the sweep file")
    journal: str | None = Field(None, description="a recorded world to fork (needs forks: not yet)")
    fork_at: float | None = Field(None, description="world time to fork the journal at (needs forks: not yet)")
    agents: int | None = Field(None, ge=1, le=1_000_000, description="scale the world to N agents, as --agents")

    @model_validator(mode="after")
    def _one_source(self) -> BaseWorld:
        if self.journal is not None or self.fork_at is not None:
            raise ValueError(
                "a journal plus a fork time needs forking a recorded world, which the engine cannot do "
                "yet; name a scenario or a world file"
            )
        given = [name for name in ("scenario", "world") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("name exactly one of `scenario` or `world`"
                             + (" (got both)" if len(given) == 2 else ""))
        return self


class Range(Strict):
    """Values drawn uniformly between low and high (random sampling only); whole numbers
    when both ends are whole."""

    low: int | float
    high: int | float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite")
        if self.high <= self.low:
            raise ValueError(f"high ({self.high!r}) must be greater than low ({self.low!r})")
        return self

    def draw(self, rng: random.Random) -> int | float:
        if isinstance(self.low, int) and isinstance(self.high, int):
            return rng.randint(self.low, self.high)
        return rng.uniform(self.low, self.high)


class Sampling(Strict):
    method: Literal["grid", "random"] = "grid"
    samples: int | None = Field(None, ge=1, le=MAX_RUNS, description="cells to draw (random only)")
    seed: int = Field(0, description="the sampler's seed: the same seed draws the same cells")

    @model_validator(mode="after")
    def _samples(self) -> Sampling:
        if self.method == "random" and self.samples is None:
            raise ValueError("random sampling needs `samples = N`")
        if self.method == "grid" and self.samples is not None:
            raise ValueError("`samples` is for random sampling; a grid runs every cell")
        return self


class SweepFile(Strict):
    name: str = Field("sweep", max_length=200)
    duration: float = Field(gt=0, le=1e9, allow_inf_nan=False, description="world seconds per run")
    virtual_time: bool = Field(True, description="time jumps to the next wake-up: runs are fast and reproducible")
    seeds: int | list[int] = Field(description="a count N (seeds 0..N-1) or a list of seeds")
    time_limit: float = Field(3600.0, gt=0, le=1e7, allow_inf_nan=False, description="wall seconds one run may take")
    retries: int = Field(2, ge=0, le=10, description="times a run whose worker died is tried again")
    summary: list[str] | None = Field(
        None, description="runs.csv columns for the closing table (default: Gini, actions, minted, frozen)"
    )
    base: BaseWorld
    sampling: Sampling = Field(default_factory=Sampling)
    parameters: dict[str, list[Scalar] | Range] = Field(default_factory=dict)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, seeds: Any) -> Any:
        def whole(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        if whole(seeds):
            if not 1 <= seeds <= 100_000:
                raise ValueError(f"a seed count must be between 1 and 100000, got {seeds}")
        elif isinstance(seeds, list) and all(whole(s) for s in seeds):
            if not seeds:
                raise ValueError("the list of seeds is empty")
            if len(set(seeds)) != len(seeds):
                raise ValueError("a seed is listed twice")
            if any(not -(2**63) <= s < 2**63 for s in seeds):
                raise ValueError("seeds must fit in 64 bits")
        else:
            raise ValueError(f"a count of seeds or a list of whole-number seeds, got {seeds!r}")
        return seeds

    @field_validator("parameters", mode="before")
    @classmethod
    def _values(cls, parameters: Any) -> Any:
        # Checked before pydantic's union does, so one wrong value gets one message.
        if not isinstance(parameters, dict):
            raise ValueError("a table of dotted paths, as \"oracle.slots\" = [1, 2]")
        for path, values in parameters.items():
            where = f'"{path}"'
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{where} is not a dotted path such as \"oracle.slots\"")
            if isinstance(values, dict):
                continue  # a range: its own model checks it
            if not isinstance(values, list):
                raise ValueError(f"{where}: a list of values, or {{ low = .., high = .. }} for random "
                                 f"sampling; got {values!r}")
            if not values:
                raise ValueError(f"{where}: no values")
            if any(not isinstance(v, (int, float, str, bool)) for v in values):
                raise ValueError(f"{where}: values must be numbers, strings or booleans")
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ValueError(f"{where}: values must be finite")
            # 1 and 1.0 are one cell to a world; list each value once
            if len({json.dumps(v) for v in values}) != len(values) or len(set(values)) != len(values):
                raise ValueError(f"{where}: a value is listed twice")
        return parameters

    @field_validator("summary")
    @classmethod
    def _summary(cls, columns: list[str] | None) -> list[str] | None:
        for c in columns or ():
            if not c.startswith(("totals.", "mechanisms.", "invariants.")):
                raise ValueError(f"{c!r} is not a metric column: use totals.*, mechanisms.* or invariants.*")
        return columns

    @model_validator(mode="after")
    def _sampling(self) -> SweepFile:
        ranges = [p for p, v in self.parameters.items() if isinstance(v, Range)]
        if ranges and self.sampling.method == "grid":
            raise ValueError(f"parameters.\"{ranges[0]}\": a range needs sampling.method = \"random\"; "
                             "a grid takes a list of values")
        if self.sampling.method == "random" and not self.parameters:
            raise ValueError("random sampling needs parameters to sample")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class Run:
    """One world to run: a parameter cell and a seed, its world config already validated."""

    key: str
    cell: int
    params: dict[str, Any]
    seed: int
    config: WorldConfig = field(repr=False)
    duration: float
    time_limit: float


@dataclass
class Sweep:
    """A loaded sweep file: its validated content, where it came from, and its runs."""

    path: Path
    spec: SweepFile
    text: str
    runs: list[Run]

    @property
    def parameter_names(self) -> list[str]:
        return list(self.spec.parameters)


UNION_TAGS = {"int", "float", "str", "bool", "Range"}  # pydantic names a union's branch in the location


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        if err["type"] == "list_type" and isinstance(err.get("input"), dict):
            continue  # a table given for a parameter is a range: the list branch has nothing to say
        loc = ".".join(f'"{x}"' if isinstance(x, str) and "." in x else str(x) for x in err["loc"]
                       if x not in UNION_TAGS and not str(x).startswith(("function-", "list[", "union[")))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    # a union (list of values | range) reports every branch; one line per field is enough
    return "; ".join(dict.fromkeys(parts))


def load_sweep(path: str | Path) -> Sweep:
    """Read, validate and plan a sweep file; a `SweepError` names the field when it is wrong."""
    path = Path(path)
    text, data = read_toml(path, "sweep file", SweepError)
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as e:
        raise SweepError(f"{path}: {_describe(e)}") from None
    base = base_config(spec.base, path.parent, source=path)
    return Sweep(path=path, spec=spec, text=text, runs=plan(spec, base, source=path))


def base_config(base: BaseWorld, root: Path, source: Path | str = "<sweep>") -> WorldConfig:
    try:
        if base.scenario is not None:
            config = load_scenario(base.scenario)
        else:
            config = load_world(root / base.world)  # type: ignore[operator]
        if base.agents is not None:
            config = config.with_agents(base.agents)
    except ConfigError as e:
        field_name = "base.scenario" if base.scenario is not None else "base.world"
        raise SweepError(f"{source}: {field_name}: {e}") from None
    return config


def cells(spec: SweepFile, source: Path | str = "<sweep>") -> list[dict[str, Any]]:
    """The parameter cells, in a fixed order: the grid in the file's order (the last
    parameter varies fastest), or `samples` cells drawn with the sampler's seed."""
    names = list(spec.parameters)
    if spec.sampling.method == "grid":
        size = math.prod(len(v) for v in spec.parameters.values())  # type: ignore[arg-type, misc]  # a grid's values are lists
        if size * len(spec.seed_list) > MAX_RUNS:
            raise SweepError(f"{source}: parameters: {size:,} cells x {len(spec.seed_list):,} seeds is more than "
                             f"{MAX_RUNS:,} runs")
        return [dict(zip(names, combo)) for combo in itertools.product(*spec.parameters.values())]
    samples = spec.sampling.samples or 0
    if samples * len(spec.seed_list) > MAX_RUNS:
        raise SweepError(f"{source}: sampling.samples: {samples:,} x {len(spec.seed_list):,} seeds is more than "
                         f"{MAX_RUNS:,} runs")
    rng = random.Random(spec.sampling.seed)
    values = list(spec.parameters.values())
    if all(isinstance(v, list) for v in values):
        # Only lists: draw distinct cells of the grid, so no cell is run twice.
        sizes = [len(v) for v in values]  # type: ignore[arg-type]
        size = math.prod(sizes)
        if samples > size:
            raise SweepError(f"{source}: sampling.samples: {samples} is more than the {size} distinct cells")
        chosen = sorted(rng.sample(range(size), samples))
        out = []
        for index in chosen:
            combo = []
            for vals, n in zip(reversed(values), reversed(sizes)):
                index, i = divmod(index, n)
                combo.append(vals[i])  # type: ignore[index]
            out.append(dict(zip(names, reversed(combo))))
        return out
    return [
        {name: v.draw(rng) if isinstance(v, Range) else rng.choice(v) for name, v in spec.parameters.items()}
        for _ in range(samples)
    ]


def plan(spec: SweepFile, base: WorldConfig, source: Path | str = "<sweep>") -> list[Run]:
    """Every run of the sweep, cell by cell and seed by seed, each config validated."""
    base_data = base.model_dump()
    runs = []
    for index, cell in enumerate(cells(spec, source)):
        data = copy.deepcopy(base_data)
        for path, value in cell.items():
            try:
                set_path(data, path, value)
            except SweepError as e:
                raise SweepError(f"{source}: parameters.\"{path}\": {e}") from None
        data["clock"] = {**data["clock"], "virtual": spec.virtual_time}
        label = ", ".join(f"{k}={v!r}" for k, v in cell.items()) or "no parameters"
        try:
            config = parse_world(data, source=f"{source}: cell {index} ({label})")
        except ConfigError as e:
            raise SweepError(str(e)) from None
        for seed in spec.seed_list:
            seeded = config.model_copy(update={"seed": seed})
            runs.append(Run(
                key=run_key(seeded, spec.duration), cell=index, params=dict(cell), seed=seed, config=seeded,
                duration=spec.duration, time_limit=spec.time_limit,
            ))
    return runs


def run_key(config: WorldConfig, duration: float) -> str:
    """What decides a run's outcome (its whole world config, seed and virtual time included,
    and its duration), hashed: equal keys, equal runs."""
    blob = json.dumps({"config": config.model_dump(mode="json"), "duration": duration}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# -- dotted paths into a world config ---------------------------------------------------------

# Tables whose keys are open: a brain's params, and costs keyed "service.method" (keys that
# themselves hold a dot, so `costs.ledger.transfer` means the key "ledger.transfer").
OPEN_TABLES = ("params", "costs")


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a dotted path into a world config's data. `agents.NAME...` names the
    agent groups whose brain or prefix is NAME (or the group at index NAME); every one
    of them is set."""
    parts = path.split(".")
    if parts[0] == "agents":
        if len(parts) < 3:
            raise SweepError("name an agent group and its field, as agents.lender.count")
        groups = select_groups(data["agents"], parts[1])
        for group in groups:
            _set(group, parts[2:], value, trail=f"agents.{parts[1]}", open_table=False)
        return
    _set(data, parts, value, trail="", open_table=False)


def select_groups(groups: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    if name.isdigit():
        if int(name) >= len(groups):
            raise SweepError(f"there is no agent group {name} (the world has {len(groups)})")
        return [groups[int(name)]]
    chosen = [g for g in groups if name in (g["brain"], g["prefix"])]
    if not chosen:
        known = ", ".join(sorted({g["brain"] for g in groups} | {g["prefix"] for g in groups}))
        raise SweepError(f"no agent group has brain or prefix {name!r} (known: {known or 'none'})")
    return chosen


def _set(node: Any, parts: list[str], value: Any, trail: str, open_table: bool) -> None:
    here = f"{trail}.{parts[0]}" if trail else parts[0]
    if not isinstance(node, dict):
        raise SweepError(f"{trail} is a value, not a table")
    if open_table and len(parts) > 1 and parts[0] not in node:
        node[".".join(parts)] = value  # "service.method" cost keys hold a dot
        return
    if parts[0] not in node and not open_table:
        known = ", ".join(sorted(node)) or "none"
        raise SweepError(f"unknown field {parts[0]!r}" + (f" in {trail}" if trail else "") + f" (known: {known})")
    if len(parts) == 1:
        if isinstance(node.get(parts[0]), (dict, list)):
            raise SweepError(f"{here} is a table, not a value: name a field inside it")
        node[parts[0]] = value
        return
    child = node[parts[0]]
    if child is None and parts[0] in OPEN_TABLES:
        child = node[parts[0]] = {}
    _set(child, parts[1:], value, trail=here, open_table=parts[0] in OPEN_TABLES)
