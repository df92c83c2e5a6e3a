"""`gitjit run`: a real bare remote, approvals pushed from other clones while the gate waits.

The command the gate guards writes a file, so each test can prove whether
it ran, and with which GITJIT_* environment.
"""

from __future__ import annotations

import re
import signal
import sys
import time

import pytest
from gateworld import Background, Later, Team, build_remote, commit_on_approvals

FAST = {"GITJIT_RUN_INTERVAL": "0.3"}
ID_LINE = re.compile(r"^request ((?:deploy|quick)-[0-9]{8}-[0-9a-f]{6}) \(")
# Writes what it was given to ran.txt and exits with the code given as its argument.
PROBE = ("import os, sys; open('ran.txt', 'w').write(os.environ.get('GITJIT_REQUEST', '?') + '\\n' + "
         "os.environ.get('GITJIT_APPROVERS', '?') + '\\n' + ' '.join(sys.argv[1:])); sys.exit(int(sys.argv[1]))")


@pytest.fixture(scope="module")
def template(tmp_path_factory, keys):
    return build_remote(tmp_path_factory.mktemp("run-team"), keys)


@pytest.fixture
def team(tmp_path, keys, template):
    return Team(tmp_path, keys, template)


def env_of(clone, **extra):
    return dict(clone.env, **FAST, **extra)


def probe(code: int = 0, *args: str) -> list[str]:
    return ["--", sys.executable, "-c", PROBE, str(code), *args]


def request_id(run: Background) -> str:
    return ID_LINE.match(run.wait_for_line(ID_LINE.match)).group(1)


def approve(team: Team, person: str, request: str, decision: str = "approve"):
    def work():
        clone = team.clone(person)
        clone.gitjit(decision, request, "--push", check=True)
    return work


def no_probe_ran(clone) -> bool:
    return not (clone.path / "ran.txt").exists()


def test_waits_for_approvals_pushed_from_other_clones_then_runs_the_command(team):
    ci = team.clone("dave")
    run = Background(ci, "run", "deploy", "--wait", "60s", "--reason", "release 1.2", *probe(7, "--flag", "x y"),
                     env=env_of(ci))
    rid = request_id(run)
    assert team.remote_requests() == [rid]  # made and pushed before the wait

    def approvers():
        approve(team, "bob", rid)()
        run.wait_for_line(lambda line: "1 of 2 approvals (bob)" in line)  # the gate saw bob's approval alone
        approve(team, "carol", rid)()

    background = Later(0.3, approvers)
    code = run.finish()
    background.join()
    assert code == 7, run.stderr  # the command's own exit code
    ran = (ci.path / "ran.txt").read_text().split("\n")
    assert ran == [rid, "bob,carol", "7 --flag x y"]  # GITJIT_* exported, arguments passed as given, no shell
    assert f"gitjit approve {rid} --push" in run.stderr
    assert f"write approvals/{rid}/<person>.toml" in run.stderr and "git commit -S" in run.stderr
    assert f'request_blob = "{team.remote_git("rev-parse", f"approvals:requests/{rid}.toml").strip()}"' in run.stderr
    assert "0 of 2 approvals" in run.stderr
    assert "approved by bob, carol" in run.stderr
    assert run.stdout == ""  # gitjit's own output goes to stderr; stdout is the command's


def test_not_approved_in_time_exits_1_and_never_starts_the_command(team):
    ci = team.clone("dave")
    started = time.monotonic()
    proc = ci.gitjit("run", "quick", "--wait", "2s", *probe(0), env=env_of(ci), check=1)
    assert time.monotonic() - started >= 2
    assert no_probe_ran(ci)
    assert "not approved within 2s: " in proc.stderr and "was not run" in proc.stderr
    assert "  - 0 of 1 approvals" in proc.stderr


