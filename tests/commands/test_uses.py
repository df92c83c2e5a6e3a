"""Single-use approvals (docs/format.md, section 6.6): real `gitjit run` processes racing against a
server whose hooks `gitjit hook install` put there, protected tags consuming uses, and use records
written by hand the way a forger would (beyond `uses`, replayed, out of order, huge).

The server's policy (tests/glasskit.py): `db-export` has `uses = 1` (tags `export-*`), `release`
has `uses = 2` (tags `rel-*`); bob or carol approves either.
"""

from __future__ import annotations

import json
import time

import pytest
from gateworld import Background
from glasskit import FAST, make_glass_golden, probe, runs, server_file, server_paths, status_json, utc
from hookkit import BranchWriter, accepted, copy_world, refused


@pytest.fixture(scope="module")
def glass(golden, tmp_path_factory, keys):
    return make_glass_golden(golden, tmp_path_factory.mktemp("uses"), keys)


@pytest.fixture
def world(glass, tmp_path, keys):
    return copy_world(glass, tmp_path, keys)


def approved(world, action: str) -> tuple[str, str]:
    """A request for `action` on main made by dave and approved by bob, both pushed: (id, target)."""
    dave = world.clone("dave")
    rid = dave.gitjit("request", action, "--target", "main", "--push", check=0).stdout.strip().split()[-1]
    world.clone("bob").gitjit("approve", rid, "--push", check=0)
    return rid, dave.head("main")


def test_two_runners_race_for_the_last_use_exactly_one_runs(world):
    dave = world.clone("dave")
    rid = dave.gitjit("request", "db-export", "--target", "main", "--push", check=0).stdout.strip().split()[-1]
    target = dave.head("main")
    runners = [dave, world.clone("alice")]
    procs = [Background(c, "run", "db-export", "--target", target, "--wait", "60s", *probe(),
                        env=dict(c.env, **FAST)) for c in runners]
    for p in procs:  # both wait on the same request, then see bob's approval within one interval
        p.wait_for_line(lambda line: line.startswith("waiting: 0 of 1 approvals"))
    world.clone("bob").gitjit("approve", rid, "--push", check=0)
    codes = [p.finish() for p in procs]
    assert sorted(codes) == [0, 1], [p.stderr for p in procs]
    winner, loser = (procs[0], procs[1]) if codes[0] == 0 else (procs[1], procs[0])
    assert "used up" in loser.stderr
    ran = [r for c in runners for r in runs(c)]
    assert len(ran) == 1 and ran[0][0] == rid and ran[0][2] == "1"  # GITJIT_USE=1
    assert server_paths(world, "uses") == [f"uses/{rid}/1.toml"]
    assert server_paths(world, "requests") == [f"requests/{rid}.toml"]  # the loser asked for nothing new
    request = status_json(runners[0], rid) if codes[0] == 0 else status_json(runners[1], rid)
    assert (request["state"], request["uses"], request["uses_left"], request["approved"]) == ("used", 1, 0, False)
    assert "use 1 of 1" in winner.stderr

    # a third run later: used up at once, nothing written, the command not run
    late = world.clone("carol")
    before = world.refs()
    result = late.gitjit("run", "db-export", "--target", target, *probe(), check=1)
    assert "used up" in result.stderr and runs(late) == [] and world.refs() == before
    verify = json.loads(late.gitjit("verify", "db-export", "--target", target, "--json", check=1).stdout)
    assert verify["codes"] == ["used"]


def test_a_protected_tag_consumes_a_use(world):
    rid, target = approved(world, "release")
    dave = world.clone("dave")
    dave.git("tag", "rel-1", target)
    dave.git("tag", "rel-2", target)
    dave.git("tag", "rel-3", target)

    # without its use on the record the tag is refused, though the request is approved
    result = world.push(dave, "refs/tags/rel-1")
    line = refused(result, "refs/tags/rel-1", "uses = 2", "--tag rel-1")
    assert "refs/tags/rel-1" not in world.refs()

    dave.gitjit("run", "release", "--target", target, "--tag", "rel-1", "--",
                "git", "push", "-q", "origin", "refs/tags/rel-1", check=0)
    assert "refs/tags/rel-1" in world.refs()
    assert 'tag = "rel-1"' in server_file(world, f"uses/{rid}/1.toml")
    dave.git("fetch", "-q", "origin")
    request = status_json(dave, rid)
    assert (request["state"], request["uses_left"]) == ("approved", 1)
    assert request["use_records"][0]["tag"] == "rel-1" and request["use_records"][0]["user"] == "dave"

    dave.gitjit("run", "release", "--target", target, "--tag", "rel-2", "--",
                "git", "push", "-q", "origin", "refs/tags/rel-2", check=0)
    dave.git("fetch", "-q", "origin")
    assert status_json(dave, rid)["state"] == "used"
    result = dave.gitjit("run", "release", "--target", target, "--tag", "rel-3", "--",
                         "git", "push", "-q", "origin", "refs/tags/rel-3", check=1)
    assert "used up" in result.stderr
    assert "refs/tags/rel-3" not in world.refs()
    assert line  # the first refusal named the way to record the use


