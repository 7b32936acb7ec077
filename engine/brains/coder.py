"""The coder: writes small programs as code artifacts, prices them, and runs its own and
others' programs in its sandbox, so real CPU time turns into compute charges (and debt)."""

from __future__ import annotations

from typing import Any

from ..actions import Action, Invoke, Sleep, Write
from ..brain_params import CoderParams
from .base import Brain

# Programs a coder writes: each defines run(**args) and returns something JSON-compatible.
PROGRAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "primes": (
        "def run(n=2000):\n"
        "    sieve = bytearray([1]) * (n + 1)\n"
        "    sieve[0:2] = b'\\x00\\x00'\n"
        "    for i in range(2, int(n ** 0.5) + 1):\n"
        "        if sieve[i]:\n"
        "            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))\n"
        "    return sum(sieve)\n",
        {"n": 20000},
    ),
    "fib": (
        "def run(n=25):\n"
        "    a, b = 0, 1\n"
        "    for _ in range(n):\n"
        "        a, b = b, a + b\n"
        "    return a\n",
        {"n": 300},
    ),
    "sort": (
        "def run(n=1000, seed=1):\n"
        "    import random\n"
        "    r = random.Random(seed)\n"
        "    xs = [r.random() for _ in range(n)]\n"
        "    return sorted(xs)[n // 2]\n",
        {"n": 20000, "seed": 3},
    ),
    "words": (
        "def run(text='a b a'):\n"
        "    counts = {}\n"
        "    for w in text.split():\n"
        "        counts[w] = counts.get(w, 0) + 1\n"
        "    return max(counts.items(), key=lambda kv: (kv[1], kv[0]))\n",
        {"text": "scrip compute scrip debt oracle scrip"},
    ),
}


class Coder(Brain[CoderParams]):
    """Write a program, price it, then run programs (its own or others') now and then."""

    name = "coder"
    summary = "writes code artifacts and runs them in its sandbox"
    memory = ("written", "unpriced", "ran_last")

    Params = CoderParams

    def __init__(self, params, rng) -> None:
        super().__init__(params, rng)
        self.written: list[str] = []
        self.unpriced: list[str] = []
        self.ran_last = False

    def decide(self, view) -> Action:
        p = self.params
        last = view.last_result
        if last is not None and last.ok and isinstance(last.value, dict) and "version" in last.value:
            art = last.value["artifact_id"]
            if art not in self.written:
                self.written.append(art)
                self.unpriced.append(art)
        if self.unpriced:
            return Invoke("rights", "set_price", {"artifact": self.unpriced.pop(), "price": p.price})
        if len(self.written) < p.max_programs:
            name = sorted(PROGRAMS)[(len(self.written) + self.rng.randrange(len(PROGRAMS))) % len(PROGRAMS)]
            return Write(PROGRAMS[name][0], kind="code")
        if self.ran_last:
            self.ran_last = False
            return Sleep(seconds=p.pause * (0.5 + self.rng.random()))
        programs = view.code_artifacts()
        if not programs:
            return Sleep(seconds=p.pause)
        target = programs[int(self.rng.random() * len(programs))]
        args = next((a for src, a in PROGRAMS.values() if src == view.content_of(target)), {})
        self.ran_last = True
        return Invoke(target, "run", dict(args))