def test_a_veto_stops_the_wait_at_once(team):
    ci = team.clone("dave")
    started = time.monotonic()
    run = Background(ci, "run", "deploy", "--wait", "10m", *probe(0), env=env_of(ci))
    rid = request_id(run)
    veto = Later(0.3, approve(team, "carol", rid, "reject"))
    code = run.finish()
    veto.join()
    assert code == 1, run.stderr
    assert time.monotonic() - started < 60  # far from the 10 minutes it would otherwise wait
    assert no_probe_ran(ci)
    assert "rejected by carol" in run.stderr


def test_an_existing_pending_request_is_reused(team):
    ci = team.clone("dave")
    rid = ci.gitjit("request", "deploy", "--push", check=True).stdout.strip()
    approve(team, "bob", rid)()  # already one of two
    run = Background(ci, "run", "deploy", "--wait", "60s", *probe(3), env=env_of(ci))
    line = run.wait_for_line(ID_LINE.match)
    assert line.startswith(f"request {rid} (already on the branch, reused)")
    run.wait_for_line(lambda l: "1 of 2 approvals (bob)" in l)
    carol = Later(0, approve(team, "carol", rid))
    code = run.finish()
    carol.join()
    assert code == 3, run.stderr
    assert (ci.path / "ran.txt").read_text().split("\n")[:2] == [rid, "bob,carol"]
    assert team.remote_requests() == [rid]  # no second request


def test_an_approved_request_runs_the_command_without_waiting(team):
    ci = team.clone("dave")
    rid = ci.gitjit("request", "quick", "--push", check=True).stdout.strip()
    approve(team, "erin", rid)()
    proc = ci.gitjit("run", "quick", "--wait", "5m", *probe(0, "ok"), env=env_of(ci), check=0)
    assert (ci.path / "ran.txt").read_text() == f"{rid}\nerin\n0 ok"
    assert "approved by erin" in proc.stderr
    assert team.remote_requests() == [rid]


def test_rejected_and_expired_requests_are_not_reused(team):
    ci = team.clone("dave")
    rejected = ci.gitjit("request", "quick", "--push", check=True).stdout.strip()
    approve(team, "bob", rejected, "reject")()
    ci.git("fetch", "-q", "origin")
    expired = ci.gitjit("request", "quick", "--ttl", "1s", "--push", check=True).stdout.strip()
    time.sleep(1.1)
    proc = ci.gitjit("run", "quick", "--wait", "1s", *probe(0), env=env_of(ci), check=1)
    made = ID_LINE.match(next(l for l in proc.stderr.splitlines() if ID_LINE.match(l))).group(1)
    assert "(new, pushed to origin)" in proc.stderr
    assert made not in (rejected, expired)
    assert sorted(team.remote_requests()) == sorted([rejected, expired, made])
    assert no_probe_ran(ci)


def test_ctrl_c_stops_cleanly_without_running_the_command(team):
    ci = team.clone("dave")
    run = Background(ci, "run", "quick", "--wait", "10m", *probe(0), env=env_of(ci))
    run.wait_for_line(lambda l: l.startswith("waiting:"))
    run.proc.send_signal(signal.SIGINT)
    assert run.finish(timeout=30) == 130, run.stderr
    assert "interrupted" in run.stderr
    assert "Traceback" not in run.stderr
    assert no_probe_ran(ci)


def test_an_unauthorized_policy_change_while_waiting_fails_closed(team):
    ci = team.clone("dave")
    run = Background(ci, "run", "deploy", "--wait", "60s", *probe(0), env=env_of(ci))
    rid = request_id(run)

    def forge():
        bob = team.clone("bob")
        policy = bob.git("show", "refs/remotes/origin/approvals:policy.toml").stdout
        weaker = policy.replace("threshold = 2", "threshold = 1")
        assert weaker != policy
        commit_on_approvals(bob, {"policy.toml": weaker}, "make it easy", push=True)  # bob is no admin
        assert "not trusted" in bob.gitjit("approve", rid, "--push", check=1).stderr  # gitjit refuses to build on it
        commit_on_approvals(bob, {f"approvals/{rid}/bob.toml": decision_for(bob, rid)}, push=True)

    forger = Later(0.3, forge)
    code = run.finish()
    forger.join()
    assert code == 1, run.stderr
    assert "not trusted" in run.stderr
    assert no_probe_ran(ci)


