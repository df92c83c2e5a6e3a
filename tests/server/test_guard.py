"""A protected tag lands only with the approvals it was judged on (docs/format.md, section 7.3), through real pushes.

pre-receive judges a push before git moves any ref, and git then moves each
ref on its own: a branch update can still fail after the hook accepted it
(another push won the race, an `update` hook or a chained pre-receive
refused it). gitjit's reference-transaction guard, installed beside
pre-receive by `gitjit hook install`, stops the tag in that case. These
tests make each of those failures happen for real, over file:// and git://,
and look at what the server holds afterwards.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import Keys, git
from hookkit import APPROVALS, BranchWriter, World, accepted, approved_request, refused

TAG = "refs/tags/v7.0"


def _hook(server: Path, name: str, body: str) -> Path:
    path = server / "hooks" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _approvals_and_tag(world: World, version: str = "7.0") -> tuple[str, str]:
    """A request on the server; bob's and carol's approvals and the tag only in alice's clone."""
    alice = world.alice
    target = alice.commit_file("app.txt", f"{version}\n")
    request_id = world.writer.request(target)
    accepted(world.push(alice, "main", "approvals"))
    world.writer.approve_by(world.keys, request_id, "bob", "carol")
    alice.git("tag", f"v{version}")
    return request_id, target


def _unrelated_request(world: World, person: str = "dave") -> str:
    """Another team member's request, pushed from a clone of their own; returns the new branch tip."""
    clone = world.clone(person)
    clone.git("branch", "approvals", "origin/approvals")
    writer = BranchWriter(clone)
    writer.request(clone.head())
    accepted(world.push(clone, "approvals"))
    return writer.tip()


def test_a_tag_whose_approvals_lose_the_race_does_not_land(world: World):
    """Two pushes race for the approvals branch: the loser's tag must not land without its approvals."""
    _approvals_and_tag(world)
    waiting, go = world.tmp / "waiting", world.tmp / "go"
    # A chained pre-receive that holds alice's push after gitjit accepted it, until the other push landed.
    _hook(world.server, "pre-receive.legacy",
          f'case "$(cat)" in *refs/tags/*) touch "{waiting}"; i=0\n'
          f'  while [ ! -f "{go}" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done ;; esac\nexit 0\n')
    result: dict[str, subprocess.CompletedProcess] = {}
    pusher = threading.Thread(target=lambda: result.setdefault("alice", world.push(world.alice, "approvals", "v7.0")))
    pusher.start()
    deadline = time.monotonic() + 30
    while not waiting.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waiting.exists(), "alice's push never reached the chained hook"
    winner = _unrelated_request(world)  # judged and landed while alice's push waits
    go.touch()
    pusher.join(60)
    alice = result["alice"]
    assert alice.returncode != 0
    server = world.refs()
    assert server[APPROVALS] == winner  # the other push won the branch
    assert TAG not in server  # and alice's tag did not land without its approvals
    _guard_said(world, alice, "refs/tags/v7.0")
    # A fresh look at the server agrees: nothing there approves v7.0.
    fresh = world.clone("erin")
    assert "refs/tags/v7.0" not in fresh.git("ls-remote", "--tags", world.url).stdout


def test_a_tag_whose_approvals_an_update_hook_refuses_does_not_land(world: World):
    """Another hook (gitolite's `update`, say) refuses the branch after gitjit accepted the push."""
    _approvals_and_tag(world, "7.1")
    _hook(world.server, "update", 'case "$1" in refs/heads/approvals) echo "update: no" >&2; exit 1 ;; esac\n')
    before = world.refs()
    result = world.push(world.alice, "approvals", "v7.1")
    assert result.returncode != 0
    assert world.refs() == before
    _guard_said(world, result, "refs/tags/v7.1")


def _guard_said(world: World, result: subprocess.CompletedProcess, ref: str) -> None:
    """The guard aborts the tag's transaction, and git's receive-pack stops there (git dies on a
    refused reference-transaction). Its own line reaches the pusher where receive-pack's stderr does
    (file://, ssh); over git:// the pusher sees the connection end, after the hook's conditional note."""
    assert f"{ref} accepted" in result.stderr and "lands at" in result.stderr
    if world.url.startswith("file:"):
        assert f"gitjit: {ref} refused: the approvals it was judged on did not land" in result.stderr
    else:
        assert "hung up" in result.stderr or "disconnect" in result.stderr


def test_approvals_and_tag_in_one_push_land_together(world: World):
    """The ordinary case the guard must not get in the way of: plain and atomic pushes."""
    _approvals_and_tag(world, "7.2")
    accepted(world.push(world.alice, "approvals", "v7.2"))
    assert world.refs()["refs/tags/v7.2"] == world.alice.head("refs/tags/v7.2")
    _approvals_and_tag(world, "7.3")
    result = world.alice.git("push", "--atomic", "--porcelain", world.url, "approvals", "v7.3", check=False)
    accepted(result)
    assert world.refs()["refs/tags/v7.3"] == world.alice.head("refs/tags/v7.3")
    assert world.refs()[APPROVALS] == world.alice.head("approvals")


