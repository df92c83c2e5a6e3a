"""Self-approval cannot be dodged by leaving the requester unknown (docs/format.md, sections 6.2, 6.3).

Where an action has `self_approval = false`, a request whose requester is not
known (an unsigned request, or one whose signature counts for nobody) never
counts: its author could otherwise approve it by leaving their email off it.
Through the real CLI (World) and a real push into a server whose hook was
installed by `gitjit hook install` (test_hook's server).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import Keys
from hookkit import ACTION, BranchWriter, copy_world, refused, toml_time
from hookkit import World as Server
from world import World, template_world, utc

UNKNOWN = "request is unsigned: with self_approval = false the requester must be known"


@pytest.fixture(scope="module")
def template(keys, tmp_path_factory) -> World:
    return template_world(tmp_path_factory.mktemp("self-approval"), keys)


@pytest.fixture
def world(template, tmp_path) -> World:
    return template.copy(tmp_path)


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> Server:  # noqa: F811 (the fixture)
    """test_hook's server and alice's clone, over file:// only."""
    return copy_world(golden, tmp_path, keys)


def test_an_approver_cannot_approve_their_own_unsigned_request_through_the_hook(server: Server):
    """bob commits an unsigned request as ci@example.org, approves it with carol, and pushes
    the tag: refused. Before, nobody was the requester, so bob's own approval counted."""
    bob = server.clone("bob")
    bob.git("fetch", "-q", "origin", "approvals:approvals")
    writer = BranchWriter(bob)
    target = bob.commit_file("app.txt", "1.0\n")
    created = utc(seconds=-30)
    request_id = "deploy-prod-by-ci"
    text = (f'gitjit = 1\nid = "{request_id}"\naction = "{ACTION}"\ntarget = "{target}"\n'
            f'requested_by = "CI <ci@example.org>"\nreason = "nightly"\n'
            f"created = {toml_time(created)}\nexpires = {toml_time(created + timedelta(hours=2))}\n")
    (writer.wt / "requests").mkdir(exist_ok=True)
    (writer.wt / f"requests/{request_id}.toml").write_text(text)
    writer.git("add", f"requests/{request_id}.toml")
    writer.git("-c", "user.email=ci@example.org", "-c", "user.name=CI", "commit", "-q", "-m", "request by CI")
    assert "gpgsig" not in writer.git("cat-file", "commit", "HEAD").stdout
    writer.approve_by(server.keys, request_id, "bob", "carol")
    bob.git("tag", "v1.0", target)

    # the CLI says why, in the clone, before anything is pushed
    verify = bob.gitjit("verify", ACTION, "--target", target, check=1)
    assert f"bob: {UNKNOWN}" in verify.stdout and f"carol: {UNKNOWN}" in verify.stdout

    before = server.refs()
    result = server.push(bob, "main", "approvals", "refs/tags/v1.0")
    refused(result, "refs/heads/approvals", f"bob: {UNKNOWN}")
    refused(result, "refs/tags/v1.0")
    assert server.refs() == before


def test_cli_verify_says_why_an_unsigned_request_never_counts(world):
    target = world.target()
    rid = world.hand_request("erin", "deploy", target, sign=False)  # erin's email is nobody's in the policy
    world.hand_decision("alice", rid)
    world.hand_decision("bob", rid)
    proc = world.gitjit("erin", "verify", "deploy", "--target", target, check=1)
    assert f"alice: {UNKNOWN}" in proc.stdout and f"bob: {UNKNOWN}" in proc.stdout
    data = world.json("erin", "verify", "deploy", "--target", target, check=1)
    assert data["approved"] is False
    assert f"request {rid}: alice: {UNKNOWN}" in data["reasons"]
    assert data["codes"] == ["pending", "unknown-requester", "unknown-requester"]


def test_a_request_signed_by_a_key_of_nobody_in_the_policy_never_counts(world):
    """erin's key signs: a good signature, but it counts for nobody, so nobody can be excluded."""
    target = world.target()
    rid = world.hand_request("erin", "deploy", target)
    world.hand_decision("alice", rid)
    world.hand_decision("bob", rid)
    reasons = world.decision_reasons("deploy", target)
    expected = "request's signature counts for nobody: with self_approval = false the requester must be known"
    assert reasons == {"alice": expected, "bob": expected}  # the text tells this case from an unsigned request
    codes = {d.person: d.code for r in world.verdict("deploy", target).requests for d in r.decisions}
    assert codes == {"alice": "unknown-requester", "bob": "unknown-requester"}
    world.gitjit("erin", "verify", "deploy", "--target", target, check=1)


def test_an_unsigned_request_without_decisions_says_so_in_its_reasons(world):
    target = world.target()
    world.hand_request("erin", "deploy", target, sign=False)
    data = world.json("erin", "verify", "deploy", "--target", target, check=1)
    assert data["requests"][0]["reasons"] == ["0 of 2 approvals", UNKNOWN]
    assert data["requests"][0]["codes"] == ["pending", "unknown-requester"]


def test_a_signed_request_by_a_known_person_still_counts(world):
    target = world.target()
    rid = world.hand_request("carol", "deploy", target)
    world.hand_decision("alice", rid)
    world.hand_decision("bob", rid)
    world.gitjit("erin", "verify", "deploy", "--target", target, check=0)


def test_with_self_approval_true_unsigned_requests_still_work(world):
    """`selfok`: requesters "*" (the default), self_approval = true, threshold 1."""
    target = world.target()
    rid = world.hand_request("erin", "selfok", target, sign=False)
    world.hand_decision("bob", rid)
    proc = world.gitjit("erin", "verify", "selfok", "--target", target, check=0)
    assert rid in proc.stdout
