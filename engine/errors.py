"""Refusals: the one way an operation says no, with a reason a person can read."""

from __future__ import annotations


class Refusal(Exception):
    """An operation was refused and changed nothing.

    `code` is a short machine-readable class ("invalid", "unknown", "insufficient",
    "not_owner", "quota", "frozen", ...); `reason` is the sentence shown to people; `arg`,
    when the refusal is about one argument, names it (a form marks that field).
    """

    def __init__(self, reason: str, code: str = "refused", arg: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.arg = arg

    def __str__(self) -> str:
        return self.reason
