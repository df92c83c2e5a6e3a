"""A commit signature's structure, checked before GnuPG sees it (SPEC s.2).

`check_signature_block` runs on real signatures made by git and gpg, on
packets re-encoded by hand from them, and on random and mutated input.
Hostile signatures then go through a real `git push` into a bare server whose
hook was installed by `gitjit hook install`, with GnuPG behind a wrapper that
records every run: each is refused with the structural reason, and gpg never
verifies it.
"""

from __future__ import annotations

import base64
import random
import shutil
import stat
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from helpers import Clone, Keys, git, make_bare, make_clone
from hookkit import BranchWriter, policy_toml

from gitjit.trust.signatures import MalformedCommit, split_commit
from gitjit.trust.sigpacket import (
    MAX_ARMORED,
    MalformedSignature,
    check_signature_block,
    crc24,
)

STRUCTURE = "signature is not one OpenPGP signature packet: "
APPROVALS = "refs/heads/approvals"


# -- building armored packets by hand ----------------------------------------------


def slow_crc24(data: bytes) -> int:
    """RFC 4880 s.6.1, bit by bit: an independent check of the table-driven one."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(data: bytes, checksum: bool = True, headers: tuple[str, ...] = (), crc=slow_crc24) -> bytes:
    text = base64.b64encode(data).decode()
    lines = ["-----BEGIN PGP SIGNATURE-----", *headers, ""]
    lines += [text[i:i + 64] for i in range(0, len(text), 64)]
    if checksum:
        lines.append("=" + base64.b64encode(crc(data).to_bytes(3, "big")).decode())
    lines.append("-----END PGP SIGNATURE-----")
    return ("\n".join(lines) + "\n").encode()


def new_packet(tag: int, body: bytes) -> bytes:
    """A packet in the new format with a five-octet length (always definite)."""
    return bytes([0xC0 | tag, 255]) + len(body).to_bytes(4, "big") + body


def old_packet(tag: int, body: bytes) -> bytes:
    """A packet in the old format with a two-octet length."""
    return bytes([0x80 | (tag << 2) | 1]) + len(body).to_bytes(2, "big") + body


def packet_body(packet: bytes) -> bytes:
    """The body of one well-formed packet (the header's length is trusted: test input)."""
    first = packet[0]
    if first & 0x40:
        octet = packet[1]
        if octet < 192:
            return packet[2:]
        if octet < 224:
            return packet[3:]
        return packet[6:]
    return packet[1 + (1, 2, 4)[first & 3]:]


def compressed_bomb(levels: int, inner: bytes) -> bytes:
    """Compressed packets (tag 8, ZLIB) nested `levels` deep around `inner`."""
    data = inner
    for _ in range(levels):
        data = new_packet(8, b"\x02" + zlib.compress(data, 9))
    return data


def literal(content: bytes) -> bytes:
    return new_packet(11, b"b\x04data" + b"\0\0\0\0" + content)


# -- real signatures -------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(keys, tmp_path_factory) -> dict[str, bytes]:
    """gpgsig blocks made by git: alice (ed25519) and subby (an ed25519 signing subkey)."""
    base = tmp_path_factory.mktemp("sigpacket")
    blocks = {}
    for name in ("alice", "subby"):
        clone = make_clone(base, keys[name], keys)
        commit = clone.git("commit-tree", "-S", "HEAD^{tree}", "-p", "HEAD", "-m", "signed").stdout.strip()
        raw = subprocess.run(["git", "cat-file", "commit", commit], cwd=clone.path, env=clone.env,
                             capture_output=True, check=True).stdout
        blocks[name] = split_commit(raw).signature
    return blocks


def test_signatures_git_makes_pass_and_give_back_their_packet(signed):
    for block in signed.values():
        packet = check_signature_block(block)
        assert packet[0] & 0x80 and (packet[0] & 0x3F if packet[0] & 0x40 else (packet[0] >> 2) & 0x0F) == 2
        assert packet_body(packet)[0] == 4  # version 4
        assert check_signature_block(armor(packet)) == packet


def test_a_signature_libgit2_wrote_passes(signed, tmp_path):
    """pygit2 (libgit2) leaves an empty continuation line after the signature: git and gpg
    accept the commit, and so does the structure check."""
    import pygit2

    repo = pygit2.init_repository(str(tmp_path / "lg2"), bare=True)
    ident = pygit2.Signature("Alice", "alice@example.com", 1700000000, 0)
    content = repo.create_commit_string(ident, ident, "m\n", repo.TreeBuilder().write(), [])
    commit = repo.create_commit_with_signature(content, signed["alice"].decode(), "gpgsig")
    block = split_commit(repo.odb.read(commit)[1]).signature
    assert block.endswith(b"-----END PGP SIGNATURE-----\n\n")
    assert check_signature_block(block) == check_signature_block(signed["alice"])


def test_the_checksum_agrees_with_the_one_gpg_wrote(signed):
    block = signed["alice"].decode()
    line = next(l for l in block.splitlines() if l.startswith("="))
    packet = check_signature_block(signed["alice"])
    assert int.from_bytes(base64.b64decode(line[1:]), "big") == crc24(packet) == slow_crc24(packet)


def test_old_and_new_packet_formats_both_pass(signed):
    body = packet_body(check_signature_block(signed["alice"]))
    for packet in (old_packet(2, body), new_packet(2, body), bytes([0xC2, len(body)]) + body):
        assert check_signature_block(armor(packet)) == packet


def test_armor_headers_gpg_writes_pass_others_do_not(signed):
    packet = check_signature_block(signed["alice"])
    assert check_signature_block(armor(packet, headers=("Version: GnuPG v1", "Comment: made by hand")))
    for header in ("Hash: SHA1", "Charset: UTF-8", "Version:GnuPG", "no colon"):
        with pytest.raises(MalformedSignature, match="armor header"):
            check_signature_block(armor(packet, headers=(header,)))


def test_a_missing_checksum_is_allowed_a_wrong_one_is_not(signed):
    packet = check_signature_block(signed["alice"])
    assert check_signature_block(armor(packet, checksum=False)) == packet
    wrong = signed["alice"].replace(b"\n=", b"\n=AAAA\n=", 1)  # a second checksum-like line
    with pytest.raises(MalformedSignature):
        check_signature_block(wrong)
    text = armor(packet).decode().splitlines()
    crc = next(i for i, l in enumerate(text) if l.startswith("="))
    text[crc] = "=" + ("AAAA" if text[crc][1:] != "AAAA" else "AAAB")
    with pytest.raises(MalformedSignature, match="checksum does not match"):
        check_signature_block(("\n".join(text) + "\n").encode())


def test_the_exception_is_a_malformed_commit_with_the_structural_reason():
    with pytest.raises(MalformedCommit) as caught:
        check_signature_block(b"garbage")
    assert isinstance(caught.value, MalformedSignature)
    assert str(caught.value).startswith(STRUCTURE)


@pytest.mark.parametrize("name, make, fragment", [
    ("compressed", lambda sig: compressed_bomb(1, sig), "tag 8"),
    ("nested compressed", lambda sig: compressed_bomb(6, sig), "tag 8"),
    ("literal", lambda sig: literal(b"hello"), "tag 11"),
    ("marker", lambda sig: new_packet(10, b"PGP"), "tag 10"),
    ("one-pass", lambda sig: new_packet(4, b"\x03\x00\x08\x16" + b"\0" * 8 + b"\x01"), "tag 4"),
    ("public key", lambda sig: new_packet(6, b"\x04" + b"\0" * 40), "tag 6"),
    ("two signatures", lambda sig: sig + sig, "after the signature packet"),
    ("signature then literal", lambda sig: sig + literal(b"x"), "after the signature packet"),
    ("marker then signature", lambda sig: new_packet(10, b"PGP") + sig, "tag 10"),
    ("truncated", lambda sig: sig[:-1], "longer than the data"),
    ("partial length", lambda sig: bytes([0xC2, 0xE5]) + packet_body(sig), "partial-length"),
    ("indeterminate length", lambda sig: bytes([0x8B]) + packet_body(sig), "indeterminate length"),
    ("not a packet header", lambda sig: b"\x02" + sig[1:], "packet header"),
    ("version 3", lambda sig: new_packet(2, b"\x03" + packet_body(sig)[1:]), "version 3"),
    ("version 5", lambda sig: new_packet(2, b"\x05" + packet_body(sig)[1:]), "version 5"),
    ("hashed area past the end", lambda sig: new_packet(2, packet_body(sig)[:4] + b"\xff\xff" + packet_body(sig)[6:]),
     "past the end"),
    ("a trailing byte in the packet", lambda sig: new_packet(2, packet_body(sig) + b"\0"), "past the end"),
    ("a third signature value", lambda sig: new_packet(2, packet_body(sig) + b"\0\x08\xff"), "3 signature values"),
    ("no signature value", lambda sig: new_packet(2, _without_mpis(packet_body(sig))), "0 signature values"),
    ("empty", lambda sig: b"", "no data"),
])
def test_anything_but_one_signature_packet_is_refused(signed, name, make, fragment):
    sig = check_signature_block(signed["alice"])
    with pytest.raises(MalformedSignature, match=fragment) as caught:
        check_signature_block(armor(make(sig)))
    assert str(caught.value).startswith(STRUCTURE)


def _without_mpis(body: bytes) -> bytes:
    at = 4
    for _ in range(2):
        at += 2 + int.from_bytes(body[at:at + 2], "big")
    return body[:at + 2]


@pytest.mark.parametrize("name, block, fragment", [
    ("too big", b"-----BEGIN PGP SIGNATURE-----\n\n" + b"QUFB\n" * 2000 + b"-----END PGP SIGNATURE-----\n",
     "more than 8192"),
    ("non-ASCII", "-----BEGIN PGP SIGNATURE-----\n\nw\u00e9\n-----END PGP SIGNATURE-----\n".encode(), "non-ASCII"),
    ("no begin line", b"\nQUFB\n-----END PGP SIGNATURE-----\n", "does not start"),
    ("a message, not a signature", b"-----BEGIN PGP MESSAGE-----\n\nQUFB\n-----END PGP MESSAGE-----\n",
     "does not start"),
    ("no end line", b"-----BEGIN PGP SIGNATURE-----\n\nQUFB\n", "does not end"),
    ("text after the end", b"-----BEGIN PGP SIGNATURE-----\n\nQUFB\n-----END PGP SIGNATURE-----\nmore\n",
     "does not end"),
    ("two blocks", b"-----BEGIN PGP SIGNATURE-----\n\nQUFB\n-----END PGP SIGNATURE-----\n" * 2, "not base64"),
    ("no blank line", b"-----BEGIN PGP SIGNATURE-----\nQUFB\n-----END PGP SIGNATURE-----\n", "blank line"),
    ("no data", b"-----BEGIN PGP SIGNATURE-----\n\n=AAAA\n-----END PGP SIGNATURE-----\n", "no data"),
    ("garbage", b"-----BEGIN PGP SIGNATURE-----\n\n!!garbage!!\n-----END PGP SIGNATURE-----\n", "not base64"),
    ("a line too long", b"-----BEGIN PGP SIGNATURE-----\n\n" + b"QUFB" * 20 + b"\n-----END PGP SIGNATURE-----\n",
     "not base64"),
    ("padding in the middle", b"-----BEGIN PGP SIGNATURE-----\n\nQQ==\nQUFB\n-----END PGP SIGNATURE-----\n",
     "padding"),
    ("bad padding", b"-----BEGIN PGP SIGNATURE-----\n\nQUF\n-----END PGP SIGNATURE-----\n", "base64"),
])
def test_anything_but_one_armored_block_is_refused(name, block, fragment):
    with pytest.raises(MalformedSignature, match=fragment):
        check_signature_block(block)


def test_the_size_limit_is_on_the_armored_bytes(signed):
    sig = check_signature_block(signed["alice"])
    # a signature with a large notation in its unhashed area: fine below the limit, refused above it
    body = packet_body(sig)
    hashed = int.from_bytes(body[4:6], "big")
    at = 6 + hashed
    for size, ok in ((1000, True), (MAX_ARMORED, False)):
        notation = bytes([255]) + (size + 1).to_bytes(4, "big") + b"\x14" + b"n" * size
        unhashed = body[at + 2:at + 2 + int.from_bytes(body[at:at + 2], "big")] + notation
        packet = new_packet(2, body[:at] + len(unhashed).to_bytes(2, "big") + unhashed
                            + body[at + 2 + int.from_bytes(body[at:at + 2], "big"):])
        if ok:
            assert check_signature_block(armor(packet)) == packet
        else:
            with pytest.raises(MalformedSignature, match=f"more than {MAX_ARMORED}"):
                check_signature_block(armor(packet))


def test_random_and_mutated_input_raises_only_malformed_signature_quickly(signed):
    """20,000 inputs: random bytes, random armor, and gpg's own packets mutated and armored again."""
    rng = random.Random(20261130)
    seeds = [check_signature_block(block) for block in signed.values()]
    started = time.perf_counter()
    passed = 0
    for i in range(20_000):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(0, 12_000))
        elif kind == 1:
            data = armor(rng.randbytes(rng.randrange(0, 5_000)), checksum=rng.random() < 0.5, crc=crc24)
        else:
            packet = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(len(packet))
                action = rng.randrange(3)
                if action == 0:
                    packet[at] = rng.randrange(256)
                elif action == 1:
                    del packet[at:at + rng.randrange(1, 8)]
                else:
                    packet[at:at] = rng.randbytes(rng.randrange(1, 8))
            data = armor(bytes(packet), crc=crc24)
            if kind == 3:
                data = data[:rng.randrange(1, len(data) + 1)]
        try:
            packet = check_signature_block(data)
        except MalformedSignature:
            continue
        passed += 1  # what passes is one v4 signature packet that fills the data
        assert packet[0] in (0x88, 0x89, 0x8A, 0xC2) and packet_body(packet)[0] == 4
        assert check_signature_block(armor(packet, crc=crc24)) == packet
    elapsed = time.perf_counter() - started
    assert 0 < passed < 5_000  # some mutations keep the structure (a changed signature value), most do not
    assert elapsed < 60, f"{elapsed:.1f} s for 20,000 inputs"


