"""What a number from outside the engine may be, declared once: its kind (whole scrip, a real
quantity, an exact decimal), its bounds and its unit. Genesis methods, the sleep action,
world files and the command line all check numbers with these, so a refusal always names
the argument and the bound; and money is computed from the decimal that was written.

Why bounds at all: every figure derived from a caller's number (a due time, what is owed
at due, a rate in micro-units, a deadline on the clock) must be representable before
anything changes. Numbers outside these bounds are refused instead of overflowing a float
half-way through a method. A JSON reader (a language model's answer, the journal, the UI)
holds integers exactly only up to 2^53 - 1, so that is the largest amount of scrip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from fractions import Fraction
from typing import Any, Callable, Literal

from .clock import MAX_SPEED  # world seconds per real second: the clock's bound
from .errors import Refusal

MAX_SCRIP = 2**53 - 1  # the largest whole number every JSON reader holds exactly
MAX_RATE = 10**9  # compute units/s; in micro-units 10^15, still exact in a float
MAX_COMPUTE = 10**12  # compute units: capacities, transfers, action costs
MAX_SECONDS = 10**9  # about 32 years: due times, sleeps, timeouts
MAX_THINK_DELAY = 86_400  # a day per thought
MAX_RATE_PER_DAY = 10**6  # the most a world file may allow as simple interest per day
MAX_MINT_RATIO = 10**6

# Names for the bounds people read in refusals and help.
# (looked up by value: 1e6, 10**6 and Fraction(10**6) are one key)
_NAMED: dict[int | float | Fraction, str] = {MAX_SCRIP: "2^53-1", 10**6: "10^6", 10**9: "10^9", 10**12: "10^12", 10**15: "10^15"}


def shown(value: Any, limit: int = 60) -> str:
    """A caller's value quoted in a refusal: its repr, cut short (a hostile value may be huge)."""
    if type(value) is int and not -(10**40) < value < 10**40:
        return f"an integer of {len(str(abs(value))) if value.bit_length() < 14_000 else 'thousands of'} digits"
    try:
        text = repr(value)
    except Exception:  # a repr that itself fails (a very deep list, say)
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def written(value: int | float | Fraction) -> Fraction:
    """The exact decimal a number was written as. An int is itself; a float is its shortest
    decimal (what the JSON or TOML text said, for any text of up to 15 significant digits:
    `0.57` is 57/100, not the binary float nearest it)."""
    if type(value) is float:
        return _written_float(value)
    return Fraction(value)


@lru_cache(maxsize=4096)
def _written_float(value: float) -> Fraction:
    # A world has few distinct rates and terms, and what is owed is asked often (a brain
    # pricing a claim, a credit record): parsing each float's decimal once is enough.
    return Fraction(repr(value))


def exact_time(t: float) -> Fraction:
    """A world time (a float of seconds) as the exact binary fraction the float is."""
    return Fraction(t)


def fmt(x: int | float | Fraction) -> str:
    """A bound as people read it."""
    if x in _NAMED and not isinstance(x, bool):
        return _NAMED[x]
    if isinstance(x, Fraction):
        if x.denominator == 1:
            return str(x.numerator)
        return f"{float(x):g}"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


Limit = int | float | Fraction | Callable[[Any], int | float | Fraction] | None


