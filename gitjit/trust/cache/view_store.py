"""The trusted view kept in, and continued from, its snapshot (trust/cache/snapshot.py).

`TrustedBranch` decides what is trusted; this module only stores it and reads
it back. It offers the view three things:

1. `resume`: where a snapshot for the pinned root fits the tip (the tip
   descends from it, it went further than the tip, or both share a base),
   the view continued from it: cut at the tip's position, or extended by
   the commits after it. Otherwise None, and the view walks from the root.
2. `StoredView`: what the snapshot holds up to a position, read back as
   entries (trust/entries.py) only when asked for.
3. `save`: what a view learned beyond the snapshot it continued, as rows.

A row that does not read back (a disk fault, a bug) must not block anyone
for good: the snapshot is set aside at once and `SnapshotDamaged` fails the
check that met it (closed); the next check walks the branch from its root
and saves a new snapshot. The hook judges the push again at once
(server/pre_receive.py).

The rows are JSON in the snapshot's tables; a row read back is trusted as
the snapshot is (see its docstring), and the GnuPG verdicts it carries are
checked against the clock again by whoever uses them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime

from gitjit.errors import SnapshotDamaged
from gitjit.git.branch import ApprovalsBranch, cache_dir
from gitjit.model.grammar import from_timestamp
from gitjit.model.records import Decision, Request, Use
from gitjit.namedtuple import TYPE_CHECKING
from gitjit.reasons import Reason
from gitjit.trust.cache.snapshot import Head, Snapshot, is_damage
from gitjit.trust.entries import DecisionEntry, Refusal, RequestEntry
from gitjit.trust.signatures import SignatureCheck

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, TypeVar

    T = TypeVar("T")

    from gitjit.trust.trusted import TrustedBranch
    from gitjit.trust.uses import UseEntry


# What reading a damaged row raises: JSON that does not parse, a row without a field or with one of the
# wrong kind, and sqlite's own word that the file is damaged (snapshot.is_damage). Any other sqlite error
# (a lock held too long) fails the check without touching the file.
_ROW_FAULTS = (sqlite3.DatabaseError, ValueError, KeyError, TypeError, IndexError, AttributeError)


class StoredView:
    """What a snapshot holds of the view at its first `count` commits, read lazily.

    Every read goes through `_read`: a row that does not read back raises
    SnapshotDamaged once the snapshot is set aside (see the module docstring),
    and so does every later read of this view.
    """

    def __init__(self, snapshot: Snapshot, head: Head, count: int):
        self.snapshot = snapshot
        self.head = head  # where the snapshot itself ends
        self.count = count  # the commits of it this view takes
        self.damaged: str | None = None  # what did not read back: nothing more is read from this view

    def _read(self, what: str, read: Callable[[], T]) -> T:
        if self.damaged is not None:  # the file is gone, or another's: neither is this view's snapshot
            raise SnapshotDamaged(self.damaged)
        try:
            return read()
        except _ROW_FAULTS as exc:
            if isinstance(exc, sqlite3.DatabaseError) and not is_damage(exc):
                raise
            removed = self.snapshot.set_aside()
            self.damaged = (f"{what} in the snapshot {self.snapshot.path} does not read back "
                            f"({type(exc).__name__}: {exc}): "
                            + ("it was set aside, and the next check walks the approvals branch from its root"
                               if removed else "it could not be removed: remove it by hand"))
            raise SnapshotDamaged(self.damaged) from None

    def request_row(self, request_id: str) -> dict[str, Any] | None:
        rows = self._read(f"request {request_id}", lambda: _all_shaped(self.snapshot.request(request_id, self.count),
                                                                       "id"))
        return rows[0] if rows else None

    def request_ids(self) -> list[str]:
        return self._read("the request ids", lambda: self.snapshot.request_ids(self.count))

    def request_rows(self) -> list[dict[str, Any]]:
        return self._read("a request", lambda: _all_shaped(self.snapshot.all_requests(self.count), "id"))

    def request_rows_for(self, action: str, target: str) -> list[dict[str, Any]]:
        return self._read(f"a request for {action}",
                          lambda: _all_shaped(self.snapshot.requests_for(action, target, self.count), "id"))

    def decision_rows_for(self, request_id: str) -> list[dict[str, Any]]:
        return self._read(f"a decision on {request_id}",
                          lambda: _all_shaped(self.snapshot.decisions_for(request_id, self.count), "request_id"))

    def decision_rows(self) -> list[dict[str, Any]]:
        return self._read("a decision", lambda: _all_shaped(self.snapshot.all_decisions(self.count), "request_id"))

    def refusals(self) -> list[Refusal]:
        return self._read("a refusal", lambda: [Refusal(c, r, code) for c, r, code in
                                                 self.snapshot.refusals(self.count)])

    def policy_changes(self) -> list[tuple[str, str]]:
        return self._read("a policy change", lambda: [(commit, signer) for commit, signer in
                                                       self.snapshot.policy_changes(self.count)])

    def policy_document(self, blob_id: str) -> dict[str, Any] | None:
        return self.snapshot.policy_document(blob_id)  # None where unreadable: the blob is parsed again

    def use_entries(self) -> list[UseEntry]:
        """Every use record's entry, read at once (a view judges uses by count)."""
        return self._read("a use record", lambda: [self._use_entry(row) for row in self.snapshot.all_uses(self.count)])

    def request_entry(self, row: dict[str, Any], owner: TrustedBranch) -> RequestEntry:
        return self._read(f"request {row.get('id')}", lambda: self._request_entry(row, owner))

    def decision_entry(self, row: dict[str, Any], owner: TrustedBranch) -> DecisionEntry:
        return self._read("a decision", lambda: self._decision_entry(row, owner))

    @staticmethod
    def _request_entry(row: dict[str, Any], owner: TrustedBranch) -> RequestEntry:
        request = Request(row["id"], row["action"], row["target"], row["requested_by"], row["reason"],
                          from_timestamp(row["created"]), from_timestamp(row["expires"]),
                          break_glass=row.get("break_glass", False))
        return RequestEntry(request, row["commit"], row["blob"], row["position"], row["author_email"], row["signed"],
                            row["state_commit"], owner,
                            _signature=SignatureCheck.from_json(row["signature"]) if row["signature"] else None)

    @staticmethod
    def _use_entry(row: dict[str, Any]) -> UseEntry:
        from gitjit.trust.uses import UseEntry  # only a branch with use records pays for it

        entry = UseEntry(row["request_id"], row["number"], row["commit"], row["position"])
        entry.problem = Reason(*row["problem"]) if row["problem"] else None
        entry.use = Use(*row["use"]) if row["use"] else None
        entry.user = row["user"]
        entry.signed_at = from_timestamp(row["signed_at"]) if row["signed_at"] is not None else None
        return entry

    @staticmethod
    def _decision_entry(row: dict[str, Any], owner: TrustedBranch) -> DecisionEntry:
        return DecisionEntry(row["person"], row["request_id"], row["commit"], row["position"], row["state_commit"],
                             owner,
                             decision=Decision(*row["decision"]) if row["decision"] else None,
                             signature=SignatureCheck.from_json(row["signature"]) if row["signature"] else None,
                             problem=Reason(*row["problem"]) if row["problem"] else None)


