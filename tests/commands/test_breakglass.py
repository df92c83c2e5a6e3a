"""Break-glass (docs/format.md, section 6.5): real clones, a server whose hooks `gitjit hook install`
put there, and real `gitjit run --break-glass` processes.

The server's policy (tests/glasskit.py): carol may break the glass for `hotfix` (review by two of
alice, bob, carol within 2h); dave may not; `deploy-prod` has no break_glass.
"""

from __future__ import annotations

import json

import pytest
from glasskit import FAST, iso, make_glass_golden, probe, runs, server_paths, status_json, utc
from hookkit import accepted, copy_world, refused


@pytest.fixture(scope="module")
def glass(golden, tmp_path_factory, keys):
    return make_glass_golden(golden, tmp_path_factory.mktemp("glass"), keys)


@pytest.fixture
def world(glass, tmp_path, keys):
    return copy_world(glass, tmp_path, keys)


def break_glass(clone, *extra: str, check=None):
    return clone.gitjit("run", "hotfix", "--break-glass", "--reason", "outage: db down", *extra, *probe(),
                        check=check, env=dict(clone.env, **FAST))


def fetch(clone) -> None:
    clone.git("fetch", "-q", "origin")


def the_request(world) -> str:
    [path] = server_paths(world, "requests")
    return path.split("/")[1][: -len(".toml")]


def test_named_person_breaks_the_glass_runs_at_once_and_the_tag_lands(world):
    carol = world.clone("carol")
    target = carol.head()
    result = break_glass(carol, check=0)
    rid = the_request(world)
    [seen] = runs(carol)
    assert seen[:3] == [rid, "1", "-"]  # ran at once, with GITJIT_BREAK_GLASS; hotfix has no uses
    assert "break-glass" in result.stderr and "review due" in result.stderr
    text = carol.git("show", f"origin/approvals:requests/{rid}.toml").stdout
    assert "break_glass = true" in text

    request = status_json(carol, rid)
    assert request["state"].startswith("break-glass (review due ") and request["approved"] is True
    assert request["break_glass"]["breaker"] == "carol" and request["break_glass"]["review"] == "due"
    verify = carol.gitjit("verify", "hotfix", "--target", target, "--json", check=0)
    assert json.loads(verify.stdout)["approved_by"] == rid

    carol.git("tag", "hotfix-1", target)
    push = world.push(carol, "refs/tags/hotfix-1")
    accepted(push)
    assert f"approved by break-glass request {rid}" in push.stderr


def test_review_states_and_the_audit_exit_code(world):
    carol = world.clone("carol")
    break_glass(carol, check=0)
    rid = the_request(world)
    later = utc(hours=3)  # past review_within (2h), and past freshness (1h) of the reviews made now

    assert status_json(carol, rid, later)["state"] == "break-glass overdue"
    audit = carol.gitjit("audit", "--at", iso(later), "--json", check=1)  # a scheduled audit fails loudly
    assert json.loads(audit.stdout)["break_glass_overdue"] == [rid]
    assert carol.gitjit("audit", check=0).returncode == 0  # now, the review is not due yet

    # the breaker's own approval never counts for the review, even where self-approval is allowed
    carol.gitjit("approve", rid, "--push", check=0)
    bob = world.clone("bob")
    bob.gitjit("approve", rid, "--push", check=0)
    fetch(carol)
    request = status_json(carol, rid, later)
    assert request["state"] == "break-glass overdue"
    own = next(d for d in request["decisions"] if d["person"] == "carol")
    assert own["counts"] is False and own["code"] == "own-review"
    assert request["break_glass"]["reviewed_by"] == ["bob"]
    review = next(d for d in request["decisions"] if d["person"] == "bob")
    assert review["counts"] is True and review["code"] is None  # 3h old, freshness 1h: a review does not go stale
    carol.gitjit("audit", "--at", iso(later), check=1)

    alice = world.clone("alice")
    alice.gitjit("approve", rid, "--push", check=0)
    fetch(carol)
    request = status_json(carol, rid, later)
    assert request["state"] == "break-glass reviewed"  # reviews do not go stale
    assert request["break_glass"]["reviewed_by"] == ["alice", "bob"] and request["break_glass"]["late"] is False
    assert status_json(carol, rid)["state"] == "break-glass reviewed"
    carol.gitjit("audit", "--at", iso(later), check=0)
    verify = carol.gitjit("verify", "hotfix", "--target", carol.head(), check=0)
    assert "break-glass reviewed" in verify.stdout


