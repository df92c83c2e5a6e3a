"""The pre-receive hook (docs/format.md, section 7), through real `git push`es.

Every test pushes into a bare repository whose hook was installed by
`gitjit hook install` (the CLI, as a subprocess), over file:// and over
git:// (`git daemon`). The server starts from a session-wide copy: the
approvals branch made by `gitjit init` plus one admin-signed policy commit
naming alice (admin), bob, carol (approvers with alice) and dave (no role);
action deploy-prod protects tags `v*` with threshold 2 and freshness 1h.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import REPO_ROOT, Clone, Keys, git, make_bare, make_clone
from hookkit import (  # noqa: F401
    ACTION,
    APPROVALS,
    BranchWriter,
    World,
    accepted,
    approved_request,
    copy_world,
    objects,
    policy_toml,
    refs,
    refused,
)

# --------------------------------------------------------------------------
# creating the approvals branch


def _fresh_server(world: World) -> Path:
    server = world.tmp / "fresh.git"
    make_bare(server, world.keys.env)
    world.alice.gitjit("hook", "install", "--repo", str(server), check=True)
    world.server = server
    world.url = world.url.replace("server.git", "fresh.git")
    return server


def test_first_push_of_the_branch_is_accepted_and_pins_its_root(world: World):
    _fresh_server(world)
    root = world.alice.git("rev-list", "--max-parents=0", "approvals").stdout.strip()
    assert world.config("gitjit.root") == ""
    accepted(world.push(world.alice, "main", "approvals"))
    assert world.refs()[APPROVALS] == world.alice.head("approvals")
    assert world.config("gitjit.root") == root


def _root_commit(clone: Clone, keys: Keys, signer: str, admins=("alice",)) -> str:
    """A root with alice's policy and keys, signed by `signer`, on an orphan branch `approvals`."""
    wt = clone.path.parent / f"{clone.path.name}-root"
    clone.git("worktree", "add", "-q", "--detach", str(wt))
    git("checkout", "-q", "--orphan", "approvals", cwd=wt, env=clone.env)
    git("rm", "-rq", "--cached", ".", cwd=wt, env=clone.env)
    for path in wt.iterdir():
        if path.name != ".git":
            path.unlink()
    (wt / "keys").mkdir()
    for person in ("alice", "bob"):
        (wt / "keys" / f"{person}.asc").write_text(keys[person].asc)
    (wt / "policy.toml").write_text(policy_toml(keys, people=("alice", "bob"), approvers=("alice", "bob"),
                                                admins=admins))
    git("add", ".", cwd=wt, env=clone.env)
    git("commit", "-q", f"-S{keys[signer].fpr}", "-m", "root", cwd=wt, env=clone.env)
    return git("rev-parse", "HEAD", cwd=wt, env=clone.env).stdout.strip()


def test_root_signed_by_a_non_admin_is_refused(world: World, keys: Keys):
    _fresh_server(world)
    bob = make_clone(world.tmp, keys["bob"], keys)
    _root_commit(bob, keys, signer="bob")
    result = world.push(bob, "main", "approvals")
    refused(result, APPROVALS, "root commit", "not an admin's key")
    assert world.refs() == {}
    assert world.config("gitjit.root") == ""


def test_an_existing_unpinned_branch_is_pinned_by_the_next_accepted_push(world: World, keys: Keys):
    """A branch that was on the server before the hook (no pin yet) is authenticated and pinned."""
    git("config", "--unset", "gitjit.root", cwd=world.server, env=keys.env)
    world.alice.commit_file("a.txt", "a\n")
    accepted(world.push(world.alice, "main"))  # a push that reads no approvals branch pins nothing
    assert world.config("gitjit.root") == ""
    world.writer.request(world.alice.head())
    world.alice.git("tag", "release-0")
    accepted(world.push(world.alice, "approvals", "release-0"))
    assert world.config("gitjit.root") == world.alice.git("rev-list", "--max-parents=0", "approvals").stdout.strip()


def test_a_root_other_than_the_pinned_one_is_refused(world: World, keys: Keys):
    _fresh_server(world)
    pinned = world.alice.git("rev-list", "--max-parents=0", "approvals").stdout.strip()
    git("config", "gitjit.root", pinned, cwd=world.server, env=keys.env)  # the server admin pins first
    bob = make_clone(world.tmp, keys["bob"], keys)
    other = _root_commit(bob, keys, signer="bob", admins=("bob",))  # a valid root of its own
    refused(world.push(bob, "approvals"), APPROVALS, other[:12], f"not at the pinned root {pinned[:12]}")
    accepted(world.push(world.alice, "approvals"))