def decision_for(clone, rid: str, decision: str = "approve") -> str:
    blob = clone.git("rev-parse", f"refs/remotes/origin/approvals:requests/{rid}.toml").stdout.strip()
    target = clone.git("show", f"refs/remotes/origin/approvals:requests/{rid}.toml").stdout.split('target = "')[1][:40]
    return (f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
            f'decision = "{decision}"\ncomment = ""\n')


def test_a_decision_committed_by_hand_counts(team):
    ci = team.clone("dave")
    run = Background(ci, "run", "quick", "--wait", "60s", *probe(0), env=env_of(ci))
    rid = request_id(run)

    def by_hand():
        carol = team.clone("carol")
        commit_on_approvals(carol, {f"approvals/{rid}/carol.toml": decision_for(carol, rid)}, push=True)

    carol = Later(0.3, by_hand)
    assert run.finish() == 0, run.stderr
    carol.join()
    assert (ci.path / "ran.txt").read_text().split("\n")[:2] == [rid, "carol"]


def test_a_failed_fetch_is_retried_until_the_remote_is_back(team):
    ci = team.clone("dave")
    run = Background(ci, "run", "quick", "--wait", "60s", *probe(0), env=env_of(ci))
    rid = request_id(run)
    run.wait_for_line(lambda l: l.startswith("waiting:"))
    away = team.remote.with_name("away.git")
    team.remote.rename(away)
    try:
        run.wait_for_line(lambda l: "last fetch failed" in l)
    finally:
        away.rename(team.remote)
    erin = Later(0, approve(team, "erin", rid))
    assert run.finish() == 0, run.stderr
    erin.join()
    assert (ci.path / "ran.txt").read_text().split("\n")[:2] == [rid, "erin"]


@pytest.mark.parametrize("args, message", [
    (["quick"], "give the command to run"),
    (["nope", "--", "true"], "unknown action 'nope'"),
    (["quick", "--", "no-such-command-xyz"], "not found"),
    (["quick", "--wait", "soon", "--", "true"], "--wait 'soon'"),
    (["quick", "--target", "no-such-rev", "--", "true"], "does not resolve"),
    (["quick", "--remote", "elsewhere", "--", "true"], "no remote named 'elsewhere'"),
    (["quick", "--root", "HEAD", "--", "true"], "--root 'HEAD' is not a full commit id"),
])
def test_bad_input_exits_2_and_writes_nothing(team, args, message):
    ci = team.clone("dave")
    before = team.remote_git("for-each-ref")
    local_before = ci.git("for-each-ref").stdout
    proc = ci.gitjit("run", *args, env=env_of(ci), check=2)
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert team.remote_git("for-each-ref") == before
    assert ci.git("for-each-ref").stdout == local_before


def test_a_remote_without_the_approvals_branch_is_not_approved(team):
    team.remote_git("update-ref", "-d", "refs/heads/approvals")
    ci = team.clone("dave")
    proc = ci.gitjit("run", "quick", "--wait", "5s", *probe(0), env=env_of(ci), check=1)
    assert "cannot fetch approvals from origin" in proc.stderr
    assert no_probe_ran(ci)
    assert not team.has_requests() and "approvals" not in team.remote_git("for-each-ref")


def test_a_branch_that_does_not_start_at_the_pinned_root_is_not_trusted(team):
    ci = team.clone("dave")
    main = ci.head("main")  # any other commit stands for "the root you expected"
    proc = ci.gitjit("run", "quick", "--root", main, "--wait", "5s", *probe(0), env=env_of(ci), check=1)
    assert "not at the pinned root" in proc.stderr
    assert no_probe_ran(ci) and not team.has_requests()