def test_refused_for_unnamed_people_and_actions_without_break_glass(world):
    before = world.refs()
    dave = world.clone("dave")
    result = break_glass(dave, check=2)
    assert "dave may not break the glass for hotfix" in result.stderr and "Traceback" not in result.stderr
    carol = world.clone("carol")
    result = carol.gitjit("run", "deploy-prod", "--break-glass", "--reason", "x", *probe(), check=2)
    assert "has no break_glass" in result.stderr
    result = carol.gitjit("run", "hotfix", "--break-glass", *probe(), check=2)  # no --reason
    assert "--reason" in result.stderr
    assert world.refs() == before  # nothing written
    assert runs(dave) == [] and runs(carol) == []
    for clone in (dave, carol):
        assert clone.git("rev-parse", "--verify", "--quiet", "refs/heads/approvals", check=False).stdout == ""


def forged_request(world, clone, sign) -> str:
    """A break-glass request for hotfix written by hand, signed as `sign` says."""
    from hookkit import BranchWriter, toml_time

    writer = BranchWriter(clone)
    created = utc(seconds=-5)
    rid = f"hotfix-forged-{abs(hash(str(sign))) % 10**6}"
    text = (f'gitjit = 1\nid = "{rid}"\naction = "hotfix"\ntarget = "{clone.head("main")}"\n'
            f'requested_by = "Carol <carol@example.com>"\nreason = "forged"\n'
            f"created = {toml_time(created)}\nexpires = {toml_time(utc(hours=1))}\nbreak_glass = true\n")
    writer.commit({f"requests/{rid}.toml": text}, f"gitjit: request {rid}", sign=sign)
    return rid


@pytest.mark.parametrize("how", ["unsigned", "dave"])
def test_a_forged_break_glass_request_never_counts(world, keys, how):
    dave = world.clone("dave")
    dave.git("branch", "-q", "approvals", "origin/approvals")
    rid = forged_request(world, dave, False if how == "unsigned" else keys["dave"].fpr)
    target = dave.head("main")

    # verifiers ignore it (dave's clone holds it, unpushed)
    verify = json.loads(dave.gitjit("verify", "hotfix", "--target", target, "--json", check=1).stdout)
    assert verify["requests"] == [] and verify["codes"] == ["no-request"]
    audit = json.loads(dave.gitjit("audit", "--json", check=1).stdout)
    assert [r["code"] for r in audit["refusals"]] == ["not-a-breaker"]
    assert rid not in [r["id"] for r in audit["requests"]]

    # the hook refuses it, and the tag it would have let through
    dave.git("tag", "hotfix-9", target)
    before = world.refs()
    result = world.push(dave, "refs/heads/approvals", "refs/tags/hotfix-9")
    refused(result, "refs/heads/approvals", "may not break the glass" if how == "dave" else "must be signed")
    assert world.refs() == before
    result = world.push(dave, "refs/tags/hotfix-9")
    refused(result, "refs/tags/hotfix-9", "no request for hotfix")


def test_a_break_glass_request_signed_by_carol_with_a_backdated_created_is_refused(world, keys):
    carol = world.clone("carol")
    carol.git("branch", "-q", "approvals", "origin/approvals")
    from hookkit import BranchWriter, toml_time

    writer = BranchWriter(carol)
    created = utc(hours=-1)  # carol tries to have the review fall due sooner or later than she signed
    text = (f'gitjit = 1\nid = "hotfix-backdated"\naction = "hotfix"\ntarget = "{carol.head("main")}"\n'
            f'requested_by = "carol"\nreason = "x"\ncreated = {toml_time(created)}\n'
            f"expires = {toml_time(utc(hours=2))}\nbreak_glass = true\n")
    writer.commit({"requests/hotfix-backdated.toml": text}, "gitjit: request", sign=keys["carol"].fpr)
    result = world.push(carol, "refs/heads/approvals")
    line = refused(result, "refs/heads/approvals", "within clock_skew")
    assert "hotfix-backdated" in line


def snapshot_tip(git_dir) -> str | None:
    from gitjit.git.branch import ApprovalsBranch, cache_dir
    from gitjit.trust.cache.snapshot import Snapshot

    branch = ApprovalsBranch(str(git_dir))
    head = Snapshot.in_directory(cache_dir(branch)).head(branch.pinned_root())
    return head.tip if head else None


def test_a_snapshot_past_a_break_glass_request_still_judges_it_as_one(world):
    """The snapshot keeps a break-glass request's row: the clone's commands and the server's hook save
    their views past it, and a load resumed from there judges it as a break-glass request."""
    carol = world.clone("carol")
    break_glass(carol, check=0)
    rid = the_request(world)
    request_commit = carol.git("log", "-1", "--format=%H", "origin/approvals").stdout.strip()
    for _ in range(2):  # the second load resumes from the snapshot the first one saved
        assert status_json(carol, rid)["state"].startswith("break-glass (review due ")
    for git_dir in (carol.path / ".git", world.server):
        tip = snapshot_tip(git_dir)
        assert tip is not None
        assert carol.git("merge-base", "--is-ancestor", request_commit, tip, check=False).returncode == 0
    carol.git("tag", "hotfix-2", carol.head())
    accepted(world.push(carol, "refs/tags/hotfix-2"))  # the hook, resumed past the request, still counts it


