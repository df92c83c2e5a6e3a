"""Commit signatures: the signed payload, GnuPG's verdict, the isolated keyring (docs/format.md, section 4).

`split_commit` and `Keyring` run on real commit objects signed by git with
real keys; `judge_status` is a pure function of GnuPG status lines and is
tested on lists shaped like the ones gpg prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import git, make_clone, run_gpg

from gitjit.trust.signatures import Keyring, KeyringError, MalformedCommit, judge_status, split_commit, status_lines

# -- real signed commits ---------------------------------------------------------


@pytest.fixture(scope="module")
def repos(keys, tmp_path_factory):
    base = tmp_path_factory.mktemp("sig")
    return {name: make_clone(base, keys[name], keys) for name in ("alice", "subby", "erin")}


def signed_commit(clone, message: str = "signed", sign: bool = True, extra: tuple[str, ...] = ()) -> str:
    args = ["commit-tree", *(["-S"] if sign else []), "HEAD^{tree}", "-p", "HEAD", *extra, "-m", message]
    return clone.git(*args).stdout.strip()


def raw(clone, commit: str) -> bytes:
    return subprocess.run(["git", "cat-file", "commit", commit], cwd=clone.path, env=clone.env,
                          capture_output=True, check=True).stdout


def git_payload(clone, commit: str) -> bytes:
    """What `git verify-commit` checks: it prints the payload with -v."""
    proc = subprocess.run(["git", "verify-commit", "-v", commit], cwd=clone.path, env=clone.env, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def alice_commit(repos):
    clone = repos["alice"]
    commit = signed_commit(clone, "subject\n\nbody line\n gpgsig in the message is just text\n")
    return clone, commit, raw(clone, commit)


def test_payload_is_what_git_verify_commit_checks(alice_commit, keys):
    clone, commit, data = alice_commit
    parts = split_commit(data)
    assert parts.payload == git_payload(clone, commit)
    assert b"gpgsig" not in parts.payload.split(b"\n\n", 1)[0]
    assert parts.signature.startswith(b"-----BEGIN PGP SIGNATURE-----\n")
    assert parts.signature.endswith(b"-----END PGP SIGNATURE-----\n")
    assert parts.author_email == "alice@example.com"
    committed = int(clone.git("show", "-s", "--format=%ct", commit).stdout)
    assert parts.committer_time == datetime.fromtimestamp(committed, UTC)


def test_payload_equals_the_same_commit_made_unsigned(repos):
    clone = repos["alice"]
    dates = {"GIT_AUTHOR_DATE": "1700000000 +0100", "GIT_COMMITTER_DATE": "1700000001 +0100"}
    env = dict(clone.env, **dates)
    args = ["commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "same\n\nmessage"]
    signed = git(args[0], "-S", *args[1:], cwd=clone.path, env=env).stdout.strip()
    unsigned = git(*args, cwd=clone.path, env=env).stdout.strip()
    assert split_commit(raw(clone, signed)).payload == raw(clone, unsigned)
    assert split_commit(raw(clone, unsigned)).signature is None


def test_extra_headers_and_their_continuation_lines_stay_in_the_payload(repos):
    clone = repos["alice"]
    data = raw(clone, signed_commit(clone))
    head, _, message = data.partition(b"\n\n")
    # a multi-line header that is not a signature (like mergetag) and an encoding header
    extra = b"encoding ISO-8859-1\nmergetag object 1234\n type commit\n tag v1\n"
    unsigned = b"\n".join(l for l in head.split(b"\n") if not l.startswith((b"gpgsig", b" "))) + b"\n" + extra.rstrip(b"\n")
    parts = split_commit(unsigned + b"\n\n" + message)
    assert parts.payload == unsigned + b"\n\n" + message
    assert parts.signature is None


def _headers(data: bytes) -> tuple[list[bytes], bytes]:
    head, _, message = data.partition(b"\n\n")
    return head.split(b"\n"), message


def _join(lines: list[bytes], message: bytes) -> bytes:
    return b"\n".join(lines) + b"\n\n" + message


@pytest.mark.parametrize("header", [b"tree", b"author", b"committer"])
def test_repeated_single_headers_do_not_count(alice_commit, header):
    _, _, data = alice_commit
    lines, message = _headers(data)
    index = next(i for i, l in enumerate(lines) if l.startswith(header + b" "))
    lines.insert(index + 1, lines[index])
    with pytest.raises(MalformedCommit, match=f"2 '{header.decode()}' headers"):
        split_commit(_join(lines, message))


@pytest.mark.parametrize("header", [b"tree", b"author", b"committer"])
def test_missing_single_headers_do_not_count(alice_commit, header):
    _, _, data = alice_commit
    lines, message = _headers(data)
    lines = [l for l in lines if not l.startswith(header + b" ")]
    with pytest.raises(MalformedCommit, match=f"0 '{header.decode()}' headers"):
        split_commit(_join(lines, message))


def test_nul_byte_does_not_count(alice_commit):
    _, _, data = alice_commit
    for at in (5, data.index(b"\n\n") + 3, len(data) - 1):
        with pytest.raises(MalformedCommit, match="NUL"):
            split_commit(data[:at] + b"\0" + data[at:])


def test_second_signature_header_does_not_count(alice_commit, repos):
    _, _, data = alice_commit
    bob_like = raw(repos["erin"], signed_commit(repos["erin"]))
    lines, message = _headers(data)
    other = [l for l in _headers(bob_like)[0] if l.startswith((b"gpgsig", b" "))]
    assert other[0].startswith(b"gpgsig ")
    with pytest.raises(MalformedCommit, match="more than one signature header"):
        split_commit(_join(lines + other, message))
    sha256 = [b"gpgsig-sha256" + other[0][len(b"gpgsig"):]] + other[1:]
    with pytest.raises(MalformedCommit, match="more than one signature header"):
        split_commit(_join(lines + sha256, message))


def test_a_lone_sha256_signature_does_not_count_in_a_sha1_repository(alice_commit):
    _, _, data = alice_commit
    with pytest.raises(MalformedCommit, match="gpgsig-sha256"):
        split_commit(data.replace(b"\ngpgsig ", b"\ngpgsig-sha256 ", 1))


def test_malformed_identity_does_not_count(alice_commit):
    _, _, data = alice_commit
    lines, message = _headers(data)
    lines = [b"author nobody" if l.startswith(b"author ") else l for l in lines]
    with pytest.raises(MalformedCommit, match="identity"):
        split_commit(_join(lines, message))


def test_signature_text_in_the_message_is_not_a_signature(repos):
    clone = repos["alice"]
    fake = "subject\n\ngpgsig -----BEGIN PGP SIGNATURE-----\n -----END PGP SIGNATURE-----\n"
    commit = signed_commit(clone, fake, sign=False)
    parts = split_commit(raw(clone, commit))
    assert parts.signature is None
    assert parts.payload == raw(clone, commit)


# -- judge_status: the verdict from status lines only ----------------------------

FPR = "00B18F74E569CDA5FB95D869AE92A75EFF38033E"
SUB = "41AAAE85631DC29C17954690C99A699EC3AF5325"


def good_lines(signing: str = FPR, primary: str = FPR, when: str = "1795658298", sig_class: str = "00"):
    return [
        ("NEWSIG", ""),
        ("KEY_CONSIDERED", f"{primary} 0"),
        ("SIG_ID", "5nGJKDsCyNUTeitg+JvIQ/bUH9w 2026-11-26 1795658298"),
        ("GOODSIG", f"{signing[-16:]} Alice <alice@example.com>"),
        ("VALIDSIG", f"{signing} 2026-11-26 {when} 0 4 0 22 8 {sig_class} {primary}"),
        ("TRUST_ULTIMATE", "0 pgp"),
    ]


def test_good_signature():
    check = judge_status(good_lines(), 0)
    assert check.good and check.reason == "" and check.code == ""
    assert check.signing_key == FPR and check.primary_key == FPR
    assert check.created == datetime.fromtimestamp(1795658298, UTC)


def test_subkey_signature_names_the_primary_from_validsig():
    check = judge_status(good_lines(signing=SUB, primary=FPR), 0)
    assert check.good and check.signing_key == SUB and check.primary_key == FPR


def test_iso_signature_time():
    check = judge_status(good_lines(when="20261126T010203"), 0)
    assert check.good and check.created == datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)


def test_trust_level_plays_no_part():
    lines = [l for l in good_lines() if not l[0].startswith("TRUST_")] + [("TRUST_NEVER", "0 pgp")]
    assert judge_status(lines, 0).good


FATAL_CODES = {"BADSIG": "bad-signature", "ERRSIG": "gpg-failed", "NO_PUBKEY": "unknown-key",
               "EXPSIG": "expired-signature", "EXPKEYSIG": "expired-key", "REVKEYSIG": "revoked-key",
               "FAILURE": "gpg-failed", "ERROR": "gpg-failed"}


@pytest.mark.parametrize(
    "keyword, value, reason",
    [
        ("BADSIG", f"{FPR[-16:]} Alice", "bad signature"),
        ("ERRSIG", f"{FPR[-16:]} 22 8 00 1795658298 9 -", "signature could not be checked"),
        ("NO_PUBKEY", FPR[-16:], "signature by unknown key"),
        ("EXPSIG", f"{FPR[-16:]} Alice", "signature has expired"),
        ("EXPKEYSIG", f"{FPR[-16:]} Alice", "signature by an expired key"),
        ("REVKEYSIG", f"{FPR[-16:]} Alice", "signature by a revoked key"),
        ("FAILURE", "gpg-exit 33554433", "gpg reported a failure"),
        ("ERROR", "verify.findkey 17", "gpg reported an error"),
    ],
)
def test_fatal_status_lines_mean_not_good(keyword, value, reason):
    for position in (0, 3, 6):  # wherever it comes, even beside GOODSIG and VALIDSIG
        lines = good_lines()
        lines.insert(position, (keyword, value))
        check = judge_status(lines, 0)
        assert not check.good and check.code == FATAL_CODES[keyword]
        assert check.reason.startswith(reason)  # which of gpg's failures: the codes group them
        assert check.primary_key is None


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda ls: ls + good_lines(), "more than one signature"),
        (lambda ls: [("NEWSIG", "")] + ls, "more than one signature"),
        (lambda ls: ls + [l for l in good_lines() if l[0] == "GOODSIG"], "more than one signature"),
        (lambda ls: ls + [l for l in good_lines() if l[0] == "VALIDSIG"], "more than one signature"),
        (lambda ls: [l for l in ls if l[0] != "VALIDSIG"], "no good signature"),
        (lambda ls: [l for l in ls if l[0] != "GOODSIG"], "no good signature"),
        (lambda ls: [], "no good signature"),
        (lambda ls: [(k, " ".join(v.split()[:9])) if k == "VALIDSIG" else (k, v) for k, v in ls],
         "VALIDSIG without a primary-key fingerprint"),
        (lambda ls: good_lines(primary="XYZ"), "malformed fingerprint"),
        (lambda ls: good_lines(signing=FPR[:-1]), "malformed fingerprint"),
        (lambda ls: [(k, v.replace(FPR[-16:], SUB[-16:])) if k == "GOODSIG" else (k, v) for k, v in ls],
         "GOODSIG and VALIDSIG name different keys"),
        (lambda ls: good_lines(sig_class="01"), "signature class 01"),
        (lambda ls: good_lines(when="yesterday"), "unreadable signature time"),
    ],
)
def test_anything_but_exactly_one_good_valid_signature_is_not_good(change, reason):
    check = judge_status(change(good_lines()), 0)
    assert not check.good and check.code == "malformed-signature"
    assert reason in check.reason


@pytest.mark.parametrize("returncode", [1, 2, None])
def test_nonzero_exit_is_not_good(returncode):
    check = judge_status(good_lines(), returncode)
    assert not check.good and check.code == "gpg-failed" and "gpg exited with" in check.reason


def test_a_killed_gpg_gave_no_verdict_whatever_it_printed():
    for lines in (good_lines(), [], [("NEWSIG", "")]):
        check = judge_status(lines, -9)
        assert not check.good and check.code == "gpg-failed"
        assert check.reason == "signature could not be checked: gpg was killed by signal 9"


def test_an_exit_without_status_lines_is_no_verdict_not_a_bad_signature():
    for lines in ([], [("NEWSIG", "")], [("KEY_CONSIDERED", f"{FPR} 0")]):
        check = judge_status(lines, 2)
        assert not check.good and check.code == "gpg-failed"
        assert check.reason == "signature could not be checked: gpg exited with 2 without a verdict"


def test_only_status_lines_are_read():
    output = (b"gpg: Good signature from \"[GNUPG:] GOODSIG forged\"\n"
              b"[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG ABCDEF0123456789 Alice <a@example.com>\n"
              b"  [GNUPG:] VALIDSIG indented, so not a status line\n[GNUPG:] TRUST_UNDEFINED 0 pgp\n")
    assert status_lines(output) == [("NEWSIG", ""), ("GOODSIG", "ABCDEF0123456789 Alice <a@example.com>"),
                                    ("TRUST_UNDEFINED", "0 pgp")]



# -- the isolated keyring ----------------------------------------------------------


@pytest.fixture(scope="module")
def keyring(keys, tmp_path_factory):
    files = {
        "alice": keys["alice"].asc.encode(),
        "bob": (keys["bob"].asc + keys["carol"].asc).encode(),  # one file, two keys: both owned by bob's file
        "subby": keys["subby"].asc.encode(),
        "shortlived": keys["shortlived"].asc.encode(),
        "revoked": keys["revoked"].revoked_asc.encode(),
    }
    cache = tmp_path_factory.mktemp("keyrings")
    return Keyring.load_or_build(cache, "a" * 40, files), cache, files


def test_owners_are_read_per_file(keyring, keys):
    ring, _, _ = keyring
    assert ring.owners["alice"] == {keys["alice"].fpr}
    assert ring.owners["bob"] == {keys["bob"].fpr, keys["carol"].fpr}
    assert ring.owners["subby"] == {keys["subby"].fpr}
    assert set(ring.keys) == {keys[n].fpr for n in ("alice", "bob", "carol", "subby", "shortlived", "revoked")}


def test_subkeys_are_known(keyring, keys):
    ring, _, _ = keyring
    subby = ring.keys[keys["subby"].fpr]
    assert keys["subby"].sub_fpr in subby.subkeys
    now = datetime.now(UTC)
    assert subby.problem_at(keys["subby"].sub_fpr, now) is None
    problem = subby.problem_at(keys["alice"].fpr, now)
    assert problem.code == "wrong-signer" and "is not a subkey of" in problem.text


def test_revoked_flag_comes_from_the_key_material(keyring, keys):
    ring, _, _ = keyring
    assert ring.keys[keys["revoked"].fpr].revoked
    assert not ring.keys[keys["alice"].fpr].revoked
    problem = ring.keys[keys["revoked"].fpr].problem_at(keys["revoked"].fpr, datetime.now(UTC))
    assert problem == ("revoked-key", f"key {keys['revoked'].fpr[-16:]} is revoked")


def test_expiry_is_judged_at_the_given_time(keyring, keys):
    ring, _, _ = keyring
    short = ring.keys[keys["shortlived"].fpr]
    now = datetime.now(UTC)
    assert short.expires is not None and abs(short.expires - (now + timedelta(days=2)).timestamp()) < 3600
    assert short.problem_at(short.fingerprint, now) is None
    expired = short.problem_at(short.fingerprint, now + timedelta(days=3))
    assert expired.code == "expired-key" and "expired at" in expired.text
    assert ring.keys[keys["alice"].fpr].expires is None


def test_second_load_reuses_the_cache_without_importing(keyring, keys):
    ring, cache, files = keyring
    pubring = Path(ring.home) / "pubring.kbx"
    before = pubring.stat().st_mtime_ns
    # the same tree id with no files at all: only a cache hit can know the keys
    again = Keyring.load_or_build(cache, "a" * 40, {})
    assert again.home == ring.home
    assert again.owners == ring.owners and again.keys == ring.keys
    assert pubring.stat().st_mtime_ns == before
    assert sorted(p.name for p in cache.iterdir()) == ["a" * 40]  # no scratch directory left behind


def test_a_damaged_cache_entry_is_rebuilt(keys, tmp_path):
    files = {"alice": keys["alice"].asc.encode()}
    first = Keyring.load_or_build(tmp_path, "b" * 40, files)
    (Path(first.home) / "gitjit-keys.json").write_text("{not json")
    # the entry's directory exists, so the rebuild lands beside it; it must still hold the right keys
    again = Keyring.load_or_build(tmp_path, "b" * 40, files)
    assert again.owners == {"alice": frozenset({keys["alice"].fpr})}
    assert json.loads((Path(again.home) / "gitjit-keys.json").read_text())["owners"] == {"alice": [keys["alice"].fpr]}


def test_private_key_blocks_are_never_imported(keys, tmp_path):
    secret = run_gpg(keys.home, "--armor", "--pinentry-mode", "loopback", "--passphrase", "",
                     "--export-secret-keys", keys["dave"].fpr, env=keys.env).stdout
    # a file that imports no key is an error for the build (docs/decisions.md), never an empty keyring
    with pytest.raises(KeyringError, match=r"keys/dave.asc holds no public key \(a private key block"):
        Keyring.load_or_build(tmp_path, "c" * 40, {"dave": secret.encode()})
    assert list(tmp_path.iterdir()) == []  # nothing published, no scratch left, no secret key anywhere


def verify_commit(ring: Keyring, clone, commit: str):
    parts = split_commit(raw(clone, commit))
    return ring.verify(parts.payload, parts.signature)


def test_verify_real_signatures(keyring, repos, keys):
    ring, _, _ = keyring
    check = verify_commit(ring, repos["alice"], signed_commit(repos["alice"]))
    assert check.good and check.primary_key == keys["alice"].fpr and check.signing_key == keys["alice"].fpr
    assert abs(check.created - datetime.now(UTC)) < timedelta(minutes=1)

    check = verify_commit(ring, repos["subby"], signed_commit(repos["subby"]))
    assert check.good and check.primary_key == keys["subby"].fpr and check.signing_key == keys["subby"].sub_fpr


def test_keyring_is_isolated_from_the_users_keyring(keyring, repos, keys, monkeypatch):
    ring, _, _ = keyring
    # erin's key is in the user's keyring (GNUPGHOME), not in this keyring: it does not count
    monkeypatch.setenv("GNUPGHOME", str(keys.home))
    check = verify_commit(ring, repos["erin"], signed_commit(repos["erin"]))
    assert not check.good and check.code == "unknown-key"


def test_tampered_payload_is_a_bad_signature(keyring, alice_commit):
    ring, _, _ = keyring
    _, _, data = alice_commit
    parts = split_commit(data)
    check = ring.verify(parts.payload.replace(b"subject", b"subjecT"), parts.signature)
    assert not check.good and check.code == "bad-signature"


def test_revoked_key_signature_does_not_count(keyring, keys, tmp_path):
    ring, _, _ = keyring
    revoked = make_clone(tmp_path, keys["revoked"], keys)
    check = verify_commit(ring, revoked, signed_commit(revoked))
    assert not check.good and check.code == "revoked-key"


def test_two_signatures_in_one_signature_block_do_not_count(keyring, keys, alice_commit):
    ring, _, _ = keyring
    _, _, data = alice_commit
    payload = split_commit(data).payload
    proc = subprocess.run(
        ["gpg", "--homedir", str(keys.home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--armor", "--detach-sign", "-u", keys["alice"].fpr + "!", "-u", keys["bob"].fpr + "!"],
        input=payload, capture_output=True, env=keys.env, check=True)
    check = ring.verify(payload, proc.stdout)
    # refused before GnuPG sees it (trust/sigpacket.py); judge_status refuses it too (tested above)
    assert not check.good and check.code == "malformed-signature"
    assert "after the signature packet" in check.reason


def test_garbage_signature_does_not_count(keyring, alice_commit):
    ring, _, _ = keyring
    payload = split_commit(alice_commit[2]).payload
    for signature in (b"", b"not a signature", b"-----BEGIN PGP SIGNATURE-----\n\n=abcd\n-----END PGP SIGNATURE-----\n"):
        assert not ring.verify(payload, signature).good


def test_unknown_key_is_reported_as_such_though_gpg_says_errsig_first():
    key = FPR[-16:]
    lines = [("NEWSIG", ""), ("ERRSIG", f"{key} 22 8 00 1795658298 9 {FPR}"), ("NO_PUBKEY", key)]
    check = judge_status(lines, 2)
    assert not check.good and (check.code, check.reason) == ("unknown-key", f"signature by unknown key {key}")


# -- faults: gpg killed, failing or hanging (a wrapper around the real gpg) ----------------


def faulty_gpg(directory: Path, on_verify: str) -> str:
    """A gpg that runs `on_verify` (shell) instead of verifying; anything else goes to the real gpg."""
    wrapper = directory / "gpg-faulty"
    wrapper.write_text(f'#!/bin/sh\ncase " $* " in *" --verify "*) {on_verify} ;; esac\n'
                       f'exec "{shutil.which("gpg")}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize("on_verify, reason", [
    ("kill -9 $$", "signature could not be checked: gpg was killed by signal 9"),
    ("kill -15 $$", "signature could not be checked: gpg was killed by signal 15"),
    ("exit 2", "signature could not be checked: gpg exited with 2 without a verdict"),
])
def test_a_gpg_that_dies_gives_no_verdict_not_a_bad_signature(keyring, alice_commit, tmp_path, monkeypatch,
                                                               on_verify, reason):
    ring, cache, _ = keyring
    parts = split_commit(alice_commit[2])
    assert ring.verify(parts.payload, parts.signature).good  # with the real gpg
    monkeypatch.setenv("GITJIT_GPG", faulty_gpg(tmp_path, on_verify))
    faulty = Keyring.load(cache, "a" * 40)  # a fresh keyring object picks its gpg binary anew
    check = faulty.verify(parts.payload, parts.signature)
    assert not check.good and (check.code, check.reason) == ("gpg-failed", reason)
    assert check.primary_key is None and check.created is None


def test_a_gpg_that_hangs_is_killed_at_the_time_limit(keyring, alice_commit, tmp_path, monkeypatch):
    _, cache, _ = keyring
    parts = split_commit(alice_commit[2])
    marker = tmp_path / "still-running"
    monkeypatch.setenv("GITJIT_GPG", faulty_gpg(tmp_path, f'echo $$ > "{marker}"; exec sleep 60'))
    monkeypatch.setenv("GITJIT_GPG_TIMEOUT", "0.5")
    started = time.monotonic()
    check = Keyring.load(cache, "a" * 40).verify(parts.payload, parts.signature)
    assert time.monotonic() - started < 5
    assert not check.good and check.code == "gpg-failed"
    assert check.reason == "signature could not be checked: gpg timed out after 0.5 s"
    pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):  # killed, not left behind
        os.kill(pid, 0)


@pytest.mark.parametrize("value", ["", "soon", "0", "-3", "inf", "nan"])
def test_an_unusable_time_limit_falls_back_to_the_default(value, monkeypatch):
    from gitjit.trust.signatures import DEFAULT_TIMEOUT, _gpg_timeout

    monkeypatch.setenv("GITJIT_GPG_TIMEOUT", value)
    assert _gpg_timeout() == DEFAULT_TIMEOUT


def test_a_malformed_signature_never_reaches_gpg(keyring, alice_commit, tmp_path, monkeypatch):
    _, cache, _ = keyring
    parts = split_commit(alice_commit[2])
    monkeypatch.setenv("GITJIT_GPG", faulty_gpg(tmp_path, f'touch "{tmp_path / "verified"}"'))
    faulty = Keyring.load(cache, "a" * 40)
    check = faulty.verify(parts.payload, parts.signature.replace(b"\n=", b"\n=AAAA\n=", 1))
    assert not check.good and check.code == "malformed-signature"
    assert not (tmp_path / "verified").exists()
    assert faulty.verify(parts.payload, parts.signature).good  # the wrapper passes a good one through
    assert (tmp_path / "verified").exists()
