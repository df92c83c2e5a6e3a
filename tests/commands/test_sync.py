"""Writers fetch, build on the newest tip, and retry lost races; readers fetch first (docs/format.md, 8.3).

Everything runs through the real CLI (a subprocess per command) in real
clones of a bare server whose hook `gitjit hook install` put there.
"""

from __future__ import annotations

import re
import threading

import pytest
from hookkit import APPROVALS, World, copy_world

from gitjit import reasons as R

REQUEST_ID = re.compile(r"^deploy-prod-\d{8}-[0-9a-f]{6}$")
REMOTE = "refs/remotes/origin/approvals"


@pytest.fixture
def team(golden, tmp_path, keys) -> World:
    return copy_world(golden, tmp_path, keys)


def server_files(world: World) -> list[str]:
    from helpers import git
    return git("ls-tree", "-r", "--name-only", APPROVALS, cwd=world.server, env=world.keys.env).stdout.split()


def run_all(jobs) -> list:
    """Starts every job at once (a barrier), returns their results in order."""
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def runner(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except BaseException as exc:  # reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=runner, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def clean(clone) -> bool:
    """No repair needed: status clean, the local branch is the server's or behind it."""
    return clone.git("status", "--porcelain").stdout == ""


# -- writers racing ---------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["file", "daemon"])
def test_clones_pushing_requests_and_approvals_at_once_all_land_and_need_no_repair(
        via, golden, tmp_path, keys, request):
    url = None if via == "file" else request.getfixturevalue("git_daemon") + "server.git"
    world = copy_world(golden, tmp_path, keys, url)
    people = ["alice", "bob", "carol", "dave"]
    clones = {p: world.clone(p) for p in people}
    # Four requests pushed at once, each clone's view equally stale.
    results = run_all([lambda c=clones[p]: c.gitjit("request", "deploy-prod", "--reason", f"by {c.person.name}",
                                                      "--push") for p in people])
    for proc in results:
        assert not isinstance(proc, BaseException), proc
        assert proc.returncode == 0, proc.stderr
        assert REQUEST_ID.match(proc.stdout.splitlines()[0])  # the id, first
    ids = [proc.stdout.splitlines()[0] for proc in results]
    files = server_files(world)
    assert all(f"requests/{rid}.toml" in files for rid in ids)
    # dave's request, approved by alice, bob and carol at once, each from a clone that has not fetched it
    dave_id = ids[3]
    approvers = {p: world.clone(p) for p in ("alice", "bob", "carol")}
    results = run_all([lambda c=c: c.gitjit("approve", dave_id, "--push") for c in approvers.values()])
    for proc in results:
        assert not isinstance(proc, BaseException), proc
        assert proc.returncode == 0, proc.stderr
    files = server_files(world)
    assert all(f"approvals/{dave_id}/{p}.toml" in files for p in approvers)
    # nobody needs to repair anything: every clone writes again at once, and verifies
    for clone in [*clones.values(), *approvers.values()]:
        assert clean(clone)
        local = clone.head(APPROVALS)
        assert clone.git("merge-base", "--is-ancestor", local, clone.head(REMOTE), check=False).returncode == 0
    results = run_all([lambda c=c: c.gitjit("request", "deploy-prod", "--push") for c in clones.values()])
    assert [p.returncode for p in results] == [0, 0, 0, 0], [p.stderr for p in results]
    verdict = clones["dave"].gitjit("verify", "deploy-prod", check=0)
    assert verdict.stdout.startswith("approved: deploy-prod")


def test_a_lost_race_is_built_again_on_the_new_tip(team):
    """bob's push loses a real race: between bob's fetch and his push, carol's push lands (bob's pre-push
    hook pushes it, once). bob's write is rebuilt on the new tip, signed again and lands."""
    bob, carol = team.clone("bob"), team.clone("carol")
    first = carol.gitjit("request", "deploy-prod", check=0).stdout.split()[0]  # local to carol, not pushed
    hook = bob.path / ".git" / "hooks" / "pre-push"
    marker = bob.path.parent / "raced-once"
    hook.write_text(f"#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\nif [ ! -e '{marker}' ]; then touch '{marker}'; "
                    f"git -C '{carol.path}' push -q origin approvals >&2 || exit 1; fi\nexit 0\n")
    hook.chmod(0o755)
    proc = bob.gitjit("request", "deploy-prod", "--push", check=0)
    second = proc.stdout.split()[0]
    assert marker.exists()
    assert "another push won" in proc.stderr  # the first push lost, the second landed
    files = server_files(team)
    assert f"requests/{first}.toml" in files and f"requests/{second}.toml" in files
    assert bob.head(APPROVALS) == team.refs()[APPROVALS] == bob.head(REMOTE)
    assert bob.git("rev-parse", f"{APPROVALS}^").stdout.strip() == carol.head(APPROVALS)
    assert clean(bob)


def test_racing_ends_after_a_bounded_number_of_tries(team):
    """A server that moves before every one of bob's pushes: bob gives up after a few tries, nothing kept."""
    bob, carol = team.clone("bob"), team.clone("carol")
    hook = bob.path / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\ncd '{carol.path}' && python3 -m gitjit request deploy-prod --push >/dev/null 2>&1"
                    f" || exit 1\nexit 0\n")
    hook.chmod(0o755)
    import os
    import sys
    env = dict(bob.env, PATH=os.path.dirname(sys.executable) + os.pathsep + bob.env.get("PATH", ""))
    before = bob.git("for-each-ref", "refs/heads/").stdout
    proc = bob.gitjit("request", "deploy-prod", "--push", check=1, env=env)
    assert "pushes in a row lost the race" in proc.stderr
    assert proc.stderr.count("another push won") == 4
    assert bob.git("for-each-ref", "refs/heads/").stdout == before  # no local commit to wedge anything
    assert clean(bob)


