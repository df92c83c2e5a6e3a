"""A checked-out approvals worktree kept in step, and local commits that never wedge (docs/format.md, 8.3).

The README's by-hand route keeps the approvals branch checked out in a
worktree. gitjit's writes keep that worktree's index and files in step (no
phantom staged deletions), refuse to move it under uncommitted changes with
a command that works, and where a local commit does not count (a refused
by-hand commit) name it and the one command that repairs it. Each printed
command is run as printed, and must repair.
"""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
from helpers import git
from hookkit import APPROVALS, World, accepted, copy_world, refused

from gitjit import reasons as R
from gitjit.commands import write as operations
from gitjit.errors import GitjitError
from gitjit.model.grammar import utc_now

REMOTE = "refs/remotes/origin/approvals"
QUOTED_COMMAND = re.compile(r"(?:repair with|keep theirs with|put them aside with) '([^']+)'")


@pytest.fixture
def team(golden, tmp_path, keys) -> World:
    return copy_world(golden, tmp_path, keys)


def checkout(clone):
    """The README's worktree: the approvals branch checked out beside the clone."""
    clone.git("fetch", "-q")
    clone.git("branch", "approvals", "origin/approvals")
    path = clone.path.parent / f"{clone.path.name}-approvals"
    clone.git("worktree", "add", "-q", str(path), "approvals")
    return path


def in_tree(clone, tree, *args, check=True):
    return git(*args, cwd=tree, env=clone.env, check=check)


def printed_command(stderr: str) -> list[str]:
    found = QUOTED_COMMAND.findall(stderr)
    assert len(found) == 1, stderr
    return shlex.split(found[0])