# -- hostile pushes: refused by the hook, and gpg never runs ------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, keys: Keys):
    """A bare server with the hook, an approvals branch (bob and carol approve) and one open request."""
    base = tmp_path_factory.mktemp("hostile")
    bare = make_bare(base / "server.git", keys.env)
    alice = make_clone(base, keys["alice"], keys)
    alice.gitjit("hook", "install", "--repo", str(bare), check=True)
    alice.gitjit("init", "--admin", "alice", check=True)
    writer = BranchWriter(alice)
    files = {f"keys/{p}.asc": keys[p].asc for p in ("bob", "carol", "dave")}
    files["policy.toml"] = policy_toml(keys)
    writer.commit(files, "gitjit: policy with deploy-prod")
    request_id = writer.request(alice.head())
    git("push", "-q", bare.as_uri(), "main", "approvals", cwd=alice.path, env=alice.env)
    bob_decision = writer.decide(request_id, "bob", sign=keys["bob"].fpr)
    alice.git("update-ref", "refs/heads/approvals", f"{bob_decision}^")
    return bare, alice, raw_object(alice, bob_decision)


def raw_object(clone: Clone, commit: str) -> bytes:
    return subprocess.run(["git", "cat-file", "commit", commit], cwd=clone.path, env=clone.env,
                          capture_output=True, check=True).stdout