def test_without_the_guard_a_tag_counts_only_approvals_already_on_the_server(world: World):
    """Where the guard is missing (removed, or a git too old to run it), gitjit fails closed."""
    (world.server / "hooks" / "reference-transaction").unlink()
    _approvals_and_tag(world, "7.4")
    refused(world.push(world.alice, "approvals", "v7.4"), "refs/tags/v7.4",
            "approved only by decisions in this same push", "push the approvals branch first, then the tag")
    assert "refs/tags/v7.4" not in world.refs()
    accepted(world.push(world.alice, "approvals"))
    accepted(world.push(world.alice, "v7.4"))


def test_maintenance_outside_a_push_is_left_alone(world: World):
    """pack-refs and gc run ref transactions that look like tag creations: not the guard's business."""
    _approvals_and_tag(world, "7.5")
    accepted(world.push(world.alice, "approvals", "v7.5"))
    before = world.refs()
    git("pack-refs", "--all", cwd=world.server, env=world.keys.env)
    git("gc", "-q", cwd=world.server, env=world.keys.env)
    assert world.refs() == before


# --------------------------------------------------------------------------
# symbolic refs


def test_a_symbolic_ref_to_the_approvals_branch_is_the_approvals_branch(world: World, keys: Keys):
    git("symbolic-ref", "refs/heads/alias", APPROVALS, cwd=world.server, env=keys.env)
    alice = world.alice
    request_id = world.writer.request(alice.head())
    world.writer.decide(request_id, "bob", sign=False)  # an unsigned approval
    before = world.refs()
    result = world.push(alice, "approvals:refs/heads/alias")
    refused(result, "refs/heads/alias", "bob: decision commit is not signed")
    assert world.refs() == before
    # A rewrite through the alias is a rewrite of the branch.
    rewritten = alice.git("commit-tree", "-p", before[APPROVALS] + "~1", "-m", "rewrite",
                          before[APPROVALS] + "^{tree}").stdout.strip()
    refused(world.push(alice, f"+{rewritten}:refs/heads/alias"), "refs/heads/alias", "may not be rewound or rewritten")
    assert world.refs() == before
    # An honest commit through the alias moves the branch, checked as any other.
    world.writer.git("reset", "-q", "--hard", before[APPROVALS])
    world.writer.request(alice.head())
    accepted(world.push(alice, "approvals:refs/heads/alias"))
    assert world.refs()[APPROVALS] == alice.head("approvals")


# --------------------------------------------------------------------------
# what the hook keeps: the pin and the snapshot describe only what landed


def test_the_root_is_pinned_only_once_the_branch_lands(world: World, keys: Keys):
    server = world.tmp / "fresh.git"
    git("init", "-q", "--bare", str(server), env=keys.env)
    world.alice.gitjit("hook", "install", "--repo", str(server), check=True)
    url = world.url.replace("server.git", "fresh.git")
    update = _hook(server, "update", "exit 1\n")
    assert world.alice.git("push", "--porcelain", url, "approvals", check=False).returncode != 0
    assert git("config", "--get", "gitjit.root", cwd=server, env=keys.env, check=False).stdout == ""
    update.unlink()
    accepted(world.alice.git("push", "--porcelain", url, "approvals", check=False))
    root = world.alice.git("rev-list", "--max-parents=0", "approvals").stdout.strip()
    assert git("config", "--get", "gitjit.root", cwd=server, env=keys.env).stdout.strip() == root


def test_approvals_that_never_landed_never_count(world: World):
    """A chained hook refuses a push gitjit accepted: the view gitjit saved for it names commits the
    server does not have, and they must not approve anything afterwards."""
    _approvals_and_tag(world, "7.6")
    legacy = _hook(world.server, "pre-receive.legacy", "cat >/dev/null; echo 'legacy: no' >&2; exit 1\n")
    never = world.alice.head("approvals")
    assert world.push(world.alice, "approvals").returncode != 0
    assert world.refs()[APPROVALS] != never
    legacy.unlink()
    refused(world.push(world.alice, "v7.6"), "refs/tags/v7.6", "0 of 2 approvals")
    # A sibling line lands after it, and is judged exactly as on a server that never saw the other one.
    world.writer.git("reset", "-q", "--hard", world.refs()[APPROVALS])
    request_id = approved_request(world, world.alice.head("v7.6"))
    accepted(world.push(world.alice, "+approvals", "v7.6"))
    assert request_id in world.alice.git("log", "-1", "--format=%s", "approvals~2").stdout


# --------------------------------------------------------------------------
# the trusted view is all or nothing


