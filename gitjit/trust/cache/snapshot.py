"""A snapshot of the trusted view, so the next verifier resumes where the last one stopped.

A server hook runs on every push and the approvals branch only grows, so
authenticating it from the root each time would cost more with every
commit. Instead, what `TrustedBranch` learned up to a commit T (requests,
decisions with their GnuPG verdicts, refusals, policy changes, the policy
in force) is kept in `$GIT_DIR/gitjit/trusted.sqlite`, one line of history
at a time, and read back lazily: a tag push looks up the requests for its
action and target through an index and never loads the rest.

Why it is safe to reuse:
1. Everything stored is a function of T's id and the pinned root alone: a
   commit id fixes its whole ancestry, and nothing stored depends on the
   time of verification (freshness, expiry and key validity at `now` are
   judged afresh by `trust/verdicts.py` on every run). The parsed policy
   documents are a function of their blob's id alone, and are validated
   again whenever they are used.
2. The snapshot is used only for a tip that descends from T, or that T
   descends from (rows are then cut at the tip's position), found by
   walking the first-parent chain; otherwise the branch is authenticated
   from the root again.
3. A snapshot written by another gitjit format, for another root, or that
   cannot be read whole is ignored, never trusted; writes are one sqlite
   transaction that first checks nobody else moved the snapshot.
The file is as trustworthy as the keyrings and hooks beside it: whoever can
write to `$GIT_DIR` can replace those too.
"""

from __future__ import annotations

import json
import os
import sqlite3

from gitjit.namedtuple import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