# --------------------------------------------------------------------------
# protected tags


@pytest.mark.parametrize("kind", ["lightweight", "annotated"])
def test_approved_tag_is_accepted(world: World, kind: str):
    alice = world.alice
    target = alice.commit_file("app.txt", "1.0\n")
    request_id = world.writer.request(target)
    accepted(world.push(alice, "main", "approvals"))
    for person in ("bob", "carol"):  # each approver with gitjit, from their own clone
        clone = world.clone(person)
        clone.gitjit("approve", request_id, "--push", check=True)
    alice.git("tag", *(["-a", "-m", "release"] if kind == "annotated" else []), "v1.0")
    result = world.push(alice, "v1.0")
    accepted(result)
    assert f"refs/tags/v1.0 accepted: {ACTION} on {target[:12]} approved by request {request_id} (bob, carol)" \
        in result.stderr
    assert world.refs()["refs/tags/v1.0"] == alice.head("refs/tags/v1.0")


def test_tag_without_request_is_refused_with_what_to_do(world: World):
    alice = world.alice
    target = alice.commit_file("app.txt", "1.1\n")
    alice.git("tag", "v1.1")
    result = world.push(alice, "main", "v1.1")
    refused(result, "refs/tags/v1.1", f"no request for {ACTION} on {target[:12]}",
            f"gitjit request {ACTION} --target {target} --push")
    assert "refs/tags/v1.1" not in world.refs()
    assert "refs/heads/main" in world.refs()  # untouched: still the golden main
    assert world.refs()["refs/heads/main"] != target


def test_tag_with_too_few_approvals_is_refused(world: World):
    alice = world.alice
    target = alice.commit_file("app.txt", "1.2\n")
    request_id = approved_request(world, target, ("bob",))
    alice.git("tag", "v1.2")
    refused(world.push(alice, "main", "approvals", "v1.2"), "refs/tags/v1.2",
            f"request {request_id} has 1 of 2 approvals (bob)")


def test_unprotected_tags_and_other_refs_pass(world: World):
    alice = world.alice
    alice.commit_file("a.txt", "a\n")
    alice.git("tag", "release-1")  # no action's tags match
    alice.git("branch", "feature")
    accepted(world.push(alice, "main", "feature", "release-1"))
    alice.git("commit", "-q", "--amend", "-m", "rewritten")
    alice.git("tag", "-f", "release-1")
    accepted(world.push(alice, "+main", "+refs/tags/release-1", ":feature"))
    assert world.refs()["refs/heads/main"] == alice.head()
    assert "refs/heads/feature" not in world.refs()


def test_approval_in_the_same_push_as_the_tag_counts(world: World):
    alice = world.alice
    target = alice.commit_file("app.txt", "2.0\n")
    approved_request(world, target)
    alice.git("tag", "-a", "-m", "2.0", "v2.0")
    before = world.refs()
    accepted(world.push(alice, "main", "approvals", "v2.0"))
    after = world.refs()
    assert after["refs/tags/v2.0"] != before.get("refs/tags/v2.0")
    assert after[APPROVALS] == alice.head("approvals")


def test_forged_approval_in_the_same_push_as_the_tag_is_refused(world: World, keys: Keys):
    alice = world.alice
    target = alice.commit_file("app.txt", "2.1\n")
    request_id = world.writer.request(target)
    world.writer.approve_by(keys, request_id, "bob")
    world.writer.decide(request_id, "carol", sign=keys["bob"].fpr)  # bob signs carol's approval
    alice.git("tag", "v2.1")
    before = world.refs()
    result = world.push(alice, "main", "approvals", "v2.1")
    refused(result, APPROVALS, "carol: signed by bob's key, not carol's")
    refused(result, "refs/tags/v2.1", f"request {request_id} has 1 of 2 approvals (bob)")
    assert world.refs() == before


# --------------------------------------------------------------------------
# commits that do not count