def with_signature(raw: bytes, block: bytes) -> bytes:
    """The commit object with its gpgsig header replaced by `block` (as git folds it)."""
    head, _, message = raw.partition(b"\n\n")
    lines = [l for l in head.split(b"\n") if not l.startswith((b"gpgsig ", b" "))]
    sig = block.rstrip(b"\n").split(b"\n")
    lines.append(b"gpgsig " + sig[0] + b"".join(b"\n " + l for l in sig[1:]))
    return b"\n".join(lines) + b"\n\n" + message


def recording_gpg(directory: Path) -> tuple[Path, Path]:
    """A gpg that logs its arguments, one run per line, then runs the real one."""
    log = directory / "gpg-calls.log"
    wrapper = directory / "gpg-recording"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{shutil.which("gpg")}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, log


def hostile_blocks(decision_raw: bytes) -> dict[str, bytes]:
    sig = check_signature_block(split_commit(decision_raw).signature)
    bomb = compressed_bomb(6, literal(b"\0" * 2_000_000))  # small armored, megabytes once unpacked
    big_bomb = compressed_bomb(5, literal(random.Random(9).randbytes(11_000)))  # ~15 KB armored
    return {
        "nested compressed, small": (armor(bomb), "tag 8"),
        "nested compressed, 15 KB": (armor(big_bomb), f"more than {MAX_ARMORED}"),
        "two signature packets": (armor(sig + sig), "after the signature packet"),
        "a literal packet": (armor(literal(b"approve")), "tag 11"),
        "100 KB of armor": (armor(random.Random(7).randbytes(75_000)), f"more than {MAX_ARMORED}"),
        "garbage armor": (b"-----BEGIN PGP SIGNATURE-----\n\n!!garbage!!\n-----END PGP SIGNATURE-----\n",
                          "not base64"),
    }


