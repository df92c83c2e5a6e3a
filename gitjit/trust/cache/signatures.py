"""Good signature verdicts kept between runs, so a second audit only checks what is new.

Checking a signature means running GnuPG, by far the slowest step of
authenticating a long approvals branch (docs/format.md, section 4). A verdict depends only
on the signed bytes, the signature, the keyring and the clock, so a good
one can be reused. The cache is an append-only JSON-lines file,
`$GIT_DIR/gitjit/signatures.jsonl`, and it fails closed:

1. Only good verdicts that GnuPG reached in this process are stored. A
   verdict read from the cache is never written back, and a negative one is
   never stored: it is cheap to reach again, and a passing failure (gpg
   could not run) must not stick to a good approval.
2. An entry is keyed by the commit id, the id of the `keys/` tree whose
   keyring checked it (the keyring's own directory name, see
   `Keyring.load_or_build`) and a SHA-256 of the exact payload and
   signature. Each line is `<sha256 of the JSON> <JSON>`, so a line is
   checked whole before it is parsed.
3. An entry is used only when it parses whole, its checksum matches, it is
   good, its primary key is in that keyring, and GnuPG would still say the
   same now: neither the primary key, the signing subkey nor the signature
   itself has expired since. Those expiries are the only ways a good verdict
   changes with time; a revocation changes the `keys/` tree, hence the key.
4. Anything else (an unreadable file, a torn or edited line) is ignored and
   the signature is checked again. The cache never makes a check fail: when
   it cannot be read or written, every signature is checked by GnuPG.

The file is as trustworthy as the keyrings beside it in `$GIT_DIR/gitjit/`:
whoever can write there can also replace a keyring.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from gitjit import reasons as R
from gitjit.namedtuple import TYPE_CHECKING
from gitjit.reasons import Reason
from gitjit.trust.signatures import CommitParts, Keyring, SignatureCheck

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

FILE_NAME = "signatures.jsonl"
FORMAT = 3  # 2: verdicts reached before weak algorithms were refused are checked again; 3: reason codes
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Job = tuple[str, CommitParts, Keyring]  # (commit id, its parts, the keyring that checks it)

_open_caches: dict[Path, SignatureCache] = {}
_open_lock = threading.Lock()


def _line(record: dict[str, Any]) -> bytes:
    """One cache line: the checksum of the JSON text, a space, the JSON text."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest().encode() + b" " + text


def _digest(parts: CommitParts) -> str:
    sha = hashlib.sha256()
    sha.update(len(parts.payload).to_bytes(8, "big"))
    sha.update(parts.payload)
    sha.update(parts.signature or b"")
    return sha.hexdigest()


def _keys_tree(keyring: Keyring) -> str | None:
    name = os.path.basename(keyring.home)
    return name if _HEX40.match(name) else None


