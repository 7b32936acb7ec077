"""World files: pydantic models loaded from TOML, with errors that name the field.

`load_world(path)` reads a file; `load_scenario(name)` reads one of the worlds embedded in
the package (`engine/worlds/*.toml`, the default world among them). Every error is a
`ConfigError` whose message names the file, the field and the problem.

Numbers keep the same bounds as the genesis methods' arguments (`engine.bounds`). The
oracle's `mint_ratio` and the loans' `max_rate_per_day` are money figures, used as the
decimal the file wrote: a file's floats are read with their text, and a ratio whose text a
float cannot carry exactly (more than 15 significant digits) is refused, so the engine's
exact value (`engine.bounds.written`) is always the text's, here and after a resume.
"""

from __future__ import annotations

import math
import tomllib
from datetime import datetime, timezone
from fractions import Fraction
from importlib import resources
from pathlib import Path
from collections.abc import Callable
from typing import Any, Literal

from pydantic_core import ErrorDetails
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import bounds as b
from . import brain_params
from .errors import Refusal


class ConfigError(ValueError):
    """A world file is wrong; the message says where and how."""


class Written(float):
    """A float read from a world file, with the text it was written as."""

    text: str


def _read_float(text: str) -> Written:
    value = Written(text.replace("_", ""))
    value.text = text
    return value


def _loads(text: str) -> dict[str, Any]:
    return tomllib.loads(text, parse_float=_read_float)


def bounded(bound: b.Bound, default: Any, **kw: Any) -> Any:
    """A pydantic field with a bound from `engine.bounds` (the same as the methods')."""
    low, high = bound.limits()
    limits: dict[str, Any] = {}
    cast = int if bound.kind == "scrip" else float
    if low is not None:
        limits["gt" if bound.low_open else "ge"] = cast(low)
    if high is not None:
        limits["lt" if bound.high_open else "le"] = cast(high)
    if bound.kind != "scrip":
        limits["allow_inf_nan"] = False
    return Field(default, **limits, **kw)


def exact_decimal(value: Any) -> Any:
    """A money figure's text must be what its float holds (see the module docstring)."""
    text = getattr(value, "text", None)
    if text is not None and math.isfinite(value):
        if Fraction(text.replace("_", "")) != b.written(float(value)):
            raise ValueError(f"{text} has more digits than a world file can give exactly (at most 15 significant "
                             "digits)")
    return value


# Bounds the command line shares with world files (RunOptions below): one place, one message.
# The speed's is the clock's own (engine.bounds.SPEED); the rest are engine.bounds'.
MAX_AGENTS = 1_000_000
MAX_COMMIT_INTERVAL = 60.0  # seconds between journal commits


class Strict(BaseModel):
    # strict: a world file that says `count = true` or `rate = "1.5"` is wrong, not coerced
    model_config = ConfigDict(extra="forbid", strict=True)


class ClockConfig(Strict):
    speed: float = bounded(b.SPEED, 1.0, description="world seconds per real second")
    virtual: bool = Field(False, description="jump to the next wake-up when all agents wait")
    epoch: datetime = Field(datetime(2026, 1, 1, tzinfo=timezone.utc), description="wall time at world start")

    @field_validator("epoch")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)


class ComputeConfig(Strict):
    total_rate: float | None = bounded(
        b.RATE, None, description="sum of all compute rates; the operator's reserve gets what agents don't",
    )
    default_capacity: float = bounded(b.CAPACITY, 20.0)
    max_debt: float | None = bounded(b.CAPACITY, None)
    compute_per_cpu: float = Field(10.0, gt=0, description="compute units/s that equal one CPU core")


class CostsConfig(Strict):
    """Compute cost of each action; `"service.method"` keys price genesis methods."""

    model_config = ConfigDict(extra="allow", strict=True)
    noop: float = bounded(b.CAPACITY, 0.1)
    read: float = bounded(b.CAPACITY, 0.2)
    write: float = bounded(b.CAPACITY, 1.0)
    delete: float = bounded(b.CAPACITY, 0.2)
    sleep: float = bounded(b.CAPACITY, 0.0)
    invoke: float = bounded(b.CAPACITY, 0.5)

    @model_validator(mode="after")
    def _methods(self) -> CostsConfig:
        for key, value in (self.model_extra or {}).items():
            if "." not in key:
                raise ValueError(f"unknown cost {key!r}: use an action name or 'service.method'")
            try:
                b.CAPACITY.check(float(value) if type(value) is Written else value, f"cost {key!r}")
            except Refusal as r:
                raise ValueError(r.reason) from None
        return self

    def table(self) -> dict[str, float]:
        return {**self.model_dump(), **{k: float(v) for k, v in (self.model_extra or {}).items()}}