FILE_NAME = "trusted.sqlite"
FORMAT = "gitjit-trusted-6"  # 4: weak signatures no longer count (trust/signatures.py); 5: reason codes;
# 6: use records and break-glass requests have rows (an older gitjit would read such a snapshot without them)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, action TEXT NOT NULL, target TEXT NOT NULL, position INTEGER NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS requests_by_target ON requests (action, target);
CREATE TABLE IF NOT EXISTS decisions (
    commit_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, position INTEGER NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_by_request ON decisions (request_id);
CREATE TABLE IF NOT EXISTS refusals (commit_id TEXT PRIMARY KEY, position INTEGER NOT NULL, reason TEXT NOT NULL, code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy_changes (
    commit_id TEXT PRIMARY KEY, position INTEGER NOT NULL, signer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS policy_documents (blob_id TEXT PRIMARY KEY, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uses (
    commit_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, position INTEGER NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS uses_by_position ON uses (position);
CREATE INDEX IF NOT EXISTS requests_by_position ON requests (position);
CREATE INDEX IF NOT EXISTS decisions_by_position ON decisions (position);
CREATE INDEX IF NOT EXISTS refusals_by_position ON refusals (position);
CREATE INDEX IF NOT EXISTS policy_changes_by_position ON policy_changes (position);
"""
# The position indexes keep `save` (DELETE ... WHERE position >= ?) and the bounded reads from scanning
# every row: at 100,000 requests a one-request push's save took 45 ms without them, 1 ms with.
_TABLES = ("requests", "decisions", "refusals", "policy_changes", "uses")


class Head(NamedTuple):
    """Where a stored snapshot ends."""

    root: str
    tip: str
    # commits from the root to the tip, both included; the field hides tuple.count, which
    # collections.namedtuple allows and typing's NamedTuple (what mypy sees) does not
    count: int  # type: ignore[assignment]


class Snapshot:
    def __init__(self, path: str):
        self.path = path
        self._db: sqlite3.Connection | None = None

    @classmethod
    def in_directory(cls, directory: str) -> Snapshot:
        return cls(os.path.join(directory, FILE_NAME))

    def _connect(self, create: bool = False) -> sqlite3.Connection | None:
        if self._db is None:
            exists = os.path.exists(self.path)
            if not create and not exists:
                return None
            if create:
                from gitjit.trust.cache import files as cachefiles

                cachefiles.make_dirs(os.path.dirname(self.path))
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            try:
                db.executescript(_SCHEMA)
            except sqlite3.OperationalError:
                if create or not _read_only(db):
                    db.close()
                    raise
                # a snapshot this user may read but not write (another user's): read as it is
            if create and not exists:
                _share(self.path)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def head(self, root: str) -> Head | None:
        """The stored snapshot's end, when it is of this format and this root."""
        try:
            db = self._connect()
            if db is None:
                return None
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT or meta.get("root") != root:
                return None
            return Head(root, meta["tip"], int(meta["count"]))
        except (sqlite3.Error, KeyError, ValueError, OSError):
            return None

    # -- reading, cut at a position ----------------------------------------

    def _rows(self, query: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        db = self._connect()
        return [] if db is None else db.execute(query, args).fetchall()

    def request(self, request_id: str, limit: int) -> list[Any]:
        """The request's row, as a list of one (none where there is no such request)."""
        rows = self._rows("SELECT row FROM requests WHERE id = ? AND position < ?", (request_id, limit))
        return [json.loads(r[0]) for r in rows]

    def requests_for(self, action: str, target: str, limit: int) -> list[dict[str, Any]]:
        rows = self._rows("SELECT row FROM requests WHERE action = ? AND target = ? AND position < ? ORDER BY position",
                          (action, target, limit))
        return [json.loads(r[0]) for r in rows]

    def all_requests(self, limit: int) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._rows(
            "SELECT row FROM requests WHERE position < ? ORDER BY position", (limit,))]

    def request_ids(self, limit: int) -> list[str]:
        return [r[0] for r in self._rows("SELECT id FROM requests WHERE position < ? ORDER BY position", (limit,))]

    def decisions_for(self, request_id: str, limit: int) -> list[dict[str, Any]]:
        rows = self._rows("SELECT row FROM decisions WHERE request_id = ? AND position < ? ORDER BY position",
                          (request_id, limit))
        return [json.loads(r[0]) for r in rows]

    def all_decisions(self, limit: int) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._rows(
            "SELECT row FROM decisions WHERE position < ? ORDER BY position", (limit,))]

    def all_uses(self, limit: int) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._rows("SELECT row FROM uses WHERE position < ? ORDER BY position",
                                                      (limit,))]

    def policy_document(self, blob_id: str) -> dict[str, Any] | None:
        """A policy.toml blob as TOML parsed it, kept so a push need not load a TOML parser.

        Keyed by the blob's id, so it holds for every position; None where it
        is missing or unreadable (the blob is then parsed again).
        """
        try:
            rows = self._rows("SELECT document FROM policy_documents WHERE blob_id = ?", (blob_id,))
            document = json.loads(rows[0][0]) if rows else None
        except (sqlite3.Error, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def refusals(self, limit: int) -> list[tuple[str, str, str]]:
        return self._rows("SELECT commit_id, reason, code FROM refusals WHERE position < ? ORDER BY position",
                          (limit,))

    def policy_changes(self, limit: int) -> list[tuple[str, str]]:
        return self._rows("SELECT commit_id, signer FROM policy_changes WHERE position < ? ORDER BY position", (limit,))

    # -- writing -------------------------------------------------------------

    def save(self, expected: Head | None, keep: int, head: Head, rows: dict[str, list[tuple[Any, ...]]]) -> bool:
        """Replaces everything from position `keep` on with `rows`, ending at `head`.

        Refuses (returns False) when the stored snapshot is no longer the
        `expected` one: another process moved it meanwhile. A file sqlite
        cannot read as a database is removed and written afresh.
        """
        saved = self._save(expected, keep, head, rows)
        if saved is None:
            self.set_aside()
            saved = self._save(expected, keep, head, rows)
        return bool(saved)

    def _save(self, expected: Head | None, keep: int, head: Head, rows: dict[str, list[tuple[Any, ...]]]) -> bool | None:
        """`save` once; None when the file turned out not to be a readable database."""
        try:
            db = self._connect(create=True)
            if db is None:  # create=True always connects; not saved only costs time
                return False
            db.execute("BEGIN IMMEDIATE")
            try:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
                current = (meta.get("format"), meta.get("root"), meta.get("tip"))
                wanted = (FORMAT, expected.root, expected.tip) if expected else None
                if wanted is not None and current != wanted:
                    db.execute("ROLLBACK")
                    return False
                if wanted is None:
                    keep = 0
                    db.execute("DELETE FROM policy_documents")
                for table in _TABLES:
                    db.execute(f"DELETE FROM {table} WHERE position >= ?", (keep,))
                db.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", rows["requests"])
                db.executemany("INSERT INTO decisions VALUES (?, ?, ?, ?)", rows["decisions"])
                db.executemany("INSERT INTO refusals VALUES (?, ?, ?, ?)", rows["refusals"])
                db.executemany("INSERT INTO policy_changes VALUES (?, ?, ?)", rows["policy_changes"])
                db.executemany("INSERT INTO uses VALUES (?, ?, ?, ?)", rows.get("uses", []))
                db.executemany("INSERT OR REPLACE INTO policy_documents VALUES (?, ?)", rows.get("policy_documents", []))
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("format", FORMAT), ("root", head.root), ("tip", head.tip), ("count", str(head.count))])
                db.execute("COMMIT")
                return True
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            return None if is_damage(exc) else False
        except OSError:
            return False  # a snapshot that cannot be written (read-only, another user's, a full disk) only costs time

    def set_aside(self) -> bool:
        """Removes a damaged snapshot (not a database, or rows that do not read back) and its journal:
        the next run walks afresh and saves a new one. False where the file could not be removed
        (another user's, a read-only folder)."""
        self.close()
        gone = True
        for path in (self.path, self.path + "-journal"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # another process removed it first
            except OSError:
                if path == self.path:
                    gone = False
        return gone


_DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether sqlite says the file itself is damaged (not a lock held too long, not a full disk)."""
    return getattr(exc, "sqlite_errorname", "") in _DAMAGED


def _share(path: str) -> None:
    """A new snapshot file, as core.sharedRepository says (sqlite gives its journals the same mode)."""
    from gitjit.trust.cache import files as cachefiles

    try:
        cachefiles.adjust(path)
    except OSError:
        pass  # it stays as the umask made it: others read it, and rebuild what they cannot save


def _read_only(db: sqlite3.Connection) -> bool:
    """Whether sqlite could open the file for reading only (this user may not write it)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        return getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY")
    db.execute("ROLLBACK")
    return False

