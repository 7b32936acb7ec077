"""Sharing one model endpoint among many LLM agents.

`EndpointGate`: at most `limit` requests in flight to one endpoint; the others wait in one
queue in the order they asked. An agent has at most one request at a time, so the queue is
fair across agents: N agents on one local server take turns instead of timing out behind
each other. A waiting agent can ask for its place (the UI shows it).

Gates are per event loop (an anyio `RunVar`): the events they wait on belong to a loop.
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


__all__ = ["EndpointGate", "Ticket", "gate_for"]