def test_a_push_the_server_refuses_leaves_no_local_commit(team, keys):
    """dave may approve nothing: the commit is judged locally first and refused, nothing written."""
    carol, dave = team.clone("carol"), team.clone("dave")
    rid = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    before = dave.git("for-each-ref", "refs/heads/approvals").stdout
    proc = dave.gitjit("approve", rid, "--push", check=2)
    assert "would not count" in proc.stderr
    assert dave.git("for-each-ref", "refs/heads/approvals").stdout == before


def test_request_id_is_printed_before_a_push_fails(team, tmp_path):
    bob = team.clone("bob")
    bob.git("fetch", "-q")
    bob.git("remote", "set-url", "origin", str(tmp_path / "gone.git"))
    proc = bob.gitjit("request", "deploy-prod", "--push", check=1)
    rid = proc.stdout.splitlines()[0]
    assert REQUEST_ID.match(rid)
    # kept locally, with the command that pushes it
    assert f"requests/{rid}.toml" in bob.git("ls-tree", "-r", "--name-only", APPROVALS).stdout.split()
    assert proc.stderr.splitlines()[-1].endswith("push it later with 'git push origin approvals'")


# -- readers fetch first -------------------------------------------------------------------------


def test_approving_an_id_only_the_remote_knows(team):
    carol, bob = team.clone("carol"), team.clone("bob")
    rid = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    # bob cloned before the request existed and never fetched: the id `gitjit run` prints works for him
    before = bob.git("rev-parse", REMOTE).stdout
    assert f"requests/{rid}.toml" not in bob.git("ls-tree", "-r", "--name-only", REMOTE).stdout.split()
    proc = bob.gitjit("approve", rid, "--push", check=0)
    assert proc.stdout.startswith(f"approved {rid} in ")
    assert bob.git("rev-parse", REMOTE).stdout != before
    assert f"approvals/{rid}/bob.toml" in server_files(team)


def test_status_and_verify_fetch_first_and_offline_does_not(team):
    carol, bob, alice = team.clone("carol"), team.clone("bob"), team.clone("alice")
    rid = carol.gitjit("request", "deploy-prod", "--push", check=0).stdout.split()[0]
    bob.gitjit("approve", rid, "--push", check=0)
    alice.gitjit("status", "--offline", check=0)  # nothing fetched
    offline = alice.gitjit("status", rid, "--offline", check=2)
    assert "unknown request" in offline.stderr
    # the fetch-first view counts bob's approval; no warning when the fetch works
    status = alice.gitjit("status", rid, "--json", check=0)
    import json
    (request,) = json.loads(status.stdout)["requests"]
    assert request["approvals"] == ["bob"]
    assert "warning" not in status.stderr
    assert alice.gitjit("verify", "deploy-prod", "--target", request["target"], check=1).returncode == 1
    alice.gitjit("approve", rid, "--push", check=0)
    assert carol.gitjit("verify", "deploy-prod", "--target", request["target"], check=0).returncode == 0


