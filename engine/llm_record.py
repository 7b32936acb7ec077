"""Recorded LLM answers: what a request is keyed by, and a recording to answer from.

Every request an LLM brain makes is journalled with its answer (`llm_calls` in the
journal: the request's key, the agent, world time, model, parameters, the answer text or
the error, and the tokens). A request's key is a hash of everything the model sees (model,
messages, sampling parameters, the answer schema) and of how many times the same request
was asked before in the run, so a world that asks the same thing twice gets its two
answers in order.

`Recording.load(path)` reads a journal's answers (read-only; the file is untrusted and
every row is checked) so a world can be re-run answering each request from the record
and calling no model (`--llm-replay FILE.db`). Under virtual time the re-run is the
recorded run: the same prompts, the same answers, the same report.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LLM_CALLS_TABLE = (
    "CREATE TABLE IF NOT EXISTS llm_calls (n INTEGER PRIMARY KEY, key TEXT NOT NULL, agent TEXT NOT NULL, "
    "t REAL NOT NULL, model TEXT NOT NULL, params TEXT NOT NULL, answer TEXT, finish TEXT, "
    "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, "
    "error TEXT)"
)
COLUMNS = ("key", "agent", "t", "model", "params", "answer", "finish",
           "prompt_tokens", "completion_tokens", "cached_tokens", "error")
MAX_ANSWER = 1_000_000  # characters: a recorded answer longer than this is not one we wrote
MAX_ROWS = 5_000_000


class RecordingError(ValueError):
    """A file that cannot be replayed from; the message says why."""


def request_key(request: dict[str, Any], occurrence: int) -> str:
    """The key of a request: a hash of what the model is asked (canonical JSON) and of
    how many identical requests came before it in the run."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{occurrence}\n{text}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RecordedAnswer:
    """One recorded answer: the text (or the error the call ended in) and its tokens."""

    answer: str | None
    finish: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    error: str | None


def row_for(key: str, agent: str, t: float, model: str, params: dict[str, Any], got: RecordedAnswer) -> tuple:
    """A journal row in `COLUMNS` order."""
    return (key, agent, float(t), model, json.dumps(params, sort_keys=True, default=str), got.answer, got.finish,
            int(got.prompt_tokens), int(got.completion_tokens), int(got.cached_tokens), got.error)


def _nonneg_int(value: Any, what: str, n: int) -> int:
    if type(value) is not int or value < 0:
        raise RecordingError(f"recorded call {n}: {what} must be a whole number >= 0, got {value!r}")
    return value


def _opt_text(value: Any, what: str, n: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ANSWER:
        raise RecordingError(f"recorded call {n}: {what} must be text of at most {MAX_ANSWER:,} characters")
    return value


class Recording:
    """Answers by request key, each served at most once; counts what it served and missed."""

    def __init__(self, answers: dict[str, RecordedAnswer], source: str = "") -> None:
        self._answers = answers
        self.source = source
        self.served = 0
        self.missing = 0

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, key: str) -> RecordedAnswer | None:
        got = self._answers.pop(key, None)
        if got is None:
            self.missing += 1
        else:
            self.served += 1
        return got

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """The answers journalled in `path`, opened read-only and checked row by row."""
        path = Path(path)
        if not path.is_file():
            raise RecordingError(f"{path}: no such file to replay LLM answers from")
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as e:
            raise RecordingError(f"{path}: cannot open: {e}") from None
        try:
            try:
                has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'llm_calls'").fetchone()
            except sqlite3.DatabaseError as e:
                raise RecordingError(f"{path}: not a readable journal: {e}") from None
            if not has:
                raise RecordingError(f"{path}: the journal holds no recorded LLM calls (no llm_calls table)")
            answers: dict[str, RecordedAnswer] = {}
            try:
                rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM llm_calls ORDER BY n")
                for n, row in enumerate(rows, 1):
                    if n > MAX_ROWS:
                        raise RecordingError(f"{path}: more than {MAX_ROWS:,} recorded calls")
                    key, _agent, _t, _model, _params, answer, finish, pt, ct, cached, error = row
                    if not isinstance(key, str) or len(key) != 64:
                        raise RecordingError(f"recorded call {n}: a bad request key {key!r}")
                    got = RecordedAnswer(
                        _opt_text(answer, "the answer", n), _opt_text(finish, "finish_reason", n),
                        _nonneg_int(pt, "prompt_tokens", n), _nonneg_int(ct, "completion_tokens", n),
                        _nonneg_int(cached, "cached_tokens", n), _opt_text(error, "the error", n),
                    )
                    if (got.answer is None) == (got.error is None):
                        raise RecordingError(f"recorded call {n}: holds both an answer and an error, or neither")
                    answers[key] = got  # a key is unique per run: the occurrence is part of it
            except sqlite3.DatabaseError as e:
                raise RecordingError(f"{path}: the llm_calls table is unreadable: {e}") from None
        finally:
            db.close()
        return cls(answers, str(path))


__all__ = ["COLUMNS", "LLM_CALLS_TABLE", "RecordedAnswer", "Recording", "RecordingError", "request_key", "row_for"]
