"""Before and after a decision: what is being decided, refusals with codes, and what happens next.

Real clones of a server with the hook; the golden policy: deploy-prod needs
2 of alice, bob, carol, self-approval off; dave approves nothing.
"""

from __future__ import annotations

import json
import time

import pytest
from hookkit import World, copy_world

from gitjit import reasons as R
from gitjit.commands import write as operations
from gitjit.errors import GitjitError
from gitjit.git.branch import ApprovalsBranch


@pytest.fixture
def team(golden, tmp_path, keys) -> World:
    return copy_world(golden, tmp_path, keys)


def refusal_code(clone, monkeypatch, request_id: str, decision: str = "approve") -> str:
    """The reason code of the core's refusal, run in this process as the clone's person."""
    for key in ("GNUPGHOME", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.setenv(key, clone.env[key])
    with pytest.raises(GitjitError) as caught:
        operations.decide(ApprovalsBranch(str(clone.path / ".git")), request_id, decision, "")
    return caught.value.code


def last_line(stderr: str) -> str:
    """The last line but the first-pin notice, which comes at the very end of a clone's first command."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("gitjit: pinned ")][-1]


def test_shows_what_is_being_approved_before_signing(team):
    carol, bob = team.clone("carol"), team.clone("bob")
    carol.commit_file("release.txt", "1.4.2\n", message="Release 1.4.2: faster deploys")
    carol.git("push", "-q", "origin", "main")
    target = carol.head()
    rid = carol.gitjit("request", "deploy-prod", "--reason", "ship it", "--push", check=0).stdout.split()[0]
    bob.git("fetch", "-q", "origin", "main")
    proc = bob.gitjit("approve", rid, check=0)
    (shown,) = [line for line in proc.stderr.splitlines() if line.startswith("gitjit: approve ")]
    assert shown == (f"gitjit: approve {rid}: deploy-prod on {target[:12]} 'Release 1.4.2: faster deploys', "
                     f"requested by Carol <carol@example.com>; reason: 'ship it'")


def test_warns_when_the_target_commit_is_not_here(team):
    carol, bob = team.clone("carol"), team.clone("bob")
    target = carol.commit_file("only-carol.txt", "x\n", message="not pushed anywhere")
    rid = carol.gitjit("request", "deploy-prod", "--target", target, "--push", check=0).stdout.split()[0]
    proc = bob.gitjit("approve", rid, check=0)  # a warning, not a refusal: the request binds the exact id
    assert f"gitjit: warning: this clone does not have commit {target}" in proc.stderr
    assert proc.stdout.startswith(f"approved {rid} in ")


def test_refuses_an_expired_request(team, monkeypatch):
    carol, bob = team.clone("carol"), team.clone("bob")
    rid = carol.gitjit("request", "deploy-prod", "--ttl", "1s", "--push", check=0).stdout.split()[0]
    time.sleep(1.5)
    proc = bob.gitjit("approve", rid, check=2)
    assert f"request {rid} expired at " in proc.stderr
    assert refusal_code(bob, monkeypatch, rid) == R.EXPIRED
    assert bob.git("for-each-ref", "refs/heads/approvals").stdout == ""  # nothing written


def test_refuses_a_second_decision_pushed_or_not(team, monkeypatch):
    carol, bob = team.clone("carol"), team.clone("bob")
    rid = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    first = bob.gitjit("approve", rid, check=0).stdout.split()[-1]
    proc = bob.gitjit("reject", rid, check=2)
    assert last_line(proc.stderr) == (
        f"gitjit: you approved {rid} in {first}, not yet pushed: push it with 'git push origin approvals'; "
        f"a second decision by you would not count")
    assert refusal_code(bob, monkeypatch, rid, "reject") == R.DUPLICATE_DECISION
    bob.git("push", "-q", "origin", "approvals")
    proc = bob.gitjit("approve", rid, "--push", check=2)
    assert f"you approved {rid} in {first}, on origin already" in proc.stderr


def test_refuses_an_id_nobody_has_with_its_code(team, monkeypatch):
    bob = team.clone("bob")
    bob.gitjit("status", check=0)  # the first use pins the root (and says so), once
    for hostile in ("deploy-prod-20990101-ffffff", "x" * 64, "../../etc/passwd"):
        proc = bob.gitjit("approve", hostile, check=2)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert refusal_code(bob, monkeypatch, "deploy-prod-20990101-ffffff") == R.NO_SUCH_REQUEST
    assert bob.git("for-each-ref", "refs/heads/approvals").stdout == ""


def test_says_what_is_next_after_each_write(team):
    carol, bob, alice = team.clone("carol"), team.clone("bob"), team.clone("alice")
    proc = carol.gitjit("request", "deploy-prod", "--push", check=0)
    rid = proc.stdout.strip()  # stdout is the id alone: scripts keep working
    assert last_line(proc.stderr) == f"gitjit: 0 of 2: waiting for alice and bob (approve: gitjit approve {rid})"
    proc = bob.gitjit("approve", rid, "--comment", "looks right", "--push", check=0)
    assert last_line(proc.stderr) == f"gitjit: 1 of 2: waiting for alice (approve: gitjit approve {rid})"
    proc = alice.gitjit("approve", rid, check=0)  # not pushed: it says so
    target = json.loads(alice.gitjit("status", rid, "--json", "--offline", check=0).stdout)["requests"][0]["target"]
    assert last_line(proc.stderr) == (
        f"gitjit: 2 of 2: approved by alice, bob (check: gitjit verify deploy-prod --target {target}); "
        f"not pushed yet: others see it after 'git push origin approvals' (or use --push)")
    dave = team.clone("dave")
    proc = dave.gitjit("request", "deploy-prod", "--push", check=0)
    other = proc.stdout.strip()
    assert last_line(proc.stderr) == (
        f"gitjit: 0 of 2: waiting for 2 more of alice, bob, carol (approve: gitjit approve {other})")
    proc = carol.gitjit("reject", other, "--comment", "not today", "--push", check=0)
    assert last_line(proc.stderr).startswith("gitjit: rejected by carol: it can no longer be approved")


def test_comments_and_reasons_are_in_the_json(team):
    carol, bob = team.clone("carol"), team.clone("bob")
    rid = carol.gitjit("request", "deploy-prod", "--reason", "Release 1.4.2", "--push", check=0).stdout.strip()
    bob.gitjit("reject", rid, "--comment", "tests are red", "--push", check=0)
    (request,) = json.loads(carol.gitjit("status", rid, "--json", check=0).stdout)["requests"]
    assert request["reason"] == "Release 1.4.2"
    (decision,) = request["decisions"]
    assert (decision["person"], decision["decision"], decision["comment"]) == ("bob", "reject", "tests are red")
    audit = json.loads(carol.gitjit("audit", "--json", check=None).stdout)
    decisions = [d for r in audit["requests"] if r["id"] == rid for d in r["decisions"]]
    assert [d["comment"] for d in decisions] == ["tests are red"]
