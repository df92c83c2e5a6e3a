"""Writing commands: the user's work tree and index are never touched, and the
local approvals branch is kept in step with origin's (docs/format.md, section 8.3, docs/decisions.md).

Each test gets its own copy of one origin (a bare repository whose approvals
branch alice made with `gitjit init` and `person add`) and clones of it
acting as real people with their real keys.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, Clone, git, make_bare, make_clone
from world import _run_in_process

BRANCH = "refs/heads/approvals"
REMOTE = "refs/remotes/origin/approvals"

ACTION = """
[actions.deploy]
approvers = ["bob", "carol"]
threshold = 1
"""


def jit(clone: Clone, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    """gitjit as the clone's person, in this process (see world._run_in_process)."""
    env = dict(clone.env, XDG_CONFIG_HOME=clone.env["XDG_CONFIG_HOME"])
    proc = _run_in_process(list(args), env, clone.path)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"gitjit {' '.join(args)} exited {proc.returncode}, expected {check}\n"
                             f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    return proc


def rev(clone: Clone, name: str) -> str | None:
    proc = clone.git("rev-parse", "--verify", "--quiet", name, check=False)
    return proc.stdout.strip() or None


def add_action_by_hand(clone: Clone, text: str = ACTION) -> None:
    """The admin edits policy.toml in a worktree of the approvals branch and signs the commit."""
    tree = clone.path.parent / f"{clone.path.name}-wt"
    clone.git("worktree", "add", "-q", str(tree), "approvals")
    with open(tree / "policy.toml", "a") as handle:
        handle.write(text)
    git("commit", "-q", "-S", "-am", "add an action", cwd=tree, env=clone.env)
    clone.git("worktree", "remove", str(tree))