class OperatorConfig(Strict):
    scrip: int = bounded(b.PRICE, 1000)
    rate: float = bounded(b.RATE_OR_ZERO, 0.0, description="reserve rate when total_rate is unset")
    capacity: float = bounded(b.CAPACITY, 100.0)
    disk_quota: int = Field(10_000_000, ge=0)


class AgentsPolicy(Strict):
    max_failures: int = Field(5, ge=1, description="consecutive brain failures before crashed")
    backoff_base: float = bounded(b.real(0, b.MAX_SECONDS, low_open=True), 1.0)
    backoff_max: float = bounded(b.real(0, b.MAX_SECONDS, low_open=True), 60.0)
    disk_quota: int = Field(1_000_000, ge=0)
    slice_actions: int = Field(32, ge=1, le=10_000, description="turns between yields")


class MetricsConfig(Strict):
    interval: float = bounded(b.real(0, b.MAX_SECONDS, low_open=True), 10.0, description="world seconds per window")
    keep: int = Field(1000, ge=1, description="windows kept in memory (the journal keeps every one)")


class OracleConfig(Strict):
    resolution_interval: float = bounded(b.real(0, b.MAX_SECONDS, low_open=True), 60.0,
                                         description="seconds between resolutions")
    slots: int = Field(1, ge=1, le=1000, description="winners per resolution (k)")
    min_bid: int = bounded(b.SCRIP, 1, description="smallest bid; the price when bids <= slots")
    mint_ratio: float = bounded(b.exact(0, b.MAX_MINT_RATIO, low_open=True), 1.0,
                                description="scrip minted = floor(score / mint_ratio), exactly")
    scorer: Literal["distinctiveness", "failing"] = "distinctiveness"
    _exact_ratio = field_validator("mint_ratio", mode="before")(exact_decimal)
    keep: int = Field(100, ge=1, description="resolutions kept in memory, with every bid (the journal keeps "
                      "every one's events)")


class MarketConfig(Strict):
    keep: int = Field(1000, ge=1, description="closed listings kept in memory")


class ContractsConfig(Strict):
    max_rate_per_day: float = bounded(b.exact(0, b.MAX_RATE_PER_DAY), 10.0,
                                      description="highest simple interest per day")
    _exact_rate = field_validator("max_rate_per_day", mode="before")(exact_decimal)
    keep_settled: int = Field(1000, ge=0, description="repaid or cancelled contracts kept in memory "
                              "(older ones retire; the journal keeps their history)")


class SandboxConfig(Strict):
    """Limits of each agent's sandbox (SPEC §8); its CPU quota follows its compute rate."""

    memory_mb: int = Field(128, ge=16, le=65536)
    pids: int = Field(64, ge=8, le=100_000)
    tmpfs_mb: int = Field(16, ge=1, le=4096)
    timeout: float = Field(5.0, gt=0, le=3600, allow_inf_nan=False, description="seconds one call may run")
    monitor_interval: float = Field(1.0, gt=0, le=3600, allow_inf_nan=False, description="seconds between stats")
    hosts: list[str] = Field(
        default_factory=list,
        description="Docker Engine endpoints (unix://, tcp://, ssh://) to place agents' containers on; "
        "empty: the local daemon",
    )

    @field_validator("hosts")
    @classmethod
    def _endpoints(cls, hosts: list[str]) -> list[str]:
        for h in hosts:
            if not h.startswith(("unix://", "tcp://", "ssh://")):
                raise ValueError(f"{h!r} is not a Docker endpoint: use unix://, tcp:// or ssh://")
        if len(set(hosts)) != len(hosts):
            raise ValueError("a Docker endpoint is listed twice")
        return hosts


class AgentGroup(Strict):
    brain: str
    count: int = Field(1, ge=0, le=MAX_AGENTS)
    scrip: int = bounded(b.PRICE, 0)
    rate: float = bounded(b.RATE_OR_ZERO, 1.0)
    capacity: float | None = bounded(b.CAPACITY, None)
    think_delay: float = bounded(b.THINK_DELAY, 0.0)
    params: dict[str, Any] = Field(default_factory=dict)
    prefix: str = Field("a", pattern=r"^[a-z][a-z0-9_-]{0,15}$")

    @model_validator(mode="after")
    def _brain(self) -> AgentGroup:
        try:
            brain_params.validate(self.brain, self.params)
        except Refusal as r:
            raise ValueError(str(r)) from None
        except ValidationError as e:
            raise ValueError(_describe(e, prefix="params")) from None
        return self


