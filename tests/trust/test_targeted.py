"""Targeted verification (trust/targeted.py) gives the full walk's answer, on generated histories.

The histories are real: every commit is made with git plumbing and, where
signed, by `git commit-tree -S` with the session's GnuPG keys, in either
layout. They include what an attacker would push: decisions signed by
someone else's key or unsigned, modified and deleted requests, a request id
used twice, records in the wrong shard or the wrong layout, files outside
the layout, TOML escapes spelling the target, merges, and policy changes
signed by a non-admin. For every target the full walk (`TrustedBranch.load`)
and the targeted view must agree: the same verdict, reason by reason, or
both "not trusted" (or both a bad policy).
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from world import BRANCH, World, decision_toml, request_toml, template_world, utc

from gitjit.cli import render_json
from gitjit.errors import BadInput, NotTrusted
from gitjit.git.branch import ApprovalsBranch
from gitjit.model import layout as L
from gitjit.trust import targeted as targeted_walk
from gitjit.trust.targeted import load_for_target
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import verify

# Two targets in one shard, one in another: requests may be filed under a neighbour's shard.
TARGETS = ("ab" + "1" * 38, "ab" + "2" * 38, "cd" + "3" * 38)
PEOPLE = ("alice", "bob", "carol", "dave")

# One step of a generated history. Request and decision steps name earlier requests by index;
# they are drawn more often than the hostile steps, so that many histories reach an approval.
_request = st.tuples(st.just("request"), st.integers(0, 2), st.sampled_from(PEOPLE), st.booleans())
_decide = st.tuples(st.just("decide"), st.integers(0, 5), st.sampled_from(("bob", "carol", "alice")),
                    st.sampled_from(("self", "self", "self", "dave", "unsigned")),
                    st.sampled_from(("approve", "approve", "approve", "reject")),
                    st.sampled_from(("right", "right", "right", "other-shard", "flat")))
steps = st.one_of(
    st.tuples(st.just("approved"), st.integers(0, 2), st.sampled_from(("alice", "bob", "carol", "dave"))),
    _request, _request, _decide, _decide, _decide, _decide,
    st.tuples(st.just("modify"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("delete"), st.integers(0, 5)),
    st.tuples(st.just("same-id"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("wrong-place"), st.integers(0, 2), st.sampled_from(("shard", "layout", "outside", "stray-in-shard"))),
    st.tuples(st.just("escaped"), st.integers(0, 2)),
    st.tuples(st.just("early-decision"), st.integers(0, 2), st.sampled_from(("bob", "carol"))),
    st.tuples(st.just("policy"), st.sampled_from(("alice", "alice", "bob")),
              st.sampled_from(("drop-carol", "flip-layout", "threshold-1"))),
    st.tuples(st.just("merge")),
)


@pytest.fixture(scope="module")
def templates(keys, tmp_path_factory) -> dict[int, World]:
    return {n: template_world(tmp_path_factory.mktemp(f"targeted-{n}"), keys, layout=n) for n in L.LAYOUTS}


class History:
    """Writes generated steps on a world's approvals branch, in the layout in force."""

    def __init__(self, world: World, layout: int):
        self.world, self.layout = world, layout
        self.requests: list[tuple[str, str, str]] = []  # (id, target, path)
        self.now = utc()

    def request_text(self, rid: str, target: str, escaped: bool = False) -> str:
        text = request_toml(rid, "deploy", target, self.now - timedelta(minutes=5), self.now + timedelta(hours=2),
                            requested_by="gen")
        if escaped:  # "\u0061" is "a": the same target, spelt so that its hex digits are not in the file
            text = text.replace(f'target = "{target}"', 'target = "' + "".join(f"\\u{ord(c):04x}" for c in target) + '"')
        return text

    def next_id(self, target: str) -> str:
        return f"deploy-gen-{len(self.requests)}-{target[:2]}"  # layout 2: an id ends with its shard

    def pick(self, index: int) -> tuple[str, str, str] | None:
        return self.requests[index % len(self.requests)] if self.requests else None

    def apply(self, step: tuple) -> None:
        w, kind = self.world, step[0]
        if kind == "approved":  # a request by `requester` and the approvals of two others
            _, t, requester = step
            self.apply(("request", t, requester, True))
            for person in [p for p in ("alice", "bob", "carol") if p != requester][:2]:
                self.apply(("decide", len(self.requests) - 1, person, "self", "approve", "right"))
        elif kind == "request":
            _, t, person, sign = step
            rid = self.next_id(TARGETS[t])
            path = L.request_path(rid, TARGETS[t], self.layout)
            w.commit_on_branch(person, {path: self.request_text(rid, TARGETS[t])}, sign=sign, message=f"request {rid}")
            self.requests.append((rid, TARGETS[t], path))
        elif kind == "early-decision":  # on the id the next request for this target will have
            _, t, person = step
            rid = self.next_id(TARGETS[t])
            w.commit_on_branch(person, {L.decision_path(rid, person, TARGETS[t], self.layout):
                                        decision_toml(rid, "0" * 40, TARGETS[t])}, message=f"early {rid}")
        elif kind == "decide" and self.pick(step[1]):
            _, index, person, signer, decision, place = step
            rid, target, path = self.pick(index)
            text = decision_toml(rid, w.blob_id(path) if self.exists(path) else "0" * 40, target, decision)
            where = L.decision_path(rid, person, target, self.layout)
            if place == "other-shard":
                where = L.decision_path(rid, person, "ee" + target[2:] if target[:2] != "ee" else "ff", L.SHARDED)
            elif place == "flat":
                where = L.decision_path(rid, person, target, L.FLAT)
            w.commit_on_branch(person if signer == "self" else "dave", {where: text}, sign=signer != "unsigned",
                               message=f"{decision} {rid}")
        elif kind == "modify" and self.pick(step[1]):
            rid, _, path = self.pick(step[1])
            w.commit_on_branch("carol", {path: self.request_text(rid, TARGETS[step[2]])}, message="modify")
        elif kind == "delete" and self.pick(step[1]) and self.exists(self.pick(step[1])[2]):
            w.commit_on_branch("carol", remove=(self.pick(step[1])[2],), message="delete")
        elif kind == "same-id" and self.pick(step[1]):
            rid = self.pick(step[1])[0]
            path = L.request_path(rid, TARGETS[step[2]], self.layout)
            w.commit_on_branch("carol", {path: self.request_text(rid, TARGETS[step[2]])}, message="same id")
        elif kind == "wrong-place":
            _, t, how = step
            target, elsewhere = TARGETS[t], TARGETS[(t + 2) % 3][:2]
            elsewhere = "ee" if elsewhere == target[:2] else elsewhere
            rid = f"deploy-misplaced-{w._next()}-{elsewhere}"
            if how == "shard":  # another shard, the id made to fit it: only the target tells
                path = f"{L.SHARDS_DIR}/{elsewhere}/{L.REQUESTS_DIR}/{rid}.toml"
            elif how == "layout":  # the layout not in force
                path = L.request_path(rid, target, L.FLAT if self.layout == L.SHARDED else L.SHARDED)
            elif how == "stray-in-shard":  # under another shard, but no record path there
                path = f"{L.SHARDS_DIR}/{elsewhere}/notes/{rid}.toml"
            else:
                path = f"notes/{rid}.toml"
            w.commit_on_branch("carol", {path: self.request_text(rid, target)}, message="misplaced")
        elif kind == "escaped":
            rid = f"deploy-escaped-{w._next()}-{TARGETS[step[1]][:2]}"
            path = L.request_path(rid, TARGETS[step[1]], self.layout)
            w.commit_on_branch("carol", {path: self.request_text(rid, TARGETS[step[1]], escaped=True)}, message="escaped")
            self.requests.append((rid, TARGETS[step[1]], path))
        elif kind == "policy":
            _, signer, change = step
            text = w.show("policy.toml")
            if change == "drop-carol":
                text = text.replace('approvers = ["@sre", "carol"]', 'approvers = ["@sre"]')
            elif change == "threshold-1":
                text = text.replace("threshold = 2", "threshold = 1", 1)
            else:
                new = L.FLAT if self.layout == L.SHARDED else L.SHARDED
                text = text.replace(f"layout = {self.layout}\n", "") if "layout =" in text else text
                text = text.replace("gitjit = 1\n", f"gitjit = 1\nlayout = {new}\n", 1)
                if signer == "alice":
                    self.layout = new
            w.commit_on_branch(signer, {"policy.toml": text}, message=f"policy: {change}")
        elif kind == "merge":
            tip = w.tip()
            side = w.commit_on_branch("carol", {"notes/side.txt": "x"}, move_branch=False, parent=tip)
            merge = w.git("commit-tree", f"{tip}^{{tree}}", "-p", tip, "-p", side, "-m", "merge").stdout.strip()
            w.git("update-ref", BRANCH, merge, tip)

    def exists(self, path: str) -> bool:
        return self.world.git("cat-file", "-e", f"{BRANCH}:{path}", check=False).returncode == 0