def test_a_break_glass_request_and_its_tag_in_one_push(world, keys):
    """Written by hand (git and gpg only) and pushed with the tag: the guard lands the request first."""
    carol = world.clone("carol")
    carol.git("branch", "-q", "approvals", "origin/approvals")
    rid = forged_request(world, carol, keys["carol"].fpr)  # signed by carol, whom break_glass names
    target = carol.head("main")
    carol.git("tag", "hotfix-7", target)
    result = world.push(carol, "refs/heads/approvals", "refs/tags/hotfix-7")
    accepted(result)
    assert f"approved by break-glass request {rid}" in result.stderr and "lands at" in result.stderr
    refs = world.refs()
    assert refs["refs/tags/hotfix-7"] and refs["refs/heads/approvals"] == carol.head("approvals")


TWO_RULES = """
[actions.twokey]
freshness = "1h"
self_approval = true
tags = ["twokey-*"]

[[actions.twokey.rules]]
name = "ops"
approvers = ["alice", "carol"]
threshold = 1

[[actions.twokey.rules]]
name = "app"
approvers = ["bob", "carol"]
threshold = 1

[actions.twokey.break_glass]
people = ["carol"]
review_within = "2h"
"""


def test_a_review_with_two_rules_needs_both_without_the_breaker(world):
    """With rules (section 13.1), the review is complete when every rule holds on approvals by people
    other than the breaker: carol, in both rules, breaks the glass; her own approval would make both
    hold, but counts for neither. bob makes `app` hold; only alice's makes `ops` hold. Freshness
    still does not apply."""
    policy = world.writer.git("show", "HEAD:policy.toml").stdout + TWO_RULES
    world.writer.commit({"policy.toml": policy}, "gitjit: twokey, two rules and break-glass")
    accepted(world.push(world.alice, "approvals"))
    carol = world.clone("carol")
    carol.gitjit("run", "twokey", "--break-glass", "--reason", "outage", *probe(), check=0,
                 env=dict(carol.env, **FAST))
    rid = the_request(world)
    later = utc(hours=3)  # past review_within (2h) and freshness (1h)

    def tallies(request: dict) -> list[tuple]:
        return [(t["name"], t["have"], t["need"], t["holds"], t["candidates"]) for t in request["rules"]]

    request = status_json(carol, rid)
    assert tallies(request) == [("ops", 0, 1, False, ["alice"]), ("app", 0, 1, False, ["bob"])]  # never carol

    carol.gitjit("approve", rid, "--push", check=0)
    bob = world.clone("bob")
    bob.gitjit("approve", rid, "--push", check=0)
    fetch(carol)
    request = status_json(carol, rid, later)
    assert request["state"] == "break-glass overdue"  # app holds; ops would only by carol's own approval
    assert tallies(request) == [("ops", 0, 1, False, ["alice"]), ("app", 1, 1, True, [])]
    own = next(d for d in request["decisions"] if d["person"] == "carol")
    assert own["counts"] is False and own["code"] == "own-review"
    assert request["break_glass"]["reviewed_by"] == ["bob"] and request["break_glass"]["reviewed_at"] is None
    assert request["approvable"] is True
    carol.gitjit("audit", "--at", iso(later), check=1)

    alice = world.clone("alice")
    alice.gitjit("approve", rid, "--push", check=0)
    fetch(carol)
    request = status_json(carol, rid, later)
    assert request["state"] == "break-glass reviewed"  # both rules, on reviews 3h old (freshness 1h)
    assert tallies(request) == [("ops", 1, 1, True, []), ("app", 1, 1, True, [])]
    signed = {d["person"]: d["signed_at"] for d in request["decisions"]}
    assert request["break_glass"]["reviewed_at"] == max(signed["alice"], signed["bob"])
    assert request["break_glass"]["reviewed_by"] == ["alice", "bob"]
    carol.gitjit("audit", "--at", iso(later), check=0)


def test_two_clones_break_the_glass_at_once_and_both_land(world):
    """Two of carol's clones break the glass in the same moment: both push (one rebuilt on the
    other's tip), both commands run once, and the server's branch holds two break-glass requests
    that every verifier trusts."""
    import threading

    first, second = world.clone("carol"), world.clone("carol")
    results = {}

    def go(label, clone):
        results[label] = break_glass(clone)

    threads = [threading.Thread(target=go, args=(label, c)) for label, c in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results.values()] == [0, 0], {k: r.stderr for k, r in results.items()}
    ran = [seen[0] for clone in (first, second) for seen in runs(clone)]
    assert len(ran) == 2 and len(set(ran)) == 2
    assert sorted(p.split("/")[1][: -len(".toml")] for p in server_paths(world, "requests")) == sorted(ran)
    fresh = world.clone("alice")
    audit = fresh.gitjit("audit", "--json", check=None)
    assert json.loads(audit.stdout)["trusted"] is True, audit.stderr