def use_text(rid: str, blob: str, target: str, number: int, tag: str = "") -> str:
    extra = f'tag = "{tag}"\n' if tag else ""
    return (f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
            f"use = {number}\n{extra}")


def writer_for(world, person: str) -> tuple:
    clone = world.clone(person)
    clone.git("branch", "-q", "approvals", "origin/approvals")
    return clone, BranchWriter(clone)


def test_the_hook_refuses_a_use_beyond_uses(world, keys):
    rid, target = approved(world, "db-export")
    dave, writer = writer_for(world, "dave")
    blob = writer.blob(f"requests/{rid}.toml")
    writer.commit({f"uses/{rid}/1.toml": use_text(rid, blob, target, 1)}, "use 1", sign=keys["dave"].fpr)
    accepted(world.push(dave, "refs/heads/approvals"))
    writer.commit({f"uses/{rid}/2.toml": use_text(rid, blob, target, 2)}, "use 2", sign=keys["dave"].fpr)
    before = world.refs()
    refused(world.push(dave, "refs/heads/approvals"), "refs/heads/approvals", "has used all 1 of its uses")
    assert world.refs() == before


@pytest.mark.parametrize("forgery", ["replayed-number", "replayed-path", "other-request", "unsigned",
                                     "unknown-key", "out-of-order", "huge", "malformed", "future"])
def test_hostile_use_records_are_refused(world, keys, forgery):
    rid, target = approved(world, "release")
    other, _ = approved(world, "release")
    dave, writer = writer_for(world, "dave")
    blob = writer.blob(f"requests/{rid}.toml")
    first = use_text(rid, blob, target, 1)
    writer.commit({f"uses/{rid}/1.toml": first}, "use 1", sign=keys["dave"].fpr)
    accepted(world.push(dave, "refs/heads/approvals"))
    sign = keys["dave"].fpr
    files = {
        "replayed-number": {f"uses/{rid}/2.toml": first},  # use 1's record again, as use 2
        "replayed-path": {f"uses/{rid}/1.toml": use_text(rid, blob, target, 1, "rel-9")},  # rewrites use 1
        "other-request": {f"uses/{other}/1.toml": first},  # rid's record under another request
        "unsigned": {f"uses/{rid}/2.toml": use_text(rid, blob, target, 2)},
        "unknown-key": {f"uses/{rid}/2.toml": use_text(rid, blob, target, 2)},
        "out-of-order": {f"uses/{rid}/3.toml": use_text(rid, blob, target, 3)},
        "huge": {f"uses/{rid}/2.toml": use_text(rid, blob, target, 2) + "# " + "x" * 20000 + "\n"},
        "malformed": {f"uses/{rid}/2.toml": "gitjit = 1\nuse = [[[\n"},
        "future": {f"uses/{rid}/2.toml": use_text(rid, blob, target, 2)},
    }[forgery]
    if forgery == "unsigned":
        sign = False
    elif forgery == "unknown-key":
        sign = keys["erin"].fpr  # a real key, not in the policy
    if forgery == "future":  # committed two days ahead of the server's clock
        dave.env["GIT_COMMITTER_DATE"] = f"{int(time.time()) + 2 * 86400} +0000"
    writer.commit(files, "hostile use", sign=sign)
    dave.env.pop("GIT_COMMITTER_DATE", None)
    before = world.refs()
    result = world.push(dave, "refs/heads/approvals")
    code = {"replayed-number": "the record says use 1", "replayed-path": "must add exactly one file",
            "other-request": "the record says use 1 of", "unsigned": "not signed",
            "unknown-key": "unknown key", "out-of-order": "the next use is 2",
            "huge": "the limit is", "malformed": "not valid TOML", "future": "in the future"}[forgery]
    refused(result, "refs/heads/approvals", code)
    assert world.refs() == before
    # the clone that holds it sees one use gone at most: uses only ever go down
    request = status_json(dave, rid)
    assert request["uses_left"] in (0, 1)


