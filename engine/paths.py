"""Output paths checked before anything runs: a report, a new journal or an export that
could not be written is refused at the start, not found out after an hour's run."""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names the option and why."""


def check_output(path: str | Path, what: str, *, new: bool = False) -> Path:
    """`path` can be written as a file: its directory exists and is writable, and it is
    not itself a directory (nor, with `new`, anything at all)."""
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{what} {p} is a directory; name a file")
    if new and (p.exists() or p.is_symlink()):
        raise OutputPathError(f"{what} {p} exists: resume it with --resume, or choose a new file")
    if p.exists() and not p.is_file():
        raise OutputPathError(f"{what} {p} is not a regular file")
    parent = p.parent
    if not parent.exists():
        raise OutputPathError(f"{what} {p}: no such directory {parent}")
    if not parent.is_dir():
        raise OutputPathError(f"{what} {p}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {p}: cannot write in {parent}")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{what} {p} cannot be written")
    return p