def test_a_view_that_failed_to_extend_cannot_be_used(world: World):
    from gitjit.errors import NotTrusted
    from gitjit.git.branch import ApprovalsBranch
    from gitjit.trust.trusted import TrustedBranch

    branch = ApprovalsBranch(str(world.server))
    trusted = TrustedBranch.load(branch, save=False)
    request_id = world.writer.request(world.alice.head())
    git("fetch", "-q", str(world.alice.path), "approvals", cwd=world.server, env=world.keys.env)
    new = world.writer.tip()
    with pytest.raises(NotTrusted):
        trusted.extend([new, "0" * 40])  # the second commit cannot be read
    for use in (trusted.save, lambda: trusted.policy, lambda: trusted.requests_for("deploy-prod", new),
                lambda: trusted.extend([])):
        with pytest.raises(NotTrusted, match="failed while extending"):
            use()
    assert request_id  # the first commit was applied before the failure: exactly what must not be used


@pytest.fixture(autouse=True)
def _no_stray_gitjit_env(monkeypatch):
    for name in ("GITJIT_PUSH_ID", "GITJIT_HOOKS_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield
    os.environ.pop("GITJIT_PUSH_ID", None)


# --------------------------------------------------------------------------
# hostile pushes found by an attacker's review


def test_a_replace_ref_is_refused(world: World, keys: Keys):
    """`git replace A M` pushed as refs/replace/<A> would make `git show v1`, `git archive v1`
    and any clone that fetches replace refs show M's content under A's approved name."""
    alice = world.alice
    target = alice.head()
    evil = alice.commit_file("app.txt", "EVIL\n")
    alice.git("replace", target, evil)
    before = world.refs()
    result = world.push(alice, f"refs/replace/{target}")
    refused(result, f"refs/replace/{target}", "refs/replace/ refs make git show other content")
    assert world.refs() == before


def test_the_guard_is_not_fooled_by_a_replace_ref_on_the_server(world: World, keys: Keys):
    """Were a replace ref on the server already (put there before the hook, or by hand), it
    must not make the approvals branch look as if it held the tag's approvals."""
    request_id, _ = _approvals_and_tag(world, "7.7")
    tip, approvals = world.refs()[APPROVALS], world.alice.head("approvals")
    # A fake commit standing in for the server's tip, with alice's unpushed approvals as its parent.
    raw = git("cat-file", "commit", tip, cwd=world.server, env=keys.env).stdout
    body = raw.split("\n", 1)[1]
    fake = git("hash-object", "-t", "commit", "-w", "--stdin", cwd=world.server, env=keys.env,
               input=f"tree {raw.split()[1]}\nparent {approvals}\n" + "\n".join(
                   l for l in body.split("\n") if not l.startswith("parent "))).stdout.strip()
    git("update-ref", f"refs/replace/{tip}", fake, cwd=world.server, env=keys.env)
    _hook(world.server, "update", 'case "$1" in refs/heads/approvals) exit 1 ;; esac\n')
    result = world.push(world.alice, "approvals", "v7.7")
    assert result.returncode != 0
    assert "refs/tags/v7.7" not in world.refs()
    assert world.refs()[APPROVALS] == tip
    assert request_id


def test_a_push_of_more_commits_than_the_server_takes_is_refused_before_they_are_read(world: World, keys: Keys):
    git("config", "gitjit.maxPushCommits", "3", cwd=world.server, env=keys.env)
    for _ in range(4):
        world.writer.request(world.alice.head())
    before = world.refs()
    refused(world.push(world.alice, "approvals"), APPROVALS, "adds 4 commits", "gitjit.maxPushCommits")
    assert world.refs() == before
    git("config", "gitjit.maxPushCommits", "4", cwd=world.server, env=keys.env)  # the operator raises it
    accepted(world.push(world.alice, "approvals"))


def test_a_push_of_more_tags_than_the_server_takes_is_refused(world: World, keys: Keys):
    git("config", "gitjit.maxPushTags", "2", cwd=world.server, env=keys.env)
    for name in ("release-a", "release-b", "release-c"):
        world.alice.git("tag", name)
    before = world.refs()
    result = world.push(world.alice, "release-a", "release-b", "release-c")
    assert result.returncode != 0 and "gitjit.maxPushTags" in result.stderr
    assert world.refs() == before


def test_only_a_newline_ends_a_ref_update_line(world: World):
    """str.splitlines() also splits at U+2028: a tag named `v1.1<U+2028>x` must not be judged as
    `v1.1`. The line is read whole, and a ref name git would not write is refused."""
    import io
    import sys as _sys

    from gitjit.server import pre_receive as hook

    line = f"{'0' * 40} {world.alice.head()} refs/tags/v1.1\u2028x\n".encode()
    stdin, stderr = _sys.stdin, _sys.stderr
    _sys.stdin = io.TextIOWrapper(io.BytesIO(line))
    _sys.stderr = io.StringIO()
    try:
        code = hook.main(str(world.server))
        said = _sys.stderr.getvalue()
    finally:
        _sys.stdin, _sys.stderr = stdin, stderr
    assert code == 1 and "unreadable ref update line" in said