class SignatureCache:
    def __init__(self, path: Path):
        self.path = path
        self._entries: dict[tuple[str, str, str], SignatureCheck] | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_directory(cls, directory: str | os.PathLike[str]) -> SignatureCache:
        """One cache object per file and process: a polling `gitjit run` reads the file once."""
        path = Path(directory) / FILE_NAME
        with _open_lock:
            cache = _open_caches.get(path)
            if cache is None:
                cache = _open_caches[path] = cls(path)
            return cache

    # -- the one entry point ---------------------------------------------------

    def check(self, jobs: Sequence[Job], verify: Callable[[list[Job]], list[SignatureCheck]],
              now: datetime | None = None) -> list[SignatureCheck]:
        """Verdicts for `jobs`: reusable ones from the cache, the rest from `verify` (GnuPG)."""
        now = now or datetime.now(UTC)  # GnuPG judges expiry by the real clock, never --at
        results: list[SignatureCheck | None] = [self.lookup(job, now) for job in jobs]
        todo = [i for i, found in enumerate(results) if found is None]
        if todo:
            fresh = verify([jobs[i] for i in todo])
            for i, check in zip(todo, fresh, strict=True):
                results[i] = check
        unchecked = SignatureCheck.refused(Reason(R.NOT_CHECKED, "signature was not checked"))
        checks = [found if found is not None else unchecked for found in results]  # all filled; else fails closed
        if todo:
            self.store([(jobs[i], checks[i]) for i in todo])
        return checks

    # -- reading ---------------------------------------------------------------

    def lookup(self, job: Job, now: datetime) -> SignatureCheck | None:
        commit_id, parts, keyring = job
        keys_tree = _keys_tree(keyring)
        if parts.signature is None or keys_tree is None:
            return None
        check = self._load().get((commit_id, keys_tree, _digest(parts)))
        if check is None or not self.still_good(check, keyring, now):
            return None
        return check

    @staticmethod
    def still_good(check: SignatureCheck, keyring: Keyring, now: datetime) -> bool:
        """Would GnuPG still say "good" with this keyring at `now`? (rule 3, also commands/audit.py's for its snapshot)"""
        if not check.good or check.primary_key is None or check.signing_key is None or check.created is None:
            return False
        key = keyring.keys.get(check.primary_key)
        if key is None or key.problem_at(check.signing_key, now) is not None:
            return False
        return check.expires is None or now < check.expires

    def _load(self) -> dict[tuple[str, str, str], SignatureCheck]:
        with self._lock:
            if self._entries is None:
                self._entries = {}
                try:
                    data = self.path.read_bytes()
                except OSError:
                    data = b""
                for line in data.split(b"\n"):
                    entry = self._parse(line)
                    if entry is not None:
                        self._entries[entry[0]] = entry[1]
            return self._entries

    @staticmethod
    def _parse(line: bytes) -> tuple[tuple[str, str, str], SignatureCheck] | None:
        """One line, checked whole; None for anything not exactly as written (rule 4)."""
        checksum, _, text = line.partition(b" ")
        if len(checksum) != 64 or hashlib.sha256(text).hexdigest().encode() != checksum:
            return None
        try:
            record = json.loads(text)
            if not isinstance(record, dict) or record.get("v") != FORMAT:
                return None
            commit_id, keys_tree, digest = record["commit"], record["keys"], record["digest"]
            if not (isinstance(commit_id, str) and _HEX40.match(commit_id) and isinstance(keys_tree, str)
                    and _HEX40.match(keys_tree) and isinstance(digest, str) and _HEX64.match(digest)):
                return None
            check = SignatureCheck.from_json(record["check"])
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError):
            return None
        if not check.good:
            return None
        return (commit_id, keys_tree, digest), check

    # -- writing ---------------------------------------------------------------

    def store(self, computed: list[tuple[Job, SignatureCheck]]) -> None:
        """Appends the good verdicts GnuPG just reached (rule 1)."""
        lines = []
        entries = self._load()
        for (commit_id, parts, keyring), check in computed:
            keys_tree = _keys_tree(keyring)
            if not check.good or parts.signature is None or keys_tree is None:
                continue
            key = (commit_id, keys_tree, _digest(parts))
            record = {"v": FORMAT, "commit": commit_id, "keys": keys_tree, "digest": key[2], "check": check.to_json()}
            with self._lock:
                entries[key] = check
            lines.append(_line(record))
        if lines:
            self._append(b"\n".join(lines) + b"\n")

    def _append(self, data: bytes) -> None:
        from gitjit.trust.cache import files as cachefiles

        with self._lock:
            try:
                cachefiles.make_dirs(str(self.path.parent))
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies
            except OSError:
                return  # a cache that cannot be written (read-only, another user's) only costs time
            try:
                cachefiles.adjust(str(self.path))  # as core.sharedRepository says
                size = os.fstat(fd).st_size
                if size:
                    # A torn last line (a crash mid-write) must not swallow the next entry.
                    with open(self.path, "rb") as handle:
                        handle.seek(size - 1)
                        if handle.read(1) != b"\n":
                            data = b"\n" + data
                while data:
                    data = data[os.write(fd, data):]
            except OSError:
                pass
            finally:
                os.close(fd)