def run_printed(clone, stderr: str) -> None:
    command = printed_command(stderr)
    proc = subprocess.run(command, cwd=clone.path, env=clone.env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{command} failed:\n{proc.stderr}"


def core_error(clone, monkeypatch, call) -> GitjitError:
    """Runs a core write in this process (to read the error's reason code), as the clone's person."""
    from gitjit.git.branch import ApprovalsBranch

    for key in ("GNUPGHOME", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.setenv(key, clone.env[key])
    with pytest.raises(GitjitError) as caught:
        call(ApprovalsBranch(str(clone.path / ".git")))
    return caught.value


def decision_file(clone, tree, request_id: str, person: str) -> str:
    blob = in_tree(clone, tree, "rev-parse", f"HEAD:requests/{request_id}.toml").stdout.strip()
    text = in_tree(clone, tree, "show", f"HEAD:requests/{request_id}.toml").stdout
    target = next(line.split('"')[1] for line in text.splitlines() if line.startswith("target ="))
    return (f'gitjit = 1\nrequest = "{request_id}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
            f'decision = "approve"\ncomment = "by hand"\n')


def test_writes_keep_a_checked_out_worktree_in_step_and_the_by_hand_route_works(team):
    carol, bob = team.clone("carol"), team.clone("bob")
    tree = checkout(bob)
    rid = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    bob.gitjit("request", "deploy-prod", "--reason", "bob's own", "--push", check=0)
    # the worktree shows the new tip: no phantom staged deletions
    assert in_tree(bob, tree, "status", "--porcelain").stdout == ""
    assert (tree / "requests" / f"{rid}.toml").exists()
    assert in_tree(bob, tree, "rev-parse", "HEAD").stdout.strip() == team.refs()[APPROVALS]
    # the by-hand route in that worktree: write the file, git commit -S, git push, accepted
    path = f"approvals/{rid}/bob.toml"
    (tree / path).parent.mkdir(parents=True)
    (tree / path).write_text(decision_file(bob, tree, rid, "bob"))
    in_tree(bob, tree, "add", path)
    in_tree(bob, tree, "commit", "-q", "-S", "-m", f"approve {rid}")
    assert in_tree(bob, tree, "show", "--name-status", "--format=", "HEAD").stdout.split() == ["A", path]
    accepted(team.push(bob, "approvals"))
    # and gitjit goes on from there, the worktree still in step
    alice = team.clone("alice")
    alice.gitjit("approve", rid, "--push", check=0)
    bob.gitjit("status", rid, check=0)
    bob.gitjit("reject", bob.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0], check=2)
    assert in_tree(bob, tree, "status", "--porcelain").stdout == ""


def test_an_untracked_draft_in_the_worktree_is_kept(team):
    carol, bob = team.clone("carol"), team.clone("bob")
    tree = checkout(bob)
    (tree / "draft.txt").write_text("half-written\n")
    carol.gitjit("request", "deploy-prod", "--push", check=0)
    bob.gitjit("request", "deploy-prod", "--push", check=0)
    assert (tree / "draft.txt").read_text() == "half-written\n"
    assert in_tree(bob, tree, "status", "--porcelain").stdout == "?? draft.txt\n"


def test_uncommitted_changes_in_the_worktree_stop_the_write_with_a_command_that_works(team, monkeypatch):
    bob = team.clone("bob")
    tree = checkout(bob)
    (tree / "policy.toml").write_text((tree / "policy.toml").read_text() + "# an edit in progress\n")
    before = bob.head(APPROVALS)
    proc = bob.gitjit("request", "deploy-prod", "--push", check=2)
    assert bob.head(APPROVALS) == before and team.refs()[APPROVALS] == bob.head(REMOTE)
    error = core_error(bob, monkeypatch, lambda b: operations.request(
        b, "deploy-prod", "HEAD", "", None, utc_now(),
        offline=True))
    assert error.code == R.WORKTREE_DIRTY
    run_printed(bob, proc.stderr)
    bob.gitjit("request", "deploy-prod", "--push", check=0)
    assert in_tree(bob, tree, "status", "--porcelain").stdout == ""


def test_a_refused_by_hand_commit_does_not_wedge_later_commands(team, monkeypatch):
    """The README's trap: a by-hand commit that also deletes files is refused by the server. gitjit names
    it and the one command that drops it; that command, run as printed, repairs the clone."""
    carol, bob = team.clone("carol"), team.clone("bob")
    tree = checkout(bob)
    older = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    rid = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    in_tree(bob, tree, "pull", "-q", "--ff-only", "origin", "approvals")
    path = f"approvals/{rid}/bob.toml"
    (tree / path).parent.mkdir(parents=True)
    (tree / path).write_text(decision_file(bob, tree, rid, "bob"))
    in_tree(bob, tree, "rm", "-q", f"requests/{older}.toml")  # a mistake: the commit also deletes a request
    in_tree(bob, tree, "add", path)
    in_tree(bob, tree, "commit", "-q", "-S", "-m", f"approve {rid}")
    refused(team.push(bob, "approvals"), APPROVALS)
    proc = bob.gitjit("approve", rid, "--push", check=2)
    assert "does not count" in proc.stderr and "every push of the branch would be refused" in proc.stderr
    assert printed_command(proc.stderr)[:3] == ["git", "-C", str(tree)]  # works though it is checked out
    error = core_error(bob, monkeypatch, lambda b: operations.decide(
        b, rid, "approve", "", offline=True))
    assert error.code == R.LOCAL_COMMIT_REFUSED
    run_printed(bob, proc.stderr)
    bob.gitjit("approve", rid, "--push", check=0)
    assert f"approvals/{rid}/bob.toml" in git("ls-tree", "-r", "--name-only", APPROVALS, cwd=team.server,
                                              env=team.keys.env).stdout.split()
    assert in_tree(bob, tree, "status", "--porcelain").stdout == ""


def test_a_local_commit_that_breaks_trust_names_the_repair(team):
    """An unsigned policy edit by hand: every command would fail 'not trusted'; the message now says
    which local commit it is and the command that drops it."""
    bob = team.clone("bob")
    tree = checkout(bob)
    (tree / "policy.toml").write_text((tree / "policy.toml").read_text() + "# by hand\n")
    in_tree(bob, tree, "commit", "-q", "-am", "unsigned policy edit")
    proc = bob.gitjit("status", "--offline", check=1)
    assert "not trusted" in proc.stderr and "unsigned policy edit" in proc.stderr
    run_printed(bob, proc.stderr)
    bob.gitjit("status", check=0)
    bob.gitjit("request", "deploy-prod", "--push", check=0)


def test_a_diverged_checked_out_branch_gets_advice_that_works(team, monkeypatch):
    carol, bob = team.clone("carol"), team.clone("bob")
    tree = checkout(bob)
    bob.gitjit("request", "deploy-prod", "--reason", "not pushed", check=0)  # local only
    carol.gitjit("request", "deploy-prod", "--push", check=0)  # origin moves on
    proc = bob.gitjit("request", "deploy-prod", "--push", check=2)
    assert "has diverged" in proc.stderr
    assert printed_command(proc.stderr) == ["git", "-C", str(tree), "reset", "--keep", "origin/approvals"]
    error = core_error(bob, monkeypatch, lambda b: operations.request(
        b, "deploy-prod", "HEAD", "", None, utc_now(),
        offline=True))
    assert error.code == R.BRANCH_DIVERGED
    run_printed(bob, proc.stderr)
    bob.gitjit("request", "deploy-prod", "--push", check=0)
    assert in_tree(bob, tree, "status", "--porcelain").stdout == ""