def _all_shaped(rows: list[Any], key: str) -> list[dict[str, Any]]:
    """`rows` where each is a JSON object whose `key` is a string (what callers index by); TypeError
    otherwise, a JSON null included: a row is never skipped."""
    for row in rows:
        if not (isinstance(row, dict) and isinstance(row.get(key), str)):
            raise TypeError(f"a row that is not an object with a string {key!r}")
    return rows


def resume(branch: ApprovalsBranch, tip: str, root: str,
           open_view: Callable[[StoredView, str], TrustedBranch]) -> TrustedBranch | None:
    """The view at `tip` continued from the stored snapshot, or None where none fits.

    `open_view(stored, at)` makes the view of the stored part, ending at `at`;
    the commits after it are applied with its `extend`.
    """
    try:
        return _resume(branch, tip, root, open_view)
    except SnapshotDamaged:
        return None  # walked from the root, and saved afresh


def _resume(branch: ApprovalsBranch, tip: str, root: str,
            open_view: Callable[[StoredView, str], TrustedBranch]) -> TrustedBranch | None:
    snapshot = Snapshot.in_directory(cache_dir(branch))
    head = snapshot.head(root)
    if head is None:
        return None
    if head.tip == tip:
        return open_view(StoredView(snapshot, head, head.count), tip)
    if branch.is_ancestor(head.tip, tip):  # tip descends from the snapshot
        newer = branch.chain_back_to(tip, head.tip)
        if newer is not None:
            trusted = open_view(StoredView(snapshot, head, head.count), head.tip)
            trusted.extend(newer)
            return trusted
    elif branch.is_ancestor(tip, head.tip):  # the snapshot went further than tip
        older = branch.chain_back_to(head.tip, tip)
        if older is not None:
            return open_view(StoredView(snapshot, head, head.count - len(older)), tip)
    else:  # a sibling: the snapshot ends on a line that never landed (a push that lost a race)
        base = branch.merge_base(head.tip, tip)
        older = branch.chain_back_to(head.tip, base) if base else None
        newer = branch.chain_back_to(tip, base) if base else None
        if base is not None and older is not None and newer is not None:
            trusted = open_view(StoredView(snapshot, head, head.count - len(older)), base)
            trusted.extend(newer)
            return trusted
    return None


