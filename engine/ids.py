"""Names the whole engine shares, each defined once: the principals that are not agents,
the order of agent ids, and the states an agent's loop passes through."""

from __future__ import annotations

from typing import Final

# The person at the keyboard: acts through the same waist as agents, never charged compute.
OPERATOR: Final = "operator"
# The world itself: the parent of the agents a world file creates, the owner of genesis
# artifacts' descriptions.
SYSTEM: Final = "system"


def agent_sort_key(agent_id: str) -> tuple[int, str]:
    """Ascending agent-id order: shorter ids first, so a0999 < a1000 and a10 > a9."""
    return (len(agent_id), agent_id)


# An agent's status (SPEC §3). Thinking, acting and sleeping are the loop's rhythm;
# the others stop it until something changes.
THINKING: Final = "thinking"
ACTING: Final = "acting"
SLEEPING: Final = "sleeping"
FROZEN: Final = "frozen"  # compute in debt: waits until the bucket pays it off
PAUSED: Final = "paused"
CRASHED: Final = "crashed"
STOPPED: Final = "stopped"
STATUSES: Final = (THINKING, ACTING, SLEEPING, FROZEN, PAUSED, CRASHED, STOPPED)
# Entering these is news worth an event; thawing and waking are the normal rhythm.
NEWSWORTHY: Final = frozenset({FROZEN, PAUSED, CRASHED, STOPPED})

__all__ = [
    "ACTING", "CRASHED", "FROZEN", "NEWSWORTHY", "OPERATOR", "PAUSED", "SLEEPING", "STATUSES", "STOPPED",
    "SYSTEM", "THINKING", "agent_sort_key",
]
