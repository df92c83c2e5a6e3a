"""Layout 2 (docs/format.md, section 2.4) through real pushes into a server whose hook `gitjit hook install` put there.

The golden server's branch is in layout 1 (flat). alice, its admin, moves it
forward with a signed policy commit that sets `layout = 2`: the approvals
already on it keep counting, new records go under shards/<t2>/, and records
anywhere else, or in the wrong shard, are refused like any layout break.
"""

from __future__ import annotations

import threading

import pytest
from helpers import Keys
from hookkit import ACTION, APPROVALS, World, accepted, approved_request, policy_toml, refused, toml_time

from gitjit.git.branch import ApprovalsBranch
from gitjit.model.layout import decision_path, request_path
from gitjit.reasons import LAYOUT, NO_SUCH_REQUEST
from gitjit.trust.trusted import TrustedBranch


def move_forward(world: World, keys: Keys, signer: str | None = None, layout: str = "2") -> str:
    """The migration commit: the same policy with `layout` set, signed by alice (or `signer`)."""
    text = policy_toml(keys).replace("gitjit = 1\n", f"gitjit = 1\nlayout = {layout}\n", 1)
    return world.writer.commit({"policy.toml": text}, "gitjit: move to layout 2",
                               sign=keys[signer].fpr if signer else True)


def hand_request(world: World, target: str, path_target: str | None = None, flat: bool = False,
                 suffix: str | None = None) -> str:
    """A request for `target`, signed by alice, at its layout-2 path (or another target's shard, or flat);
    its id ends with the shard of its path (or `suffix`)."""
    from datetime import UTC, datetime, timedelta

    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    rid = f"{ACTION}-hand-{target[:6]}-{int(flat)}-{suffix if suffix is not None else (path_target or target)[:2]}"
    text = (f'gitjit = 1\nid = "{rid}"\naction = "{ACTION}"\ntarget = "{target}"\n'
            f'requested_by = "alice"\nreason = "test"\n'
            f"created = {toml_time(created)}\nexpires = {toml_time(created + timedelta(hours=2))}\n")
    path = request_path(rid, path_target or target, 1 if flat else 2)
    world.writer.commit({path: text}, f"gitjit: request {rid}")
    return rid


def decide(world: World, keys: Keys, rid: str, person: str, target: str, shard_target: str | None = None) -> None:
    path = request_path(rid, target, 2)
    text = world.writer.decision_text(rid, blob=world.writer.blob(path), target=target)
    world.writer.commit({decision_path(rid, person, shard_target or target, 2): text}, f"gitjit: approve {rid}",
                        sign=keys[person].fpr)


def test_a_branch_moved_forward_keeps_its_approvals_and_takes_sharded_ones(world: World, keys: Keys):
    old_target = world.alice.head()
    approved_request(world, old_target)  # layout 1: requests/<id>.toml, approvals/<id>/<person>.toml
    accepted(world.push(world.alice, "main", "approvals"))
    move_forward(world, keys)
    accepted(world.push(world.alice, "approvals"))

    world.alice.git("tag", "v1.0", old_target)
    accepted(world.push(world.alice, "refs/tags/v1.0"))  # the flat approvals still count

    # the CLI writes the new layout, for a requester and for approvers in their own clones
    world.alice.git("remote", "add", "origin", world.url)
    world.alice.git("fetch", "-q", "origin")
    world.alice.commit_file("next.txt", "next\n")
    target = world.alice.head()
    accepted(world.push(world.alice, "main"))
    rid = world.alice.gitjit("request", ACTION, "--target", target, "--push", check=True).stdout.strip()
    for person in ("bob", "carol"):
        clone = world.clone(person)
        clone.git("fetch", "-q", "origin")
        clone.gitjit("approve", rid, "--push", check=True)
    world.alice.git("fetch", "-q", "origin")
    tree = world.alice.git("ls-tree", "-r", "--name-only", "origin/approvals").stdout.split()
    assert f"shards/{target[:2]}/requests/{rid}.toml" in tree
    assert {f"shards/{target[:2]}/approvals/{rid}/{p}.toml" for p in ("bob", "carol")} <= set(tree)
    assert not [p for p in tree if p.startswith(("requests/", "approvals/")) and rid in p]
    world.alice.git("tag", "v1.1", target)
    accepted(world.push(world.alice, "refs/tags/v1.1"))

    fresh = world.clone("dave")  # a CI job: a fresh clone, the root pinned, nothing kept
    for tagged in (old_target, target):
        fresh.gitjit("verify", ACTION, "--target", tagged, "--root", world.config("gitjit.root"), check=0)
    assert fresh.gitjit("audit", check=None).returncode == 0


