"""The artifact store: everything in the world is an artifact with one owner.

Only the owner may write or delete an artifact; ownership moves only by an explicit
transfer or a sale. Disk use is charged to the owner's quota in the ledger.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import Refusal
from .indexed import IndexedDict
from .plain import decode, encode

# Kinds an agent may write directly. Rights, contracts and genesis artifacts are made by
# the services that own their rules.
WRITABLE_KINDS = frozenset({"data", "code"})
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_CONTENT = 1_000_000


def content_size(content: Any) -> int:
    if isinstance(content, str):
        return len(content.encode())
    return len(json.dumps(content, sort_keys=True, default=str).encode())


@dataclass(slots=True)
class Artifact:
    id: str
    kind: str
    owner: str
    content: Any
    created: float
    updated: float
    size: int
    version: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    charged: bool = True  # its size counts against its owner's disk quota

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "owner": self.owner,
            "size": self.size,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
        }


def _owner(art: Artifact) -> tuple[str]:
    return (art.owner,)


class ArtifactStore:
    def __init__(self, ledger) -> None:
        self._ledger = ledger
        # Found by owner too (`owned_by`): brains ask what they own at most turns.
        self.by_id: IndexedDict = IndexedDict(_owner)
        self._counter = 0

    def __contains__(self, artifact_id: object) -> bool:
        return artifact_id in self.by_id

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, artifact_id: object, arg: str | None = "artifact") -> Artifact:
        """The artifact named by argument `arg` (as genesis methods call it), or a refusal."""
        art = self.by_id.get(artifact_id) if isinstance(artifact_id, str) else None
        if art is None:
            raise Refusal(f"unknown artifact {artifact_id!r}", "unknown", arg)
        return art

    # -- a checkpoint's view of the store ---------------------------------------------------------
    @property
    def counter(self) -> int:
        return self._counter

    @staticmethod
    def row(a: Artifact) -> list[Any]:
        """One artifact as plain values (content and meta tagged, see engine/plain.py)."""
        return [a.id, a.kind, a.owner, encode(a.content), a.created, a.updated, a.size, a.version, encode(a.meta),
                a.charged]

    def dump(self) -> dict[str, Any]:
        """Every artifact in the store's order."""
        return {"counter": self._counter, "artifacts": [self.row(a) for a in self.by_id.values()]}

    def load(self, state: dict[str, Any]) -> None:
        """Take back a dumped store, checked first; artifacts are new objects (services and
        agents link to them by id after this)."""
        rows, counter = state["artifacts"], state["counter"]
        if type(counter) is not int or not isinstance(rows, list):
            raise ValueError("the artifact store's dump has no counter or no artifacts")
        by_id: dict[str, Artifact] = {}
        for r in rows:
            if not (isinstance(r, list) and len(r) == 10 and all(type(r[i]) is str for i in (0, 1, 2))
                    and all(type(r[i]) in (float, int) for i in (4, 5)) and type(r[6]) is int
                    and type(r[7]) is int and type(r[9]) is bool):
                raise ValueError("a dumped artifact does not have the fields an artifact has")
            meta = decode(r[8])
            if not isinstance(meta, dict):
                raise ValueError(f"artifact {r[0]}: its meta must be a table")
            by_id[r[0]] = Artifact(r[0], r[1], r[2], decode(r[3]), r[4], r[5], r[6], r[7], meta, r[9])
        self.by_id.clear()
        self.by_id.update(by_id)
        self._counter = counter

    def owned_by(self, owner: str) -> list[Artifact]:
        """Its artifacts, in the store's order."""
        return self.by_id.find(owner)

    def _reown(self, art: Artifact, owner: str) -> None:
        def change() -> None:
            art.owner = owner
        self.by_id.reindex(art.id, change)

    def new_id(self, kind: str) -> str:
        self._ledger.undo.attrs(self, "_counter")
        while True:
            self._counter += 1
            candidate = f"{kind}-{self._counter}"
            if candidate not in self.by_id:
                return candidate

    def create(
        self,
        owner: str,
        kind: str,
        content: Any,
        now: float,
        artifact_id: str | None = None,
        meta: dict[str, Any] | None = None,
        charge_disk: bool = True,
    ) -> Artifact:
        if artifact_id is None:
            artifact_id = self.new_id(kind)
        elif not isinstance(artifact_id, str) or not ID_PATTERN.match(artifact_id):
            raise Refusal(
                f"invalid artifact id {artifact_id!r}: 1-64 letters, digits, '.', '_', ':' or '-'",
                "invalid",
            )
        elif artifact_id in self.by_id or self._ledger.has(artifact_id):
            raise Refusal(f"artifact {artifact_id!r} already exists", "exists")
        size = content_size(content)
        if size > MAX_CONTENT:
            raise Refusal(f"content too large: {size} bytes (max {MAX_CONTENT})", "invalid")
        if charge_disk:
            self._ledger.use_disk(owner, size)
        art = Artifact(artifact_id, kind, owner, content, now, now, size, meta=meta or {}, charged=charge_disk)
        self._ledger.undo.item(self.by_id, artifact_id)
        self.by_id[artifact_id] = art
        return art

    def check_owner(self, art: Artifact, principal: str, verb: str, arg: str | None = "artifact") -> None:
        if art.owner != principal:
            raise Refusal(
                f"cannot {verb} {art.id}: it is owned by {art.owner}, not {principal}",
                "not_owner", arg,
            )

    def overwrite(self, principal: str, artifact_id: str, content: Any, now: float) -> Artifact:
        art = self.get(artifact_id, "artifact_id")  # a write action's argument
        self.check_owner(art, principal, "write", "artifact_id")
        if art.kind not in WRITABLE_KINDS:
            raise Refusal(f"{art.id} is a {art.kind} artifact; its service changes it", "invalid")
        size = content_size(content)
        if size > MAX_CONTENT:
            raise Refusal(f"content too large: {size} bytes (max {MAX_CONTENT})", "invalid")
        if art.charged:
            self._ledger.use_disk(art.owner, size - art.size)
        self._ledger.undo.attrs(art, "content", "size", "updated", "version")
        art.content = content
        art.size = size
        art.updated = now
        art.version += 1
        return art

    def delete(self, principal: str, artifact_id: str) -> Artifact:
        art = self.get(artifact_id, "artifact_id")  # a delete action's argument
        self.check_owner(art, principal, "delete", "artifact_id")
        if art.kind not in WRITABLE_KINDS:
            raise Refusal(f"{art.id} is a {art.kind} artifact and cannot be deleted", "invalid")
        self._ledger.undo.item(self.by_id, artifact_id)
        del self.by_id[artifact_id]
        if art.charged:
            self._ledger.use_disk(art.owner, -art.size)
        return art

    def transfer(self, artifact_id: str, frm: str, to: str, now: float) -> Artifact:
        """Move ownership (and the disk it takes) from `frm` to `to`, or refuse."""
        art = self.get(artifact_id)
        self.check_owner(art, frm, "transfer")
        self._ledger.require(to, "recipient")
        if to == frm:
            raise Refusal("cannot transfer an artifact to its owner", "invalid")
        if art.kind == "genesis":
            raise Refusal(f"{art.id} is a genesis artifact and cannot change hands", "invalid")
        if art.charged:
            self._ledger.use_disk(to, art.size)  # refuses first if the receiver has no room
            self._ledger.use_disk(frm, -art.size)
        undo = self._ledger.undo
        undo.attrs(art, "updated")
        undo.call(self._reown, art, frm)
        self._reown(art, to)
        art.updated = now
        return art
