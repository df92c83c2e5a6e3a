"""Weak signatures never count (SPEC s.2; docs/decisions.md, "Weak signatures").

The judgement of VALIDSIG's algorithm fields is tested on status lines; the
rest with REAL keys generated here, in a scratch GnuPG home: an RSA-1024
key, an ed25519 key whose signing subkey is RSA-1024, and an RSA-2048 key
that signs once with SHA-1 and once with SHA-256 (the control). Their
decisions go on a real approvals branch and through a real push into a bare
server with the hook installed by `gitjit hook install`; `gitjit verify`
judges the same decisions in the clone.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import (
    GPG,
    _created_fpr,
    _quick_gen,
    git,
    make_bare,
    make_clone,
    run_gpg,
    scratch_gnupghome,
)
from hookkit import ACTION, BranchWriter

from gitjit.trust.signatures import Keyring, judge_status, key_weakness

APPROVALS = "refs/heads/approvals"
FPR = "00B18F74E569CDA5FB95D869AE92A75EFF38033E"


def lines_with(pubkey: int = 22, digest: int = 8) -> list[tuple[str, str]]:
    return [
        ("NEWSIG", ""),
        ("GOODSIG", f"{FPR[-16:]} Alice <alice@example.com>"),
        ("VALIDSIG", f"{FPR} 2026-11-26 1795658298 0 4 0 {pubkey} {digest} 00 {FPR}"),
    ]


@pytest.mark.parametrize("digest, name", [(1, "MD5"), (2, "SHA-1"), (3, "RIPEMD-160"), (7, "hash algorithm '7'"),
                                          (12, "hash algorithm '12'"), (14, "hash algorithm '14'"),
                                          ("x", "hash algorithm 'x'"), ("\u00b2", "hash algorithm '\u00b2'")])
def test_a_digest_outside_the_accepted_set_does_not_count(digest, name):
    check = judge_status(lines_with(digest=digest), 0)
    assert not check.good and check.code == "weak-signature"
    assert check.reason == f"weak signature: {name} digest (SHA-224, SHA-256, SHA-384 or SHA-512 needed)"


@pytest.mark.parametrize("digest", [8, 9, 10, 11])
def test_the_sha2_digests_count(digest):
    assert judge_status(lines_with(digest=digest), 0).good


@pytest.mark.parametrize("pubkey, name", [(16, "ElGamal"), (20, "ElGamal (sign and encrypt)"), (2, "RSA (encrypt only)"),
                                          (18, "ECDH"), (27, "algorithm '27'"), (99, "algorithm '99'"),
                                          ("rsa", "algorithm 'rsa'")])
def test_a_public_key_algorithm_outside_the_accepted_set_does_not_count(pubkey, name):
    check = judge_status(lines_with(pubkey=pubkey), 0)
    assert not check.good and check.code == "weak-signature"
    assert check.reason == f"weak signature: {name} signatures are not accepted"


@pytest.mark.parametrize("pubkey", [1, 3, 17, 19, 22])
def test_accepted_public_key_algorithms_leave_the_key_size_to_the_key_material(pubkey):
    assert judge_status(lines_with(pubkey=pubkey), 0).good


@pytest.mark.parametrize("material, problem", [
    ((1, 1024, ""), "RSA key of 1024 bits (2048 needed)"),
    ((1, 2047, ""), "RSA key of 2047 bits (2048 needed)"),
    ((3, 1536, ""), "RSA (sign only) key of 1536 bits (2048 needed)"),
    ((17, 1024, ""), "DSA key of 1024 bits (2048 needed)"),
    ((1, 2048, ""), None),
    ((1, 4096, ""), None),
    ((17, 3072, ""), None),
    ((22, 255, "ed25519"), None),
    ((22, 255, "Ed25519"), None),
    ((22, 255, "ed448"), None),
    ((22, 256, "nistp256"), "EdDSA key on curve nistp256"),
    ((19, 256, "nistp256"), None),
    ((19, 512, "brainpoolP512r1"), None),
    ((19, 256, "secp256k1"), "ECDSA key on curve secp256k1"),
    ((19, 256, ""), "ECDSA key on curve ?"),
    ((16, 4096, ""), "ElGamal keys are not accepted"),
    ((0, 0, ""), "algorithm 0 keys are not accepted"),
])
def test_key_sizes_and_curves(material, problem):
    assert key_weakness(*material) == problem


# -- real weak keys --------------------------------------------------------------------


class WeakWorld:
    """A server with the hook, alice's clone, and an approvals branch whose policy names
    `rsa` (RSA-2048), `weakrsa` (RSA-1024) and `weaksub` (ed25519, RSA-1024 signing subkey)."""

    def __init__(self, base: Path, keys, home: Path):
        self.keys, self.home = keys, home
        self.env = dict(keys.env, GNUPGHOME=str(home))  # signs with the scratch home's keys
        gen = ["--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "1"]
        self.fpr = {
            "rsa": _created_fpr(run_gpg(home, *gen, "--quick-gen-key", "Rsa <rsa@example.com>", "rsa2048", "sign",
                                        "0", env=self.env).stdout, "P"),
            "weakrsa": _created_fpr(run_gpg(home, *gen, "--quick-gen-key", "Weakrsa <weakrsa@example.com>",
                                            "rsa1024", "sign", "0", env=self.env).stdout, "P"),
            "weaksub": _quick_gen(home, self.env, "Weaksub <weaksub@example.com>", "cert", "0"),
        }
        self.subkey = _created_fpr(run_gpg(home, *gen, "--quick-add-key", self.fpr["weaksub"], "rsa1024", "sign", "0",
                                           env=self.env).stdout, "S")
        self.sha1_gpg = base / "gpg-sha1"  # `git -c gpg.program=...`: the same key, a SHA-1 digest
        self.sha1_gpg.write_text(f'#!/bin/sh\nexec "{GPG}" --digest-algo SHA1 "$@"\n')
        self.sha1_gpg.chmod(0o755)

        self.server = make_bare(base / "server.git", keys.env)
        self.alice = make_clone(base, keys["alice"], keys)
        self.alice.gitjit("hook", "install", "--repo", str(self.server), check=True)
        self.alice.gitjit("init", "--admin", "alice", check=True)
        self.writer = BranchWriter(self.alice)
        files = {f"keys/{name}.asc": run_gpg(home, "--armor", "--export", fpr, env=self.env).stdout
                 for name, fpr in self.fpr.items()}
        files["keys/bob.asc"] = keys["bob"].asc
        files["policy.toml"] = self.policy()
        self.writer.commit(files, "gitjit: policy with weak keys")  # signed by alice, the admin
        self.push("main", "approvals", expect=0)

    def policy(self) -> str:
        people = {"alice": self.keys["alice"].fpr, "bob": self.keys["bob"].fpr, **self.fpr}
        lines = ["gitjit = 1", "", "[defaults]", 'freshness = "24h"', 'max_ttl = "72h"', 'clock_skew = "5m"', ""]
        for name, fpr in people.items():
            lines += [f"[people.{name}]", f'keys = ["{fpr}"]', f'emails = ["{name}@example.com"]', ""]
        approvers = ", ".join(f'"{name}"' for name in people if name != "alice")
        lines += ["[admins]", 'people = ["alice"]', "", f"[actions.{ACTION}]", f"approvers = [{approvers}]",
                  "threshold = 1", 'freshness = "1h"', "self_approval = false", 'tags = ["v*"]', ""]
        return "\n".join(lines)

    def push(self, *refspecs: str, expect: int | None = None) -> subprocess.CompletedProcess:
        result = git("push", "--porcelain", self.server.as_uri(), *refspecs, cwd=self.alice.path, env=self.alice.env,
                     check=False)
        if expect is not None:
            assert result.returncode == expect, f"{result.stdout}\n{result.stderr}"
        return result

    def server_tip(self) -> str:
        return git("rev-parse", APPROVALS, cwd=self.server, env=self.keys.env).stdout.strip()

    def open_request(self, label: str) -> tuple[str, str]:
        """A new target commit on main and a pushed request for it: (target, request id)."""
        self.alice.git("update-ref", APPROVALS, self.server_tip())
        target = self.alice.commit_file("app.txt", f"{label}\n")
        request_id = self.writer.request(target)
        self.push("main", "approvals", expect=0)
        return target, request_id

    def decide(self, request_id: str, person: str, sha1: bool = False) -> str:
        """`person`'s approval, committed and signed by git with the scratch home's key."""
        self.writer.git("reset", "-q", "--hard")
        path = f"approvals/{request_id}/{person}.toml"
        (self.writer.wt / path).parent.mkdir(parents=True, exist_ok=True)
        (self.writer.wt / path).write_text(self.writer.decision_text(request_id))
        self.writer.git("add", path)
        program = str(self.sha1_gpg) if sha1 else GPG
        git("-c", f"gpg.program={program}", "commit", "-q", f"-S{self.fpr[person]}", "-m", f"gitjit: approve {request_id}",
            cwd=self.writer.wt, env=self.env)
        return self.writer.tip()

    def verify(self, target: str) -> subprocess.CompletedProcess:
        return self.alice.gitjit("verify", ACTION, "--target", target, "--json")


@pytest.fixture(scope="module")
def weak(tmp_path_factory, keys):
    with scratch_gnupghome(keys.env) as home:
        yield WeakWorld(tmp_path_factory.mktemp("weak"), keys, home)


def digest_of(world: WeakWorld, commit: str) -> int:
    """The hash algorithm of a commit's signature, as gpg itself reports it (VALIDSIG field 8)."""
    proc = subprocess.run(["git", "verify-commit", "--raw", commit], cwd=world.alice.path, env=world.env,
                          capture_output=True, text=True, check=True)
    validsig = next(line.split() for line in proc.stderr.splitlines() if line.startswith("[GNUPG:] VALIDSIG "))
    return int(validsig[9])