def answer(load, target: str, at) -> tuple:
    """What a verifier says about `deploy` on `target`: the verdict's JSON, or the kind of failure."""
    try:
        trusted = load()
        return ("verdict", render_json.verdict(verify(trusted, "deploy", target, at)), trusted)
    except NotTrusted as exc:
        return ("not trusted", exc.code, None)
    except BadInput as exc:  # a bad policy on the chain
        return ("bad input", exc.code, None)


def full_and_targeted(world: World, target: str, at) -> tuple[tuple, tuple]:
    branch = ApprovalsBranch(str(world.path / ".git"))
    root = world.root()
    (world.path / ".git" / "gitjit" / "trusted.sqlite").unlink(missing_ok=True)  # a fresh clone keeps none
    targeted = answer(lambda: load_for_target(branch, target, root=root, pin=False), target, at)
    full = answer(lambda: TrustedBranch.load(branch, root=root, pin=False, save=False), target, at)
    return full, targeted


@pytest.mark.parametrize("layout", L.LAYOUTS)
@settings(max_examples=int(__import__("os").environ.get("GITJIT_TARGETED_EXAMPLES", "30")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=st.lists(steps, min_size=1, max_size=10))
def test_targeted_answer_equals_the_full_walk(templates, tmp_path_factory, monkeypatch, layout, history):
    monkeypatch.setattr(targeted_walk, "_SPLIT_AT", 4)  # the shard walked in two halves, as on a long branch
    world = templates[layout].copy(tmp_path_factory.mktemp("gen"))
    try:
        writer = History(world, layout)
        for step in history:
            writer.apply(step)
        at = writer.now
        for target in TARGETS:
            full, targeted = full_and_targeted(world, target, at)
            assert targeted[:2] == full[:2], f"{target[:4]}: {history}"
            event(full[0] if full[0] != "verdict" else f"verdict: {'approved' if full[1]['approved'] else 'not approved'}")
            if targeted[2] is not None:
                assert targeted[2].partial  # the targeted walk really ran
    finally:
        shutil.rmtree(world.path.parent, ignore_errors=True)


def test_an_approved_request_among_others_is_found_without_the_whole_walk(templates, tmp_path):
    """A hand-made approval for one target, between unrelated requests: approved, and only the
    policy chain and that request's commits were applied."""
    world = templates[L.SHARDED].copy(tmp_path)
    history = History(world, L.SHARDED)
    for step in [("request", 2, "carol", True)] * 3 + [("request", 0, "carol", True)] + \
            [("decide", 3, "alice", "self", "approve", "right"), ("decide", 3, "bob", "self", "approve", "right")] + \
            [("request", 1, "dave", True), ("decide", 4, "bob", "self", "approve", "right")]:
        history.apply(step)
    full, targeted = full_and_targeted(world, TARGETS[0], history.now)
    assert full[1]["approved"] and targeted[1] == full[1]
    applied = targeted[2]._applied
    policy_commits = len(targeted[2].policy_changes)
    assert len(applied) == policy_commits + 3  # the request and its two approvals
    assert targeted[2].count == int(world.git("rev-list", "--count", BRANCH).stdout)


def test_a_merge_anywhere_untrusts_the_targeted_view_too(templates, tmp_path):
    world = templates[L.SHARDED].copy(tmp_path)
    history = History(world, L.SHARDED)
    for step in [("request", 0, "carol", True), ("merge",), ("request", 2, "carol", True)]:
        history.apply(step)
    full, targeted = full_and_targeted(world, TARGETS[0], history.now)
    assert full[0] == targeted[0] == "not trusted"
    assert full[1] == targeted[1]


def test_an_unauthorized_policy_change_untrusts_the_targeted_view(templates, tmp_path):
    world = templates[L.FLAT].copy(tmp_path)
    history = History(world, L.FLAT)
    for step in [("request", 0, "carol", True), ("policy", "bob", "threshold-1"), ("request", 2, "carol", True)]:
        history.apply(step)
    full, targeted = full_and_targeted(world, TARGETS[2], history.now)
    assert full[0] == targeted[0] == "not trusted"


def test_a_snapshot_kept_from_an_earlier_run_is_used_instead(templates, tmp_path):
    world = templates[L.SHARDED].copy(tmp_path)
    branch = ApprovalsBranch(str(world.path / ".git"))
    TrustedBranch.load(branch)  # leaves a snapshot for the pinned root
    trusted = load_for_target(branch, TARGETS[0])
    assert not trusted.partial


def test_the_targeted_view_is_never_saved(templates, tmp_path):
    world = templates[L.SHARDED].copy(tmp_path)
    (world.path / ".git" / "gitjit" / "trusted.sqlite").unlink(missing_ok=True)
    branch = ApprovalsBranch(str(world.path / ".git"))
    trusted = load_for_target(branch, TARGETS[0])
    assert trusted.partial and trusted.save() is False
    assert not (world.path / ".git" / "gitjit" / "trusted.sqlite").exists()


def test_verify_in_a_fresh_clone_pins_and_answers(templates, tmp_path):
    """The CLI in a clone with no $GIT_DIR/gitjit: exit 0 for the approved target, 1 for another."""
    world = templates[L.SHARDED].copy(tmp_path / "origin")
    target = world.target("requested")
    rid = world.request("carol", "deploy", target)
    world.approve("alice", rid)
    world.approve("bob", rid)
    clone = Path(tmp_path / "clone")
    world.git("clone", "-q", "--no-local", str(world.path), str(clone))
    fresh = World(clone, world.keys, world.homes)
    fresh.git("branch", "-q", "approvals", "origin/approvals")
    assert not (clone / ".git" / "gitjit").exists()
    ok = fresh.gitjit("alice", "verify", "deploy", "--target", target, "--root", world.root(), "--json", check=None)
    assert ok.returncode == 0, ok.stderr
    assert not (clone / ".git" / "gitjit" / "trusted.sqlite").exists()  # nothing partial kept
    other = fresh.gitjit("alice", "verify", "deploy", "--target", fresh.target("not requested"), "--root", world.root(),
                         "--json",
                         check=None)
    assert other.returncode == 1 and json.loads(other.stdout)["codes"] == ["no-request"]


@pytest.mark.parametrize("layout", L.LAYOUTS)
def test_a_path_of_a_kind_it_does_not_know_is_replayed_where_it_may_count(templates, tmp_path, layout):
    """Records of other kinds (a use record of a single-use approval, a file beside a request's) are
    replayed whatever id they name, under the top-level names the format knows and in the target's
    shard: the targeted view judges them as the full walk does. Under another top-level name, or
    another shard (or no shard), nothing can count for the target: the full walk refuses each such
    commit, and the targeted view leaves it out."""
    world = templates[layout].copy(tmp_path)
    history = History(world, layout)
    history.apply(("request", 2, "carol", True))  # another target's request
    other, other_target, _ = history.requests[0]
    shard = L.shard_of(TARGETS[0])
    replayed = [f"uses/{other}/1.toml", f"requests/{other}/1.toml", f"approvals/{other}/alice/1.toml",
                f"shards/{shard}/uses/{other}/1.toml", f"proposals/{other}.toml"]
    elsewhere = [f"shards/{L.shard_of(other_target)}/uses/{other}/1.toml", f"shards/zz/requests/{other}.toml",
                 f"shards/{L.shard_of(other_target)}/approvals/{other}/alice.toml", f"{other}.toml",
                 f"notes/requests/{other}.toml", f"Uses/{other}/1.toml", "shards.toml"]
    made = {path: world.commit_on_branch("alice", {path: 'gitjit = 1\nrequest = "x"\n'}, message=f"unknown {path}")
            for path in replayed + elsewhere}
    full, targeted = full_and_targeted(world, TARGETS[0], history.now)
    assert targeted[:2] == full[:2]
    refused = {r.commit: r.code for r in targeted[2].refusals}
    full_refused = {r.commit: r.code for r in full[2].refusals}
    # A use record (docs/format.md 6.6) is judged against its request, which only the full walk
    # loaded here (it is another target's): both refuse it, each naming what it knows.
    use_record = made[replayed[0]]
    assert full_refused.pop(use_record) and refused.pop(use_record)
    assert {c: full_refused[c] for c in (made[p] for p in replayed[1:])} == \
        {c: refused[c] for c in (made[p] for p in replayed[1:])}
    assert all(made[p] in full_refused and made[p] not in refused for p in elsewhere)
