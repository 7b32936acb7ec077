"""Debt contracts (SPEC §7): scrip debt is a contract artifact, never a negative balance.

The lender offers (the principal is held); the debtor accepts (the principal moves to the
debtor and simple interest starts) or declines; the lender may cancel an unaccepted offer.

    owed(t) = principal + floor(principal * rate_per_day * days_active(t)) - repaid

Payments go to whoever holds the contract now (its owner; while a claim is listed on the
market, its seller). At the due time the engine collects what the debtor has, up to what is
owed: paid in full -> `repaid`, otherwise `defaulted` with the outstanding amount recorded.
A defaulted debtor may still repay later. Defaults are public through `credit`.

Interest is exact. The rate is the decimal the lender wrote (`0.57` is 57/100, see
`engine.bounds.written`), and days_active(t) = (min(t, due) - accepted_at) / 86,400 is
computed on exact values: world times are floats of seconds, and a float is an exact
binary fraction, so `t` and `accepted_at` are taken as the fractions they are, and the due
time is accepted_at + due_in exactly (due_in, bounded to (0, 10^9] s, as the decimal
written). At and after the due time days_active is due_in / 86,400 whatever the clock's
rounding, so what is owed at due, principal + floor(principal * rate * due_in / 86,400),
is fixed when the loan is offered. An offer whose owed-at-due would pass 2^53 - 1 (the
largest scrip a number holds exactly) is refused at `offer`; `accept` checks everything
before it moves the principal, so it completes or changes nothing.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ..bounds import DUE_IN, MAX_SCRIP, SCRIP, exact, exact_time, shown, written
from ..errors import Refusal
from ..events import LoanEvent
from ..indexed import IndexedDict
from .base import GenesisArtifact, Param, method

if TYPE_CHECKING:
    from ..artifacts import Artifact
    from ..ports import Services, TimerHandle

HOLDER = "contracts"
DAY = 86_400
OPEN = ("active", "defaulted")
RATE_PER_DAY = exact(0, lambda cfg: cfg.contracts.max_rate_per_day, "per day")


def interest(principal: int, rate: Fraction, seconds: Fraction) -> int:
    """floor(principal * rate * seconds / 86,400), in integers."""
    if seconds <= 0 or rate == 0:
        return 0
    return (principal * rate.numerator * seconds.numerator) // (rate.denominator * seconds.denominator * DAY)


def elapsed(t: float, since: float) -> tuple[int, int]:
    """t - since, exactly, as (numerator, denominator): the floats' own binary fractions
    (`float.as_integer_ratio`), without building Fractions (what is owed is asked often)."""
    tn, td = t.as_integer_ratio()
    sn, sd = since.as_integer_ratio()
    return tn * sd - sn * td, td * sd


def owed_at_due(principal: int, rate: float, due_in: float) -> int:
    return principal + interest(principal, written(rate), written(due_in))


def due_time(accepted_at: float, due_in: float) -> float:
    """accepted_at + due_in as a float no earlier than the exact sum, so collection never
    runs before the loan is due."""
    exact_due = exact_time(accepted_at) + written(due_in)
    try:
        due = float(exact_due)
    except OverflowError:
        return math.inf
    if Fraction(due) < exact_due:
        due = math.nextafter(due, math.inf)
    return due


def _parties(art: Artifact) -> tuple[tuple[str, str], tuple[str, str]]:
    c = art.content  # (its lender and debtor never change)
    return ("lender", c["lender"]), ("debtor", c["debtor"])


class ContractsArtifact(GenesisArtifact):
    id = HOLDER
    description = "Loans as contract artifacts: offer, accept, decline, cancel, repay; collected at due."

    def __init__(self, world: Services) -> None:
        super().__init__(world)
        # Found by party too (`find(("lender", id))`, `("debtor", id)`): lenders and
        # borrowers look up their own loans at most turns.
        self.contracts: IndexedDict = IndexedDict(_parties)
        self._due: list[tuple[float, str]] = []  # (due time, contract id) of active contracts
        # The public credit record, as counters: settled contracts retire from memory (a
        # long world makes thousands), so the record cannot be recounted from them.
        self.credit: dict[str, dict[str, int]] = {}
        self._settled: deque[str] = deque()
        self.retired = 0
        self._collector: TimerHandle | None = None  # the scheduler's timer at the earliest due time
        self._ids = 0

    # -- a checkpoint's view of the contracts (the contracts themselves are artifacts) ------------
    @property
    def timer(self) -> TimerHandle | None:
        return self._collector

    def dump(self) -> dict[str, Any]:
        return {"contracts": list(self.contracts), "due": [list(e) for e in self._due], "credit": self.credit,
                "settled": list(self._settled), "retired": self.retired, "ids": self._ids,
                "timer": self._collector is not None}

    def load(self, state: dict[str, Any]) -> None:
        """Take back dumped books: the contracts are the store's artifacts of those ids."""
        store = self.world.artifacts.by_id
        ids = state["contracts"]
        if not isinstance(ids, list) or not all(isinstance(c, str) and c in store and store[c].kind == "contract"
                                                for c in ids):
            raise ValueError("the contracts name artifacts that are not contracts")
        due = state["due"]
        if not isinstance(due, list) or not all(isinstance(e, list) and len(e) == 2 and type(e[0]) in (float, int)
                                                and e[1] in ids for e in due):
            raise ValueError("the contracts' due times must be [time, contract] pairs")
        credit = state["credit"]
        if not isinstance(credit, dict) or not all(
                isinstance(r, dict) and all(type(n) is int for n in r.values()) for r in credit.values()):
            raise ValueError("the credit records must be tables of whole numbers")
        if not (type(state["retired"]) is int and type(state["ids"]) is int and isinstance(state["settled"], list)):
            raise ValueError("the contracts' counters must be whole numbers")
        self.contracts.clear()
        self.contracts.update((c, store[c]) for c in ids)
        self._due = [(float(t), c) for t, c in due]  # the heap's own order, as it was
        self.credit = {k: dict(v) for k, v in credit.items()}
        self._settled = deque(c for c in state["settled"] if isinstance(c, str))
        self.retired, self._ids = state["retired"], state["ids"]
        if state.get("timer"):
            self._collector = self.world.scheduler.timer(self._collect_due)

    # -- reading ----------------------------------------------------------------------------------
    def _contract(self, contract_id: object) -> dict[str, Any]:
        art = self.contracts.get(contract_id) if isinstance(contract_id, str) else None
        if art is None:
            raise Refusal(f"unknown contract {shown(contract_id)}", "unknown", "contract")
        return art.content

    def holder(self, contract_id: str) -> str:
        """Who is paid now: the claim's owner, or its seller while the market holds it."""
        art = self.contracts[contract_id]
        if art.owner == "market":
            return self.world.market.seller_of(contract_id) or art.owner
        return art.owner

    def owed(self, c: dict[str, Any], now: float) -> int:
        if c["status"] == "defaulted":
            return c["outstanding"]
        if c["status"] != "active":
            return 0
        principal, due_in, rate = c["principal"], written(c["due_in"]), written(c["rate_per_day"])
        en, ed = elapsed(float(now), float(c["accepted_at"]))
        if en <= 0 or rate == 0:
            return principal - c["repaid"]
        if en * due_in.denominator >= due_in.numerator * ed:  # at or past due: due_in exactly
            en, ed = due_in.numerator, due_in.denominator
        return principal + (principal * rate.numerator * en) // (rate.denominator * ed * DAY) - c["repaid"]

    # -- the lifecycle ------------------------------------------------------------------------------
    @method("offer", "Offer a loan: the principal is held until the debtor accepts or declines.",
            debtor="who may accept", principal=Param("the loan", SCRIP),
            rate_per_day=Param("simple interest per day, e.g. 0.05", RATE_PER_DAY),
            due_in=Param("from acceptance to due", DUE_IN))
    def offer(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        world = self.world
        debtor = world.ledger.require(args["debtor"], "debtor")
        if debtor == caller:
            raise Refusal("you cannot lend to yourself", "invalid", "debtor")
        if debtor in world.services:
            raise Refusal(f"{debtor} is a service and cannot borrow", "invalid", "debtor")
        principal, rate, due_in = args["principal"], args["rate_per_day"], args["due_in"]
        at_due = owed_at_due(principal, rate, due_in)
        if at_due > MAX_SCRIP:
            raise Refusal(f"this loan would owe {at_due} at due, more than the largest amount of scrip "
                          f"(2^53-1): lend less, for less time or at a lower rate", "invalid", "principal")
        if not math.isfinite(due_time(now, due_in)):
            raise Refusal(f"a due time {due_in:g} s from now cannot be represented on this world's clock",
                          "invalid", "due_in")
        n = self._ids + 1
        while f"loan-{n}" in world.artifacts or world.ledger.has(f"loan-{n}"):
            n += 1  # an id someone took for an artifact of their own: it cannot block lending
        world.ledger.hold(caller, principal, HOLDER)
        world.ledger.undo.attrs(self, "_ids")
        self._ids = n
        content = {
            "lender": caller, "debtor": debtor, "principal": principal, "rate_per_day": float(rate),
            "due_in": float(due_in), "due": None, "accepted_at": None, "status": "offered",
            "repaid": 0, "outstanding": 0, "owed_at_due": at_due, "offered_at": now, "history": [],
        }
        art = world.artifacts.create(caller, "contract", content, now, f"loan-{self._ids}", charge_disk=False)
        self._keep(art.id)
        self.contracts[art.id] = art
        self._log(art.id, content, "offered", principal, now)
        world.count("loan_offered")
        return {"contract": art.id, "owed_at_due": at_due}

    @method("accept", "Accept a loan offered to you: the principal is yours and interest starts.",
            contract="contract id")
    def accept(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        contract_id = args["contract"]
        c = self._contract(contract_id)
        self._require_party(c, caller, "debtor", "accept")
        self._require_status(c, contract_id, ("offered",))
        # Every figure first: the due time and what is owed then (fixed at the offer, and
        # re-derived here for contracts offered before it was recorded).
        due = due_time(now, c["due_in"])
        if not math.isfinite(due):
            raise Refusal(f"{contract_id}: its due time, {c['due_in']:g} s from now, cannot be represented on "
                          "this world's clock; nothing was changed", "invalid", "contract")
        at_due = owed_at_due(c["principal"], c["rate_per_day"], c["due_in"])
        if at_due > MAX_SCRIP:  # offered before offers were checked for it (an old journal)
            raise Refusal(f"{contract_id} would owe {at_due} at due, more than the largest amount of scrip; "
                          "nothing was changed", "invalid", "contract")
        if self.world.ledger.held.get(HOLDER, 0) < c["principal"]:  # the invariant says never
            raise Refusal(f"{contract_id}: its principal is not held; nothing was changed", "invalid")
        # Checked: from here on nothing can refuse.
        self._touch(c)
        self.world.ledger.release(HOLDER, c["principal"], caller)
        c["status"] = "active"
        c["accepted_at"] = now
        c["due"] = due
        c["owed_at_due"] = at_due
        self._count(caller, "borrowed", c["principal"])
        self._push_due(due, contract_id)
        self._log(contract_id, c, "accepted", c["principal"], now)
        self.world.count("loan_accepted")
        return {"contract": contract_id, "due": due, "owed_at_due": at_due}

    @method("decline", "Decline a loan offered to you; the lender gets the principal back.", contract="contract id")
    def decline(self, caller: str, args: dict[str, Any], now: float) -> None:
        c = self._contract(args["contract"])
        self._require_party(c, caller, "debtor", "decline")
        self._require_status(c, args["contract"], ("offered",))
        self._touch(c)
        self.world.ledger.release(HOLDER, c["principal"], c["lender"])
        c["status"] = "cancelled"
        self._log(args["contract"], c, "declined", c["principal"], now)
        self._settle(args["contract"], now)

    @method("cancel", "Withdraw your loan offer before it is accepted.", contract="contract id")
    def cancel(self, caller: str, args: dict[str, Any], now: float) -> None:
        c = self._contract(args["contract"])
        self._require_party(c, caller, "lender", "cancel")
        self._require_status(c, args["contract"], ("offered",))
        self._touch(c)
        self.world.ledger.release(HOLDER, c["principal"], c["lender"])
        c["status"] = "cancelled"
        self._log(args["contract"], c, "cancelled", c["principal"], now)
        self._settle(args["contract"], now)

    @method("repay", "Repay up to what you owe; the payment goes to the contract's holder.",
            contract="contract id", amount=Param("at most what is owed", SCRIP))
    def repay(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        contract_id = args["contract"]
        c = self._contract(contract_id)
        self._require_party(c, caller, "debtor", "repay")
        self._require_status(c, contract_id, OPEN)
        amount = args["amount"]
        owed = self.owed(c, now)
        if amount > owed:
            raise Refusal(f"{contract_id}: you owe {owed}, cannot repay {amount}", "invalid", "amount")
        have = self.world.ledger.scrip[caller]
        if amount > have and self.holder(contract_id) != caller:
            raise Refusal(f"insufficient scrip: have {have}, need {amount}", "insufficient", "amount")
        self._pay(contract_id, c, amount, now, "repayment")
        return {"contract": contract_id, "paid": amount, "owed": self.owed(c, now), "status": c["status"]}

    @method("owed", "What the debtor owes on a contract now.", contract="contract id")
    def owed_now(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        c = self._contract(args["contract"])
        return {"contract": args["contract"], "owed": self.owed(c, now), "status": c["status"],
                "holder": self.holder(args["contract"])}

    @method("credit", "A principal's public credit record.", principal="principal id")
    def credit(self, caller: str, args: dict[str, Any], now: float) -> dict[str, Any]:
        who = self.world.ledger.require(args["principal"])
        return self.credit_record(who, now)

    @method("mine", "Contracts where you are lender, debtor or holder.")
    def mine(self, caller: str, args: dict[str, Any], now: float) -> list[dict[str, Any]]:
        return [
            {"contract": cid, **{k: v for k, v in art.content.items() if k != "history"},
             "holder": self.holder(cid), "owed": self.owed(art.content, now)}
            for cid, art in self.contracts.items()
            if caller in (art.content["lender"], art.content["debtor"], self.holder(cid))
        ]

    def credit_record(self, who: str, now: float) -> dict[str, Any]:
        counts = self.credit.get(who, {})
        open_ = [a.content for a in self.contracts.find(("debtor", who)) if a.content["status"] in OPEN]
        return {
            "principal": who,
            "borrowed": counts.get("borrowed", 0),
            "active": sum(1 for c in open_ if c["status"] == "active"),
            "repaid": counts.get("repaid", 0),
            "defaulted": counts.get("defaulted", 0),
            "outstanding": sum(self.owed(c, now) for c in open_),
        }

    def _count(self, debtor: str, what: str, n: int = 1) -> None:
        undo = self.world.ledger.undo
        undo.item(self.credit, debtor)
        record = self.credit.setdefault(debtor, {})
        undo.item(record, what)
        record[what] = record.get(what, 0) + n

    def _settle(self, contract_id: str, now: float) -> None:
        """A contract is repaid or cancelled: past `keep_settled`, the oldest retire. A
        repaid loan is no longer a claim: if it was listed, the listing is withdrawn."""
        market = self.world.market
        undo = self.world.ledger.undo
        market.withdraw(contract_id, now)
        undo.items(self._settled)
        self._settled.append(contract_id)
        keep = self.world.config.contracts.keep_settled
        while len(self._settled) > keep:
            old = self._settled.popleft()
            if old in market.by_artifact:  # listed for sale: it stays while the listing is open
                self._settled.append(old)
                break
            undo.item(self.contracts, old)
            art = self.contracts.pop(old, None)
            if art is not None:
                undo.item(self.world.artifacts.by_id, old)
                undo.attrs(self, "retired")
                self.world.artifacts.by_id.pop(old, None)
                self.retired += 1

    # -- collection at due --------------------------------------------------------------------------
    def start(self) -> None:
        """Have the scheduler collect at the earliest due time (again after each change)."""
        due = self._due[0][0] if self._due else None
        if self._collector is None:
            self._collector = self.world.scheduler.call_at(due, self._collect_due)
        elif due != self._collector.due:
            self._collector.reschedule(due)

    def _collect_due(self, now: float) -> None:
        """Collect every contract whose due time has come (a timer of the scheduler)."""
        while self._due and self._due[0][0] <= now:
            _, contract_id = heapq.heappop(self._due)
            try:
                self.collect(contract_id, now)
            except Refusal as r:  # one contract's trouble must not stop the world
                self._log(contract_id, self.contracts[contract_id].content, f"collection refused: {r}", 0, now)
        self.start()

    def collect(self, contract_id: str, now: float) -> None:
        art = self.contracts.get(contract_id)
        if art is None:  # repaid early and retired since: nothing to collect
            return
        c = art.content
        if c["status"] != "active":
            return
        owed = self.owed(c, now)
        take = min(owed, self.world.ledger.scrip[c["debtor"]])
        if take:
            self._pay(contract_id, c, take, now, "collected")
        if c["status"] == "active":  # still owing after collection: a default
            c["status"] = "defaulted"
            c["outstanding"] = owed - take
            c["ever_defaulted"] = True
            self._count(c["debtor"], "defaulted")
            self.world.count("loan_defaulted")
            self._log(contract_id, c, "defaulted", c["outstanding"], now)

    def _pay(self, contract_id: str, c: dict[str, Any], amount: int, now: float, what: str) -> None:
        holder = self.holder(contract_id)
        self._touch(c)
        if holder != c["debtor"]:  # a debtor who bought its own claim settles without a transfer
            self.world.ledger.transfer_scrip(c["debtor"], holder, amount)
        c["repaid"] += amount
        if c["status"] == "defaulted":
            c["outstanding"] -= amount
        self._log(contract_id, c, what, amount, now, holder)
        if self.owed(c, now) == 0:
            c["status"] = "repaid"
            self._count(c["debtor"], "repaid")
            self.world.count("loan_repaid")
            self._log(contract_id, c, "repaid", c["repaid"], now, holder)
            self._settle(contract_id, now)

    # -- helpers --------------------------------------------------------------------------------------
    def _touch(self, c: dict[str, Any]) -> None:
        """Before a contract's terms or history change in a call (for the waist's undo)."""
        undo = self.world.ledger.undo
        if undo.on:
            undo.mapping(c)
            undo.items(c["history"])

    def _keep(self, contract_id: str) -> None:
        """Before a contract joins the books in a call."""
        self.world.ledger.undo.item(self.contracts, contract_id)

    def _push_due(self, due: float, contract_id: str) -> None:
        entry = (due, contract_id)
        self.world.ledger.undo.call(self._unpush_due, entry)
        heapq.heappush(self._due, entry)
        self.start()

    def _unpush_due(self, entry: tuple[float, str]) -> None:
        self._due.remove(entry)
        heapq.heapify(self._due)
        self.start()

    def _require_party(self, c: dict[str, Any], caller: str, role: str, verb: str) -> None:
        if c[role] != caller:
            raise Refusal(f"only the {role} ({c[role]}) may {verb} this contract, not {caller}", "not_owner", "contract")

    def _require_status(self, c: dict[str, Any], contract_id: str, allowed: tuple[str, ...]) -> None:
        if c["status"] not in allowed:
            raise Refusal(f"{contract_id} is {c['status']}; this needs it {' or '.join(allowed)}", "invalid", "contract")

    def _log(self, contract_id: str, c: dict[str, Any], what: str, amount: int, now: float,
             holder: str | None = None) -> None:
        holder = holder or self.holder(contract_id)
        c["history"].append({"t": now, "what": what, "amount": amount, "holder": holder})
        art = self.contracts[contract_id]
        self.world.ledger.undo.attrs(art, "updated", "version")
        art.updated = now
        art.version += 1
        self.world.bus.publish(LoanEvent(now, contract_id, what, c["lender"], c["debtor"], holder, amount, c["status"]))
