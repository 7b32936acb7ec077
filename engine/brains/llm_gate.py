"""Sharing one model endpoint among many LLM agents, and landing answers in a fixed order.

* `EndpointGate`: at most `limit` requests in flight to one endpoint; the others wait in
  one queue in the order they asked. An agent has at most one request at a time, so the
  queue is fair across agents: N agents on one local server take turns instead of timing
  out behind each other. A waiting agent can ask for its place (the UI shows it).
* `AnswerOrder`: under virtual time, answers are let through in the order their requests
  were made, whatever order the model finished them in, so a recorded run and its replay
  interleave identically.

Both are per event loop (an anyio `RunVar`): the primitives they wait on belong to a loop.
"""

from __future__ import annotations

from collections import deque

import anyio
from anyio.lowlevel import RunVar


class Ticket:
    """One request's place at a gate."""

    __slots__ = ("who", "admitted", "_event")

    def __init__(self, who: str) -> None:
        self.who = who
        self.admitted = False
        self._event = anyio.Event()


class EndpointGate:
    def __init__(self, endpoint: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a gate admits at least one request, got {limit!r}")
        self.endpoint = endpoint
        self.limit = limit
        self.in_flight = 0
        self.queue: deque[Ticket] = deque()
        self.admitted_total = 0
        self.waited_total = 0  # requests that had to queue

    async def enter(self, who: str) -> Ticket:
        """Wait for a place in flight (at once when there is room and nobody queues)."""
        ticket = Ticket(who)
        if self.in_flight < self.limit and not self.queue:
            self._admit(ticket)
            return ticket
        self.queue.append(ticket)
        self.waited_total += 1
        try:
            await ticket._event.wait()
        except BaseException:
            if ticket.admitted:
                self.leave(ticket)
            else:
                self.queue.remove(ticket)
            raise
        return ticket

    def _admit(self, ticket: Ticket) -> None:
        ticket.admitted = True
        self.in_flight += 1
        self.admitted_total += 1

    def leave(self, ticket: Ticket) -> None:
        """The request is done: the next in the queue goes."""
        if not ticket.admitted:
            return
        ticket.admitted = False
        self.in_flight -= 1
        while self.queue and self.in_flight < self.limit:
            nxt = self.queue.popleft()
            self._admit(nxt)
            nxt._event.set()

    def place(self, who: str) -> int | None:
        """1 for the next to go, 2 after it, ...; None when `who` is not queued."""
        for i, t in enumerate(self.queue, 1):
            if t.who == who:
                return i
        return None


_GATES: RunVar[dict[str, EndpointGate]] = RunVar("llm_endpoint_gates")


def gate_for(endpoint: str, limit: int) -> EndpointGate:
    """The loop's gate for an endpoint. Brains sharing an endpoint may ask for different
    limits; the gate keeps the smallest asked for (the server's own limit is what holds)."""
    try:
        gates = _GATES.get()
    except LookupError:
        gates = {}
        _GATES.set(gates)
    gate = gates.get(endpoint)
    if gate is None:
        gate = gates[endpoint] = EndpointGate(endpoint, limit)
    elif limit < gate.limit:
        gate.limit = limit
    return gate


class AnswerOrder:
    """Numbers requests as they are made and lets them finish in that order."""

    def __init__(self) -> None:
        self._issued = 0
        self._next = 0  # the number whose turn it is
        self._done: set[int] = set()
        self._waiting: dict[int, anyio.Event] = {}

    def issue(self) -> int:
        n = self._issued
        self._issued += 1
        return n

    async def turn(self, n: int) -> None:
        """Return once every request made before `n` has finished."""
        if n == self._next:
            return
        event = self._waiting[n] = anyio.Event()
        try:
            await event.wait()
        finally:
            self._waiting.pop(n, None)

    def finish(self, n: int) -> None:
        """`n` is done (answered, failed or cancelled): let the next one through."""
        self._done.add(n)
        while self._next in self._done:
            self._done.discard(self._next)
            self._next += 1
        event = self._waiting.get(self._next)
        if event is not None:
            event.set()


_ORDER: RunVar[AnswerOrder] = RunVar("llm_answer_order")


def answer_order() -> AnswerOrder:
    try:
        return _ORDER.get()
    except LookupError:
        order = AnswerOrder()
        _ORDER.set(order)
        return order


__all__ = ["AnswerOrder", "EndpointGate", "Ticket", "answer_order", "gate_for"]
