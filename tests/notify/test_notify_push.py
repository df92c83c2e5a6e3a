"""Notifications (SPEC s.14) through real pushes: which events an accepted push produces.

The server has gitjit's pre-receive hook (installed by `gitjit hook install`)
and its post-receive hook; a `command` endpoint appends every event it is
given to a file, so each test reads exactly what an endpoint received, in
order. Keys are the session's real GnuPG keys; requests and approvals are
signed commits made with git, as by hand.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hookkit import ACTION, BranchWriter
from notifykit import (
    NotifyServer,
    accepted,
    command_log,
    logged_events,
    wait_for,
)


@pytest.fixture
def ns(golden: Path, tmp_path: Path, keys) -> NotifyServer:  # noqa: F811 (the fixture)
    return NotifyServer.from_golden(golden, tmp_path, keys)


def _log(ns: NotifyServer, name: str = "log", **settings: str) -> Path:
    path = ns.tmp / f"{name}.jsonl"
    ns.configure(name, command=command_log(path), **settings)
    return path


def _kinds(path: Path, count: int) -> list[str]:
    events = wait_for(lambda: (found := logged_events(path)) and len(found) >= count and found,
                      what=f"{count} events in {path.name}")
    return [e["event"] for e in events]


def test_a_request_then_approvals_produce_request_approve_approved_in_order(ns: NotifyServer):
    log = _log(ns)
    target = ns.alice.commit_file("app.txt", "1\n")
    accepted(ns.push(ns.alice, "main"))
    request_id = ns.writer.request(target)
    accepted(ns.push())
    assert _kinds(log, 1) == ["request"]

    event = logged_events(log)[0]
    assert event["gitjit_event"] == 1
    assert event["repository"] == "server" and event["branch"] == "refs/heads/approvals"
    request = event["request"]
    assert (request["id"], request["action"], request["target"]) == (request_id, ACTION, target)
    assert request["requesters"] == ["alice"] and request["reason"] == "test"
    assert event["state"] == "pending" and event["decision"] is None
    # alice requested it and self-approval is off: bob and carol are who can still approve
    assert event["rules"] == [{"name": "default", "have": 0, "need": 2, "approvals": [],
                               "candidates": ["bob", "carol"]}]
    assert event["commands"]["approve"] == f"gitjit approve {request_id} --push"
    assert event["commands"]["reject"] == f"gitjit reject {request_id} --push"
    assert f"approvals/{request_id}/<you>.toml" in event["commands"]["by_hand"]
    assert request["blob"] in event["commands"]["by_hand"] and "git commit -S" in event["commands"]["by_hand"]

    ns.writer.decide(request_id, "bob", sign=ns.keys["bob"].fpr)
    accepted(ns.push())
    assert _kinds(log, 2) == ["request", "approve"]
    approve = logged_events(log)[1]
    assert approve["decision"]["person"] == "bob" and approve["decision"]["counts"] is True
    assert approve["rules"][0]["have"] == 1 and approve["rules"][0]["candidates"] == ["carol"]

    ns.writer.decide(request_id, "carol", sign=ns.keys["carol"].fpr)
    accepted(ns.push())
    assert _kinds(log, 4) == ["request", "approve", "approve", "approved"]
    approved = logged_events(log)[3]
    assert approved["state"] == "approved" and approved["previous_state"] == "pending"
    assert approved["commit"] == ns.writer.tip()  # the commit that made it approved
    assert len({e["id"] for e in logged_events(log)}) == 4
    assert ns.status()["queued"] == [] and ns.status()["failed"] == []


def test_a_request_approved_within_one_push_reports_every_step(ns: NotifyServer):
    log = _log(ns)
    target = ns.alice.commit_file("app.txt", "2\n")
    request_id = ns.writer.request(target)
    ns.writer.approve_by(ns.keys, request_id, "bob", "carol")
    accepted(ns.push(ns.alice, "main", "approvals"))
    assert _kinds(log, 4) == ["request", "approve", "approve", "approved"]
    assert logged_events(log)[3]["previous_state"] is None


def test_a_veto_produces_reject_then_rejected(ns: NotifyServer):
    log = _log(ns)
    request_id = ns.writer.request(ns.alice.head())
    accepted(ns.push())
    ns.writer.decide(request_id, "carol", sign=ns.keys["carol"].fpr, decision="reject")
    accepted(ns.push())
    assert _kinds(log, 3) == ["request", "reject", "rejected"]
    rejected = logged_events(log)[2]
    assert rejected["state"] == "rejected" and rejected["rules"][0]["candidates"] == []
    assert logged_events(log)[1]["decision"]["decision"] == "reject"


def test_expiry_is_reported_once_by_the_next_push_that_touches_the_request(ns: NotifyServer):
    log = _log(ns)
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    request_id = ns.writer.request(ns.alice.head(), created=created, ttl=timedelta(seconds=34))
    accepted(ns.push())
    assert _kinds(log, 1) == ["request"]
    wait_for(lambda: datetime.now(UTC) > created + timedelta(seconds=35), what="the request to expire")
    ns.writer.decide(request_id, "bob", sign=ns.keys["bob"].fpr)
    accepted(ns.push())
    assert _kinds(log, 3) == ["request", "approve", "expired"]
    ns.writer.decide(request_id, "carol", sign=ns.keys["carol"].fpr)
    accepted(ns.push())
    assert _kinds(log, 4) == ["request", "approve", "expired", "approve"]
    assert wait_for(lambda: ns.status()["queued"] == [], what="an empty queue")


def test_an_events_filter_admits_only_what_it_names(ns: NotifyServer):
    everything = _log(ns, "everything")
    approved_only = _log(ns, "approved-only", events="approved")
    request_id = ns.writer.request(ns.alice.head())
    ns.writer.approve_by(ns.keys, request_id, "bob", "carol")
    accepted(ns.push())
    assert _kinds(everything, 4) == ["request", "approve", "approve", "approved"]
    assert _kinds(approved_only, 1) == ["approved"]


def test_two_clones_racing_to_approve_produce_one_approved_event(ns: NotifyServer):
    """bob and carol approve the same request and push at the same moment: the branch is
    linear, so one push lands first and the other is sent again on top of it. Each decision
    has its own event, and only the push that made the request approved reports it."""
    log = _log(ns)
    request_id = ns.writer.request(ns.alice.head())
    accepted(ns.push())
    writers = {}
    for person in ("bob", "carol"):
        clone = ns.clone(person)
        clone.git("fetch", "-q", "origin", "approvals:approvals")
        writers[person] = BranchWriter(clone)
        writers[person].decide(request_id, person, sign=True)
    start = threading.Barrier(2)
    results: dict[str, subprocess.CompletedProcess] = {}

    def push(person: str) -> None:
        start.wait()
        results[person] = ns.push(writers[person].clone, "approvals")

    threads = [threading.Thread(target=push, args=(p,)) for p in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for person, result in results.items():
        if result.returncode != 0:  # lost the race: build on the winner and push again
            writer = writers[person]
            writer.clone.git("fetch", "-q", "origin", "+approvals:refs/remotes/origin/approvals")
            writer.git("reset", "-q", "--hard", "origin/approvals")
            writer.decide(request_id, person, sign=True)
            accepted(ns.push(writer.clone, "approvals"))
    kinds = _kinds(log, 4)
    assert sorted(kinds) == ["approve", "approve", "approved", "request"]
    assert kinds[-1] == "approved" and kinds.count("approved") == 1
    people = {e["decision"]["person"] for e in logged_events(log) if e["event"] == "approve"}
    assert people == {"bob", "carol"}


def test_pushes_that_leave_the_approvals_branch_alone_produce_nothing(ns: NotifyServer):
    log = _log(ns)
    ns.alice.commit_file("app.txt", "3\n")
    accepted(ns.push(ns.alice, "main"))
    ns.alice.git("tag", "other-1")
    accepted(ns.push(ns.alice, "refs/tags/other-1"))
    request_id = ns.writer.request(ns.alice.head())
    accepted(ns.push())
    assert _kinds(log, 1) == ["request"]
    assert logged_events(log)[0]["request"]["id"] == request_id


def _post_receive_imports(ns: NotifyServer, line: str) -> set[str]:
    import re

    script = (ns.server / "hooks" / "post-receive").read_text()
    pythonpath = re.search(r"^GITJIT_PYTHONPATH='([^']*)'$", script, re.M).group(1)
    result = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [sys.executable, "-S", "-P", "-X", "importtime", "-c",
         "import sys, gitjit.notify.post_receive as p; sys.exit(p.main())"],
        cwd=ns.server, input=line + "\n", capture_output=True, text=True,
        env=dict(ns.keys.env, PYTHONPATH=pythonpath, GIT_DIR="."),
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr
    return {l.rsplit("|", 1)[-1].strip() for l in result.stderr.splitlines() if l.startswith("import time:")}


def test_a_push_without_endpoints_or_approvals_costs_one_config_read(ns: NotifyServer):
    tip = ns.alice.head()
    heavy = {"gitjit.trust.trusted", "gitjit.trust.verdicts", "gitjit.notify.events", "gitjit.notify.deliver", "gitjit.hook",
             "json", "urllib.request", "pygit2", "gnupg", "typer", "rich", "typing", "pathlib", "tomllib"}
    line = f"{'0' * 40} {tip} refs/heads/approvals"
    assert not _post_receive_imports(ns, line) & heavy  # no endpoint: nothing but the config read
    assert not (ns.server / "gitjit" / "notify").exists()
    _log(ns)
    found = _post_receive_imports(ns, f"{'0' * 40} {tip} refs/heads/main")
    assert not found & heavy, found & heavy
    assert not (ns.server / "gitjit" / "notify" / "queued").exists()


def test_the_post_receive_hook_never_fails_a_push_nor_prints_a_traceback(ns: NotifyServer):
    """Even a broken config (git config cannot read it) only costs the pusher one line."""
    _log(ns)
    request_id = ns.writer.request(ns.alice.head())
    accepted(ns.push())
    result = subprocess.run([str(ns.server / "hooks" / "post-receive")], check=False, cwd=ns.server,
                            input=f"{'0' * 40} {ns.writer.tip()} refs/heads/approvals\n",
                            capture_output=True, text=True, env=dict(ns.keys.env, GIT_DIR="."))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    with open(ns.server / "config", "a") as config:
        config.write("[broken\n")
    result = subprocess.run([str(ns.server / "hooks" / "post-receive")], check=False, cwd=ns.server,
                            input=f"{'0' * 40} {ns.writer.tip()} refs/heads/approvals\n",
                            capture_output=True, text=True, env=dict(ns.keys.env, GIT_DIR="."))
    assert result.returncode == 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("gitjit: notifications not prepared: git config failed")
    assert request_id


def test_a_foreign_post_receive_is_kept_and_chained(ns: NotifyServer):
    from gitjit.server.install import install

    hooks = ns.server / "hooks"
    (hooks / "post-receive").unlink()
    seen = ns.tmp / "legacy-saw.txt"
    (hooks / "post-receive").write_text(f"#!/bin/sh\ncat > '{seen}'\nexit 7\n")
    (hooks / "post-receive").chmod(0o755)
    statuses = {i.name: i.status for i in install(ns.server)}
    assert statuses["post-receive"] == "installed"
    assert {i.name: i.status for i in install(ns.server)}["post-receive"] == "unchanged"
    assert "exit 7" in (hooks / "post-receive.legacy").read_text()
    log = _log(ns)
    request_id = ns.writer.request(ns.alice.head())
    result = ns.push()
    accepted(result)
    assert _kinds(log, 1) == ["request"]
    old, new, ref = seen.read_text().split()  # the chained hook read the same ref update
    assert (new, ref) == (ns.writer.tip(), "refs/heads/approvals") and old != new
    assert request_id in logged_events(log)[0]["request"]["id"]