@pytest.mark.parametrize("case", ["flat request", "request in another shard", "id not ending with its shard",
                                  "decision in another shard", "decision before its request"])
def test_records_outside_the_layout_in_force_are_refused(world: World, keys: Keys, case: str):
    move_forward(world, keys)
    accepted(world.push(world.alice, "approvals"))
    target = world.alice.head()
    other = "f" * 40 if not target.startswith("f") else "0" * 40
    if case == "flat request":
        hand_request(world, target, flat=True)
        reason = "outside the approvals branch layout"
    elif case == "request in another shard":  # its id made to fit that shard: only the target tells
        hand_request(world, target, path_target=other)
        reason = f"belongs under shards/{target[:2]}/"
    elif case == "id not ending with its shard":
        hand_request(world, target, suffix="zz")
        reason = "outside the approvals branch layout"
    elif case == "decision before its request":
        rid = f"{ACTION}-early-{target[:2]}"
        text = world.writer.decision_text(rid, blob="1" * 40, target=target)
        world.writer.commit({decision_path(rid, "bob", target, 2): text}, "early", sign=keys["bob"].fpr)
        reason = f"request {rid} does not exist before this decision"
    else:
        rid = hand_request(world, target)
        accepted(world.push(world.alice, "approvals"))
        decide(world, keys, rid, "bob", target, shard_target=other)
        reason = f"belongs under shards/{target[:2]}/"
    before = world.refs()
    refused(world.push(world.alice, "approvals"), APPROVALS, reason)
    assert world.refs() == before
    local = TrustedBranch.load(ApprovalsBranch(str(world.alice.path / ".git")), pin=False, save=False)
    assert local.refusals[-1].code == (NO_SUCH_REQUEST if case == "decision before its request" else LAYOUT)


def test_a_layout_change_by_a_non_admin_is_refused(world: World, keys: Keys):
    before = world.refs()
    move_forward(world, keys, signer="bob")
    refused(world.push(world.alice, "approvals"), APPROVALS, "not an admin's key")
    assert world.refs() == before


@pytest.mark.parametrize("value", ["3", '"2"', "2.0"])
def test_an_unknown_layout_is_refused_even_from_an_admin(world: World, keys: Keys, value: str):
    """Hostile or from the future: a layout this gitjit does not know never reads as layout 1."""
    before = world.refs()
    move_forward(world, keys, layout=value)
    refused(world.push(world.alice, "approvals"), APPROVALS, "layout")
    assert world.refs() == before


def test_two_clones_racing_on_a_sharded_branch_leave_it_trusted(world: World, keys: Keys):
    move_forward(world, keys)
    accepted(world.push(world.alice, "main", "approvals"))
    clones = [world.clone(p) for p in ("bob", "carol")]
    results = {}

    def request(clone) -> None:
        results[clone.person.name] = clone.gitjit("request", ACTION, "--target", "HEAD", "--push")

    threads = [threading.Thread(target=request, args=(c,)) for c in clones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    landed = [name for name, proc in results.items() if proc.returncode == 0]
    assert landed, results
    judge = world.clone("dave")
    assert judge.gitjit("audit", check=None).returncode == 0
    tree = judge.git("ls-tree", "-r", "--name-only", "origin/approvals").stdout.split()
    ids = [results[name].stdout.strip() for name in landed]
    assert all(any(p.endswith(f"/requests/{rid}.toml") and p.startswith("shards/") for p in tree) for rid in ids)