@pytest.fixture(scope="module")
def origin_template(keys, tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("writes")
    bare = make_bare(base / "origin.git", keys.env)
    alice = make_clone(base, keys["alice"], keys)
    jit(alice, "init", "--admin", "alice")
    jit(alice, "person", "add", "bob", "--key-file", str(keys["bob"].asc_path), "--email", "bob@example.com")
    jit(alice, "person", "add", "carol", "--key", keys["carol"].fpr)
    add_action_by_hand(alice)
    alice.git("push", "-q", str(bare), "main", "approvals")
    return bare


@pytest.fixture
def origin(origin_template, tmp_path) -> Path:
    copy = tmp_path / "origin.git"
    shutil.copytree(origin_template, copy)
    return copy


@pytest.fixture
def clone(origin, tmp_path, keys):
    def make(person: str) -> Clone:
        return make_clone(tmp_path, keys[person], keys, origin=origin)

    return make


def work_tree_state(clone: Clone) -> tuple:
    files = sorted((p.relative_to(clone.path).as_posix(), p.read_bytes())
                   for p in clone.path.rglob("*") if p.is_file() and ".git" not in p.relative_to(clone.path).parts)
    index = (clone.path / ".git" / "index").read_bytes()
    return (clone.git("status", "--porcelain=v1", "--untracked-files=all").stdout,
            clone.git("diff").stdout, clone.git("diff", "--cached").stdout,
            clone.git("symbolic-ref", "HEAD").stdout, rev(clone, "HEAD"), files, index)


# -- the user's work tree and index ------------------------------------------------------


def test_writes_never_touch_the_work_tree_or_the_index(clone, keys, tmp_path):
    alice = clone("alice")
    (alice.path / "README").write_text("a dirty change\n")  # modified, not staged
    (alice.path / "staged.txt").write_text("staged\n")
    alice.git("add", "staged.txt")  # staged
    (alice.path / "policy.toml").write_text("an untracked file named like the branch's\n")
    (alice.path / "keys").mkdir()
    (alice.path / "keys" / "dave.asc").write_text("untracked\n")
    before = work_tree_state(alice)
    assert " M README" in before[0] and "A  staged.txt" in before[0]

    jit(alice, "person", "add", "dave", "--key-file", str(keys["dave"].asc_path))
    target = rev(alice, "HEAD")
    rid = jit(alice, "request", "deploy", "--reason", "dirty tree").stdout.strip()
    bob = clone("bob")
    alice.git("fetch", "-q")  # nothing new: bob has not written yet
    jit(bob, "approve", rid, check=2)  # bob's clone does not know alice's unpushed request
    alice.git("push", "-q", "origin", "approvals")
    bob.git("fetch", "-q")
    jit(bob, "approve", rid, "--push")
    alice.git("fetch", "-q")
    assert jit(alice, "verify", "deploy").returncode == 0

    assert work_tree_state(alice) == before
    tree = alice.git("ls-tree", "-r", "--name-only", BRANCH).stdout.split()
    path = f"shards/{target[:2]}/requests/{rid}.toml"  # `gitjit init` makes a sharded branch (layout 2)
    assert path in tree and "keys/dave.asc" in tree and "staged.txt" not in tree
    assert alice.git("show", f"{BRANCH}:{path}").stdout.count(target) == 1


def test_writes_work_from_another_directory_with_repo(clone, tmp_path):
    alice = clone("alice")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(alice.env)
    proc = _run_in_process(["request", "deploy", "--repo", str(alice.path)], env, elsewhere)
    assert proc.returncode == 0, proc.stderr
    rid = proc.stdout.strip()
    assert f"requests/{rid}.toml" in alice.git("ls-tree", "-r", "--name-only", BRANCH).stdout


def test_git_jit_alias(clone):
    alice = clone("alice")
    env = dict(alice.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{alice.env['PATH']}",
               PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(["git", "jit", "status", "--json"], cwd=alice.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert '"requests": []' in proc.stdout


# -- only origin/approvals, behind, diverged ----------------------------------------------


def test_works_with_only_the_remote_branch(clone):
    bob = clone("bob")
    assert rev(bob, BRANCH) is None and rev(bob, REMOTE) is not None
    assert bob.git("config", "--get", "gitjit.root", check=False).stdout == ""
    remote_tip = rev(bob, REMOTE)
    rid = jit(bob, "request", "deploy").stdout.strip()
    local = rev(bob, BRANCH)
    assert bob.git("rev-parse", f"{local}^").stdout.strip() == remote_tip
    # the first use pinned the branch's root
    root = bob.git("rev-list", "--max-parents=0", BRANCH).stdout.strip()
    assert bob.git("config", "gitjit.root").stdout.strip() == root
    # another clone that only has origin's branch can read and approve
    carol = clone("carol")
    bob.git("push", "-q", "origin", "approvals")
    carol.git("fetch", "-q")
    jit(carol, "approve", rid)
    assert jit(carol, "verify", "deploy").stdout.startswith("approved: deploy")


def test_reads_use_the_remote_branch_when_it_is_ahead(clone):
    bob, carol = clone("bob"), clone("carol")
    rid = jit(bob, "request", "deploy", "--push").stdout.strip()
    jit(carol, "status", check=0)  # makes no local branch: reading does not write refs
    assert rev(carol, BRANCH) is None
    carol.git("branch", "approvals", "origin/approvals")  # a stale local branch
    old = rev(carol, BRANCH)
    jit(bob, "approve", rid, check=2)  # self-approval: refused, nothing pushed
    carol2 = clone("carol")
    jit(carol2, "approve", rid, "--push")
    carol.git("fetch", "-q")
    assert rev(carol, BRANCH) == old != rev(carol, REMOTE)
    assert jit(carol, "verify", "deploy").returncode == 0  # sees the approval on origin/approvals


def test_fast_forwards_when_behind(clone):
    bob, carol = clone("bob"), clone("carol")
    first = jit(carol, "request", "deploy", "--push").stdout.strip()
    bob.git("fetch", "-q")
    bob.git("branch", "approvals", "origin/approvals")
    behind = rev(bob, BRANCH)
    second = jit(carol, "request", "deploy", "--reason", "second", "--push").stdout.strip()
    bob.git("fetch", "-q")
    ahead = rev(bob, REMOTE)
    assert behind != ahead
    jit(bob, "approve", second)
    new = rev(bob, BRANCH)
    assert bob.git("rev-parse", f"{new}^").stdout.strip() == ahead  # built on origin's tip, nothing lost
    tree = bob.git("ls-tree", "-r", "--name-only", new).stdout.split()
    # in the layout of the branch `gitjit init` made (sharded: shards/<t2>/requests/<id>.toml)
    assert any(p.endswith(f"requests/{first}.toml") for p in tree)
    assert any(p.endswith(f"requests/{second}.toml") for p in tree)
    assert any(p.endswith(f"approvals/{second}/bob.toml") for p in tree)
    # and it pushes as a fast-forward
    bob.git("push", "-q", "origin", "approvals")


def test_refuses_when_diverged(clone):
    bob, carol = clone("bob"), clone("carol")
    rid = jit(carol, "request", "deploy", "--push").stdout.strip()
    bob.git("fetch", "-q")
    jit(bob, "request", "deploy", "--reason", "bob's own, not pushed")  # bob's local branch moves on
    other = clone("carol")
    jit(other, "request", "deploy", "--reason", "meanwhile on origin", "--push")
    bob.git("fetch", "-q")
    before = (rev(bob, BRANCH), rev(bob, REMOTE), work_tree_state(bob))
    proc = jit(bob, "approve", rid, check=2)
    assert proc.stderr.strip() == (
        "gitjit: branch approvals has diverged from origin/approvals: keep theirs with "
        "'git branch -f approvals origin/approvals' (your own unpushed approvals commits are then dropped)")
    assert (rev(bob, BRANCH), rev(bob, REMOTE), work_tree_state(bob)) == before
    # following the advice makes it work
    bob.git("branch", "-f", "approvals", "origin/approvals")
    jit(bob, "approve", rid)


def test_push_failure_is_no_bad_input_and_says_what_was_written(clone, tmp_path):
    bob = clone("bob")
    bob.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    # exit 2 would promise that nothing was written; the request was committed locally
    proc = jit(bob, "request", "deploy", "--push", check=1)
    local = rev(bob, BRANCH)
    assert local is not None and rev(bob, REMOTE) != local
    assert [p for p in bob.git("ls-tree", "-r", "--name-only", local).stdout.split() if "requests/" in p]
    # the line before it says this first use pinned gitjit.root (a notice, not an error)
    assert proc.stderr.splitlines()[-1].startswith(f"gitjit: committed {local[:12]} on {BRANCH}, but git push failed")
    assert proc.stderr.rstrip().endswith("push it later with 'git push origin approvals'")


# -- init and person add -------------------------------------------------------------------


def test_init_makes_a_signed_root_and_pins_it(repo_for, keys):
    alice = repo_for("alice")
    before = work_tree_state(alice)
    out = jit(alice, "init", "--admin", "alice").stdout
    root = rev(alice, BRANCH)
    # the full root id: the one other clones and CI are told to pin
    assert out.splitlines()[0] == f"created {BRANCH} at {root}; pinned gitjit.root to it"
    assert alice.git("config", "gitjit.root").stdout.strip() == root
    assert alice.git("rev-list", "--count", BRANCH).stdout.strip() == "1"
    assert sorted(alice.git("ls-tree", "-r", "--name-only", BRANCH).stdout.split()) == ["keys/alice.asc", "policy.toml"]
    verify = alice.git("verify-commit", "--raw", root)
    assert f"VALIDSIG {keys['alice'].fpr}" in verify.stderr
    policy = alice.git("show", f"{BRANCH}:policy.toml").stdout
    assert keys["alice"].fpr in policy and 'people = [\n    "alice",\n]' in policy
    assert work_tree_state(alice) == before


def test_init_needs_a_signing_key(repo_for):
    alice = repo_for("alice")
    alice.git("config", "--unset", "user.signingkey")
    assert "user.signingkey is not set" in jit(alice, "init", "--admin", "alice", check=2).stderr
    assert rev(alice, BRANCH) is None
    assert "'Alice' is not a valid name" in jit(alice, "init", "--admin", "Alice", check=2).stderr


def test_init_with_key(repo_for, keys):
    alice = repo_for("alice")
    jit(alice, "init", "--admin", "alice", "--key", keys["alice"].fpr)
    assert alice.git("show", f"{BRANCH}:keys/alice.asc").stdout.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")


def test_init_with_a_key_that_is_not_the_signing_key_writes_nothing(repo_for, keys):
    alice = repo_for("alice")
    # --key names bob's key, but git signs with alice's user.signingkey: the root would not verify
    proc = jit(alice, "init", "--admin", "alice", "--key", keys["bob"].fpr, check=2)
    assert "would not count" in proc.stderr
    assert rev(alice, BRANCH) is None
    assert alice.git("config", "--get", "gitjit.root", check=False).stdout == ""


def test_person_add_needs_an_admin(clone, keys):
    bob = clone("bob")
    before = (rev(bob, BRANCH), rev(bob, REMOTE))
    proc = jit(bob, "person", "add", "dave", "--key-file", str(keys["dave"].asc_path), check=2)
    assert "would not count" in proc.stderr and "not an admin's key" in proc.stderr
    assert (rev(bob, BRANCH), rev(bob, REMOTE)) == before


def test_person_add_refuses_a_key_file_with_two_keys(clone, keys, tmp_path):
    alice = clone("alice")
    two = tmp_path / "two.asc"
    two.write_text(keys["dave"].asc + keys["erin"].asc)
    before = rev(alice, BRANCH)
    assert "holds 2 public keys, expected exactly one" in jit(alice, "person", "add", "dave", "--key-file", str(two), check=2).stderr
    assert rev(alice, BRANCH) == before


def test_person_add_refuses_a_key_already_listed_for_someone(clone, keys):
    alice = clone("alice")
    before = rev(alice, BRANCH)
    proc = jit(alice, "person", "add", "dave", "--key-file", str(keys["bob"].asc_path), check=2)
    assert f"{keys['bob'].fpr} is also listed for bob" in proc.stderr
    assert rev(alice, BRANCH) == before


def test_approve_with_a_key_outside_the_policy(clone, keys):
    carol = clone("carol")
    rid = jit(carol, "request", "deploy", "--push").stdout.strip()
    erin = clone("erin")
    before = rev(erin, BRANCH)
    assert "belongs to nobody in the policy" in jit(erin, "approve", rid, check=2).stderr
    assert rev(erin, BRANCH) == before


def test_reason_and_comment_with_quotes_newlines_and_unicode(clone):
    carol, bob = clone("carol"), clone("bob")
    reason = 'Release "1.4.2"\nsecond line \\ é 🚀'
    rid = jit(carol, "request", "deploy", "--reason", reason, "--push").stdout.strip()
    bob.git("fetch", "-q")
    jit(bob, "approve", rid, "--comment", "LGTM\n'ok' \"ok\"")
    data = json.loads(jit(bob, "status", rid, "--json").stdout)
    assert data["requests"][0]["reason"] == reason and data["requests"][0]["state"] == "approved"


def test_undecodable_reason_is_bad_input(clone):
    carol = clone("carol")
    before = rev(carol, BRANCH)
    # argv bytes that are not UTF-8 reach Python as lone surrogates
    proc = jit(carol, "request", "deploy", "--reason", "caf\udce9", check=2)
    assert proc.stderr == "gitjit: --reason is not valid UTF-8 text\n"
    assert rev(carol, BRANCH) == before


def test_undecodable_comment_is_bad_input(clone):
    carol = clone("carol")
    rid = jit(carol, "request", "deploy").stdout.strip()
    bob = clone("bob")
    carol.git("push", "-q", "origin", "approvals")
    bob.git("fetch", "-q")
    before = rev(bob, REMOTE), rev(bob, BRANCH)
    proc = jit(bob, "approve", rid, "--comment", "\udcff", check=2)
    assert proc.stderr == "gitjit: --comment is not valid UTF-8 text\n"
    assert (rev(bob, REMOTE), rev(bob, BRANCH)) == before


def test_undecodable_reason_through_the_real_entry_point(clone):
    carol = clone("carol")
    env = dict(carol.env, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-m", "gitjit", "request", "deploy", "--reason", b"caf\xe9"],
                          cwd=carol.path, env=env, capture_output=True)
    assert proc.returncode == 2 and proc.stderr == b"gitjit: --reason is not valid UTF-8 text\n"
    assert rev(carol, BRANCH) is None


def test_request_for_an_action_with_a_long_name(clone):
    alice = clone("alice")
    long_name = "deploy-" + "x" * 57  # 64 characters: the longest valid name
    add_action_by_hand(alice, f'\n[actions.{long_name}]\napprovers = ["bob"]\n')
    rid = jit(alice, "request", long_name).stdout.strip()
    assert len(rid) <= 64 and rid.startswith(long_name[:40])
    data = json.loads(jit(alice, "status", rid, "--json").stdout)
    assert data["requests"][0]["action"] == long_name and data["requests"][0]["state"] == "pending"


def test_person_add_from_the_keyring_by_email_and_a_subkey_signer(clone, keys):
    alice = clone("alice")
    jit(alice, "person", "add", "subby", "--key", "subby@example.com", "--email", "subby@example.com")
    policy = alice.git("show", f"{BRANCH}:policy.toml").stdout
    assert f'"{keys["subby"].fpr}"' in policy and keys["subby"].sub_fpr not in policy  # the primary is listed
    add_action_by_hand(alice, '\n[actions.ship]\napprovers = ["subby"]\n')
    rid = jit(alice, "request", "ship", "--push").stdout.strip()
    subby = clone("subby")
    jit(subby, "approve", rid)  # git signs with subby's signing subkey
    assert jit(subby, "verify", "ship").stdout.startswith("approved: ship")
    decision = json.loads(jit(subby, "status", rid, "--json").stdout)["requests"][0]["decisions"][0]
    assert decision["key"] == keys["subby"].fpr and decision["counts"]