CASES = {
    # person, signed with SHA-1, what the refusal names
    "rsa-1024 key": ("weakrsa", False, "RSA key of 1024 bits (2048 needed)"),
    "rsa-1024 signing subkey": ("weaksub", False, "RSA key of 1024 bits (2048 needed)"),
    "sha-1 digest": ("rsa", True, "SHA-1 digest (SHA-224, SHA-256, SHA-384 or SHA-512 needed)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_weak_decision_is_refused_by_the_hook_and_does_not_count_in_verify(weak: WeakWorld, case: str):
    person, sha1, problem = CASES[case]
    target, request_id = weak.open_request(case)
    before = weak.server_tip()
    commit = weak.decide(request_id, person, sha1=sha1)
    assert (digest_of(weak, commit) == 2) == sha1  # gpg really made what the case says

    result = weak.push("approvals")
    assert result.returncode != 0, result.stderr
    refusal = next(l.split("remote: ", 1)[-1].strip() for l in result.stderr.splitlines()
                   if f"gitjit: {APPROVALS} refused: " in l)
    signer = weak.subkey if person == "weaksub" else weak.fpr[person]
    expected = f"{person}: weak signature: " + (problem if sha1 else f"key {signer[-16:]}: {problem}")
    assert expected in refusal, refusal
    assert weak.server_tip() == before

    verdict = weak.verify(target)  # the clone has the decision the server refused
    assert verdict.returncode == 1, verdict.stderr
    decisions = json.loads(verdict.stdout)["requests"][0]["decisions"]
    assert [(d["person"], d["counts"], d["code"], d["reason"]) for d in decisions] == [
        (person, False, "weak-signature", expected[len(person) + 2:])]


def test_the_same_rsa_2048_key_with_sha_2_counts(weak: WeakWorld):
    """The control: the key that signed with SHA-1 above is accepted with gpg's default digest."""
    target, request_id = weak.open_request("control")
    commit = weak.decide(request_id, "rsa")
    assert digest_of(weak, commit) in (8, 9, 10, 11)
    weak.push("approvals", expect=0)
    assert weak.server_tip() == commit
    verdict = weak.verify(target)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    assert json.loads(verdict.stdout)["requests"][0]["approvals"] == ["rsa"]


def test_the_keyring_keeps_each_keys_own_algorithm_and_size(weak: WeakWorld, tmp_path):
    files = {name: run_gpg(weak.home, "--armor", "--export", fpr, env=weak.env).stdout.encode()
             for name, fpr in weak.fpr.items()}
    ring = Keyring.load_or_build(tmp_path, "f" * 40, files)
    assert ring.keys[weak.fpr["rsa"]].algorithms[weak.fpr["rsa"]] == (1, 2048, "")
    assert ring.keys[weak.fpr["weakrsa"]].algorithms[weak.fpr["weakrsa"]] == (1, 1024, "")
    sub = ring.keys[weak.fpr["weaksub"]]
    assert sub.algorithms == {weak.fpr["weaksub"]: (22, 255, "ed25519"), weak.subkey: (1, 1024, "")}
    now = datetime.now(UTC)
    assert sub.weakness(weak.fpr["weaksub"]) is None  # the primary is fine: the subkey that signs is not
    assert sub.problem_at(weak.subkey, now) == ("weak-signature", f"weak signature: key {weak.subkey[-16:]}: RSA key of 1024 bits (2048 needed)")
    assert ring.keys[weak.fpr["rsa"]].problem_at(weak.fpr["rsa"], now) is None
    # what the cache keeps is what was built
    again = Keyring.load(tmp_path, "f" * 40)
    assert again is not None and again.keys == ring.keys


def test_a_keyring_cached_without_key_algorithms_is_rebuilt(keys, tmp_path):
    files = {"alice": keys["alice"].asc.encode()}
    first = Keyring.load_or_build(tmp_path, "e" * 40, files)
    meta_path = Path(first.home) / "gitjit-keys.json"
    meta = json.loads(meta_path.read_text())
    for key in meta["keys"].values():
        del key["algorithms"]  # as gitjit wrote it before key algorithms were kept
    meta_path.write_text(json.dumps(meta))
    assert Keyring.load(tmp_path, "e" * 40) is None
    again = Keyring.load_or_build(tmp_path, "e" * 40, files)
    fpr = keys["alice"].fpr
    assert again.keys[fpr].algorithms == {fpr: (22, 255, "ed25519")}