def test_a_use_record_and_its_tag_in_one_push(world, keys):
    """By hand: the use record naming the tag and the tag go in one push; the guard lands the record first."""
    rid, target = approved(world, "db-export")
    dave, writer = writer_for(world, "dave")
    blob = writer.blob(f"requests/{rid}.toml")
    writer.commit({f"uses/{rid}/1.toml": use_text(rid, blob, target, 1, "export-1")}, "use 1", sign=keys["dave"].fpr)
    dave.git("tag", "export-1", target)
    dave.git("tag", "export-2", target)
    result = world.push(dave, "refs/heads/approvals", "refs/tags/export-1")
    accepted(result)
    assert f"approved by request {rid}" in result.stderr
    assert status_json(dave, rid)["state"] == "used"
    # the one use went to export-1: another tag, even with a record naming it, is beyond uses
    writer.commit({f"uses/{rid}/2.toml": use_text(rid, blob, target, 2, "export-2")}, "use 2", sign=keys["dave"].fpr)
    refused(world.push(dave, "refs/heads/approvals", "refs/tags/export-2"), "refs/heads/approvals", "has used all 1")
    assert "refs/tags/export-2" not in world.refs()


def test_use_records_and_break_glass_requests_are_kept_in_the_snapshot(world):
    """A branch with use records and break-glass requests is saved as a snapshot like any other (it used
    to stop at the first of them, and every later load replayed the rest), and the view resumed from it
    judges every request as the full replay did."""
    from gitjit.cli import render_json
    from gitjit.git.branch import ApprovalsBranch
    from gitjit.trust.trusted import TrustedBranch
    from gitjit.trust.verdicts import verify

    rid, target = approved(world, "release")
    dave = world.clone("dave")
    dave.gitjit("run", "release", "--target", target, "--wait", "10s", *probe(), env=dict(dave.env, **FAST), check=0)
    carol = world.clone("carol")
    carol.gitjit("run", "hotfix", "--break-glass", "--reason", "outage", *probe(), env=dict(carol.env, **FAST),
                 check=0)
    fresh = world.clone("alice")
    branch = ApprovalsBranch(str(fresh.path / ".git"))
    tip = branch.ref_target(branch.remote_ref)
    hotfix_target = fresh.head("main")
    walked = TrustedBranch.load(branch, tip=tip)  # from the root, then saved
    assert walked.resumed_from is None and walked.uses[rid] and any(
        e.request.break_glass for e in walked.requests.for_target("hotfix", hotfix_target))
    resumed = TrustedBranch.load(ApprovalsBranch(str(fresh.path / ".git")), tip=tip)
    assert resumed.resumed_from is not None and resumed.resumed_from.tip == tip and resumed.applied == []
    at = utc()
    for action, commit in (("release", target), ("hotfix", hotfix_target), ("db-export", target)):
        assert render_json.verdict(verify(resumed, action, commit, at)) == \
            render_json.verdict(verify(walked, action, commit, at)), action
    assert [(u.number, u.use, u.user, u.signed_at, u.problem) for u in resumed.uses[rid]] == \
        [(u.number, u.use, u.user, u.signed_at, u.problem) for u in walked.uses[rid]]


def test_a_use_record_row_that_does_not_read_back_is_walked_afresh(world):
    """A snapshot whose use record row is damaged (a disk fault, a bug) is not used: the branch is
    walked from its root and saved afresh, and the next load resumes again (a fault blocks nobody)."""
    import sqlite3

    from gitjit.git.branch import ApprovalsBranch
    from gitjit.trust.cache.snapshot import FILE_NAME
    from gitjit.trust.trusted import TrustedBranch

    rid, target = approved(world, "release")
    dave = world.clone("dave")
    dave.gitjit("run", "release", "--target", target, "--wait", "10s", *probe(), env=dict(dave.env, **FAST), check=0)
    fresh = world.clone("alice")
    git_dir = fresh.path / ".git"
    tip = ApprovalsBranch(str(git_dir)).ref_target("refs/remotes/origin/approvals")
    TrustedBranch.load(ApprovalsBranch(str(git_dir)), tip=tip)
    with sqlite3.connect(git_dir / "gitjit" / FILE_NAME) as db:
        assert db.execute("UPDATE uses SET row = ?", ('{"request_id": 1',)).rowcount == 1
    walked = TrustedBranch.load(ApprovalsBranch(str(git_dir)), tip=tip)
    assert walked.resumed_from is None and [u.number for u in walked.uses[rid]] == [1]
    resumed = TrustedBranch.load(ApprovalsBranch(str(git_dir)), tip=tip)
    assert resumed.resumed_from is not None and [u.number for u in resumed.uses[rid]] == [1]