def test_a_failed_fetch_is_one_line_and_the_command_goes_on(team, tmp_path):
    bob = team.clone("bob")
    bob.git("remote", "set-url", "origin", str(tmp_path / "unreachable.git"))
    proc = bob.gitjit("status", check=0)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("gitjit: warning:")]
    assert len(warnings) == 1
    assert "cannot fetch approvals from origin" in warnings[0] and "may be stale" in warnings[0]
    verify = bob.gitjit("verify", "deploy-prod", check=1)  # not approved, but judged
    assert "may be stale" in verify.stderr
    assert bob.gitjit("status", "--offline", check=0).stderr.count("warning") == 0


def test_an_unknown_id_after_a_fetch_is_refused_with_its_code(team):
    bob = team.clone("bob")
    proc = bob.gitjit("approve", "deploy-prod-20260101-abcdef", check=2)
    assert "not on origin/approvals either, as just fetched" in proc.stderr
    # the same, through the core, carries the code
    from gitjit.commands import deciding  # noqa: F401  (the module the refusal comes from)
    assert R.NO_SUCH_REQUEST == "no-such-request"


def test_first_pin_is_announced_with_the_full_root_id(team):
    bob = team.clone("bob")
    root = bob.git("rev-list", "--max-parents=0", REMOTE).stdout.strip()
    first = bob.gitjit("status", check=0)
    assert f"gitjit: pinned gitjit.root to {root}," in first.stderr
    assert "pinned" not in bob.gitjit("status", check=0).stderr  # only the first time


# -- hostile remotes and input ---------------------------------------------------------------


def test_a_rewritten_remote_branch_fetched_first_is_refused_not_trusted(team):
    """The server's branch is replaced behind the hook's back by a forged history: the fetch-first view
    fails closed (not trusted, exit 1) for readers and writers, and nothing is written."""
    from helpers import git
    bob = team.clone("bob")
    bob.gitjit("status", check=0)  # pins the real root
    env = dict(team.keys.env, GIT_AUTHOR_NAME="Mallory", GIT_AUTHOR_EMAIL="m@example.com",
               GIT_COMMITTER_NAME="Mallory", GIT_COMMITTER_EMAIL="m@example.com")
    tree = git("mktree", cwd=team.server, env=env, input="").stdout.strip()
    forged = git("commit-tree", tree, "-m", "gitjit: init (admin mallory)", cwd=team.server, env=env).stdout.strip()
    git("update-ref", APPROVALS, forged, cwd=team.server, env=env)  # no hook runs for update-ref
    status = bob.gitjit("status", check=1)
    assert "not trusted" in status.stderr
    assert bob.gitjit("verify", "deploy-prod", check=1).returncode == 1
    assert bob.gitjit("request", "deploy-prod", "--push", check=1).stdout == ""
    assert bob.git("for-each-ref", "refs/heads/approvals").stdout == ""
    assert team.refs()[APPROVALS] == forged


def test_push_without_a_remote_is_bad_input_and_writes_nothing(team):
    bob = team.clone("bob")
    bob.gitjit("status", check=0)
    proc = bob.gitjit("request", "deploy-prod", "--push", "--remote", "nowhere", check=2)
    assert proc.stderr.strip().splitlines()[-1] == (
        "gitjit: --push: no remote named 'nowhere' (see 'git remote -v', or give --remote NAME)")
    assert proc.stdout == "" and bob.git("for-each-ref", "refs/heads/approvals").stdout == ""


def test_bad_input_on_first_use_is_one_line_and_pins_nothing(team):
    bob = team.clone("bob")
    proc = bob.gitjit("verify", "no-such-action", check=2)
    assert proc.stderr.strip().splitlines() == ["gitjit: unknown action 'no-such-action': the policy has deploy-prod"]
    assert bob.git("config", "--get", "gitjit.root", check=False).stdout == ""  # bad input writes nothing
    root = bob.git("rev-list", "--max-parents=0", REMOTE).stdout.strip()
    assert f"gitjit: pinned gitjit.root to {root}," in bob.gitjit("status", check=0).stderr
    assert bob.git("config", "--get", "gitjit.root").stdout.strip() == root
