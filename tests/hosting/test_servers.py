"""gitjit's hook behind real servers: gitolite3 over ssh, Apache 2.4 with git-http-backend.

Each test runs against both (the `server` fixture, conftest.py): real keys,
real pushes from a clone over ssh or HTTP, the hook installed by the
repository's owner from a venv made from the wheel.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

import pytest
from conftest import FIGURES, Server, run
from hookkit import BranchWriter, policy_toml

APPROVALS = "refs/heads/approvals"
KEYS_PEOPLE = ("alice", "bob", "carol", "dave")


def refused(result: subprocess.CompletedProcess, ref: str, *fragments: str) -> str:
    assert result.returncode != 0, f"push accepted:\n{result.stderr}"
    lines = [l.split("remote: ", 1)[-1].strip() for l in result.stderr.splitlines()]
    mine = [l for l in lines if l.startswith(f"gitjit: {ref} refused: ")]
    assert len(mine) == 1, f"no single gitjit refusal for {ref}:\n{result.stderr}"
    for fragment in fragments:
        assert fragment in mine[0], f"{fragment!r} not in {mine[0]!r}"
    assert "gitjit: push refused: no ref was updated" in result.stderr
    return mine[0]


def accepted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"push refused:\n{result.stderr}"
    assert "refused" not in result.stderr and "hostile" not in result.stderr


def approved(server: Server, tmp_path: Path, version: str):
    """A clone with a new commit on main, and a request for it approved by bob and carol, not pushed."""
    alice = server.clone(tmp_path)
    target = alice.commit_file("app.txt", f"{version}\n")
    writer = BranchWriter(alice)
    request_id = writer.request(target)
    writer.approve_by(server.keys, request_id, "bob", "carol")
    alice.git("tag", f"v{version}")
    return alice, writer, target


def test_an_unapproved_protected_tag_is_refused(server: Server, tmp_path):
    alice = server.clone(tmp_path)
    target = alice.commit_file("app.txt", "unapproved\n")
    alice.git("tag", "v0.1")
    result = server.push(alice, "HEAD:refs/heads/main", "v0.1")
    refused(result, "refs/tags/v0.1", f"no request for deploy-prod on {target[:12]}")
    assert server.ref("refs/tags/v0.1") == "" and server.ref("refs/heads/main") != target


def test_an_approved_protected_tag_is_accepted(server: Server, tmp_path):
    alice, _, target = approved(server, tmp_path, "1.0")
    result = server.push(alice, "HEAD:refs/heads/main", "approvals", "v1.0")
    accepted(result)
    assert f"gitjit: refs/tags/v1.0 accepted: deploy-prod on {target[:12]}" in result.stderr
    assert server.ref("refs/tags/v1.0") == target


@pytest.mark.parametrize("forgery", ["unsigned", "non-approver"])
def test_a_forged_approval_is_refused(server: Server, tmp_path, forgery):
    alice = server.clone(tmp_path)
    target = alice.commit_file("app.txt", f"forged {forgery}\n")
    writer = BranchWriter(alice)
    request_id = writer.request(target)
    writer.approve_by(server.keys, request_id, "bob")
    if forgery == "unsigned":
        writer.decide(request_id, "carol", sign=False)
        reason = "carol: decision commit is not signed"
    else:
        writer.decide(request_id, "dave", sign=server.keys["dave"].fpr)
        reason = "dave is not an approver of deploy-prod"
    alice.git("tag", f"v2.{len(forgery)}")
    before = server.ref(APPROVALS)
    result = server.push(alice, "HEAD:refs/heads/main", "approvals", f"v2.{len(forgery)}")
    refused(result, APPROVALS, reason)
    assert server.ref(APPROVALS) == before and server.ref(f"refs/tags/v2.{len(forgery)}") == ""


def test_a_force_push_of_the_approvals_branch_is_refused(server: Server, tmp_path):
    alice = server.clone(tmp_path)
    before = server.ref(APPROVALS)
    alice.git("branch", "-f", "approvals", "origin/approvals~1")
    result = server.push(alice, "approvals", force=True)
    refused(result, APPROVALS, "rewound or rewritten")
    assert server.ref(APPROVALS) == before


def test_hook_check_passes_as_the_owner(server: Server):
    args = ("hook", "check", "--gitolite") if server.kind == "gitolite" else ("hook", "check", "--repo", str(server.repo))
    out = server.gitjit(*args).stdout
    assert "FAIL" not in out and f"executable by {server.owner}" in out
    assert f"runs gitjit from {server.venv}" in out
    root = run(["git", "-c", "safe.directory=*", "--git-dir", server.repo, "rev-list", "--max-parents=0",
                APPROVALS]).stdout.strip()
    repo = "app: " if server.kind == "gitolite" else ""
    assert f"{repo}pinned root (gitjit.root): {root}" in out


def test_gitolite_admin_is_left_to_gitolite(gitolite: Server):
    admin_hooks = gitolite.repo.parent / "gitolite-admin.git" / "hooks"
    hook = admin_hooks / "pre-receive"
    assert not hook.exists() or "gitjit-hook" not in hook.read_text()
    app_hook = gitolite.repo / "hooks" / "pre-receive"
    assert app_hook.is_symlink() and "gitjit-hook: pre-receive" in app_hook.read_text()


def test_a_cache_the_owner_cannot_write_fails_the_check(server: Server):
    """What root running gitjit in the server repository leaves: a cache file the owner cannot rewrite."""
    stray = server.repo / "gitjit" / "root-was-here"
    stray.parent.mkdir(exist_ok=True)
    stray.write_text("")
    stray.chmod(0o644)
    try:
        args = ("hook", "check", "--repo", str(server.repo))
        out = server.gitjit(*args, check=1).stdout
        assert f"FAIL {server.owner} cannot write the cache: {stray}" in out
        assert f"fix: rm -rf {server.repo / 'gitjit'} (deleting the cache is always safe)" in out
    finally:
        stray.unlink()
    server.gitjit("hook", "check", "--repo", str(server.repo))


def _key_change(server: Server, tmp_path: Path, people: tuple[str, ...]):
    """An admin-signed commit giving `people` keys and a place in the policy: a new keyring to build."""
    alice = server.clone(tmp_path)
    writer = BranchWriter(alice)
    files = {f"keys/{p}.asc": server.keys[p].asc for p in people if p != "alice"}
    files["policy.toml"] = policy_toml(server.keys, people=people)
    writer.commit(files, f"gitjit: keys of {', '.join(people)}")
    return alice


def test_a_killed_gpg_refuses_the_push_and_the_next_push_recovers(server: Server, tmp_path):
    people = KEYS_PEOPLE + ("erin",) if server.ref(f"{APPROVALS}:keys/erin.asc") == "" else KEYS_PEOPLE
    alice = _key_change(server, tmp_path, people)
    before = server.ref(APPROVALS)
    fault = server.fault()
    fault.touch()
    try:
        result = server.push(alice, "approvals")
    finally:
        fault.unlink()
    assert "killed gpg" in Path(f"{fault}.log").read_text()
    refused(result, APPROVALS)
    assert server.ref(APPROVALS) == before
    # the fault gone, nobody deleting the cache: the same push goes through
    accepted(server.push(alice, "approvals"))
    assert server.ref(APPROVALS) == alice.head("approvals")


def test_a_full_cache_disk_then_a_push_succeeds_once_it_has_room(server: Server, tmp_path):
    cache = server.repo / "gitjit"
    cache.mkdir(exist_ok=True)
    owner = run(["id", "-u", server.owner]).stdout.strip()
    run(["mount", "-t", "tmpfs", "-o", f"size=256k,mode=0700,uid={owner}", "tmpfs", cache])
    try:
        filler = cache / "filler"
        run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], check=False)  # until the disk is full
        alice, _, target = approved(server, tmp_path, "3.0")
        result = server.push(alice, "HEAD:refs/heads/main", "approvals", "v3.0")
        if result.returncode != 0:  # a keyring it cannot build: refused, never judged on half a keyring
            refused(result, "refs/tags/v3.0")
        filler.unlink()
        accepted(server.push(alice, "HEAD:refs/heads/main", "approvals", "v3.0"))
        assert server.ref("refs/tags/v3.0") == target
    finally:
        run(["umount", "-l", cache], check=False)


def test_cost_per_push(server: Server, tmp_path):
    """10 pushes of an approved protected tag and 10 of a plain branch, interleaved with 10 ls-remote
    (the transport's own cost); medians recorded for docs/hosting.md."""
    alice, _, target = approved(server, tmp_path, "9.0")
    accepted(server.push(alice, "HEAD:refs/heads/main", "approvals"))
    tag_times, branch_times, floor_times = [], [], []
    for i in range(10):
        start = time.perf_counter()
        alice.git("ls-remote", "origin", "HEAD")  # the transport alone: connect, authenticate, list refs
        floor_times.append(time.perf_counter() - start)
        alice.git("tag", f"v9.0.{i}", target)
        start = time.perf_counter()
        result = server.push(alice, f"v9.0.{i}")
        tag_times.append(time.perf_counter() - start)
        accepted(result)
        alice.commit_file("plain.txt", f"{i}\n")
        start = time.perf_counter()
        result = server.push(alice, "HEAD:refs/heads/plain")
        branch_times.append(time.perf_counter() - start)
        accepted(result)
    FIGURES.append(f"{server.kind}: approved protected tag {statistics.median(tag_times) * 1000:.0f} ms, "
                   f"plain branch {statistics.median(branch_times) * 1000:.0f} ms, "
                   f"ls-remote {statistics.median(floor_times) * 1000:.0f} ms (10 runs each, interleaved)")


def test_gitolite_install_needs_local_code_and_writes_nothing_without_it(gitolite: Server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    rc = (gitolite.repo.parents[1] / ".gitolite.rc").read_text()
    (home / ".gitolite.rc").write_text(rc.replace('LOCAL_CODE                =>  "$ENV{HOME}/local",',
                                                  '# LOCAL_CODE                =>  "$ENV{HOME}/local",'))
    result = run([gitolite.venv / "bin" / "gitjit", "hook", "install", "--gitolite"],
                 env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, check=False)
    assert result.returncode == 2 and "LOCAL_CODE is not set in ~/.gitolite.rc" in result.stderr
    assert "Traceback" not in result.stderr and sorted(p.name for p in home.iterdir()) == [".gitolite.rc"]


LOGGING_HOOK = """#!/bin/sh
# the repository's own pre-receive: logs what it is given
cat >> {log}
"""


def test_gitolite_uninstall_then_install_chains_a_repositorys_own_hook(gitolite: Server, tmp_path):
    """gitolite would replace a repository's own pre-receive with its link: install keeps it as .legacy."""
    hooks = gitolite.repo.parent / "testing.git" / "hooks"
    out = gitolite.gitjit("hook", "uninstall", "--gitolite").stdout
    assert "removed gitjit's pre-receive hook" in out
    assert not (hooks / "pre-receive").exists() and not (gitolite.repo / "hooks" / "pre-receive").exists()
    log = gitolite.base / "fault" / "testing.log"
    (hooks / "pre-receive").write_text(LOGGING_HOOK.format(log=log))
    run(["chown", f"{gitolite.owner}:", hooks / "pre-receive"])
    (hooks / "pre-receive").chmod(0o755)
    out = gitolite.gitjit("hook", "install", "--gitolite").stdout
    assert "testing: its own pre-receive was kept as pre-receive.legacy" in out
    assert "gitjit-hook: pre-receive" in (hooks / "pre-receive").read_text()
    assert "logs what it is given" in (hooks / "pre-receive.legacy").read_text()
    assert "gitjit-hook: pre-receive" in (gitolite.repo / "hooks" / "pre-receive").read_text()
    gitolite.gitjit("hook", "check", "--gitolite")
    # a push to testing runs gitjit's hook, then the repository's own on the same input
    clone = tmp_path / "testing"
    env = gitolite.client_env
    subprocess.run(["git", "init", "-q", "-b", "main", str(clone)], check=True, env=env)
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=A", "-c", "user.email=a@example.com",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=env)
    url = gitolite.url.replace("/app", "/testing")
    pushed = subprocess.run(["git", "-C", str(clone), "push", url, "main:refs/heads/logged"], capture_output=True,
                            text=True, env=env, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert log.read_text().endswith(" refs/heads/logged\n")