@pytest.mark.parametrize("name", ["nested compressed, small", "nested compressed, 15 KB", "two signature packets",
                                  "a literal packet", "100 KB of armor", "garbage armor"])
def test_a_hostile_signature_is_refused_by_the_hook_before_gpg_runs(server, tmp_path, name):
    bare, alice, decision = server
    block, fragment = hostile_blocks(decision)[name]
    forged = with_signature(decision, block)
    commit = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"], input=forged,
                            cwd=alice.path, env=alice.env, capture_output=True, check=True).stdout.decode().strip()
    tip = alice.head("approvals")
    wrapper, log = recording_gpg(tmp_path)
    env = dict(alice.env, GITJIT_GPG=str(wrapper))
    started = time.monotonic()
    result = git("push", "--porcelain", bare.as_uri(), f"{commit}:{APPROVALS}", cwd=alice.path, env=env, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stderr
    lines = [l.split("remote: ", 1)[-1].strip() for l in result.stderr.splitlines()]
    refusal = next(l for l in lines if l.startswith(f"gitjit: {APPROVALS} refused: "))
    assert f"bob: {STRUCTURE}" in refusal and fragment in refusal, refusal
    calls = log.read_text().splitlines() if log.exists() else []
    assert not [c for c in calls if "--verify" in c], calls  # the signature never reached gpg
    assert git("rev-parse", APPROVALS, cwd=bare, env=alice.env).stdout.strip() == tip
    assert elapsed < 10, f"the push took {elapsed:.1f} s"


def test_the_same_decision_with_its_own_signature_is_accepted(server, tmp_path):
    """The control: the forged commits differ from a good one only in their gpgsig."""
    bare, alice, decision = server
    commit = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], input=decision,
                            cwd=alice.path, env=alice.env, capture_output=True, check=True).stdout.decode().strip()
    wrapper, log = recording_gpg(tmp_path)
    env = dict(alice.env, GITJIT_GPG=str(wrapper))
    tip = git("rev-parse", APPROVALS, cwd=bare, env=alice.env).stdout.strip()
    try:
        result = git("push", "--porcelain", bare.as_uri(), f"{commit}:{APPROVALS}", cwd=alice.path, env=env,
                     check=False)
        assert result.returncode == 0, result.stderr
        assert [c for c in log.read_text().splitlines() if "--verify" in c]  # the wrapper really is the gpg used
    finally:  # the module's other tests push on top of the old tip
        git("update-ref", APPROVALS, tip, cwd=bare, env=alice.env)