@dataclass(frozen=True, slots=True)
class Bound:
    """One numeric argument's kind and range.

    kind "scrip": a whole number (an int, never a bool or a float); "real": a finite int or
    float, returned as a float; "exact": a finite int or float whose written decimal is the
    value (see `written`), returned as given (-0.0 as 0.0) so it stores as JSON. A limit may
    be a callable of the world config (the oracle's `min_bid`, the loans' rate cap).
    """

    kind: Literal["scrip", "real", "exact"]
    low: Limit = None
    high: Limit = None
    low_open: bool = False
    high_open: bool = False
    unit: str = ""
    # (low, high) when both are fixed numbers: the common case, checked first and fast
    # (a transfer's amount is checked on every transfer).
    _fixed: tuple[Any, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and not callable(self.low) and not callable(self.high):
            object.__setattr__(self, "_fixed", (self.low, self.high))

    def limits(self, config: Any = None) -> tuple[Any, Any]:
        low = self.low(config) if callable(self.low) else self.low
        high = self.high(config) if callable(self.high) else self.high
        return low, high

    def range_text(self, config: Any = None) -> str:
        low, high = self.limits(config)
        if low is not None and high is not None:
            text = f"{'(' if self.low_open else '['}{fmt(low)}, {fmt(high)}{')' if self.high_open else ']'}"
        elif low is not None:
            text = f"{'>' if self.low_open else '>='} {fmt(low)}"
        elif high is not None:
            text = f"{'<' if self.high_open else '<='} {fmt(high)}"
        else:
            text = "any"
        return text

    def describe(self, config: Any = None) -> str:
        """E.g. "whole scrip in [1, 2^53-1]", "a number in (0, 10^9] seconds"."""
        noun = {"scrip": "whole scrip", "real": "a number", "exact": "a decimal"}[self.kind]
        unit = f" {self.unit}" if self.unit else ""
        return f"{noun} in {self.range_text(config)}{unit}"

    def refuse(self, name: str, value: Any, config: Any = None) -> Refusal:
        noun = {"scrip": "a whole number of scrip", "real": "a number", "exact": "a decimal number"}[self.kind]
        unit = f" {self.unit}" if self.unit else ""
        return Refusal(f"{name} must be {noun} in {self.range_text(config)}{unit}, got {shown(value)}", "invalid", name)

    def whole_range(self) -> tuple[Any, Any] | None:
        """(low, high), both included, when this bound is fixed limits on a whole number."""
        if self._fixed is not None and not self.low_open and not self.high_open and self.kind == "scrip":
            return self._fixed
        return None

    def checker(self, name: str) -> Callable[[Any, Any], Any]:
        """`check` for one argument as a function of (value, config), with the commonest
        case (a whole number within fixed limits) answered without a method call."""
        check = self.check
        if self._fixed is not None and not self.low_open and not self.high_open and self.kind != "real":
            low, high = self._fixed

            def whole_in_range(value: Any, config: Any) -> Any:
                if type(value) is int and low <= value <= high:
                    return value
                return check(value, name, config)

            return whole_in_range
        return lambda value, config: check(value, name, config)

    def check(self, value: Any, name: str, config: Any = None) -> Any:
        """The value, normalised (see the class), or a `Refusal` naming `name` and the bound."""
        t = type(value)
        fixed = self._fixed
        if fixed is not None and (t is int or (t is float and self.kind != "scrip")):
            low, high = fixed  # NaN and infinities fail these comparisons: the slow path refuses them
            if (value > low if self.low_open else value >= low) and (value < high if self.high_open else value <= high):
                if self.kind == "real":
                    return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
                return value + 0.0 if t is float else value
        if self.kind == "scrip":
            ok = t is int
        else:
            ok = (t is int) or (t is float and math.isfinite(value))
        if ok:
            low, high = self.limits(config)
            # Exact comparisons: Python compares ints, floats and Fractions by value, so a
            # huge int is never converted to a float (which could overflow) to be checked.
            if low is not None and (value <= low if self.low_open else value < low):
                ok = False
            elif high is not None and (value >= high if self.high_open else value > high):
                ok = False
        if not ok:
            raise self.refuse(name, value, config)
        if self.kind == "real":
            return float(value) + 0.0  # + 0.0 turns -0.0 into 0.0
        if t is float:
            return value + 0.0
        return value


def scrip(low: Limit = 1, high: Limit = MAX_SCRIP) -> Bound:
    return Bound("scrip", low, high)


def real(low: Limit, high: Limit, unit: str = "", *, low_open: bool = False, high_open: bool = False) -> Bound:
    return Bound("real", low, high, low_open, high_open, unit)


def exact(low: Limit, high: Limit, unit: str = "", *, low_open: bool = False, high_open: bool = False) -> Bound:
    return Bound("exact", low, high, low_open, high_open, unit)


# The bounds shared by more than one declaration.
SCRIP = scrip()
PRICE = scrip(0)
RATE = real(0, MAX_RATE, "compute units/s", low_open=True)
RATE_OR_ZERO = real(0, MAX_RATE, "compute units/s")
COMPUTE = real(0, MAX_COMPUTE, "compute units", low_open=True)
CAPACITY = real(0, MAX_COMPUTE, "compute units")
SECONDS = real(0, MAX_SECONDS, "seconds")
THINK_DELAY = real(0, MAX_THINK_DELAY, "seconds")
SPEED = real(0, MAX_SPEED, "world seconds per real second", low_open=True)  # the clock's own
DUE_IN = exact(0, MAX_SECONDS, "seconds", low_open=True)