class WorldConfig(Strict):
    name: str = "world"
    description: str = ""
    seed: int = 0
    clock: ClockConfig = Field(default_factory=ClockConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    costs: CostsConfig = Field(default_factory=CostsConfig)
    operator: OperatorConfig = Field(default_factory=OperatorConfig)
    agents_policy: AgentsPolicy = Field(default_factory=AgentsPolicy)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    contracts: ContractsConfig = Field(default_factory=ContractsConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    llm_budget: float = Field(0.0, ge=0, allow_inf_nan=False, description="dollars for LLM thinking")
    agents: list[AgentGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rates(self) -> WorldConfig:
        if self.compute.total_rate is not None:
            used = sum(g.rate * g.count for g in self.agents)
            if used > self.compute.total_rate + 1e-9:
                raise ValueError(
                    f"compute.total_rate {self.compute.total_rate:g} is less than the agents' rates ({used:g})"
                )
        return self

    @property
    def agent_count(self) -> int:
        return sum(g.count for g in self.agents)

    @property
    def total_rate(self) -> float:
        if self.compute.total_rate is not None:
            return self.compute.total_rate
        return sum(g.rate * g.count for g in self.agents) + self.operator.rate

    @property
    def operator_rate(self) -> float:
        return self.total_rate - sum(g.rate * g.count for g in self.agents)

    def with_agents(self, n: int) -> WorldConfig:
        """The same world with `n` agents, groups scaled in proportion (largest remainder)."""
        if type(n) is not int or n < 1:
            raise ConfigError(f"--agents must be a whole number >= 1, got {n!r}")
        if not self.agents:
            raise ConfigError("this world has no agent groups to scale")
        weights = [g.count or 1 for g in self.agents] if self.agent_count else [1] * len(self.agents)
        exact = [n * w / sum(weights) for w in weights]
        counts = [math.floor(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: n - sum(counts)]:
            counts[i] += 1
        groups = [g.model_copy(update={"count": c}) for g, c in zip(self.agents, counts)]
        data = self.model_dump()
        data["agents"] = [g.model_dump() for g in groups]
        data["compute"]["total_rate"] = None if self.compute.total_rate is None else max(
            self.compute.total_rate, sum(g.rate * g.count for g in groups)
        )
        return parse_world(data, source="--agents")


def _message(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "finite_number":  # pydantic's "should be a finite number"
        return "must be a finite number"
    return err["msg"].removeprefix("Value error, ")


def _describe(e: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if x not in ("function-after",))
        if prefix and loc:
            loc = f"{prefix}.{loc}"
        elif prefix:
            loc = prefix
        msg = _message(err)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


class RunOptions(Strict):
    """The command line's numbers, under the bounds world files use (`clock.speed`, an
    agent group's `count`) and the journal's, so an option is refused as a file would be."""

    speed: float | None = bounded(b.SPEED, None)
    agents: int | None = Field(None, ge=1, le=MAX_AGENTS)
    duration: float | None = bounded(b.real(0, b.MAX_SECONDS, low_open=True), None, description="world seconds")
    commit_interval: float = Field(0.1, gt=0, le=MAX_COMMIT_INTERVAL, allow_inf_nan=False)
    journal_retry: float = Field(5.0, gt=0, le=3600, allow_inf_nan=False,
                                 description="real seconds a headless run retries a failing journal")


def check_run_options(values: dict[str, Any]) -> RunOptions:
    """Options checked by RunOptions; the error names each option (`--speed: ...`)."""
    try:
        return RunOptions.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as e:
        raise ConfigError("; ".join(f"--{str(err['loc'][0]).replace('_', '-')}: {_message(err)}"
                                    for err in e.errors())) from None


def parse_world(data: dict[str, Any], source: str = "<world>") -> WorldConfig:
    try:
        return WorldConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {_describe(e)}") from None


def read_toml(path: Path, what: str, error: type[Exception],
              loads: Callable[[str], dict[str, Any]] = tomllib.loads) -> tuple[str, dict[str, Any]]:
    """A TOML file's text and table, or `error` saying what is wrong with the file (`what`:
    "world file", "sweep file")."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read: {e}") from None
    try:
        return text, loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None


def load_world(path: str | Path) -> WorldConfig:
    path = Path(path)
    _, data = read_toml(path, "world file", ConfigError, _loads)
    return parse_world(data, source=str(path))


def scenario_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("engine.worlds").iterdir() if p.name.endswith(".toml"))


def load_scenario(name: str) -> WorldConfig:
    if name not in scenario_names():
        raise ConfigError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    text = resources.files("engine.worlds").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_world(_loads(text), source=f"scenario {name}")
