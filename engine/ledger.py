"""Balances of every principal, moved only by atomic operations that check first.

Scrip is an integer that never goes negative; compute is a token bucket per principal;
compute rate is held in integer micro-units so that moving rate between buckets conserves
the world's total exactly; scrip held in escrow (bids, listings, loan offers) is tracked
per holder so conservation can be checked at any moment:

    sum(scrip) + sum(held) == initial scrip + minted

Every operation either applies fully or raises `Refusal` having changed nothing.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .bounds import CAPACITY, COMPUTE, MAX_SCRIP, RATE, SCRIP, real, shown, written
from .bucket import TokenBucket
from .errors import Refusal
from .undo import Undo, _unpay

MICRO = 1_000_000  # rate micro-units per compute unit/s


def to_micro(rate: int | float) -> int:
    """A rate in whole micro-units: the decimal written, times 10^6, rounded half to even,
    computed exactly (`0.0000015` is 2 micro-units, not the 1 that `round(x * 1e6)` of
    the float gives). The caller has bounded it, so the result is at most 10^15."""
    return round(written(rate) * MICRO)


def check_scrip(amount: object, what: str = "amount") -> int:
    """An amount of scrip: a whole number in [1, 2^53-1] (bools and floats refused)."""
    return SCRIP.check(amount, what)


def is_number(value: object) -> bool:
    """A finite int or float (bools are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_number(value: object, what: str, low: float = 0.0, high: float = math.inf, *, above: bool = False) -> float:
    """A finite number in [low, high] (or (low, high] with `above`), else a refusal naming it."""
    return real(low, None if high == math.inf else high, low_open=above).check(value, what)


def check_quantity(amount: object, what: str = "amount") -> float:
    """A positive quantity of compute, at most 10^12."""
    return COMPUTE.check(amount, what)


def check_rate(amount: object, what: str = "amount") -> int:
    """A positive rate (units/s, at most 10^9) in whole micro-units, at least one."""
    rate = RATE.check(amount, what)
    micro = to_micro(rate)
    if micro <= 0:
        raise Refusal(f"{what} {amount!r} is below the smallest unit of rate (1e-6)", "invalid", what)
    return micro


class Ledger:
    def __init__(self, total_rate: float, llm_budget: float = 0.0) -> None:
        self.scrip: dict[str, int] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.rate_micro: dict[str, int] = {}
        # Rate backing rate-slice artifacts a principal owns: it moves only with the slice.
        self.sliced_micro: dict[str, int] = {}
        self.total_rate_micro = to_micro(total_rate)
        self.held: dict[str, int] = {}  # escrow holder -> scrip it holds for others
        self.disk_quota: dict[str, int] = {}
        self.disk_used: dict[str, int] = {}
        self.initial_scrip = 0
        self.minted = 0
        self.moved = 0  # scrip paid from one principal to another, ever (the metrics' velocity)
        self.llm_budget = float(llm_budget)
        self.llm_spent = 0.0
        # principal -> callback(principal) when its holdings change (agents sleeping on a
        # predicate). Checked with one dict lookup per move.
        self.watchers: dict[str, Callable[[str], None]] = {}
        # principal -> callback(principal) when its compute or rate changes (frozen agents,
        # whose thaw time moves with a rescue or a rate change; scrip does not move it).
        self.compute_watchers: dict[str, Callable[[str], None]] = {}
        # Open while a genesis call runs: every change below records the old value first,
        # so the waist can put back a call that fails half-way (see engine/undo.py).
        self.undo = Undo()

    # -- a checkpoint's view of the ledger -------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """Every account in opening order (scrip, rate, slices, bucket, disk) and the totals."""
        sliced = self.sliced_micro
        return {
            "total_rate_micro": self.total_rate_micro, "initial_scrip": self.initial_scrip, "minted": self.minted,
            "moved": self.moved, "llm_budget": self.llm_budget, "llm_spent": self.llm_spent, "held": self.held,
            "accounts": [[p, n, self.rate_micro[p], sliced.get(p, 0), b.rate, b.capacity, b.balance, b.last_update,
                          self.disk_quota[p], self.disk_used[p]]
                         for (p, n), b in zip(self.scrip.items(), self.buckets.values())],
        }

    def load(self, state: dict[str, Any]) -> None:
        """Take back a dumped ledger, checked first. The tables are refilled in place (the
        waist and agents' views hold them); watchers are the agents' to register again."""
        accounts = state["accounts"]
        whole = ("total_rate_micro", "initial_scrip", "minted", "moved")
        if not all(type(state[k]) is int and state[k] >= 0 for k in whole) or not isinstance(accounts, list):
            raise ValueError("the ledger's totals must be whole numbers >= 0")
        if not all(type(state[k]) in (float, int) and state[k] >= 0 for k in ("llm_budget", "llm_spent")):
            raise ValueError("the ledger's LLM budget must be a number >= 0")
        held = state["held"]
        if not isinstance(held, dict) or not all(type(v) is int and v >= 0 for v in held.values()):
            raise ValueError("the ledger's held scrip must be whole numbers >= 0")
        for a in accounts:
            if not (isinstance(a, list) and len(a) == 10 and type(a[0]) is str
                    and all(type(a[i]) is int and a[i] >= 0 for i in (1, 2, 3, 8, 9))
                    and all(type(a[i]) in (float, int) and math.isfinite(a[i]) for i in (4, 5, 6, 7))):
                raise ValueError("a dumped account does not have the fields an account has")
        for table in (self.scrip, self.buckets, self.rate_micro, self.sliced_micro, self.disk_quota, self.disk_used,
                      self.watchers, self.compute_watchers):
            table.clear()
        for p, scrip, micro, sliced, rate, capacity, balance, last_update, quota, used in accounts:
            self.scrip[p] = scrip
            self.rate_micro[p] = micro
            if sliced:
                self.sliced_micro[p] = sliced
            bucket = TokenBucket(rate, capacity, float(last_update))
            bucket.balance = float(balance)
            self.buckets[p] = bucket
            self.disk_quota[p] = quota
            self.disk_used[p] = used
        self.held = dict(held)
        self.total_rate_micro, self.initial_scrip, self.minted, self.moved = (state[k] for k in whole)
        self.llm_budget, self.llm_spent = float(state["llm_budget"]), float(state["llm_spent"])

    def _keep_bucket(self, principal: str) -> None:
        """Before a bucket changes (accrual included) while a call's undo log is open."""
        if self.undo.on:
            self.undo.attrs(self.buckets[principal], "balance", "last_update", "rate", "capacity")

    # -- accounts ---------------------------------------------------------------------------
    def open_account(
        self,
        principal: str,
        *,
        scrip: int,
        rate: float,
        capacity: float,
        now: float,
        disk_quota: int,
        balance: float | None = None,
        initial: bool = True,
    ) -> None:
        """A new principal. With `initial`, its scrip counts as the world's initial scrip;
        otherwise the caller has already taken it from someone (a spawn)."""
        if principal in self.scrip:
            raise Refusal(f"principal {principal!r} already exists", "exists")
        if type(scrip) is not int or scrip < 0:
            raise Refusal(f"scrip must be a whole number >= 0, got {scrip!r}", "invalid")
        micro = to_micro(rate)
        bucket = TokenBucket(micro / MICRO, capacity, now, balance)
        undo = self.undo
        if undo.on:
            for table in (self.scrip, self.rate_micro, self.buckets, self.disk_quota, self.disk_used):
                undo.item(table, principal)
            undo.attrs(self, "initial_scrip")
        self.scrip[principal] = scrip
        self.rate_micro[principal] = micro
        self.buckets[principal] = bucket
        self.disk_quota[principal] = disk_quota
        self.disk_used[principal] = 0
        if initial:
            self.initial_scrip += scrip

    def has(self, principal: str) -> bool:
        return principal in self.scrip

    def require(self, principal: object, what: str = "principal", arg: str | None = None) -> str:
        """A known principal, or a refusal about argument `arg` (by default named `what`)."""
        if not isinstance(principal, str) or principal not in self.scrip:
            raise Refusal(f"unknown {what} {shown(principal)}", "unknown", what if arg is None else arg)
        return principal

    def _notify(self, principal: str) -> None:
        cb = self.watchers.get(principal)
        if cb is not None:
            cb(principal)

    def _notify_compute(self, principal: str) -> None:
        cb = self.compute_watchers.get(principal)
        if cb is not None:
            cb(principal)
        self._notify(principal)

    # -- scrip ------------------------------------------------------------------------------
    def transfer_scrip(self, frm: str, to: str, amount: int) -> int:
        """Move whole scrip between principals; anything but a whole amount in bounds (a
        caller's raw argument) is refused, checked first and inline: the busiest call."""
        if type(amount) is not int or amount <= 0 or amount > MAX_SCRIP:
            check_scrip(amount)  # raises with the precise reason
        scrip = self.scrip
        if type(to) is not str or to not in scrip:
            raise Refusal(f"unknown recipient {shown(to)}", "unknown", "to")
        if frm == to:
            raise Refusal("cannot transfer to yourself", "invalid", "to")
        balance = scrip[frm]
        if balance < amount:
            raise Refusal(f"insufficient scrip: have {balance}, need {amount}", "insufficient", "amount")
        undo = self.undo
        if undo.on:  # one entry for both balances and `moved`, inlined: this is the busiest move
            undo.log.append((_unpay, self, scrip, frm, balance, to, scrip[to], amount))
        scrip[frm] = balance - amount
        scrip[to] += amount
        self.moved += amount
        if to in self.watchers:
            self._notify(to)
        return amount

    def hold(self, principal: str, amount: object, holder: str) -> int:
        """Move scrip from a principal into escrow under `holder` (e.g. the oracle)."""
        whole = check_scrip(amount)
        balance = self.scrip[principal]
        if balance < whole:
            raise Refusal(f"insufficient scrip: have {balance}, need {whole}", "insufficient", "amount")
        self.undo.item(self.scrip, principal)
        self.undo.item(self.held, holder)
        self.scrip[principal] = balance - whole
        self.held[holder] = self.held.get(holder, 0) + whole
        return whole

    def release(self, holder: str, amount: int, to: str) -> None:
        """Pay scrip out of escrow to a principal (a refund, a sale, a loan)."""
        if type(amount) is not int or amount < 0:
            raise Refusal(f"release amount must be a whole number >= 0, got {amount!r}", "invalid")
        if amount == 0:
            return
        if self.held.get(holder, 0) < amount:
            raise Refusal(f"{holder} holds only {self.held.get(holder, 0)}, cannot release {amount}", "insufficient")
        self.require(to, "recipient")
        self.undo.item(self.held, holder)
        self.undo.item(self.scrip, to)
        self.held[holder] -= amount
        self.scrip[to] += amount
        self._notify(to)

    def mint(self, to: str, amount: int) -> None:
        if type(amount) is not int or amount < 0:
            raise Refusal(f"mint amount must be a whole number >= 0, got {amount!r}", "invalid")
        self.require(to, "recipient")
        self.undo.item(self.scrip, to)
        self.undo.attrs(self, "minted")
        self.scrip[to] += amount
        self.minted += amount
        self._notify(to)

    # -- compute ----------------------------------------------------------------------------
    def compute(self, principal: str, now: float) -> float:
        return self.buckets[principal].accrue(now)

    def transfer_compute(self, frm: str, to: str, amount: object, now: float) -> float:
        """A rescue: from the sender's positive balance, clamped at the receiver's capacity.
        Returns what was credited; the rest stays with the sender."""
        amount = check_quantity(amount)
        self.require(to, "recipient")
        if frm == to:
            raise Refusal("cannot transfer compute to yourself", "invalid", "to")
        src = self.buckets[frm]
        have = src.peek(now)
        if have < amount:
            raise Refusal(f"insufficient compute: have {max(have, 0.0):.3f}, need {amount:.3f}", "insufficient",
                          "amount")
        self._keep_bucket(frm)
        self._keep_bucket(to)
        src.accrue(now)
        credited = self.buckets[to].credit(amount, now)
        src.balance -= credited
        self._notify_compute(to)
        return credited

    def transfer_rate(self, frm: str, to: str, amount: object, now: float) -> float:
        """Move rate (units/s) from one principal to another; returns the rate moved."""
        micro = check_rate(amount)
        self.move_rate(frm, to, micro, now)
        return micro / MICRO

    def move_rate(self, frm: str, to: str, micro: int, now: float) -> None:
        """Move `micro` micro-units of free rate (not backing slices), or refuse."""
        self.require(to, "recipient")
        if frm == to:
            raise Refusal("cannot transfer rate to yourself", "invalid", "to")
        have = self.rate_micro[frm] - self.sliced_micro.get(frm, 0)
        if have < micro:
            backing = " (the rest backs rate slices you own)" if self.sliced_micro.get(frm) else ""
            raise Refusal(f"insufficient rate: have {have / MICRO:g}{backing}, need {micro / MICRO:g}",
                          "insufficient", "amount")
        self._move_rate(frm, to, micro, now)

    def slice_rate(self, principal: str, amount: object) -> int:
        """Set aside rate to back a new slice the principal owns; returns micro-units."""
        rate: float = RATE.check(amount, "amount")
        micro = to_micro(rate)
        free = self.rate_micro[principal] - self.sliced_micro.get(principal, 0)
        if micro <= 0 or micro > free:
            raise Refusal(f"cannot slice {rate:g}: {free / MICRO:g} rate is free to slice", "insufficient", "amount")
        self.undo.item(self.sliced_micro, principal)
        self.sliced_micro[principal] = self.sliced_micro.get(principal, 0) + micro
        return micro

    def unslice_rate(self, principal: str, micro: int) -> None:
        self.undo.item(self.sliced_micro, principal)
        self.sliced_micro[principal] -= micro

    def move_slice(self, frm: str, to: str, micro: int, now: float) -> None:
        """Move the rate backing a rate-slice artifact with the artifact (rights service)."""
        if self.sliced_micro.get(frm, 0) < micro or self.rate_micro[frm] < micro:
            raise Refusal(f"{frm} does not back a slice of {micro / MICRO:g}", "invalid")
        self.undo.item(self.sliced_micro, frm)
        self.undo.item(self.sliced_micro, to)
        self.sliced_micro[frm] -= micro
        self.sliced_micro[to] = self.sliced_micro.get(to, 0) + micro
        self._move_rate(frm, to, micro, now)

    def _move_rate(self, frm: str, to: str, micro: int, now: float) -> None:
        undo = self.undo
        if undo.on:
            undo.item(self.rate_micro, frm)
            undo.item(self.rate_micro, to)
            self._keep_bucket(frm)
            self._keep_bucket(to)
        have = self.rate_micro[frm]
        self.rate_micro[frm] = have - micro
        self.rate_micro[to] += micro
        # Accrue first, then change: the new rates apply from this instant.
        self.buckets[frm].set_rate(self.rate_micro[frm] / MICRO, now)
        self.buckets[to].set_rate(self.rate_micro[to] / MICRO, now)
        self._notify_compute(frm)
        self._notify_compute(to)

    def set_capacity(self, principal: str, capacity: object, now: float) -> None:
        checked: float = CAPACITY.check(capacity, "capacity")
        self._keep_bucket(principal)
        self.buckets[principal].set_capacity(checked, now)
        self._notify_compute(principal)

    # -- disk and LLM budget ---------------------------------------------------------------
    def use_disk(self, principal: str, delta: int) -> None:
        """Account a change in stored bytes (negative frees)."""
        used = self.disk_used[principal] + delta
        quota = self.disk_quota[principal]
        if delta > 0 and used > quota:
            raise Refusal(f"disk quota exceeded: {used} of {quota} bytes", "quota")
        self.undo.item(self.disk_used, principal)
        self.disk_used[principal] = max(0, used)

    def spend_llm(self, dollars: float) -> None:
        if not (dollars >= 0 and math.isfinite(dollars)):
            raise Refusal(f"LLM cost must be >= 0, got {dollars!r}", "invalid")
        if self.llm_spent + dollars > self.llm_budget + 1e-12:
            raise Refusal(f"LLM budget exhausted: {self.llm_spent:.4f} of {self.llm_budget:.4f} spent", "budget")
        self.undo.attrs(self, "llm_spent")
        self.llm_spent += dollars

    # -- invariants ---------------------------------------------------------------------------
    @property
    def scrip_supply(self) -> int:
        return sum(self.scrip.values())

    @property
    def held_total(self) -> int:
        return sum(self.held.values())

    def invariants(self) -> dict[str, bool]:
        return {
            "scrip_conserved": self.scrip_supply + self.held_total == self.initial_scrip + self.minted,
            "scrip_non_negative": all(v >= 0 for v in self.scrip.values())
            and all(v >= 0 for v in self.held.values()),
            "scrip_integral": all(type(v) is int for v in self.scrip.values()),
            "rate_conserved": sum(self.rate_micro.values()) == self.total_rate_micro,
            "rates_match_buckets": all(
                self.buckets[p].rate == m / MICRO for p, m in self.rate_micro.items()
            ),
            "slices_backed": all(
                0 <= self.sliced_micro.get(p, 0) <= m for p, m in self.rate_micro.items()
            ),
            "disk_within_quota": all(
                self.disk_used[p] <= self.disk_quota[p] for p in self.disk_used
            ),
            "llm_within_budget": self.llm_spent <= self.llm_budget + 1e-9,
        }
