"""What each brain takes as parameters, by brain name: the schema of a world file's
`[[agents]]` params. It sits beside the config, below the brains, so a world file is
checked without loading a brain; each built-in brain takes its `Params` from here, and a
brain registered later (`engine.brains.register`) declares its own.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .bounds import shown
from .errors import Refusal

OPENAI_HINT = "the llm brain needs the openai package: pip install -e '.[llm]' (or pip install openai)"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The coder's built-in programs (engine/brains/coder.py PROGRAMS): the most it writes.
PROGRAM_COUNT = 4
# The role an LLM agent plays when its params give none (the start of each user message).
DEFAULT_SYSTEM_PROMPT = (
    "Earn scrip: write short, distinctive artifacts and bid on them before each oracle "
    "resolution; keep some scrip in reserve, and sleep when there is nothing worth doing."
)
AnswerFormat = Literal["auto", "json_schema", "llama_cpp", "ollama", "json_object"]


def openai_available() -> bool:
    try:
        return importlib.util.find_spec("openai") is not None
    except (ImportError, ValueError):
        return False


def require_openai() -> None:
    """The llm brain speaks through the optional openai package: refuse a world without it."""
    if not openai_available():
        raise ValueError(OPENAI_HINT)


class BrainParams(BaseModel):
    """Parameters every brain takes; brains extend this."""

    # titled as when each brain nested its own `Params`: refusals read "... for Params"
    model_config = ConfigDict(extra="forbid", strict=True, title="Params")
    think_cost: float = Field(1.0, ge=0, allow_inf_nan=False, description="compute one thought costs")


class BoltzmannParams(BrainParams):
    think_cost: float = Field(0.5, ge=0, allow_inf_nan=False)
    when_broke: Literal["noop", "sleep"] = Field(
        "noop", description="with no scrip: noop like Mesa's model, or sleep until paid"
    )


class PhilanthropistParams(BrainParams):
    keep: int = Field(5, ge=0, description="scrip it never gives away")
    gift: int = Field(2, ge=1)
    sample: int = Field(5, ge=1, le=100, description="agents looked at per decision")
    patience: float = Field(30.0, gt=0, description="longest sleep while waiting for scrip")


class DreamerParams(BrainParams):
    think_cost: float = Field(6.0, ge=0, allow_inf_nan=False)
    words: int = Field(12, ge=1, le=10_000)
    keep_artifacts: int = Field(5, ge=1, description="older thoughts are deleted")


class RescuerParams(BrainParams):
    think_cost: float = Field(0.2, ge=0, allow_inf_nan=False)
    reserve: float = Field(2.0, ge=0, description="compute it keeps for itself")
    amount: float = Field(3.0, gt=0, description="compute given per rescue")
    patience: float = Field(20.0, gt=0)


class FounderParams(BrainParams):
    threshold: int = Field(40, ge=1, description="scrip needed before founding")
    endowment: int = Field(10, ge=0, description="scrip given to the child")
    rate_share: float = Field(0.25, gt=0, lt=1, description="share of its rate given")
    child_brain: str = "boltzmann"
    max_children: int = Field(2, ge=0)


class BuilderParams(BrainParams):
    think_cost: float = Field(2.0, ge=0, allow_inf_nan=False)
    words: int = Field(30, ge=1, le=2000)
    bid_share: float = Field(0.2, gt=0, le=1, description="share of its scrip it bids")
    max_bid: int = Field(20, ge=1)
    keep_artifacts: int = Field(5, ge=1, description="older artifacts are deleted")


class TraderParams(BrainParams):
    think_cost: float = Field(1.0, ge=0, allow_inf_nan=False)
    slice: float = Field(0.2, gt=0, description="rate per slice it makes")
    ask: int = Field(8, ge=0, description="price it asks for a slice")
    budget: int = Field(15, ge=0, description="most it pays for one listing")
    want_rate: float = Field(2.5, ge=0, description="it buys rate slices while below this rate")
    sell_own_config: bool = Field(False, description="list its own config right for sale")
    config_price: int = Field(12, ge=0)
    patience: float = Field(30.0, gt=0)


class LenderParams(BrainParams):
    think_cost: float = Field(1.0, ge=0, allow_inf_nan=False)
    principal: int = Field(10, ge=1)
    rate_per_day: float = Field(2.0, ge=0, description="simple interest per day")
    due_in: float = Field(240.0, gt=0, description="seconds from acceptance to due")
    reserve: int = Field(5, ge=0)
    max_open: int = Field(3, ge=1)
    sell_claims: float = Field(0.3, ge=0, le=1, description="chance it sells a claim it holds")
    claim_price: int = Field(8, ge=0)
    borrowers: str = Field("b", description="id prefix of the agents it lends to")


class BorrowerParams(BrainParams):
    think_cost: float = Field(0.5, ge=0, allow_inf_nan=False)
    reliable: bool = True
    margin: float = Field(30.0, gt=0, description="repays this many seconds before due")


class CoderParams(BrainParams):
    think_cost: float = Field(1.0, ge=0, allow_inf_nan=False)
    price: int = Field(1, ge=0, description="scrip others pay to run its programs")
    pause: float = Field(20.0, gt=0, description="seconds between runs")
    max_programs: int = Field(2, ge=1, le=PROGRAM_COUNT)


class LLMParams(BrainParams):
    think_cost: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="floor: the least compute a thought costs"
    )
    model: str = Field("llama3.2", min_length=1, max_length=200, description="model name the server knows")
    base_url: str = Field(
        "http://127.0.0.1:11434/v1", min_length=1, max_length=500,
        description="OpenAI-compatible API root (Ollama, llama.cpp server, vLLM, ...)",
    )
    local: bool = Field(False, description="serve the model here: start the llama.cpp server on loopback "
                        "(base_url and model are then ignored)")
    local_model: str | None = Field(None, min_length=1, max_length=4096,
                                    description="GGUF file for local = true (none: the packaged small model)")
    api_key_env: str | None = Field(
        None, max_length=100, description="environment variable holding the API key (none: 'not-needed')"
    )
    system_prompt: str = Field(
        DEFAULT_SYSTEM_PROMPT, max_length=20_000,
        description="the agent's role and goals, at the top of each turn's message "
        "(the rules, the answer format and the vocabulary form the shared system prefix)",
    )
    temperature: float = Field(0.7, ge=0, le=2, allow_inf_nan=False)
    max_tokens: int = Field(256, ge=1, le=65_536, description="longest answer")
    timeout: float = Field(60.0, gt=0, le=3600, allow_inf_nan=False, description="seconds one request may take")
    max_retries: int = Field(2, ge=0, le=20, description="retries after a timeout, 429, 5xx or lost connection")
    retry_backoff: float = Field(
        0.5, gt=0, le=600, allow_inf_nan=False, description="real seconds before the first retry; doubles"
    )
    max_retry_wait: float = Field(
        30.0, gt=0, le=3600, allow_inf_nan=False, description="cap on any one wait, Retry-After included"
    )
    max_in_flight: int = Field(
        4, ge=1, le=256, description="requests in flight to this endpoint at once, across all its agents "
        "(the rest queue in turn); a local server takes one at a time"
    )
    compute_per_token: float = Field(
        0.002, ge=0, allow_inf_nan=False, description="thought cost = tokens used * this (at least think_cost)"
    )
    dollars_per_1k_tokens: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="charged to the world's llm_budget"
    )
    json_mode: bool = Field(True, description="constrain the answer (answer_format); false: plain text, parsed")
    answer_format: AnswerFormat = Field(
        "auto", description="how the answer is constrained: json_schema, llama_cpp, ollama or json_object; "
        "auto tries the strongest and steps down when a server refuses"
    )
    history: int = Field(3, ge=0, le=100, description="recent turns shown to the model")
    peers: int = Field(6, ge=0, le=1000, description="other agents shown in the observation")
    max_items: int = Field(5, ge=1, le=100, description="most artifacts, listings, contracts shown")
    max_sleep: float = Field(600.0, gt=0, allow_inf_nan=False, description="longest sleep the model may choose")
    budget_sleep: float = Field(
        300.0, gt=0, allow_inf_nan=False, description="world seconds between budget checks once it is spent"
    )
    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(f"not an environment variable name: {v!r}")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v


# brain name -> its parameters, and what it needs installed (a check that raises ValueError)
PARAMS: dict[str, type[BrainParams]] = {
    "boltzmann": BoltzmannParams, "philanthropist": PhilanthropistParams, "dreamer": DreamerParams,
    "rescuer": RescuerParams, "founder": FounderParams, "builder": BuilderParams, "trader": TraderParams,
    "lender": LenderParams, "borrower": BorrowerParams, "coder": CoderParams, "llm": LLMParams,
}
REQUIRES: dict[str, Callable[[], None]] = {"llm": require_openai}


def declare(name: str, params: type[BrainParams], requires: Callable[[], None] | None = None) -> None:
    """A brain's parameters under its name (a brain registered after the built-in ones)."""
    PARAMS[name] = params
    if requires is None:
        REQUIRES.pop(name, None)
    else:
        REQUIRES[name] = requires


def params_for(name: object) -> type[BrainParams]:
    """The parameters brain `name` takes, or a refusal naming the brains there are."""
    params = PARAMS.get(name) if isinstance(name, str) else None
    if params is None:
        raise Refusal(f"unknown brain {shown(name)}; known brains: {', '.join(sorted(PARAMS))}", "unknown", "brain")
    return params


def validate(name: object, params: dict | None) -> BrainParams:
    """`params` checked as brain `name` takes them: a `Refusal` for an unknown brain, a
    pydantic `ValidationError` (or `ValueError` for a missing package) for bad params."""
    validated = params_for(name).model_validate(params or {})
    requires = REQUIRES.get(name) if isinstance(name, str) else None  # (a str: params_for checked it)
    if requires is not None:
        requires()
    return validated


__all__ = ["DEFAULT_SYSTEM_PROMPT", "PARAMS", "BrainParams", "declare", "openai_available", "params_for",
           "require_openai", "validate"]