def save(branch: ApprovalsBranch, resumed: StoredView | None, head: Head, *, requests: list[RequestEntry],
         decisions: list[DecisionEntry], refusals: list[tuple[Refusal, int]],
         policy_changes: list[tuple[str, int, str]], policy_documents: dict[str, dict[str, Any]],
         uses: list[UseEntry]) -> bool:
    """Stores what a view learned beyond `resumed` (None: from the root), now ending at `head`.

    `refusals` and `policy_changes` carry each commit's position on the branch.
    False where nothing was written (the snapshot moved meanwhile, or cannot be written).
    """
    rows: dict[str, list[tuple[Any, ...]]] = {
        "requests": [(e.request.id, e.request.action, e.request.target, e.position, json.dumps(request_row(e)))
                     for e in requests],
        "decisions": [(e.commit, e.request_id, e.position, json.dumps(decision_row(e))) for e in decisions],
        "refusals": [(r.commit, position, r.reason, r.code) for r, position in refusals],
        "policy_changes": [(c, position, s) for c, position, s in policy_changes],
        "policy_documents": _json_rows(policy_documents),
        "uses": [(e.commit, e.request_id, e.position, json.dumps(use_row(e))) for e in uses],
    }
    snapshot = Snapshot.in_directory(cache_dir(branch))
    try:
        return snapshot.save(resumed.head if resumed else None, resumed.count if resumed else 0, head, rows)
    finally:
        snapshot.close()


def _json_rows(documents: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    rows = []
    for blob_id, document in documents.items():
        try:
            rows.append((blob_id, json.dumps(document)))
        except (TypeError, ValueError):
            pass  # not kept: the blob is parsed again next time
    return rows


def _time(value: datetime) -> int:
    return int(value.timestamp())


def request_row(entry: RequestEntry) -> dict[str, Any]:
    r = entry.request
    check = entry.known_signature
    return {
        "id": r.id, "action": r.action, "target": r.target, "requested_by": r.requested_by, "reason": r.reason,
        "created": _time(r.created), "expires": _time(r.expires),
        "commit": entry.commit, "blob": entry.blob, "position": entry.position,
        "author_email": entry.author_email, "signed": entry.signed, "state_commit": entry.state_commit,
        "signature": check.to_json() if check else None,
        "break_glass": r.break_glass,
    }


def use_row(entry: UseEntry) -> dict[str, Any]:
    return {
        "request_id": entry.request_id, "number": entry.number, "commit": entry.commit, "position": entry.position,
        "problem": list(entry.problem) if entry.problem else None, "use": list(entry.use) if entry.use else None,
        "user": entry.user, "signed_at": _time(entry.signed_at) if entry.signed_at else None,
    }


def decision_row(entry: DecisionEntry) -> dict[str, Any]:
    d = entry.decision
    return {
        "person": entry.person, "request_id": entry.request_id, "commit": entry.commit, "position": entry.position,
        "state_commit": entry.state_commit, "problem": list(entry.problem) if entry.problem else None,
        "decision": [d.request, d.request_blob, d.target, d.decision, d.comment] if d else None,
        "signature": entry.signature.to_json() if entry.signature else None,
    }
