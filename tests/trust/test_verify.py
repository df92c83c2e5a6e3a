"""When is an action approved (docs/format.md, sections 3.5, 4, 5, 6, 8), against real repos and real signatures.

Every test starts from a copy of one module-wide world (see world.py):
alice is admin, the policy has the actions deploy (2 of @sre + carol,
freshness 1h), selfok, ops (1 of bob, carol, shortlived, revoked, subby;
freshness 4d) and restricted. Requests, decisions and policy changes are
made with the CLI or by hand with git plumbing, as a person without gitjit,
or an attacker, would.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from world import BRANCH, World, decision_toml, iso, request_toml, template_world, utc


@pytest.fixture(scope="module")
def template(keys, tmp_path_factory) -> World:
    return template_world(tmp_path_factory.mktemp("verify"), keys)


@pytest.fixture
def world(template, tmp_path) -> World:
    return template.copy(tmp_path)


def approved_request(world: World, action: str = "deploy", approvers=("alice", "bob"), requester: str = "carol"):
    target = world.target()
    rid = world.request(requester, action, target)
    for person in approvers:
        world.approve(person, rid)
    return target, rid


def why(world: World, action: str, target: str, at=None) -> dict[str, str]:
    """person -> the code of why their decision does not count ('' when it counts), over every request."""
    verdict = world.verdict(action, target, at)
    return {d.person: d.code for r in verdict.requests for d in r.decisions}


def cli_verify(world: World, action: str, target: str, expect: int, *args: str, person: str = "dave"):
    return world.gitjit(person, "verify", action, "--target", target, *args, check=expect)


# -- the happy path, thresholds and groups -------------------------------------------


def test_happy_path(world):
    target, rid = approved_request(world)
    out = world.gitjit("dave", "verify", "deploy", "--target", target, process=True).stdout  # python -m gitjit
    assert out.strip() == f"approved: deploy on {target[:12]} by request {rid} (alice, bob)"
    verdict = world.verdict("deploy", target)
    assert verdict.approved and verdict.approved_by == rid and verdict.reasons == ()
    request = verdict.requests[0]
    assert request.approvals == ("alice", "bob") and request.threshold == 2 and request.requesters == ("carol",)
    assert all(d.counts and d.reason == "" and d.code == "" for d in request.decisions)
    # the same request says nothing about another action or another commit
    assert not world.verdict("selfok", target).approved
    assert not world.verdict("deploy", world.target()).approved


def test_target_defaults_to_head_and_is_peeled(world):
    rid = world.gitjit("carol", "request", "deploy").stdout.strip()  # --target HEAD
    world.approve("alice", rid)
    world.approve("bob", rid)
    assert world.gitjit("dave", "verify", "deploy", check=0)
    world.git("tag", "-a", "-m", "annotated", "v1.0", "HEAD")
    out = cli_verify(world, "deploy", "v1.0", 0).stdout
    assert world.rev("HEAD")[:12] in out


def test_threshold_one_of_two(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    out = cli_verify(world, "deploy", target, 1).stdout
    assert "not approved: deploy" in out
    assert f"request {rid}: 1 of 2 approvals (bob)" in out


def test_no_request_at_all(world):
    target = world.target()
    out = cli_verify(world, "deploy", target, 1).stdout
    assert f"no request for deploy on {target[:12]}" in out


def test_group_members_and_direct_approvers_count(world):
    target, rid = approved_request(world, approvers=("alice", "carol"), requester="dave")
    verdict = world.verdict("deploy", target)
    assert verdict.approved and verdict.requests[0].approvals == ("alice", "carol")


def test_the_same_person_twice_is_one_approval(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    # decision files are immutable: bob cannot add a second one, only (try to) rewrite his
    path = f"approvals/{rid}/bob.toml"
    world.commit_on_branch("bob", {path: world.show(path).replace('comment = ""', 'comment = "again"')})
    refusal = world.trusted().refusals[-1]
    assert (refusal.code, refusal.reason) == ("layout", f"a commit must add exactly one file; this one changes M {path}")
    assert "1 of 2 approvals (bob)" in cli_verify(world, "deploy", target, 1).stdout
    # and the CLI refuses to write a second decision
    assert "would not count" in world.gitjit("bob", "approve", rid, check=2).stderr


def test_approvals_of_two_requests_do_not_add_up(world):
    target = world.target()
    first, second = world.request("carol", "deploy", target), world.request("carol", "deploy", target)
    world.approve("alice", first)
    world.approve("bob", second)
    out = cli_verify(world, "deploy", target, 1).stdout
    assert f"request {first}: 1 of 2 approvals (alice)" in out
    assert f"request {second}: 1 of 2 approvals (bob)" in out


# -- self-approval ---------------------------------------------------------------------


def test_requesters_own_approval_does_not_count(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    # the CLI will not write it ...
    before = world.snapshot()
    err = world.gitjit("carol", "approve", rid, check=2).stderr
    assert "carol requested it: self-approval is not allowed for deploy" in err
    assert world.snapshot().refs == before.refs
    # ... and written by hand it does not count
    world.hand_decision("carol", rid)
    assert why(world, "deploy", target) == {"bob": "", "carol": "self-approval"}
    assert "1 of 2 approvals (bob)" in cli_verify(world, "deploy", target, 1).stdout


def test_self_approval_counts_where_allowed(world):
    target = world.target()
    rid = world.request("carol", "selfok", target)
    world.approve("carol", rid)
    assert "(carol)" in cli_verify(world, "selfok", target, 0).stdout


def test_unsigned_request_makes_the_author_email_the_requester(world):
    target = world.target()
    rid = world.request("bob", "deploy", target, "--no-sign")
    world.hand_decision("bob", rid)
    world.hand_decision("alice", rid)  # `gitjit approve` refuses to write it: it would not count
    verdict = world.verdict("deploy", target)
    assert verdict.requests[0].requesters == ("bob",)
    codes = why(world, "deploy", target)
    assert codes["bob"] == "self-approval"
    # docs/format.md, 6.3: with self_approval = false an unsigned request never counts (its author email is not authenticated)
    assert codes["alice"] == "unknown-requester"
    assert not verdict.approved


def test_restricted_requesters(world):
    target = world.target()
    # bob may not request `restricted`: the CLI refuses and writes nothing
    before = world.snapshot()
    err = world.gitjit("bob", "request", "restricted", "--target", target, check=2).stderr
    assert "bob may not request restricted" in err
    assert world.snapshot().refs == before.refs
    # carol may, and bob approves
    rid = world.request("carol", "restricted", target)
    world.approve("bob", rid)
    assert cli_verify(world, "restricted", target, 0)
    # an unsigned request cannot name its requester: it does not count where requesters are restricted
    unsigned = world.hand_request("carol", "restricted", world.target(), sign=False)
    assert unsigned not in world.trusted().requests


# -- who may approve --------------------------------------------------------------------


def test_person_outside_the_policy(world, keys):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    # erin's key is nowhere in the policy or keys/: neither her own file nor one in alice's name counts
    world.hand_decision("erin", rid)
    world.hand_decision("erin", rid, as_person="alice")
    codes = why(world, "deploy", target)
    assert (codes["erin"], codes["alice"]) == ("not-approver", "unknown-key")
    out = cli_verify(world, "deploy", target, 1).stdout
    assert f"alice: signature by unknown key {keys['erin'].fpr[-16:]}" in out
    assert "1 of 2 approvals (bob)" in out


def test_person_who_is_not_an_approver_of_the_action(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    assert "dave is not an approver of deploy" in world.gitjit("dave", "approve", rid, check=2).stderr
    world.hand_decision("dave", rid)
    assert why(world, "deploy", target)["dave"] == "not-approver"
    assert not world.verdict("deploy", target).approved


def test_decision_signed_with_another_persons_key(world, keys):
    target = world.target()
    rid = world.request("dave", "deploy", target)
    world.approve("bob", rid)
    world.hand_decision("bob", rid, as_person="alice")  # approvals/<id>/alice.toml, signed by bob
    assert why(world, "deploy", target)["alice"] == "wrong-signer"
    assert not world.verdict("deploy", target).approved


def test_unsigned_decision(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    world.hand_decision("alice", rid, sign=False)
    assert why(world, "deploy", target)["alice"] == "not-signed"
    assert not world.verdict("deploy", target).approved


def test_decision_bound_to_another_target(world):
    target, other = world.target(), world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    world.hand_decision("alice", rid, target=other)
    assert why(world, "deploy", target)["alice"] == "wrong-target"
    assert not world.verdict("deploy", target).approved
    assert not world.verdict("deploy", other).approved


def test_decision_bound_to_another_request_blob(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    other_blob = world.blob_id("policy.toml")
    world.hand_decision("alice", rid, request_blob=other_blob)
    assert why(world, "deploy", target)["alice"] == "wrong-blob"
    assert not world.verdict("deploy", target).approved


def test_decision_made_before_its_request_does_not_count(world):
    target = world.target()
    now = utc()
    text = request_toml("early-1", "deploy", target, now, now + timedelta(hours=5))
    blob = world.git("hash-object", "--stdin", input=text).stdout.strip()
    # alice and bob approve the request file before it is on the branch
    for person in ("alice", "bob"):
        world.commit_on_branch(person, {f"approvals/early-1/{person}.toml": decision_toml("early-1", blob, target)})
    world.commit_on_branch("carol", {"requests/early-1.toml": text})
    assert world.trusted().requests["early-1"].blob == blob
    verdict = world.verdict("deploy", target)
    assert not verdict.approved
    assert [(d.person, d.counts) for d in verdict.requests[0].decisions] == [("alice", False), ("bob", False)]
    refusals = [r.reason for r in world.trusted().refusals]
    assert refusals == ["alice: request early-1 does not exist before this decision",
                        "bob: request early-1 does not exist before this decision"]


# -- tampering ------------------------------------------------------------------------------


def _raw(world: World, commit: str) -> bytes:
    return world.git("cat-file", "commit", commit, input=b"").stdout


def _write_commit(world: World, data: bytes) -> str:
    return world.git("hash-object", "-t", "commit", "-w", "--stdin", input=data).stdout.decode().strip()


def test_tampered_decision_keeps_its_signature_but_does_not_count(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    parent = world.tip()
    signed = world.hand_decision("alice", rid)
    path = f"approvals/{rid}/alice.toml"
    # the same signed commit object, pointing at a tree whose decision file says something else
    changed = world.show(path).replace('comment = ""', 'comment = "rubber stamp"')
    world.git("update-ref", BRANCH, parent)
    forged_tree = world.rev(world.commit_on_branch("alice", {path: changed}, sign=False, move_branch=False) + "^{tree}")
    data = _raw(world, signed)
    old_tree = data.split(b"\n", 1)[0]
    forged = _write_commit(world, data.replace(old_tree, b"tree " + forged_tree.encode(), 1))
    assert b"gpgsig" in _raw(world, forged) and forged != signed
    world.git("update-ref", BRANCH, forged)
    assert world.git("verify-commit", forged, check=False).returncode != 0  # git agrees
    assert why(world, "deploy", target)["alice"] == "bad-signature"
    assert not world.verdict("deploy", target).approved


def test_signature_copied_onto_another_commit_does_not_count(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    # alice signs something harmless; her signature is then pasted onto an unsigned decision
    harmless = world.git("commit-tree", "-S", "HEAD^{tree}", "-p", "HEAD", "-m", "harmless").stdout.strip()
    signature_lines = [l for l in _raw(world, harmless).split(b"\n\n", 1)[0].split(b"\n") if l.startswith((b"gpgsig", b" "))]
    unsigned = world.hand_decision("alice", rid, sign=False, move_branch=False)
    head, _, message = _raw(world, unsigned).partition(b"\n\n")
    forged = _write_commit(world, head + b"\n" + b"\n".join(signature_lines) + b"\n\n" + message)
    world.git("update-ref", BRANCH, forged)
    assert why(world, "deploy", target)["alice"] == "bad-signature"
    assert not world.verdict("deploy", target).approved


def test_signature_time_must_agree_with_the_committer_time(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    an_hour_ago = f"{int(utc(hours=-1).timestamp())} +0000"
    world.hand_decision("alice", rid, env={"GIT_COMMITTER_DATE": an_hour_ago})
    assert why(world, "deploy", target)["alice"] == "clock-skew"


def test_modified_request_does_not_change_what_was_approved(world):
    target, rid = approved_request(world)
    # rewriting the request file afterwards (a commit that modifies it) does not count
    path = f"requests/{rid}.toml"
    world.commit_on_branch("carol", {path: world.show(path).replace(target, world.target())})
    trusted = world.trusted()
    assert [(r.code, r.reason) for r in trusted.refusals] == [
        ("layout", f"a commit must add exactly one file; this one changes M {path}")]
    assert trusted.requests[rid].request.target == target
    assert world.verdict("deploy", target).approved


# -- time: freshness, the request window, the future -----------------------------------------


def test_stale_approval(world):
    target, rid = approved_request(world)
    at = iso(utc(hours=2))
    out = cli_verify(world, "deploy", target, 1, "--at", at).stdout
    assert "alice: approval is 2h old, freshness is 1h" in out
    assert "bob: approval is 2h old, freshness is 1h" in out
    assert "0 of 2 approvals" in out
    assert cli_verify(world, "deploy", target, 0, "--at", iso(utc(minutes=50)))


def test_approval_from_the_future(world):
    target = world.target()
    rid = world.hand_request("carol", "deploy", target, created=utc(hours=-2), expires=utc(hours=20))
    world.approve("alice", rid)
    world.approve("bob", rid)
    out = cli_verify(world, "deploy", target, 1, "--at", iso(utc(hours=-1))).stdout
    assert re.search(r"alice: signed in the future \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", out)
    assert cli_verify(world, "deploy", target, 0)


def test_approval_signed_before_the_request_was_created(world):
    target = world.target()
    rid = world.hand_request("carol", "deploy", target, created=utc(hours=1), expires=utc(hours=5))
    world.hand_decision("alice", rid)
    world.hand_decision("bob", rid)
    codes = why(world, "deploy", target, at=utc(hours=1))
    assert codes == {"alice": "signed-before-request", "bob": "signed-before-request"}


def test_expired_request(world):
    target = world.target()
    rid = world.request("carol", "deploy", target, "--ttl", "30m")
    world.approve("alice", rid)
    world.approve("bob", rid)
    expires = world.trusted().requests[rid].request.expires
    assert cli_verify(world, "deploy", target, 0, "--at", iso(expires - timedelta(seconds=1)))
    out = cli_verify(world, "deploy", target, 1, "--at", iso(expires)).stdout
    assert f"request expired at {iso(expires)}" in out


def test_request_not_valid_yet(world):
    target = world.target()
    rid = world.hand_request("carol", "deploy", target, created=utc(hours=-1), expires=utc(hours=5))
    world.approve("alice", rid)
    world.approve("bob", rid)
    verdict = world.verdict("deploy", target, at=utc(hours=-2))
    assert verdict.requests[0].state == "not-yet-valid"
    assert verdict.codes[0] == "not-yet-valid"


# -- vetoes ----------------------------------------------------------------------------------


def test_rejection_vetoes_and_does_not_go_stale(world):
    target, rid = approved_request(world, requester="dave")
    world.gitjit("carol", "reject", rid, "--comment", "not today")
    out = cli_verify(world, "deploy", target, 1).stdout
    assert f"request {rid}: rejected by carol" in out
    # hours later the approvals are stale but the veto still stands
    verdict = world.verdict("deploy", target, at=utc(hours=5))
    assert verdict.requests[0].state == "rejected" and verdict.requests[0].rejections == ("carol",)
    decision = {d.person: d for d in verdict.requests[0].decisions}
    assert decision["carol"].counts and decision["carol"].decision == "reject"
    assert not decision["alice"].counts and decision["alice"].code == "stale"


def test_rejection_by_someone_who_may_not_decide_does_not_count(world):
    target, rid = approved_request(world)
    world.hand_decision("dave", rid, decision="reject")
    world.hand_decision("erin", rid, decision="reject")
    verdict = world.verdict("deploy", target)
    assert verdict.approved and verdict.requests[0].rejections == ()


# -- keys: expired, revoked, subkeys -----------------------------------------------------------


def test_expired_key(world, keys):
    target = world.target()
    rid = world.request("carol", "ops", target, "--ttl", "4d")
    world.approve("shortlived", rid)
    assert cli_verify(world, "ops", target, 0)
    out = cli_verify(world, "ops", target, 1, "--at", iso(utc(days=3))).stdout
    assert f"shortlived: key {keys['shortlived'].fpr[-16:]} expired at" in out
    assert "0 of 1 approvals" in out


def test_revoked_key_withdraws_its_approvals(world, keys):
    target = world.target()
    rid = world.request("carol", "ops", target)
    world.approve("revoked", rid)
    assert cli_verify(world, "ops", target, 0)
    # the admin publishes the revocation on the branch
    world.commit_on_branch("alice", {"keys/revoked.asc": keys["revoked"].revoked_asc}, message="revoke")
    out = cli_verify(world, "ops", target, 1).stdout
    assert f"revoked: key {keys['revoked'].fpr[-16:]} is revoked" in out
    # and a decision made after the revocation is published never counts
    rid2 = world.request("carol", "ops", world.target())
    world.hand_decision("revoked", rid2)
    refusal = world.trusted().refusals[-1]
    assert refusal.code == "revoked-key" and refusal.reason.startswith("revoked: ")


def test_signing_subkey_counts(world, keys):
    target = world.target()
    rid = world.request("carol", "ops", target)
    world.approve("subby", rid)
    assert "(subby)" in cli_verify(world, "ops", target, 0).stdout
    decision = world.verdict("ops", target).requests[0].decisions[0]
    assert decision.counts and decision.key == keys["subby"].fpr


# -- trust: the root and policy changes ---------------------------------------------------------


def test_policy_change_by_a_non_admin_untrusts_the_branch(world, keys):
    target, rid = approved_request(world)
    # bob, who is no admin, makes himself one, by hand in a worktree of the branch
    tree = world.path.parent / "bob-wt"
    world.git("worktree", "add", "-q", str(tree), "approvals", person="bob")
    policy = tree / "policy.toml"
    policy.write_text(policy.read_text().replace('people = [\n    "alice",\n]', 'people = ["alice", "bob"]'))
    world.git("-C", str(tree), "commit", "-q", "-S", "-am", "make bob an admin", person="bob")
    world.git("worktree", "remove", str(tree))
    err = cli_verify(world, "deploy", target, 1).stderr
    assert err.startswith("gitjit: the approvals branch is not trusted: policy change ")
    assert f"is signed by key {keys['bob'].fpr}, which is not an admin's key" in err
    # writing on an untrusted branch is refused too
    assert "not trusted" in world.gitjit("alice", "approve", rid, check=1).stderr


def test_unsigned_policy_change_untrusts_the_branch(world):
    target, _ = approved_request(world)
    world.edit_policy("alice", lambda t: t.replace('freshness = "1h"', 'freshness = "9d"'), sign=False)
    err = cli_verify(world, "deploy", target, 1).stderr
    assert "not trusted" in err and "is not signed" in err


def test_key_swap_by_a_non_admin_untrusts_the_branch(world, keys):
    target, _ = approved_request(world)
    world.commit_on_branch("bob", {"keys/alice.asc": keys["bob"].asc}, message="swap")
    assert "not trusted" in cli_verify(world, "deploy", target, 1).stderr


def test_admin_policy_change_applies(world):
    target, rid = approved_request(world)
    world.edit_policy("alice", lambda t: t.replace('approvers = ["@sre", "carol"]\nthreshold = 2',
                                                   'approvers = ["@sre", "carol"]\nthreshold = 3'))
    assert "2 of 3 approvals" in cli_verify(world, "deploy", target, 1).stdout
    world.approve("carol", world.request("dave", "deploy", world.target()))  # writes still work


def test_removing_an_approver_withdraws_their_approval(world):
    target, rid = approved_request(world)
    world.edit_policy("alice", lambda t: t.replace('sre = ["alice", "bob"]', 'sre = ["alice"]'))
    assert "bob: bob is no longer an approver of deploy" in cli_verify(world, "deploy", target, 1).stdout


def test_root_other_than_the_pinned_one_is_not_trusted(world):
    target, _ = approved_request(world)
    other = world.target()
    world.git("config", "gitjit.root", other)
    err = cli_verify(world, "deploy", target, 1).stderr
    assert f"not at the pinned root {other[:12]}" in err
    # --root pins for one run: the real root makes it verify again
    real_root = world.git("rev-list", "--max-parents=0", BRANCH).stdout.strip()
    assert cli_verify(world, "deploy", target, 0, "--root", real_root)


def test_root_is_pinned_on_first_use(world):
    target, _ = approved_request(world)
    real_root = world.root()
    world.git("config", "--unset", "gitjit.root")
    assert cli_verify(world, "deploy", target, 0)
    assert world.root() == real_root


def test_rewritten_branch_from_another_root_is_not_trusted(world, tmp_path):
    target, _ = approved_request(world)
    # bob builds his own approvals branch where he is admin, and swaps it in
    fake = World.create(tmp_path / "fake", world.keys)
    fake.homes = world.homes
    fake.gitjit("bob", "init", "--admin", "bob")
    world.git("fetch", "-q", str(fake.path), "+refs/heads/approvals:refs/heads/approvals")
    err = cli_verify(world, "deploy", target, 1).stderr
    assert "not trusted" in err and "pinned root" in err


def test_merge_commit_untrusts_the_branch(world):
    target, _ = approved_request(world)
    tip = world.tip()
    merge = world.git("commit-tree", "-S", f"{tip}^{{tree}}", "-p", tip, "-p", f"{tip}~1", "-m", "merge").stdout.strip()
    world.git("update-ref", BRANCH, merge)
    assert "must be linear" in cli_verify(world, "deploy", target, 1).stderr


def test_malformed_policy_is_bad_input(world):
    target, rid = approved_request(world)
    world.edit_policy("alice", lambda t: t.replace("threshold = 2", "treshold = 2"))
    before = world.snapshot()
    for args in (("verify", "deploy", "--target", target), ("status",), ("approve", rid)):
        err = world.gitjit("bob", *args, check=2).stderr
        assert err.count("\n") == 1 and "Traceback" not in err
        assert "policy.toml at " in err and "actions.deploy.treshold: unknown key" in err
    assert world.snapshot() == before


def test_malformed_policy_from_a_non_admin_is_not_trusted(world):
    target, _ = approved_request(world)
    world.edit_policy("bob", lambda t: t + "\n[actions\n")
    err = cli_verify(world, "deploy", target, 1).stderr
    assert "not trusted" in err and "not an admin's key" in err


def test_short_name_ref_never_stands_in_for_the_branch(world):
    target, _ = approved_request(world)
    # a tag named `approvals` pointing elsewhere changes nothing
    world.git("tag", "approvals", "HEAD")
    assert cli_verify(world, "deploy", target, 0)


# -- by hand -------------------------------------------------------------------------------------


def test_approve_by_hand_in_a_worktree_counts(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    tree = world.path.parent / "alice-wt"
    world.git("worktree", "add", "-q", str(tree), "approvals", person="alice")
    request_blob = world.git("-C", str(tree), "rev-parse", f"HEAD:requests/{rid}.toml").stdout.strip()
    (tree / "approvals" / rid).mkdir(exist_ok=True)
    (tree / "approvals" / rid / "alice.toml").write_text(
        f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{request_blob}"\n'
        f'target = "{target}"\ndecision = "approve"\ncomment = "by hand"\n')
    world.git("-C", str(tree), "add", "approvals")
    world.git("-C", str(tree), "commit", "-q", "-S", "-m", f"approve {rid}", person="alice")
    world.git("worktree", "remove", str(tree))
    assert "(alice, bob)" in cli_verify(world, "deploy", target, 0).stdout


# -- exit codes and bad input: exit 2, one line, nothing written ---------------------------------


BAD_INPUTS = [
    (("verify", "nope", "--target", "HEAD"), "unknown action 'nope'"),
    (("verify", "deploy", "--target", "no-such-rev"), "revision 'no-such-rev' does not resolve"),
    (("verify", "deploy", "--target", "HEAD^{tree}"), "does not resolve to a commit"),
    (("verify", "deploy", "--at", "yesterday"), "--at 'yesterday' is not a time"),
    (("verify", "deploy", "--at", "2026-02-30T00:00:00Z"), "is not a time"),
    (("verify-tag", "no-such-tag"), "no tag no-such-tag (refs/tags/no-such-tag does not exist)"),
    (("status", "no-such-request"), "unknown request 'no-such-request'"),
    (("status", "--at", "soon"), "--at 'soon' is not a time"),
    (("request", "nope"), "unknown action 'nope'"),
    (("request", "deploy", "--target", "no-such-rev"), "revision 'no-such-rev' does not resolve"),
    (("request", "deploy", "--ttl", "1 week"), "--ttl '1 week' is not a duration"),
    (("request", "deploy", "--ttl", "6d"), "above max_ttl"),
    (("request", "deploy", "--ttl", "0s"), "not positive"),
    (("approve", "no-such-request"), "unknown request 'no-such-request'"),
    (("reject", "no-such-request"), "unknown request 'no-such-request'"),
    (("person", "add", "zoe", "--key-file", "/nonexistent/zoe.asc"), "cannot read key file /nonexistent/zoe.asc"),
    (("person", "add", "zoe", "--key", "0" * 40), "from your GnuPG keyring"),
    (("person", "add", "Zoe", "--key-file", "/dev/null"), "person 'Zoe' is not a valid name"),
    (("person", "add", "bob", "--key-file", "/dev/null"), "already in the policy"),
    (("person", "add", "zoe"), "give exactly one of --key FPR or --key-file FILE"),
    (("init", "--admin", "alice"), "already exists"),
]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_and_writes_nothing(world, args, message):
    before = world.snapshot()
    assert before.status == "" and BRANCH in before.refs
    proc = world.gitjit("alice", *args, check=2)
    assert proc.stdout == ""
    assert proc.stderr.startswith("gitjit: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert world.snapshot() == before


def test_usage_errors_exit_2(world):
    before = world.snapshot()
    for args in (("verify",), ("frobnicate",), ("verify", "deploy", "--bogus"), ("request",)):
        proc = world.gitjit("alice", *args, check=2)
        assert "Traceback" not in proc.stderr
    assert world.snapshot() == before


def test_exit_codes_of_the_real_entry_point(world):
    target, rid = approved_request(world)
    assert world.gitjit("dave", "verify", "deploy", "--target", target, process=True, check=0)
    assert world.gitjit("dave", "verify", "deploy", "--target", world.target(), process=True, check=1)
    proc = world.gitjit("dave", "verify", "nope", "--target", target, process=True, check=2)
    assert proc.stderr == "gitjit: unknown action 'nope': the policy has deploy, ops, restricted, selfok\n"


def test_outside_a_repository_is_bad_input(world, tmp_path):
    lonely = tmp_path / "not-a-repo"
    lonely.mkdir()
    err = world.gitjit("alice", "verify", "deploy", cwd=lonely, check=2).stderr
    assert "not a git repository" in err


def test_no_approvals_branch_is_bad_input(world, tmp_path):
    fresh = World.create(tmp_path / "fresh", world.keys)
    fresh.homes = world.homes
    err = fresh.gitjit("alice", "verify", "deploy", check=2).stderr
    assert "no approvals branch" in err


def test_unreadable_key_file_writes_nothing(world, tmp_path):
    unreadable = tmp_path / "zoe.asc"
    unreadable.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n-----END PGP PUBLIC KEY BLOCK-----\n")
    before = world.snapshot()
    err = world.gitjit("alice", "person", "add", "zoe", "--key-file", str(unreadable), check=2).stderr
    assert "holds 0 public keys, expected exactly one" in err
    assert world.snapshot() == before


# -- JSON ------------------------------------------------------------------------------------------

VERDICT_KEYS = {"action", "target", "at", "approved", "approved_by", "requests", "reasons", "codes"}
REQUEST_KEYS = {"id", "action", "target", "requested_by", "requesters", "reason", "created", "expires", "commit",
                "state", "approved", "approvals", "rejections", "threshold", "decisions", "reasons", "codes",
                "rules", "approvable", "unapprovable"}
DECISION_KEYS = {"person", "decision", "commit", "key", "signed_at", "counts", "reason", "code", "comment"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_verify_json_schema(world, keys):
    target = world.target()
    rid = world.request("carol", "deploy", target, "--reason", 'release "1.4.2"\nwith notes')
    world.approve("bob", rid, "--comment", "ok")
    world.hand_decision("dave", rid)
    at = utc(minutes=1)
    data = world.json("erin", "verify", "deploy", "--target", target, "--at", iso(at), check=1)
    assert set(data) == VERDICT_KEYS
    assert (data["action"], data["target"], data["at"], data["approved"], data["approved_by"]) == (
        "deploy", target, iso(at), False, None)
    assert data["reasons"] == [f"request {rid}: 1 of 2 approvals (bob)", f"request {rid}: dave: dave is not an approver of deploy"]
    assert data["codes"] == ["pending", "not-approver"]
    [request] = data["requests"]
    assert set(request) == REQUEST_KEYS
    assert request["id"] == rid and request["state"] == "pending" and request["approved"] is False
    assert request["reason"] == 'release "1.4.2"\nwith notes'
    assert request["requested_by"] == "Carol <carol@example.com>" and request["requesters"] == ["carol"]
    assert request["approvals"] == ["bob"] and request["rejections"] == [] and request["threshold"] == 2
    assert request["rules"] == [{"name": "default", "have": 1, "need": 2, "holds": False, "approvals": ["bob"],
                                 "candidates": ["alice"], "possible": True, "opens": None}]
    assert request["approvable"] is True and request["unapprovable"] is None
    assert TIME.match(request["created"]) and TIME.match(request["expires"])
    assert request["commit"] == world.git("log", "--format=%H", "-1", BRANCH, "--", f"requests/{rid}.toml").stdout.strip()
    bob, dave = request["decisions"]
    assert set(bob) == DECISION_KEYS
    assert bob == {"person": "bob", "decision": "approve", "commit": bob["commit"], "key": keys["bob"].fpr,
                   "signed_at": bob["signed_at"], "counts": True, "reason": None, "code": None, "comment": "ok"}
    assert TIME.match(bob["signed_at"]) and len(bob["commit"]) == 40
    assert dave["counts"] is False and dave["reason"] == "dave is not an approver of deploy"
    assert dave["code"] == "not-approver"
    world.approve("alice", rid)
    data = world.json("erin", "verify", "deploy", "--target", target)
    assert data["approved"] is True and data["approved_by"] == rid and data["reasons"] == []


def test_verify_tag(world):
    target, rid = approved_request(world)
    world.git("tag", "v2.0", target)
    world.git("tag", "-a", "-m", "annotated", "v2.1", target)
    for tag in ("v2.0", "refs/tags/v2.1"):
        data = world.json("erin", "verify-tag", tag)
        assert data["tag"] == tag.removeprefix("refs/tags/") and data["approved"] is True and data["target"] == target
        assert [a["action"] for a in data["actions"]] == ["deploy"] and data["actions"][0]["approved_by"] == rid
    world.git("tag", "v3.0", world.target())
    assert world.json("erin", "verify-tag", "v3.0", check=1)["approved"] is False
    world.git("tag", "release-1", target)
    assert "matches no action's tags" in world.gitjit("erin", "verify-tag", "release-1", check=2).stderr


def test_status(world):
    pending_target = world.target()
    pending = world.request("carol", "deploy", pending_target)
    world.approve("bob", pending)
    approved_target, approved = approved_request(world)
    _, rejected = approved_request(world, requester="dave")
    world.gitjit("carol", "reject", rejected)
    expired = world.request("carol", "deploy", world.target(), "--ttl", "1s")
    data = world.json("erin", "status", "--at", iso(utc(seconds=30)))
    states = {r["id"]: (r["state"], r["approvals"]) for r in data["requests"]}
    assert states == {pending: ("pending", ["bob"]), approved: ("approved", ["alice", "bob"]),
                      rejected: ("rejected", ["alice", "bob"]), expired: ("expired", [])}
    assert set(data["requests"][0]) == REQUEST_KEYS
    out = world.gitjit("erin", "status").stdout
    assert re.search(rf"{pending}\s+deploy\s+{pending_target[:12]}\s+pending \(1 of 2\): bob", out)
    assert re.search(rf"{approved}\s+deploy\s+{approved_target[:12]}\s+approved: alice, bob", out)
    detail = world.gitjit("erin", "status", pending).stdout
    assert "bob: approve" in detail and "counts" in detail and "1 of 2 approvals (bob)" in detail
    one = world.json("erin", "status", approved)
    assert [r["id"] for r in one["requests"]] == [approved]


def test_a_key_taken_out_of_the_policy_withdraws_its_approvals(world, keys):
    """The admin cannot revoke a stolen key (the revocation certificate is its owner's),
    but can take it out of the policy: what it signed stops counting, as for an approver
    taken off an action (docs/decisions.md)."""
    target, rid = approved_request(world, requester="dave")
    world.gitjit("carol", "reject", rid)
    assert world.verdict("deploy", target).requests[0].state == "rejected"
    # bob's key is replaced by a new one (erin's key stands in for it), carol's is removed
    bob_fpr, carol_fpr = keys["bob"].fpr, keys["carol"].fpr
    world.edit_policy("alice", lambda t: t.replace(bob_fpr, keys["erin"].fpr).replace(f'"{carol_fpr}",', ""),
                      keys={"bob": keys["erin"].asc})
    assert why(world, "deploy", target) == {"alice": "", "bob": "wrong-signer", "carol": "wrong-signer"}
    verdict = world.verdict("deploy", target)
    assert verdict.requests[0].state == "pending" and verdict.requests[0].approvals == ("alice",)


# -- the branch's layout: what does not count (docs/format.md, sections 2, 3.4) -----------------------------------------


def refusals(world: World) -> list[str]:
    return [r.reason for r in world.trusted().refusals]


def test_commits_that_break_the_layout_do_not_count(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.commit_on_branch("bob", {"README.md": "hello\n"})
    world.commit_on_branch("bob", {"approvals/x/bob.toml": "a", "approvals/y/bob.toml": "b"})
    world.commit_on_branch("bob", {f"approvals/{rid}/sub/bob.toml": "deep\n"})
    world.commit_on_branch("bob", {}, message="empty")
    world.commit_on_branch("carol", remove=(f"requests/{rid}.toml",))
    assert refusals(world) == [
        "README.md is outside the approvals branch layout",
        "a commit must add exactly one file; this one changes A approvals/x/bob.toml, A approvals/y/bob.toml",
        f"approvals/{rid}/sub/bob.toml is outside the approvals branch layout",
        "a commit must add exactly one file; this one changes nothing",
        f"a commit must add exactly one file; this one changes D requests/{rid}.toml",
    ]
    # the request is still there: deleting its file did not count
    world.approve("alice", rid)
    world.approve("bob", rid)
    assert world.verdict("deploy", target).approved


def test_requests_that_do_not_count(world):
    target, now = world.target(), utc()
    world.hand_request("carol", "nope", target)
    world.hand_request("carol", "deploy", target, created=now, expires=now + timedelta(days=5, seconds=1))
    world.hand_request("carol", "deploy", target, id="twice")
    world.hand_request("carol", "deploy", world.target(), id="twice")  # files are immutable
    world.commit_on_branch("carol", {"requests/other-name.toml": request_toml("not-other", "deploy", target, now,
                                                                              now + timedelta(hours=1))})
    world.commit_on_branch("carol", {"requests/bad.toml": "gitjit = 1\nid = \"bad\"\n"})
    found = refusals(world)
    assert found[0].endswith("action 'nope' is not in the policy")
    assert found[1].endswith("asks to live longer than max_ttl")
    assert found[2] == "a commit must add exactly one file; this one changes M requests/twice.toml"
    assert "id: 'not-other' does not match the file name" in found[3]
    assert found[4].startswith("requests/bad.toml: ")
    assert len(found) == 5 and list(world.trusted().requests) == ["twice"]


def test_decision_files_that_do_not_parse_do_not_count(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    blob = world.blob_id(f"requests/{rid}.toml")
    text = decision_toml(rid, blob, target) + 'signed_off = "yes"\n'
    world.commit_on_branch("bob", {f"approvals/{rid}/bob.toml": text})
    world.commit_on_branch("alice", {f"approvals/{rid}/alice.toml": decision_toml("another-id", blob, target)})
    world.commit_on_branch("dave", {f"approvals/{rid}/Dave.toml": decision_toml(rid, blob, target)})
    codes = why(world, "deploy", target)
    assert codes["bob"] == "malformed-record"
    assert codes["alice"] == "wrong-request"
    assert refusals(world)[-1] == f"approvals/{rid}/Dave.toml is not a valid decision path"


# -- exact boundaries of time ---------------------------------------------------------------------


def test_freshness_and_clock_skew_boundaries(world):
    target = world.target()
    rid = world.request("dave", "ops", target, "--ttl", "5d")  # ops: threshold 1, freshness 4d
    world.approve("bob", rid)
    signed = utc(world.json("erin", "status", rid)["requests"][0]["decisions"][0]["signed_at"])
    assert world.verdict("ops", target, at=signed + timedelta(days=4)).approved
    late = world.verdict("ops", target, at=signed + timedelta(days=4, seconds=1))
    assert not late.approved and late.codes[-1] == "stale" and ": bob: " in late.reasons[-1]
    created = world.trusted().requests[rid].request.created
    earliest = max(signed, created) - timedelta(minutes=5)  # within clock_skew of both
    assert world.verdict("ops", target, at=earliest).approved
    early = world.verdict("ops", target, at=earliest - timedelta(seconds=1))
    assert not early.approved


# -- the root --------------------------------------------------------------------------------------


def _fake_root(world: World, signer: str, files: dict[str, str]) -> str:
    return world.commit_on_branch(signer, files, parent=None, move_branch=False, message="another root")


def _use_root(world: World, root: str) -> None:
    world.git("update-ref", BRANCH, root)
    world.git("config", "gitjit.root", root)


def test_root_signed_by_someone_its_policy_does_not_make_admin(world, keys):
    policy = world.show("policy.toml", f"{world.root()}")
    root = _fake_root(world, "bob", {"policy.toml": policy, "keys/alice.asc": keys["alice"].asc,
                                      "keys/bob.asc": keys["bob"].asc})
    _use_root(world, root)
    err = world.gitjit("erin", "status", check=1).stderr
    assert f"root commit {root[:12]} is signed by key {keys['bob'].fpr}, which is not an admin's key" in err


def test_root_signed_by_the_admin_without_their_key_in_keys(world, keys):
    policy = world.show("policy.toml", f"{world.root()}")
    root = _fake_root(world, "alice", {"policy.toml": policy, "keys/bob.asc": keys["bob"].asc})
    _use_root(world, root)
    assert "not trusted" in world.gitjit("erin", "status", check=1).stderr


def test_root_with_a_file_outside_policy_and_keys(world, keys):
    policy = world.show("policy.toml", f"{world.root()}")
    root = _fake_root(world, "alice", {"policy.toml": policy, "keys/alice.asc": keys["alice"].asc,
                                        "requests/early.toml": "x"})
    _use_root(world, root)
    assert "also changes requests/early.toml" in world.gitjit("erin", "status", check=1).stderr


def test_unsigned_root(world, keys):
    policy = world.show("policy.toml", f"{world.root()}")
    root = world.commit_on_branch("alice", {"policy.toml": policy, "keys/alice.asc": keys["alice"].asc},
                                  parent=None, move_branch=False, sign=False)
    _use_root(world, root)
    assert f"root commit {root[:12]} is not signed" in world.gitjit("erin", "status", check=1).stderr


def test_root_option_must_be_a_full_commit_id(world):
    before = world.snapshot()
    err = world.gitjit("erin", "verify", "deploy", "--root", world.root()[:12], check=2).stderr
    assert "--root" in err and "full commit id" in err
    assert world.snapshot() == before


# -- keys come from keys/<person>.asc only; admins are those of the policy in force ------------------


def test_a_key_counts_only_from_its_owners_own_file(world, keys):
    erin = keys["erin"]

    def add_zed(text: str) -> str:
        return (text.replace('approvers = ["bob", "carol"]\n', 'approvers = ["bob", "carol", "zed"]\n', 1)
                + f'\n[people.zed]\nkeys = ["{erin.fpr}"]\n')

    # zed is listed with erin's key, but keys/zed.asc does not exist: the key sits in alice's file
    world.edit_policy("alice", add_zed, keys={"alice": keys["alice"].asc + erin.asc})
    target = world.target()
    rid = world.request("dave", "selfok", target)
    world.hand_decision("erin", rid, as_person="zed")
    assert why(world, "selfok", target)["zed"] == "unknown-key"
    # once keys/zed.asc holds it, it counts
    world.commit_on_branch("alice", {"keys/zed.asc": erin.asc}, message="zed's key")
    world.hand_decision("erin", world.request("dave", "selfok", target), as_person="zed")
    assert world.verdict("selfok", target).approved


def test_admins_are_those_of_the_policy_in_force_at_the_parent(world):
    target, _ = approved_request(world)
    # alice hands over to bob in one commit: signed by alice, the admin in force before it
    world.edit_policy("alice", lambda t: t.replace('people = [\n    "alice",\n]', 'people = ["bob"]'))
    assert cli_verify(world, "deploy", target, 0)
    # from now on alice's signature does not authorize a policy change, bob's does
    bob_change = world.edit_policy("bob", lambda t: t.replace('freshness = "1h"', 'freshness = "2h"'))
    assert cli_verify(world, "deploy", target, 0)
    world.edit_policy("alice", lambda t: t.replace('freshness = "2h"', 'freshness = "3h"'))
    err = cli_verify(world, "deploy", target, 1).stderr
    assert "is signed by key" in err and "which is not an admin's key in the policy in force" in err
    world.git("update-ref", BRANCH, bob_change)
    assert world.trusted().policy.actions["deploy"].freshness == timedelta(hours=2)


# -- human output: text from the branch is shown, never interpreted ------------------------------------


def test_request_text_cannot_break_or_forge_the_human_output(world):
    target = world.target()
    hostile = "[/bold] [green]counts[/green] \x1b[2J\x1b[31mred\nbob: approve (key X) counts"
    rid = world.request("carol", "deploy", target, "--reason", hostile)
    world.approve("bob", rid)
    out = world.gitjit("erin", "status", rid).stdout
    assert "[/bold] [green]counts[/green]" in out  # shown as typed, not taken as markup
    assert "\x1b" not in out and "\\x1b[2J" in out  # escape sequences are made visible
    assert not any(line.startswith("bob: approve (key X)") for line in out.splitlines())
    assert world.json("erin", "status", rid)["requests"][0]["reason"] == hostile  # JSON keeps it exact


def test_decision_text_cannot_break_the_verify_output(world):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    blob = world.blob_id(f"requests/{rid}.toml")
    world.commit_on_branch("bob", {f"approvals/{rid}/bob.toml": decision_toml(rid, blob, target, decision="[/x]\\u001b[0m")})
    out = cli_verify(world, "deploy", target, 1).stdout
    assert "bob: " in out and "found '[/x]\\x1b[0m'" in out and "\x1b" not in out


@pytest.mark.parametrize("how", ["repeated committer", "two signatures", "nul byte"])
def test_ambiguous_commit_objects_do_not_count(world, how):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    parent = world.tip()
    signed = world.hand_decision("alice", rid)
    head, _, message = _raw(world, signed).partition(b"\n\n")
    lines = head.split(b"\n")
    if how == "repeated committer":
        committer = next(l for l in lines if l.startswith(b"committer "))
        lines.insert(lines.index(committer), committer.replace(b"Alice", b"Mallory"))
    elif how == "two signatures":
        other = world.git("commit-tree", "-S", "HEAD^{tree}", "-m", "x", person="bob").stdout.strip()
        lines += [l for l in _raw(world, other).split(b"\n\n")[0].split(b"\n") if l.startswith((b"gpgsig", b" "))]
    else:
        message = message + b"\0hidden"
    data = b"\n".join(lines) + b"\n\n" + message
    forged = world.git("hash-object", "-t", "commit", "-w", "--stdin", "--literally", input=data).stdout.decode().strip()
    world.git("update-ref", BRANCH, forged, signed)
    assert world.git("rev-parse", f"{forged}^").stdout.strip() == parent
    problem = {"repeated committer": "commit object has 2 'committer' headers",
               "two signatures": "commit object has more than one signature header",
               "nul byte": "commit object contains a NUL byte"}[how]
    assert refusals(world)[-1] == problem
    verdict = world.verdict("deploy", target)
    assert not verdict.approved and verdict.requests[0].approvals == ("bob",)


# -- admin keys that have expired since ------------------------------------------------------------------


def test_policy_commits_signed_by_an_admin_key_that_has_expired_since(world, keys, tmp_path):
    """docs/decisions.md: policy-chain signatures are judged when they were made. An admin
    key made in 2020 that expired the next day signed the root and a policy change; the
    branch must still verify today, and that key cannot backdate a new change."""
    from helpers import run_gpg, scratch_gnupghome

    with scratch_gnupghome(keys.env) as home:
        env = dict(keys.env, GNUPGHOME=str(home))
        created = run_gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--faked-system-time",
                          "20200101T000000", "--status-fd", "1", "--quick-gen-key", "Old <old@example.com>",
                          "ed25519", "sign", "1d", env=env).stdout
        old_fpr = next(l.split()[3] for l in created.splitlines() if "KEY_CREATED" in l)
        old_asc = run_gpg(home, "--armor", "--export", old_fpr, env=env).stdout
        wrapper = tmp_path / "gpg-2020"
        wrapper.write_text('#!/bin/sh\nexec gpg --faked-system-time "$FAKED_TIME" "$@"\n')
        wrapper.chmod(0o755)

        def as_old(when: str) -> dict:
            stamp = f"{int(utc(when).timestamp())} +0000"
            return dict(GNUPGHOME=str(home), GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp,
                        GIT_AUTHOR_NAME="Old", GIT_AUTHOR_EMAIL="old@example.com",
                        GIT_COMMITTER_NAME="Old", GIT_COMMITTER_EMAIL="old@example.com",
                        FAKED_TIME=utc(when).strftime("%Y%m%dT%H%M%S!"), GIT_CONFIG_COUNT="2",
                        GIT_CONFIG_KEY_0="user.signingkey", GIT_CONFIG_VALUE_0=old_fpr,
                        GIT_CONFIG_KEY_1="gpg.program", GIT_CONFIG_VALUE_1=str(wrapper))

        other = World.create(tmp_path / "old", keys)
        policy = (f'gitjit = 1\n\n[people.old]\nkeys = ["{old_fpr}"]\n\n[people.alice]\nkeys = ["{keys["alice"].fpr}"]\n'
                  f'\n[people.bob]\nkeys = ["{keys["bob"].fpr}"]\n\n[admins]\npeople = ["old", "alice"]\n\n'
                  '[actions.deploy]\napprovers = ["bob"]\n')
        files = {"policy.toml": policy, "keys/old.asc": old_asc, "keys/alice.asc": keys["alice"].asc,
                 "keys/bob.asc": keys["bob"].asc}
        root = other.commit_on_branch("alice", files, parent=None, env=as_old("2020-01-01T12:00:00Z"))
        other.git("config", "gitjit.root", root)
        other.commit_on_branch("alice", {"policy.toml": policy + 'freshness = "2h"\n'},
                               env=as_old("2020-01-01T13:00:00Z"), message="by old, in 2020")
        # the root and the change were signed by a key that expired on 2020-01-02 ...
        assert "EXPKEYSIG" in other.git("verify-commit", "--raw", root, check=False, env={"GNUPGHOME": str(home)}).stderr
        # ... and the branch still verifies: bob's approval counts
        target = other.target()
        rid = other.request("alice", "deploy", target)  # a requester the policy knows (docs/format.md, 6.3)
        other.approve("bob", rid)
        assert other.gitjit("erin", "verify", "deploy", "--target", target).stdout.startswith("approved")
        assert other.trusted().policy.actions["deploy"].freshness == timedelta(hours=2)
        # alice changes the policy today; old, still an admin in it, cannot backdate a change after it
        other.edit_policy("alice", lambda t: t.replace('freshness = "2h"', 'freshness = "3h"'))
        assert other.gitjit("erin", "verify", "deploy", "--target", target).returncode == 0
        other.commit_on_branch("alice", {"policy.toml": other.show("policy.toml") + "\n"},
                               env=as_old("2020-01-01T14:00:00Z"), message="backdated")
        err = other.gitjit("erin", "verify", "deploy", "--target", target, check=1).stderr
        assert "not trusted" in err and "signature by an expired key" in err
