"""Commit signatures: the signed payload, an isolated keyring, GnuPG's verdict (docs/format.md, section 4).

Three jobs, in the order a verifier needs them:

1. `split_commit` rebuilds the bytes git signed from the raw commit object
   (the object minus its `gpgsig` header) and refuses objects git itself
   would read ambiguously: a NUL byte, a repeated `tree`/`author`/
   `committer` header, a second signature header.
2. `Keyring` is a GnuPG home owned by gitjit that holds exactly the keys of
   one `keys/` tree, built once per tree id (git's content hash) and reused.
3. `Keyring.verify` first checks that the signature is one armored
   signature packet (`trust/sigpacket.py`), then runs GnuPG under a time limit and
   decides from its status lines and exit code only: exactly one signature,
   GOODSIG and VALIDSIG for it, nothing else that signals a problem, and
   algorithms that are not weak (the digest from VALIDSIG, the signing key's
   size and curve from the key material). Human-readable output is sent to
   /dev/null. A gpg that is killed, times out or exits without a verdict
   makes the signature "could not be checked", never "good".
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

from gitjit import reasons as R
from gitjit.errors import GitjitError, NotTrusted
from gitjit.model.grammar import FINGERPRINT_RE, from_timestamp
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.reasons import Reason

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from gnupg import GPG

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
FATAL_CODES = {"BADSIG": R.BAD_SIGNATURE, "NO_PUBKEY": R.UNKNOWN_KEY, "EXPSIG": R.EXPIRED_SIGNATURE,
               "EXPKEYSIG": R.EXPIRED_KEY, "REVKEYSIG": R.REVOKED_KEY, "ERRSIG": R.GPG_FAILED,
               "FAILURE": R.GPG_FAILED, "ERROR": R.GPG_FAILED}
# Weak algorithms never count (SPEC s.2; docs/decisions.md, "Weak signatures").
# OpenPGP's algorithm numbers (RFC 4880 s.9), as in VALIDSIG and gpg's key listings.
HASHES = {1: "MD5", 2: "SHA-1", 3: "RIPEMD-160", 8: "SHA-256", 9: "SHA-384", 10: "SHA-512", 11: "SHA-224"}
STRONG_HASHES = frozenset({8, 9, 10, 11})
PUBKEY_ALGORITHMS = {1: "RSA", 2: "RSA (encrypt only)", 3: "RSA (sign only)", 16: "ElGamal", 17: "DSA",
                     18: "ECDH", 19: "ECDSA", 20: "ElGamal (sign and encrypt)", 22: "EdDSA"}
MIN_BITS = {1: 2048, 3: 2048, 17: 2048}  # RSA, RSA sign-only, DSA: at least this many bits
CURVES = {19: frozenset({"nistp256", "nistp384", "nistp521", "brainpoolp256r1", "brainpoolp384r1", "brainpoolp512r1"}),
          22: frozenset({"ed25519", "ed448"})}
GPG_ENV = "GITJIT_GPG"  # the gpg binary to run (default: `gpg` on PATH)
TIMEOUT_ENV = "GITJIT_GPG_TIMEOUT"  # seconds one gpg verification may take
DEFAULT_TIMEOUT = 10.0

_GPG_OPTIONS = [
    "--no-autostart",  # never start an agent or dirmngr for verification
    "--no-auto-key-retrieve",
    "--auto-key-locate", "clear,local",
    "--trust-model", "always",  # trust comes from the policy only (docs/format.md, section 4.2)
    "--no-permission-warning",
    # A keyring is written once, by one process, in a folder of its own, then only read:
    # no lock file, which a read-only cache, another user's or a full disk would refuse.
    "--lock-never",
    "--logger-file", os.devnull,  # human text is never read: status lines only
]


_META = "gitjit-keys.json"  # what the keyring holds, beside it: read without starting gpg
_META_FORMAT = 2  # 2: names its tree and the size and checksum of the keybox it describes
_PUBRING = "pubring.kbx"
_IMPORT_TIMEOUT = 60  # seconds: a gpg that hangs fails the build instead of the push
_uncached: dict[str, Keyring] = {}  # entries this process built outside the cache, by their cache path


class MalformedCommit(GitjitError):
    """A commit object that must not count, whatever its signature says."""

    code = R.MALFORMED_COMMIT


class GpgFailure(GitjitError):
    """GnuPG gave no verdict: it could not run to its end."""

    code = R.GPG_FAILED


def _gpg_timeout() -> float:
    try:
        timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT
    return timeout if 0 < timeout < float("inf") else DEFAULT_TIMEOUT


class KeyringError(NotTrusted):
    """No keyring could be built for a `keys/` tree: nothing checked with it counts, this run."""

    code = R.KEYRING_FAILED


class CommitParts(NamedTuple):
    payload: bytes  # what the signature covers
    signature: bytes | None
    author_email: str
    committer_time: datetime


def _ident(value: bytes) -> tuple[str, int]:
    """`Name <email> 1700000000 +0000` -> (email, timestamp)."""
    # A bounded number of digits, then the range every verifier can read as a date
    # (years 1970 to 9999): no ValueError or OverflowError escapes as anything but this.
    match = re.match(rb"^.*<([^<>]*)> (-?[0-9]{1,20}) [-+][0-9]{4}$", value)
    if not match:
        raise MalformedCommit("malformed identity line")
    seconds = int(match.group(2))
    if not 0 <= seconds <= _LAST_SECOND:
        raise MalformedCommit(f"time {seconds} is outside years 1970 to 9999 (malformed identity line)")
    return match.group(1).decode("utf-8", "replace"), seconds


_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z


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


def key_weakness(algorithm: int, bits: int, curve: str) -> str | None:
    """Why a signing key of this algorithm, size and curve is too weak to count, or None."""
    name = PUBKEY_ALGORITHMS.get(algorithm, f"algorithm {algorithm}")
    if algorithm in MIN_BITS:
        return None if bits >= MIN_BITS[algorithm] else f"{name} key of {bits} bits ({MIN_BITS[algorithm]} needed)"
    if algorithm in CURVES:
        return None if curve.lower() in CURVES[algorithm] else f"{name} key on curve {curve or '?'}"
    return f"{name} keys are not accepted"


class KeyInfo(NamedTuple):
    """What `keys/` says about one primary key and its subkeys."""

    fingerprint: str
    expires: int | None
    revoked: bool
    subkeys: dict[str, tuple[int | None, bool]]  # fpr -> (expires, revoked)
    algorithms: dict[str, tuple[int, int, str]]  # fpr of the key and each subkey -> (algorithm, bits, curve)

    def weakness(self, signing_key: str) -> Reason | None:
        """Why `signing_key` (this key or a subkey: each has its own size) is too weak to count."""
        material = self.algorithms.get(signing_key)
        if material is None:
            return Reason(R.WEAK_SIGNATURE, f"weak signature: the algorithm of key {signing_key[-16:]} is unknown")
        problem = key_weakness(*material)
        return Reason(R.WEAK_SIGNATURE, f"weak signature: key {signing_key[-16:]}: {problem}") if problem else None

    def problem_at(self, signing_key: str, now: datetime) -> Reason | None:
        """Why this key cannot sign at `now`, judged from the key material."""
        short = self.fingerprint[-16:]
        if self.revoked:
            return Reason(R.REVOKED_KEY, f"key {short} is revoked")
        if self.expires is not None and now.timestamp() >= self.expires:
            return Reason(R.EXPIRED_KEY, f"key {short} expired at {from_timestamp(self.expires):%Y-%m-%d %H:%M}Z")
        if signing_key != self.fingerprint:
            if signing_key not in self.subkeys:
                return Reason(R.WRONG_SIGNER, f"signing key {signing_key[-16:]} is not a subkey of {short}")
            expires, revoked = self.subkeys[signing_key]
            if revoked:
                return Reason(R.REVOKED_KEY, f"signing subkey {signing_key[-16:]} is revoked")
            if expires is not None and now.timestamp() >= expires:
                return Reason(R.EXPIRED_KEY, f"signing subkey {signing_key[-16:]} expired at "
                                             f"{from_timestamp(expires):%Y-%m-%d %H:%M}Z")
        return self.weakness(signing_key)


class SignatureCheck(NamedTuple):
    """GnuPG's verdict on one signature, before any policy is applied."""

    good: bool
    reason: str = ""  # why not good
    signing_key: str | None = None  # fingerprint of the key that signed (maybe a subkey)
    primary_key: str | None = None  # VALIDSIG's last field
    created: datetime | None = None  # the signature creation time S
    expires: datetime | None = None  # the signature's own expiry (VALIDSIG), None when it has none
    code: str = ""  # the reason's code (gitjit.reasons); empty when good

    @classmethod
    def refused(cls, reason: Reason) -> SignatureCheck:
        return cls(False, reason.text, code=reason.code)

    def to_json(self) -> dict[str, Any]:
        return {
            "good": self.good,
            "reason": self.reason,
            "code": self.code,
            "signing_key": self.signing_key,
            "primary_key": self.primary_key,
            "created": self.created.timestamp() if self.created else None,
            "expires": self.expires.timestamp() if self.expires else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignatureCheck:
        created, expires = data.get("created"), data.get("expires")
        return cls(
            good=bool(data["good"]),
            reason=data.get("reason", ""),
            code=data.get("code", "" if data["good"] else R.NOT_CHECKED),
            signing_key=data.get("signing_key"),
            primary_key=data.get("primary_key"),
            created=from_timestamp(int(created)) if created is not None else None,
            expires=from_timestamp(int(expires)) if expires is not None else None,
        )


def judge_status(lines: list[tuple[str, str]], returncode: int | None) -> SignatureCheck:
    """The verdict from GnuPG's status lines and exit code, nothing else."""
    if returncode is not None and returncode < 0:  # whatever it said before dying is no verdict
        return SignatureCheck.refused(
            Reason(R.GPG_FAILED, f"signature could not be checked: gpg was killed by signal {-returncode}"))
    counts: dict[str, int] = {}
    for keyword, _ in lines:
        counts[keyword] = counts.get(keyword, 0) + 1
    for fatal, reason in FATAL_STATUS.items():
        value = next((v for keyword, v in lines if keyword == fatal), None)
        if value is not None:
            key = value.split()[0] if value.split() else "?"
            return SignatureCheck.refused(Reason(FATAL_CODES[fatal], f"{reason} {key}"))
    if counts.get("NEWSIG", 0) > 1 or counts.get("GOODSIG", 0) > 1 or counts.get("VALIDSIG", 0) > 1:
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, "more than one signature"))
    if returncode != 0 and not counts.get("GOODSIG") and not counts.get("VALIDSIG"):
        return SignatureCheck.refused(
            Reason(R.GPG_FAILED, f"signature could not be checked: gpg exited with {returncode} without a verdict"))
    if counts.get("GOODSIG") != 1 or counts.get("VALIDSIG") != 1:
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, "no good signature"))
    if returncode != 0:
        return SignatureCheck.refused(Reason(R.GPG_FAILED, f"gpg exited with {returncode}"))
    good_key = next(value for keyword, value in lines if keyword == "GOODSIG").split()[0].upper()
    fields = next(value for keyword, value in lines if keyword == "VALIDSIG").split()
    if len(fields) < 10:
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, "VALIDSIG without a primary-key fingerprint"))
    signing_key, timestamp, sig_class, primary = fields[0].upper(), fields[2], fields[8], fields[9].upper()
    if not (FINGERPRINT_RE.match(signing_key) and FINGERPRINT_RE.match(primary)):
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, "VALIDSIG carries a malformed fingerprint"))
    if not signing_key.endswith(good_key):
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, "GOODSIG and VALIDSIG name different keys"))
    if sig_class != "00":
        return SignatureCheck.refused(
            Reason(R.MALFORMED_SIGNATURE, f"signature class {sig_class} is not a binary document signature"))
    weak = _weak_algorithms(fields[6], fields[7])
    if weak:
        return SignatureCheck.refused(Reason(R.WEAK_SIGNATURE, weak))
    created = _parse_status_time(timestamp)
    if created is None:
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, f"unreadable signature time {timestamp!r}"))
    expires = None if fields[3] in ("", "0") else _parse_status_time(fields[3])
    if fields[3] not in ("", "0") and expires is None:
        return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, f"unreadable signature expiry {fields[3]!r}"))
    return SignatureCheck(True, "", signing_key, primary, created, expires)


