"""Commit signatures: the signed payload, an isolated keyring, GnuPG's verdict (SPEC s.2).

Three jobs, in the order a verifier needs them:

1. `split_commit` rebuilds the bytes git signed from the raw commit object
   (the object minus its `gpgsig` header) and refuses objects git itself
   would read ambiguously: a NUL byte, a repeated `tree`/`author`/
   `committer` header, a second signature header.
2. `Keyring` is a GnuPG home owned by gitjit that holds exactly the keys of
   one `keys/` tree, built once per tree id (git's content hash) and reused.
3. `Keyring.verify` decides from GnuPG's status lines and exit code only:
   exactly one signature, GOODSIG and VALIDSIG for it, nothing else that
   signals a problem. Human-readable output is sent to /dev/null.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone

from .names import FINGERPRINT_RE, from_timestamp
from .tuples import NamedTuple

SIGNATURE_HEADERS = (b"gpgsig", b"gpgsig-sha256")
SINGLE_HEADERS = (b"tree", b"author", b"committer")
# Status keywords that make a signature not count, whatever else is said.
# The most specific first: gpg says ERRSIG before NO_PUBKEY for an unknown
# key, and "signature by unknown key" is the reason worth reporting.
FATAL_STATUS = {
    "BADSIG": "bad signature",
    "NO_PUBKEY": "signature by unknown key",
    "EXPSIG": "signature has expired",
    "EXPKEYSIG": "signature by an expired key",
    "REVKEYSIG": "signature by a revoked key",
    "ERRSIG": "signature could not be checked",
    "FAILURE": "gpg reported a failure",
    "ERROR": "gpg reported an error",
}
_GPG_OPTIONS = [
    "--no-autostart",  # never start an agent or dirmngr for verification
    "--no-auto-key-retrieve",
    "--auto-key-locate", "clear,local",
    "--trust-model", "always",  # trust comes from the policy only (SPEC s.2)
    "--no-permission-warning",
    "--logger-file", os.devnull,  # human text is never read: status lines only
]


_META = "gitjit-keys.json"  # what the keyring holds, beside it: read without starting gpg


class MalformedCommit(Exception):
    """A commit object that must not count, whatever its signature says."""


class CommitParts(NamedTuple):
    payload: bytes  # what the signature covers
    signature: bytes | None
    author_email: str
    committer_time: datetime


def _ident(value: bytes) -> tuple[str, int]:
    """`Name <email> 1700000000 +0000` -> (email, timestamp)."""
    # At most 11 digits and no sign (git writes none): every such time is a datetime
    # (up to year 5138), so no ValueError or OverflowError escapes as anything but this.
    match = re.match(rb"^.*<([^<>]*)> ([0-9]{1,11}) [-+][0-9]{4}$", value)
    if not match:
        raise MalformedCommit("malformed identity line")
    return match.group(1).decode("utf-8", "replace"), int(match.group(2))


def split_commit(raw: bytes) -> CommitParts:
    if b"\0" in raw:
        raise MalformedCommit("commit object contains a NUL byte")
    head, sep, _message = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    seen: dict[bytes, int] = {}
    payload_lines: list[bytes] = []
    signature_lines: list[bytes] = []
    in_signature = False
    headers: dict[bytes, bytes] = {}
    for line in lines:
        if line.startswith(b" "):
            (signature_lines if in_signature else payload_lines).append(line[1:] if in_signature else line)
            continue
        name, _, value = line.partition(b" ")
        seen[name] = seen.get(name, 0) + 1
        headers.setdefault(name, value)
        in_signature = name in SIGNATURE_HEADERS
        if in_signature:
            signature_lines.append(value)
        else:
            payload_lines.append(line)
    for name in SINGLE_HEADERS:
        if seen.get(name, 0) != 1:
            raise MalformedCommit(f"commit object has {seen.get(name, 0)} '{name.decode()}' headers")
    signature_headers = sum(seen.get(name, 0) for name in SIGNATURE_HEADERS)
    if signature_headers > 1:
        raise MalformedCommit("commit object has more than one signature header")
    if seen.get(b"gpgsig-sha256"):
        raise MalformedCommit("commit object carries a gpgsig-sha256 header in a sha1 repository")
    payload = b"\n".join(payload_lines) + sep + raw[len(head) + len(sep):]
    email, _ = _ident(headers[b"author"])
    _, committed = _ident(headers[b"committer"])
    return CommitParts(
        payload=payload,
        signature=b"\n".join(signature_lines) + b"\n" if signature_lines else None,
        author_email=email,
        committer_time=from_timestamp(committed),
    )


class KeyInfo(NamedTuple):
    """What `keys/` says about one primary key and its subkeys."""

    fingerprint: str
    expires: int | None
    revoked: bool
    subkeys: dict[str, tuple[int | None, bool]]  # fpr -> (expires, revoked)

    def problem_at(self, signing_key: str, now: datetime) -> str | None:
        """Why this key cannot sign at `now`, judged from the key material."""
        short = self.fingerprint[-16:]
        if self.revoked:
            return f"key {short} is revoked"
        if self.expires is not None and now.timestamp() >= self.expires:
            return f"key {short} expired at {from_timestamp(self.expires):%Y-%m-%d %H:%M}Z"
        if signing_key != self.fingerprint:
            if signing_key not in self.subkeys:
                return f"signing key {signing_key[-16:]} is not a subkey of {short}"
            expires, revoked = self.subkeys[signing_key]
            if revoked:
                return f"signing subkey {signing_key[-16:]} is revoked"
            if expires is not None and now.timestamp() >= expires:
                return f"signing subkey {signing_key[-16:]} expired at {from_timestamp(expires):%Y-%m-%d %H:%M}Z"
        return None


class SignatureCheck(NamedTuple):
    """GnuPG's verdict on one signature, before any policy is applied."""

    good: bool
    reason: str = ""  # why not good
    signing_key: str | None = None  # fingerprint of the key that signed (maybe a subkey)
    primary_key: str | None = None  # VALIDSIG's last field
    created: datetime | None = None  # the signature creation time S
    expires: datetime | None = None  # the signature's own expiry (VALIDSIG), None when it has none

    def to_json(self) -> dict:
        return {
            "good": self.good,
            "reason": self.reason,
            "signing_key": self.signing_key,
            "primary_key": self.primary_key,
            "created": self.created.timestamp() if self.created else None,
            "expires": self.expires.timestamp() if self.expires else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> "SignatureCheck":
        created, expires = data.get("created"), data.get("expires")
        return cls(
            good=bool(data["good"]),
            reason=data.get("reason", ""),
            signing_key=data.get("signing_key"),
            primary_key=data.get("primary_key"),
            created=from_timestamp(int(created)) if created is not None else None,
            expires=from_timestamp(int(expires)) if expires is not None else None,
        )


def judge_status(lines: list[tuple[str, str]], returncode: int | None) -> SignatureCheck:
    """The verdict from GnuPG's status lines and exit code, nothing else."""
    counts: dict[str, int] = {}
    for keyword, _ in lines:
        counts[keyword] = counts.get(keyword, 0) + 1
    for fatal, reason in FATAL_STATUS.items():
        value = next((v for keyword, v in lines if keyword == fatal), None)
        if value is not None:
            key = value.split()[0] if value.split() else "?"
            return SignatureCheck(False, f"{reason} {key}")
    if counts.get("NEWSIG", 0) > 1 or counts.get("GOODSIG", 0) > 1 or counts.get("VALIDSIG", 0) > 1:
        return SignatureCheck(False, "more than one signature")
    if counts.get("GOODSIG") != 1 or counts.get("VALIDSIG") != 1:
        return SignatureCheck(False, "no good signature")
    if returncode != 0:
        return SignatureCheck(False, f"gpg exited with {returncode}")
    good_key = next(value for keyword, value in lines if keyword == "GOODSIG").split()[0].upper()
    fields = next(value for keyword, value in lines if keyword == "VALIDSIG").split()
    if len(fields) < 10:
        return SignatureCheck(False, "VALIDSIG without a primary-key fingerprint")
    signing_key, timestamp, sig_class, primary = fields[0].upper(), fields[2], fields[8], fields[9].upper()
    if not (FINGERPRINT_RE.match(signing_key) and FINGERPRINT_RE.match(primary)):
        return SignatureCheck(False, "VALIDSIG carries a malformed fingerprint")
    if not signing_key.endswith(good_key):
        return SignatureCheck(False, "GOODSIG and VALIDSIG name different keys")
    if sig_class != "00":
        return SignatureCheck(False, f"signature class {sig_class} is not a binary document signature")
    created = _parse_status_time(timestamp)
    if created is None:
        return SignatureCheck(False, f"unreadable signature time {timestamp!r}")
    expires = None if fields[3] in ("", "0") else _parse_status_time(fields[3])
    if fields[3] not in ("", "0") and expires is None:
        return SignatureCheck(False, f"unreadable signature expiry {fields[3]!r}")
    return SignatureCheck(True, "", signing_key, primary, created, expires)


def _parse_status_time(value: str) -> datetime | None:
    if value.isdigit():
        return from_timestamp(int(value))
    try:  # GnuPG may print ISO 8601 basic format, always UTC
        return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=from_timestamp(0).tzinfo)
    except ValueError:
        return None


