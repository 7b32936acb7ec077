"""Scorers: how the oracle values a winning artifact, 0-100.

The default scorer is offline and deterministic: it rewards content that is long enough
and distinct from what it has already scored (word-set Jaccard similarity); an exact
duplicate of an already scored artifact scores 0. A scorer raises to say it could not
score (the oracle then refunds the winner and mints nothing).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import deque
from typing import Any, Protocol

WORD = re.compile(r"[A-Za-z0-9_]+")


class Scorer(Protocol):
    name: str

    def score(self, artifact_id: str, content: Any) -> int: ...


def _text(content: Any) -> str:
    return content if isinstance(content, str) else json.dumps(content, sort_keys=True, default=str)


class DistinctivenessScorer:
    """Half for length (distinct words, up to `enough_words`), half for distinctiveness."""

    name = "distinctiveness"

    def __init__(self, enough_words: int = 40, memory: int = 500) -> None:
        self.enough_words = enough_words
        # Every artifact ever scored, as a 16-byte digest: exact duplicates score 0 for ever.
        self._seen_hashes: set[bytes] = set()
        # The word sets of the last `memory` scored, for similarity. Each costs ~2.5 KB
        # (words interned, so shared between sets); 2,000 of them took a soak 16 hours
        # and 8 MB to fill.
        self._recent: deque[frozenset[str]] = deque(maxlen=memory)

    def score(self, artifact_id: str, content: Any) -> int:
        text = _text(content)
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        if digest in self._seen_hashes:
            return 0
        words = frozenset(sys.intern(w.lower()) for w in WORD.findall(text))
        length = min(1.0, len(words) / self.enough_words)
        similarity = 0.0
        if words:
            for other in self._recent:
                union = len(words | other)
                if union:
                    similarity = max(similarity, len(words & other) / union)
        self._seen_hashes.add(digest)
        self._recent.append(words)
        return int(round(100 * (0.5 * length + 0.5 * (1.0 - similarity)))) if words else 0

    # -- its memory, for the journal (a resumed world scores as the running one would) ----------
    def memory_mark(self) -> int:
        """Changes whenever the memory does (it only ever grows by one scored artifact)."""
        return len(self._seen_hashes)

    def memory(self) -> dict[str, list]:
        return {"seen": sorted(h.hex() for h in self._seen_hashes), "recent": [sorted(w) for w in self._recent]}

    def remember(self, memory: dict[str, list]) -> None:
        self._seen_hashes = {bytes.fromhex(h) for h in memory["seen"]}
        self._recent.clear()
        self._recent.extend(frozenset(sys.intern(w) for w in words) for words in memory["recent"])


class FailingScorer:
    """Fails every time: for tests and for worlds that want no minting."""

    name = "failing"

    def score(self, artifact_id: str, content: Any) -> int:
        raise RuntimeError("the scorer is unavailable")


SCORERS = {"distinctiveness": DistinctivenessScorer, "failing": FailingScorer}


def build_scorer(name: str) -> Scorer:
    try:
        return SCORERS[name]()
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; known: {', '.join(sorted(SCORERS))}") from None