FORGERIES = {
    # name: (person whose file it is, key that signs it, expected reason)
    "unsigned": ("bob", False, "bob: decision commit is not signed"),
    "non-approver": ("dave", "dave", "dave is not an approver of deploy-prod"),
    "wrong-key": ("bob", "carol", "bob: signed by carol's key, not bob's"),
    # GnuPG says ERRSIG and NO_PUBKEY; either may be reported first
    "unknown-key": ("bob", "erin", "bob: signature "),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_approval_is_refused(world: World, keys: Keys, forgery: str):
    person, signer, reason = FORGERIES[forgery]
    request_id = world.writer.request(world.alice.head())
    accepted(world.push(world.alice, "approvals"))
    before = world.refs()
    world.writer.decide(request_id, person, sign=keys[signer].fpr if signer else False)
    line = refused(world.push(world.alice, "approvals"), APPROVALS, reason)
    if forgery == "unknown-key":
        assert line.endswith(keys["erin"].fpr[-16:])  # the unknown key is named
    assert world.refs() == before


def _modify_request(world: World, request_id: str) -> dict:
    path = f"requests/{request_id}.toml"
    text = world.writer.git("show", f"HEAD:{path}").stdout
    return {path: text.replace('reason = "test"', 'reason = "changed"')}


BAD_COMMITS = {
    "modified request": (_modify_request, "this one changes M requests/"),
    "deleted request": (lambda w, r: {f"requests/{r}.toml": None}, "this one changes D requests/"),
    "file outside the layout": (lambda w, r: {"notes/x.toml": "gitjit = 1\n"}, "outside the approvals branch layout"),
    "malformed request": (lambda w, r: {"requests/broken.toml": "gitjit = 1\nid = \n"}, "not valid TOML"),
    "decision bound to another blob": (
        lambda w, r: {f"approvals/{r}/bob.toml": w.writer.decision_text(r, blob="1" * 40)},
        "request_blob differs"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMITS))
def test_commit_that_breaks_the_layout_is_refused(world: World, keys: Keys, case: str):
    make_files, reason = BAD_COMMITS[case]
    request_id = world.writer.request(world.alice.head())
    accepted(world.push(world.alice, "approvals"))
    before = world.refs()
    world.writer.commit(make_files(world, request_id), case, sign=keys["bob"].fpr)
    refused(world.push(world.alice, "approvals"), APPROVALS, reason)
    assert world.refs() == before


def test_unauthorized_policy_change_is_refused_and_an_admins_accepted(world: World, keys: Keys):
    weaker = policy_toml(keys, threshold=1)
    before = world.refs()
    world.writer.commit({"policy.toml": weaker}, "bob lowers the threshold", sign=keys["bob"].fpr)
    refused(world.push(world.alice, "approvals"), APPROVALS, "policy change", "not an admin's key")
    assert world.refs() == before
    world.writer.git("reset", "-q", "--hard", before[APPROVALS])
    tip = world.writer.commit({"policy.toml": weaker}, "alice lowers the threshold", sign=keys["alice"].fpr)
    accepted(world.push(world.alice, "approvals"))
    assert world.refs()[APPROVALS] == tip


def test_merge_commit_on_the_branch_is_refused(world: World, keys: Keys):
    alice, writer = world.alice, world.writer
    base = writer.tip()
    writer.request(alice.head())
    one = writer.tip()
    writer.git("reset", "-q", "--hard", base)
    writer.request(alice.head())
    writer.git("merge", "-q", "--no-edit", "-S", one)
    assert len(writer.git("rev-list", "--parents", "-n1", "HEAD").stdout.split()) == 3
    before = world.refs()
    refused(world.push(alice, "approvals"), APPROVALS, "is a merge")
    assert world.refs() == before


# --------------------------------------------------------------------------
# history of the branch and of protected tags


def test_rewinding_or_rewriting_the_branch_is_refused(world: World):
    alice, writer = world.alice, world.writer
    writer.request(alice.head())
    accepted(world.push(alice, "approvals"))
    before = world.refs()
    refused(world.push(alice, f"{writer.tip()}~1:{APPROVALS}", force=True), APPROVALS, "would rewind it")
    writer.git("commit", "-q", "--amend", "-S", "-m", "rewritten request")
    refused(world.push(alice, "approvals", force=True), APPROVALS, "would rewrite it")
    assert world.refs() == before


def test_deleting_the_branch_is_refused(world: World):
    before = world.refs()
    refused(world.push(world.alice, f":{APPROVALS}"), APPROVALS, "may not be deleted")
    assert world.refs() == before


def test_protected_tag_may_not_be_moved_or_deleted(world: World):
    alice = world.alice
    target = alice.commit_file("app.txt", "3.0\n")
    approved_request(world, target)
    alice.git("tag", "v3.0")
    accepted(world.push(alice, "main", "approvals", "v3.0"))
    before = world.refs()
    moved_to = alice.commit_file("app.txt", "3.0 fixed\n")
    approved_request(world, moved_to)  # even an approved commit: a released tag stays put
    alice.git("tag", "-f", "v3.0")
    refused(world.push(alice, "main", "approvals", "+refs/tags/v3.0"), "refs/tags/v3.0",
            "protected by action deploy-prod", "may not be moved")
    refused(world.push(alice, ":refs/tags/v3.0"), "refs/tags/v3.0", "may not be deleted")
    assert world.refs() == before


# --------------------------------------------------------------------------
# the push as a whole


def test_a_refused_push_changes_no_ref(world: World, keys: Keys):
    """All or nothing: the good ref updates of a refused push do not land either."""
    alice = world.alice
    target = alice.commit_file("app.txt", "4.0\n")
    alice.git("branch", "feature")
    approved_request(world, target, ("bob",))  # good commits, but only 1 of 2 approvals
    alice.git("tag", "v4.0")
    alice.git("tag", "release-4")
    before, store = world.refs(), objects(world.server, keys.env)
    result = world.push(alice, "main", "feature", "approvals", "v4.0", "release-4")
    refused(result, "refs/tags/v4.0", "1 of 2 approvals (bob)")
    assert "gitjit: push refused: no ref was updated" in result.stderr
    assert world.refs() == before
    assert objects(world.server, keys.env) == store  # nothing of the push entered the object store
    deadline = time.monotonic() + 10  # git drops the quarantine as receive-pack exits, after reporting
    while list((world.server / "objects").glob("tmp_objdir*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((world.server / "objects").glob("tmp_objdir*")) == []


def test_thirty_commits_in_one_push_are_accepted(world: World, keys: Keys):
    alice = world.alice
    target = alice.commit_file("app.txt", "5.0\n")
    for _ in range(10):
        approved_request(world, target)
    alice.git("tag", "v5.0")
    count = int(alice.git("rev-list", "--count", f"{world.refs()[APPROVALS]}..approvals").stdout)
    assert count == 30
    accepted(world.push(alice, "main", "approvals", "v5.0"))
    assert world.refs()[APPROVALS] == alice.head("approvals")


# --------------------------------------------------------------------------
# the hook as a function: time, missing objects, failing closed


LINE = "{old} {new} {ref}"
ZERO = "0" * 40


def _run_hook(server: Path, lines: list[str], now: datetime):
    from gitjit.server.pre_receive import pre_receive

    notes: list[str] = []
    return pre_receive(server, lines, now, notes), notes


def test_stale_approvals_are_named_with_their_age(world: World):
    alice = world.alice
    target = alice.head()
    request_id = approved_request(world, target)
    accepted(world.push(alice, "approvals"))
    line = LINE.format(old=ZERO, new=target, ref="refs/tags/v6.0")
    now = datetime.now(UTC)
    assert _run_hook(world.server, [line], now)[0] == []
    refusals, _ = _run_hook(world.server, [line], now + timedelta(hours=3))
    assert [r.ref for r in refusals] == ["refs/tags/v6.0"]
    assert refusals[0].line() == (
        f"gitjit: refs/tags/v6.0 refused: request {request_id} has 0 of 2 approvals; "
        f"bob: approval is 3h old, freshness is 1h; carol: approval is 3h old, freshness is 1h")


def test_missing_objects_and_bad_input_refuse(world: World, keys: Keys):
    now = datetime.now(UTC)
    missing = "1234567" * 5 + "89abc"
    refusals, _ = _run_hook(world.server, [LINE.format(old=ZERO, new=missing, ref="refs/tags/v7.0")], now)
    assert refusals[0].code == "missing-object" and "missing" in refusals[0].reason
    tip = world.refs()[APPROVALS]
    refusals, _ = _run_hook(world.server, [LINE.format(old=tip, new=missing, ref=APPROVALS)], now)
    assert refusals[0].code == "missing-object" and "missing" in refusals[0].reason
    tag = LINE.format(old=world.alice.head(), new=world.alice.head(), ref="refs/tags/v7.0")
    assert _run_hook(world.server, [tag], now)[0] == []  # a protected tag that does not change passes
    refusals, _ = _run_hook(world.server, ["not a ref update"], now)
    assert refusals and refusals[0].code == "bad-push-line" and "unreadable ref update line" in refusals[0].reason
    git("config", "gitjit.branch", "Not A Name", cwd=world.server, env=keys.env)
    line = LINE.format(old=ZERO, new=world.alice.head(), ref="refs/tags/v7.0")
    refusals, _ = _run_hook(world.server, [line], now)
    assert [r.ref for r in refusals] == ["refs/tags/v7.0"] and refusals[0].code == "bad-input"
    assert "not a valid name" in refusals[0].reason


def test_untrusted_server_branch_refuses_tags_and_branch_updates(world: World, keys: Keys):
    git("config", "gitjit.root", "f" * 40, cwd=world.server, env=keys.env)  # pin disagrees with the branch
    world.alice.git("tag", "release-8")
    world.writer.request(world.alice.head())
    result = world.push(world.alice, "approvals", "release-8")
    refused(result, APPROVALS, "not trusted", "not at the pinned root ffffffffffff")
    refused(result, "refs/tags/release-8", "cannot tell whether tag release-8 is protected")


def test_hook_module_does_not_import_typer_or_rich():
    code = ("import sys, gitjit.hook; "
            "bad = [m for m in ('typer', 'rich', 'gnupg') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_approved_tag_push_loads_only_what_it_needs(world: World):
    """The hook's cost on every tag push is mostly Python's own start: it runs with -S
    and the path the install wrote down, reads through git, and takes GnuPG's verdicts
    and the parsed policy from the snapshot the accepted approvals push left. Neither
    pygit2, GnuPG nor the CLI's libraries are loaded, nor typing, pathlib, a TOML
    parser or runpy, which together cost a push about 12 ms (docs/decisions.md)."""
    import re

    alice = world.alice
    target = alice.commit_file("app.txt", "7.0\n")
    approved_request(world, target)
    accepted(world.push(alice, "main", "approvals"))
    script = (world.server / "hooks" / "pre-receive").read_text()
    pythonpath = re.search(r"^GITJIT_PYTHONPATH='([^']*)'$", script, re.M).group(1)
    result = subprocess.run(
        [sys.executable, "-S", "-P", "-X", "importtime", "-c", "import sys, gitjit.hook; sys.exit(gitjit.hook.main())"],
        cwd=world.server,
        input=LINE.format(old=ZERO, new=target, ref="refs/tags/v7.0") + "\n", capture_output=True, text=True,
        env=dict(world.keys.env, PYTHONPATH=pythonpath, GIT_DIR="."),
    )
    assert result.returncode == 0, result.stderr
    assert f"refs/tags/v7.0 accepted: {ACTION} on {target[:12]}" in result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "gitjit.trust.verdicts" in imported  # the judgement really ran in this process
    assert not imported & {"pygit2", "gnupg", "typer", "rich", "tomli_w", "typing", "pathlib", "tomllib", "runpy",
                            "shutil", "tempfile"}


def test_cli_pre_receive_reads_stdin(world: World):
    """`gitjit hook pre-receive` is the same hook, run by hand in the server repository."""
    target = world.alice.head()
    result = world.alice.gitjit("hook", "pre-receive", "--repo", str(world.server),
                                input=LINE.format(old=ZERO, new=target, ref="refs/tags/v9.0") + "\n", check=1)
    assert f"gitjit: refs/tags/v9.0 refused: no request for {ACTION} on {target[:12]}" in result.stderr
    world.alice.gitjit("hook", "pre-receive", "--repo", str(world.server),
                       input=LINE.format(old=ZERO, new=target, ref="refs/heads/other") + "\n", check=0)


def test_a_server_config_git_cannot_read_refuses_protected_tags(world: World):
    """An error reading the config or the branch tip must not read as "no approvals branch, nothing protected"."""
    target = world.alice.head()
    accepted(world.push(world.alice, "main", "approvals"))
    with open(world.server / "config", "a") as config:
        config.write("[broken\n")
    line = LINE.format(old=ZERO, new=target, ref="refs/tags/v7.1")
    refusals, _ = _run_hook(world.server, [line], datetime.now(UTC))
    assert [r.ref for r in refusals] == ["refs/tags/v7.1"]
    assert "git config failed" in refusals[0].reason