_STATUS_PREFIX = b"[GNUPG:] "


def status_lines(output: bytes) -> list[tuple[str, str]]:
    """(keyword, value) of every status line in gpg's `--status-fd` output, in order."""
    lines = []
    for line in output.splitlines():
        if line.startswith(_STATUS_PREFIX):
            keyword, _, value = line[len(_STATUS_PREFIX):].decode("utf-8", "replace").partition(" ")
            lines.append((keyword, value))
    return lines


class Keyring:
    """An isolated GnuPG home holding exactly the keys of one `keys/` tree.

    `owners` maps each person to the primary fingerprints found in their own
    `keys/<person>.asc`: a key counts for a person only from their own file.
    """

    def __init__(self, home: str, owners: dict[str, frozenset[str]], keys: dict[str, KeyInfo]):
        self.home = home
        self.owners = owners
        self.keys = keys
        self._gpg = None

    @property
    def gpg(self):
        if self._gpg is None:
            import gnupg  # imported late: the hook pays for it only when it verifies

            self._gpg = gnupg.GPG(gnupghome=self.home, options=list(_GPG_OPTIONS))
        return self._gpg

    def verify(self, payload: bytes, signature: bytes, at: datetime | None = None) -> SignatureCheck:
        """GnuPG's verdict now, or with its clock set to `at` (--faked-system-time)."""
        try:
            return judge_status(*self._status_lines(payload, signature, at))
        except Exception as exc:  # fail closed: any error means "does not count"
            return SignatureCheck(False, f"signature could not be checked: {exc}")

    def verify_when_made(self, payload: bytes, signature: bytes) -> SignatureCheck:
        """GnuPG's verdict as of the signature's own creation time.

        For the policy chain only (docs/decisions.md): a policy commit made
        with a key that has expired since is judged as GnuPG judged it then,
        so an old admin key expiring never stops the branch from verifying.
        Only an expired key is reconsidered; every other verdict stands, and
        the time is the one the signature claims: the caller must bound it.
        """
        try:
            lines, returncode = self._status_lines(payload, signature)
        except Exception as exc:  # fail closed
            return SignatureCheck(False, f"signature could not be checked: {exc}")
        check = judge_status(lines, returncode)
        validsig = [value.split() for keyword, value in lines if keyword == "VALIDSIG"]
        if check.good or not any(keyword == "EXPKEYSIG" for keyword, _ in lines) or len(validsig) != 1:
            return check
        signed = _parse_status_time(validsig[0][2]) if len(validsig[0]) > 2 else None
        if signed is None:
            return check
        return self.verify(payload, signature, at=signed)

    def _status_lines(self, payload: bytes, signature: bytes,
                      at: datetime | None = None) -> tuple[list[tuple[str, str]], int | None]:
        import subprocess
        import tempfile  # here, not at the top: a tag push that only reads verdicts never needs it

        extra = ["--faked-system-time", at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S!")] if at else []
        fd, sig_path = tempfile.mkstemp(prefix="sig-", dir=self.home)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(signature)
            # python-gnupg makes the command line (its gpg binary, --status-fd 2, --batch,
            # --homedir, our options); the I/O is one subprocess.run. Its verify_data
            # starts three threads per signature, which cost an audit of thousands of
            # signatures a third of its throughput (docs/decisions.md).
            command = self.gpg.make_args(["--verify", *extra, sig_path, "-"], False)
            result = subprocess.run(command, input=payload, capture_output=True, env=self.gpg.env)
            return status_lines(result.stderr), result.returncode
        finally:
            os.unlink(sig_path)

    @classmethod
    def load(cls, cache_dir: str | os.PathLike, tree_id: str) -> "Keyring | None":
        """The cached keyring for one `keys/` tree, or None where there is none (or a damaged one)."""
        return cls._cached(os.path.join(os.fspath(cache_dir), tree_id))

    @classmethod
    def load_or_build(cls, cache_dir: str | os.PathLike, tree_id: str, files: dict[str, bytes]) -> "Keyring":
        """The keyring for one `keys/` tree, from the cache or built and cached."""
        cache_dir = os.fspath(cache_dir)
        home = os.path.join(cache_dir, tree_id)
        cached = cls._cached(home)
        if cached is not None:
            return cached
        import shutil
        import tempfile

        os.makedirs(cache_dir, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f".{tree_id[:12]}-", dir=cache_dir)
        try:
            keyring = cls._build(scratch, files)
            with open(os.path.join(scratch, _META), "w") as handle:
                handle.write(json.dumps(keyring._meta()))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        if os.path.exists(home):  # a damaged entry (it did not load above): moved away, never trusted
            cls._discard(home)
        try:
            os.rename(scratch, home)
        except OSError:  # somebody else built it meanwhile: theirs is the same, if it loads
            cached = cls._cached(home)
            if cached is None:
                return keyring  # ours is right too; it stays in its scratch directory
            shutil.rmtree(scratch, ignore_errors=True)
            return cached
        keyring.home = home
        keyring._gpg = None
        return keyring

    @classmethod
    def _cached(cls, home: str) -> "Keyring | None":
        try:
            with open(os.path.join(home, _META), "rb") as handle:
                meta = handle.read()
        except OSError:
            return None
        try:
            return cls._from_meta(home, json.loads(meta))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None  # a damaged cache entry is rebuilt, never trusted

    @staticmethod
    def _discard(home: str) -> None:
        import shutil
        import tempfile

        parent, name = os.path.split(home)
        junk = tempfile.mkdtemp(prefix=f".{name[:12]}-damaged-", dir=parent)
        try:
            os.rename(home, os.path.join(junk, "entry"))
        except OSError:
            pass
        shutil.rmtree(junk, ignore_errors=True)

    @classmethod
    def _build(cls, home: str, files: dict[str, bytes]) -> "Keyring":
        os.chmod(home, 0o700)
        keyring = cls(home, {}, {})
        owners: dict[str, frozenset[str]] = {}
        for person, data in sorted(files.items()):
            owners[person] = frozenset(keyring.import_public(data))
        keys = {}
        for entry in keyring.gpg.list_keys():
            fpr = entry["fingerprint"].upper()
            subkeys = {
                info["fingerprint"].upper(): (_int_or_none(info.get("expires")), info.get("trust") == "r")
                for info in entry.get("subkey_info", {}).values()
            }
            keys[fpr] = KeyInfo(fpr, _int_or_none(entry.get("expires")), entry.get("trust") == "r", subkeys)
        keyring.owners, keyring.keys = owners, keys
        return keyring

    def import_public(self, data: bytes) -> list[str]:
        """Imports public keys only; returns the primary fingerprints found."""
        if b"PRIVATE KEY BLOCK" in data:
            return []
        result = self.gpg.import_keys(data)
        return sorted({f.upper() for f in (result.fingerprints or []) if f and FINGERPRINT_RE.match(f.upper())})

    def _meta(self) -> dict:
        return {
            "owners": {p: sorted(f) for p, f in self.owners.items()},
            "keys": {
                fpr: {"expires": k.expires, "revoked": k.revoked, "subkeys": {s: list(v) for s, v in k.subkeys.items()}}
                for fpr, k in self.keys.items()
            },
        }

    @classmethod
    def _from_meta(cls, home: str, meta: dict) -> "Keyring":
        owners = {p: frozenset(f) for p, f in meta["owners"].items()}
        keys = {
            fpr: KeyInfo(fpr, k["expires"], bool(k["revoked"]), {s: (v[0], bool(v[1])) for s, v in k["subkeys"].items()})
            for fpr, k in meta["keys"].items()
        }
        return cls(home, owners, keys)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None