def _weak_algorithms(pubkey: str, digest: str) -> str | None:
    """VALIDSIG's public-key and hash algorithms, judged against the accepted sets."""
    if _number(digest) not in STRONG_HASHES:
        name = HASHES.get(_number(digest), f"hash algorithm {digest[:8]!r}")
        return f"weak signature: {name} digest (SHA-224, SHA-256, SHA-384 or SHA-512 needed)"
    if _number(pubkey) not in MIN_BITS and _number(pubkey) not in CURVES:
        name = PUBKEY_ALGORITHMS.get(_number(pubkey), f"algorithm {pubkey[:8]!r}")
        return f"weak signature: {name} signatures are not accepted"
    return None


def _number(text: str) -> int:
    """A decimal field of gpg's output; -1 where it is not one."""
    return int(text) if text.isascii() and text.isdigit() else -1


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
        self._gpg: GPG | None = None

    @property
    def gpg(self) -> GPG:
        if self._gpg is None:
            import gnupg  # imported late: the hook pays for it only when it verifies

            self._gpg = gnupg.GPG(gpgbinary=os.environ.get(GPG_ENV) or "gpg", gnupghome=self.home,
                                  options=list(_GPG_OPTIONS))
        return self._gpg

    def verify(self, payload: bytes, signature: bytes, at: datetime | None = None) -> SignatureCheck:
        """GnuPG's verdict now, or with its clock set to `at` (--faked-system-time)."""
        return self._verdict(payload, signature, at)[0]

    def _verdict(self, payload: bytes, signature: bytes,
                 at: datetime | None = None) -> tuple[SignatureCheck, list[tuple[str, str]]]:
        """The verdict and the status lines it came from (none where gpg never gave any)."""
        from gitjit.trust.sigpacket import MalformedSignature, check_signature_block

        try:
            check_signature_block(signature)  # GnuPG never sees anything but one signature packet
        except MalformedSignature as exc:
            return SignatureCheck.refused(Reason(R.MALFORMED_SIGNATURE, str(exc))), []
        try:
            lines, returncode = self._status_lines(payload, signature, at)
            return self._strong_enough(judge_status(lines, returncode)), lines
        except Exception as exc:  # fail closed: any error means "does not count"
            return SignatureCheck.refused(Reason(R.GPG_FAILED, f"signature could not be checked: {exc}")), []

    def _strong_enough(self, check: SignatureCheck) -> SignatureCheck:
        """A good verdict stands only if the key that signed is not weak (judged from its material)."""
        if not check.good:
            return check
        key = self.keys.get(check.primary_key or "")
        if key is None:
            return SignatureCheck.refused(
                Reason(R.KEY_MISSING, f"key {check.primary_key} is missing from the keyring's key list"))
        weakness = key.weakness(check.signing_key or "")
        return SignatureCheck.refused(weakness) if weakness else check

    def verify_when_made(self, payload: bytes, signature: bytes) -> SignatureCheck:
        """GnuPG's verdict as of the signature's own creation time.

        For the policy chain only (docs/decisions.md): a policy commit made
        with a key that has expired since is judged as GnuPG judged it then,
        so an old admin key expiring never stops the branch from verifying.
        Only an expired key is reconsidered; every other verdict stands, and
        the time is the one the signature claims: the caller must bound it.
        """
        check, lines = self._verdict(payload, signature)
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

        extra = ["--faked-system-time", at.astimezone(UTC).strftime("%Y%m%dT%H%M%S!")] if at else []
        fd, sig_path = tempfile.mkstemp(prefix="gitjit-sig-")  # never in the keyring: it may be read-only
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(signature)
            # python-gnupg makes the command line (its gpg binary, --status-fd 2, --batch,
            # --homedir, our options); the I/O is one subprocess.run. Its verify_data
            # starts three threads per signature, which cost an audit of thousands of
            # signatures a third of its throughput (docs/decisions.md).
            command = self.gpg.make_args(["--verify", *extra, sig_path, "-"], False)
            timeout = _gpg_timeout()
            try:
                result = subprocess.run(command, input=payload, capture_output=True, env=self.gpg.env,
                                        timeout=timeout)
            except subprocess.TimeoutExpired:  # run() has killed it
                raise GpgFailure(f"gpg timed out after {timeout:g} s") from None
            return status_lines(result.stderr), result.returncode
        finally:
            os.unlink(sig_path)

    @classmethod
    def load(cls, cache_dir: str | os.PathLike[str], tree_id: str) -> Keyring | None:
        """The cached keyring for one `keys/` tree, or None where there is none (or a damaged one)."""
        home = os.path.join(os.fspath(cache_dir), tree_id)
        return cls._cached(home) or _uncached.get(home)

    @classmethod
    def load_or_build(cls, cache_dir: str | os.PathLike[str], tree_id: str, files: dict[str, bytes]) -> Keyring:
        """The keyring for one `keys/` tree, from the cache or built, checked and cached.

        It is built aside and published (renamed into place) only once gpg
        has imported every key of every file. Where the cache cannot take it
        (read-only, another user's, a full disk), this run builds its own
        keyring in a private folder instead: slower, never refused for it.
        KeyringError when no keyring can be built: nothing checked with it
        could count, and nothing is left behind for a later run to trust.
        """
        cache_dir = os.fspath(cache_dir)
        home = os.path.join(cache_dir, tree_id)
        found = cls.load(cache_dir, tree_id)
        if found is not None:
            return found
        from gitjit.trust.cache import files as cachefiles

        try:
            cachefiles.make_dirs(cache_dir)
            cachefiles.sweep(cache_dir)
            scratch = _scratch_dir(cache_dir, tree_id)
        except OSError:
            scratch = None  # the cache cannot be written: this run builds its own
        if scratch is not None:
            try:
                keyring = cls._build(scratch, files, tree_id)
                cachefiles.open_up(scratch)
                cachefiles.sync_tree(scratch)
            except (KeyringError, OSError):
                keyring = None  # maybe the cache's disk: the private build below tells
            if keyring is None:
                _remove(scratch)
            else:
                return cls._publish(keyring, scratch, home)
        return cls._build_private(home, files, tree_id)

    @classmethod
    def _publish(cls, keyring: Keyring, scratch: str, home: str) -> Keyring:
        """Moves a checked keyring from its scratch folder to its place in the cache."""
        from gitjit.trust.cache import files as cachefiles

        if os.path.lexists(home):
            cached = cls._cached(home)
            if cached is not None:  # another run published it since we looked, and may be using it now
                _remove(scratch)
                return cached
            cls._discard(home)  # a damaged entry (it does not load): moved away, never trusted
        try:
            os.rename(scratch, home)
        except OSError:  # somebody else built it meanwhile, or the entry could not be moved away
            cached = cls._cached(home)
            if cached is not None:
                _remove(scratch)
                return cached
            cachefiles.keep_until_exit(scratch)  # ours is right: this run uses it where it is
            _uncached[home] = keyring
            return keyring
        cachefiles.sync_dir(os.path.dirname(home))
        keyring.home = home
        keyring._gpg = None
        return keyring

    @classmethod
    def _build_private(cls, home: str, files: dict[str, bytes], tree_id: str) -> Keyring:
        """A keyring in a folder of this process's own, for a run whose cache cannot take one."""
        from gitjit.trust.cache import files as cachefiles

        try:
            private = cachefiles.private_dir(f"gitjit-keyring-{tree_id[:12]}-")
        except OSError as exc:
            raise KeyringError(f"the keyring of keys/ {tree_id[:12]} could not be built: {exc}") from None
        try:
            keyring = cls._build(private, files, tree_id)
        except BaseException:
            cachefiles.forget_private(private)
            raise
        _uncached[home] = keyring
        return keyring

    @classmethod
    def _cached(cls, home: str) -> Keyring | None:
        """The entry at `home` if it checks out whole; None for anything else (it is rebuilt)."""
        try:
            with open(os.path.join(home, _META), "rb") as handle:
                meta = json.loads(handle.read())
            if meta.get("format") != _META_FORMAT or meta.get("tree") != os.path.basename(home):
                return None  # another gitjit's entry, or one moved from elsewhere
            if _pubring_digest(home) != meta["pubring"]:
                return None  # gpg would not find the keys: "signature by unknown key" for everyone
            keyring = cls._from_meta(home, meta)
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return None  # a damaged cache entry is rebuilt, never trusted
        owned = {fpr for fprs in keyring.owners.values() for fpr in fprs}
        if not all(keyring.owners.values()) or owned != set(keyring.keys):
            return None
        return keyring

    @staticmethod
    def _discard(home: str) -> None:
        import shutil
        import tempfile

        parent, name = os.path.split(home)
        try:
            junk = tempfile.mkdtemp(prefix=f".{name[:12]}-damaged-", dir=parent)
        except OSError:
            return
        try:
            os.rename(home, os.path.join(junk, "entry"))
        except OSError:
            pass
        shutil.rmtree(junk, ignore_errors=True)

    @classmethod
    def _build(cls, home: str, files: dict[str, bytes], tree_id: str) -> Keyring:
        """Imports every file into the empty folder `home` and checks gpg holds every key it imported."""
        where = f"the keyring of keys/ {tree_id[:12]} could not be built"
        keyring = cls(home, {}, {})
        owners: dict[str, frozenset[str]] = {}
        for person, data in sorted(files.items()):
            try:
                result = keyring._import(data)
            except KeyringError as exc:
                raise KeyringError(f"{where}: keys/{person}.asc {exc}") from None
            if not result.fingerprints:
                private = " (a private key block, which is never imported)" if b"PRIVATE KEY BLOCK" in data else ""
                raise KeyringError(f"{where}: keys/{person}.asc holds no public key{private}")
            if not result.whole:
                raise KeyringError(f"{where}: keys/{person}.asc: gpg imported {result.imported} of the "
                                   f"{result.read} keys it holds")
            owners[person] = frozenset(result.fingerprints)
        listed = keyring.gpg.list_keys()
        if listed.returncode != 0:
            raise KeyringError(f"{where}: gpg --list-keys exited with {listed.returncode}")
        keys = {}
        for entry in listed:
            fpr = entry["fingerprint"].upper()
            subkey_info = list(entry.get("subkey_info", {}).values())
            subkeys = {
                info["fingerprint"].upper(): (_int_or_none(info.get("expires")), info.get("trust") == "r")
                for info in subkey_info
            }
            algorithms = {info["fingerprint"].upper(): _material(info) for info in [entry, *subkey_info]}
            keys[fpr] = KeyInfo(fpr, _int_or_none(entry.get("expires")), entry.get("trust") == "r", subkeys,
                                algorithms)
        imported = {fpr for fprs in owners.values() for fpr in fprs}
        if imported != set(keys):
            missing = sorted(imported - set(keys)) or sorted(set(keys) - imported)
            raise KeyringError(f"{where}: gpg lists other keys than it imported ({', '.join(missing)})")
        keyring.owners, keyring.keys = owners, keys
        meta = dict(keyring._meta(), format=_META_FORMAT, tree=tree_id, pubring=_pubring_digest(home))
        with open(os.path.join(home, _META), "w") as handle:
            handle.write(json.dumps(meta))
        return keyring

    def import_public(self, data: bytes) -> list[str]:
        """Imports public keys only; returns the primary fingerprints imported (maybe none).

        KeyringError when gpg itself failed: killed, an error status (a full
        disk), no summary line. Whether the file held what it should is the
        caller's judgement (`_build`: every key it held, at least one).
        """
        return self._import(data).fingerprints

    def _import(self, data: bytes) -> Imported:
        import subprocess

        if b"PRIVATE KEY BLOCK" in data:
            return Imported([], 0, 0, False)  # never imported: a key file holds public keys only
        command = self.gpg.make_args(["--import"], False)
        try:
            result = subprocess.run(command, input=data, capture_output=True, env=self.gpg.env,
                                    timeout=_IMPORT_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise KeyringError(f"could not be imported: {exc}") from None
        return imported_keys(status_lines(result.stderr), result.returncode)

    def _meta(self) -> dict[str, Any]:
        return {
            "owners": {p: sorted(f) for p, f in self.owners.items()},
            "keys": {
                fpr: {"expires": k.expires, "revoked": k.revoked, "subkeys": {s: list(v) for s, v in k.subkeys.items()},
                      "algorithms": {s: list(v) for s, v in k.algorithms.items()}}
                for fpr, k in self.keys.items()
            },
        }

    @classmethod
    def _from_meta(cls, home: str, meta: dict[str, Any]) -> Keyring:
        owners = {p: frozenset(f) for p, f in meta["owners"].items()}
        keys = {
            # an entry written before key algorithms were kept has none: KeyError, so it is rebuilt
            fpr: KeyInfo(fpr, k["expires"], bool(k["revoked"]), {s: (v[0], bool(v[1])) for s, v in k["subkeys"].items()},
                         {s: (int(v[0]), int(v[1]), str(v[2])) for s, v in k["algorithms"].items()})
            for fpr, k in meta["keys"].items()
        }
        return cls(home, owners, keys)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


def _material(info: dict[str, Any]) -> tuple[int, int, str]:
    """(algorithm, bits, curve) of one key in python-gnupg's listing; unknown parts as 0 and ""."""
    return (max(_number(info.get("algo") or ""), 0), max(_number(info.get("length") or ""), 0),
            (info.get("curve") or "").lower())


class Imported(NamedTuple):
    fingerprints: list[str]  # primary keys imported (IMPORT_OK)
    read: int  # keys gpg read in the file (IMPORT_RES count)
    imported: int  # of which imported or already there
    whole: bool  # gpg imported every key it read


def imported_keys(lines: list[tuple[str, str]], returncode: int | None) -> Imported:
    """What one `gpg --import` imported, from its status lines and exit code.

    KeyringError where gpg did not finish its work: killed, an error status
    (a full disk), no summary line, an exit code other than 0 or 2.
    """
    if returncode is not None and returncode < 0:
        raise KeyringError(f"could not be imported: gpg was killed by signal {-returncode}")
    for keyword, value in lines:
        if keyword in ("ERROR", "FAILURE"):
            raise KeyringError(f"could not be imported: gpg reported {keyword} {value}".rstrip())
    summary = [value.split() for keyword, value in lines if keyword == "IMPORT_RES"]
    if len(summary) != 1 or len(summary[0]) < 14 or not all(f.isdigit() for f in summary[0]):
        raise KeyringError(f"could not be imported: gpg gave no import summary (exit {returncode})")
    if returncode not in (0, 2):
        raise KeyringError(f"could not be imported: gpg exited with {returncode}")
    counts = [int(f) for f in summary[0]]
    read, imported, unchanged, not_imported = counts[0], counts[2], counts[4], counts[13]
    fingerprints = sorted({value.split()[1].upper() for keyword, value in lines
                           if keyword == "IMPORT_OK" and len(value.split()) > 1})
    if not all(FINGERPRINT_RE.match(f) for f in fingerprints):
        raise KeyringError("could not be imported: gpg named a malformed fingerprint")
    done = imported + unchanged
    # Not "exit 0": gpg also exits 2 when it merely could not reach an agent it never needed
    # (a GnuPG home whose socket path is too long), so the counts decide.
    return Imported(fingerprints, read, done, not not_imported and done == read)


_CHECKSUM_MODULUS = (1 << 61) - 1  # a prime: the file read as one number, modulo it


def _pubring_digest(home: str) -> list[int] | None:
    """[size, checksum] of the keybox gpg reads (None: there is none).

    Checked on every load, so a keybox that lost its keys (truncated, zeroed
    by a crash) is rebuilt, not used. The checksum catches accidents, not
    attacks: whoever can write the keybox can write the metadata too. It
    costs no import, which keeps a tag push's imports as they are.
    """
    try:
        with open(os.path.join(home, _PUBRING), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    return [len(data), int.from_bytes(data, "big") % _CHECKSUM_MODULUS]


def _scratch_dir(cache_dir: str, tree_id: str) -> str:
    """An empty folder beside the entry it will become: a rename publishes it whole."""
    import tempfile

    return tempfile.mkdtemp(prefix=f".{tree_id[:12]}-", dir=cache_dir)


def _remove(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
