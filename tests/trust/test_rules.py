"""Approval rules and escalation (docs/format.md, section 10), through real pushes into a server whose
hook was installed by `gitjit hook install`, with real keys; decisions are signed by hand as an
approver with only git and gpg would sign them. A signature after the escalation opens is made by
GnuPG with `--faked-system-time` (three minutes ahead, within clock_skew), as in test_time_witness:
the session's keys are minutes old, so nothing can be signed hours ago.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import GPG, Keys, git
from hookkit import ACTION, World, accepted, copy_world, refused

PEOPLE = ("alice", "bob", "carol", "dave", "erin")


def rules_policy(keys: Keys, sre=("bob", "carol"), security=("dave", "erin"), sre_threshold: int = 2,
                 escalation: str = "", freshness: str = "4h") -> str:
    """alice is admin and requests; deploy-prod needs two of sre and one of security."""
    lines = ["gitjit = 1", "", "[defaults]", 'freshness = "24h"', 'max_ttl = "72h"', 'clock_skew = "5m"', ""]
    for name in PEOPLE:
        lines += [f"[people.{name}]", f'keys = ["{keys[name].fpr}"]', f'emails = ["{keys[name].email}"]', ""]
    lines += ["[groups]", f"sre = {json.dumps(list(sre))}", f"security = {json.dumps(list(security))}",
              'managers = ["carol", "erin"]', "", "[admins]", 'people = ["alice"]', "",
              f"[actions.{ACTION}]", 'tags = ["v*"]', f'freshness = "{freshness}"', "self_approval = false", "",
              f"[[actions.{ACTION}.rules]]", 'name = "sre"', 'approvers = ["@sre"]', f"threshold = {sre_threshold}", "",
              f"[[actions.{ACTION}.rules]]", 'name = "security"', 'approvers = ["@security"]', "threshold = 1", ""]
    return "\n".join(lines) + escalation


ESCALATION = f'\n[actions.{ACTION}.escalation]\nafter = "1m"\napprovers = ["@managers"]\nthreshold = 1\n'


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> World:
    return copy_world(golden, tmp_path, keys)


def install(server: World, policy: str) -> None:
    """alice (admin) commits the policy and erin's key, and pushes them."""
    server.writer.commit({"policy.toml": policy, "keys/erin.asc": server.keys["erin"].asc}, "gitjit: rules")
    accepted(server.push(server.alice, "approvals"))


def tag(server: World, name: str, target: str):
    server.alice.git("tag", "-f", name, target)
    return server.push(server.alice, "main", "approvals", name)


def sign_at(server: World, request_id: str, person: str, ahead: int) -> str:
    """`person`'s approval, committed and signed `ahead` seconds from now (GnuPG's clock faked)."""
    writer = server.writer
    writer.git("reset", "-q", "--hard")
    path = f"approvals/{request_id}/{person}.toml"
    (writer.wt / path).parent.mkdir(parents=True, exist_ok=True)
    (writer.wt / path).write_text(writer.decision_text(request_id))
    writer.git("add", path)
    when = int(time.time()) + ahead
    wrapper = server.tmp / f"gpg-at-{when}"
    wrapper.write_text(f'#!/bin/sh\nexec "{GPG}" --faked-system-time {when} "$@"\n')
    wrapper.chmod(0o755)
    env = dict(server.alice.env, GIT_COMMITTER_DATE=f"@{when} +0000")
    git("-c", f"gpg.program={wrapper}", "commit", "-q", f"-S{server.keys[person].fpr}", "-m", f"approve {request_id}",
        cwd=writer.wt, env=env)
    return writer.tip()


def verify_json(server: World, target: str) -> dict:
    out = server.alice.gitjit("verify", ACTION, "--target", target, "--json")
    return json.loads(out.stdout)


def test_two_rules_approve_only_when_both_hold(server: World):
    install(server, rules_policy(server.keys))
    target = server.alice.commit_file("app.txt", "1.0\n")
    rid = server.writer.request(target)
    server.writer.approve_by(server.keys, rid, "bob", "carol")  # sre holds, security does not
    line = refused(tag(server, "v1.0", target), "refs/tags/v1.0",
                   f"request {rid} has sre 2 of 2, security 0 of 1: needs one of dave, erin")
    assert "pending" in line or "needs" in line
    assert "refs/tags/v1.0" not in server.refs()
    [request] = verify_json(server, target)["requests"]
    assert [(r["name"], r["have"], r["need"], r["holds"]) for r in request["rules"]] == [
        ("sre", 2, 2, True), ("security", 0, 1, False)]
    assert request["rules"][1]["candidates"] == ["dave", "erin"] and request["codes"][0] == "pending"
    server.writer.approve_by(server.keys, rid, "erin")
    accepted(tag(server, "v1.0", target))
    assert server.refs()["refs/tags/v1.0"] == target
    assert verify_json(server, target)["approved"] is True


def test_security_alone_is_not_enough(server: World):
    install(server, rules_policy(server.keys))
    target = server.alice.commit_file("app.txt", "1.1\n")
    rid = server.writer.request(target)
    server.writer.approve_by(server.keys, rid, "dave", "erin", "bob")
    refused(tag(server, "v1.1", target), "refs/tags/v1.1", "sre 1 of 2, security 2 of 1: needs one of carol")
    status = server.alice.gitjit("status", rid, check=0)
    assert "pending (2 of 3)" in status.stdout and "rule sre: 1 of 2 (needs one of carol)" in status.stdout


def test_a_person_in_two_rules_counts_for_both(server: World):
    install(server, rules_policy(server.keys, security=("carol", "dave")))
    target = server.alice.commit_file("app.txt", "1.2\n")
    rid = server.writer.request(target)
    server.writer.approve_by(server.keys, rid, "bob", "carol")  # carol is in sre and in security
    accepted(tag(server, "v1.2", target))
    [request] = verify_json(server, target)["requests"]
    assert request["state"] == "approved"
    assert [(r["name"], r["approvals"]) for r in request["rules"]] == [("sre", ["bob", "carol"]), ("security", ["carol"])]


def test_a_veto_from_the_second_rule_blocks(server: World):
    install(server, rules_policy(server.keys))
    target = server.alice.commit_file("app.txt", "1.3\n")
    rid = server.writer.request(target)
    server.writer.approve_by(server.keys, rid, "bob", "carol", "dave")  # every rule holds
    server.writer.decide(rid, "erin", sign=server.keys["erin"].fpr, decision="reject")
    refused(tag(server, "v1.3", target), "refs/tags/v1.3", "rejected by erin")
    data = server.alice.gitjit("verify", ACTION, "--target", target, "--json", check=1)
    assert json.loads(data.stdout)["requests"][0]["state"] == "rejected"


def test_an_old_form_policy_reads_as_one_rule_named_default(server: World):
    """The golden policy (approvers/threshold at the action level) keeps its wording and gains `rules`."""
    target = server.alice.commit_file("app.txt", "1.4\n")
    rid = server.writer.request(target)
    server.writer.approve_by(server.keys, rid, "bob")
    refused(tag(server, "v1.4", target), "refs/tags/v1.4", f"request {rid} has 1 of 2 approvals (bob)")
    [request] = verify_json(server, target)["requests"]
    assert request["rules"] == [{"name": "default", "have": 1, "need": 2, "holds": False, "approvals": ["bob"],
                                 "candidates": ["carol"], "possible": True, "opens": None}]


# -- escalation -------------------------------------------------------------------------------


def test_escalation_counts_only_approvals_signed_after_it_opens(server: World):
    install(server, rules_policy(server.keys, escalation=ESCALATION))
    target = server.alice.commit_file("app.txt", "2.0\n")
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10)
    rid = server.writer.request(target, created=created)  # escalation opens 50 seconds from now
    opens = (created + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    server.writer.approve_by(server.keys, rid, "carol")  # a manager (and sre), signed before escalation opens
    refused(tag(server, "v2.0", target), "refs/tags/v2.0",
            "sre 1 of 2, security 0 of 1: needs one of bob (sre) and one of dave, erin (security)", f"escalation opens at {opens}: then one of erin")
    [request] = verify_json(server, target)["requests"]
    escalation = request["rules"][-1]
    assert (escalation["name"], escalation["have"], escalation["candidates"], escalation["opens"]) == (
        "escalation", 0, ["erin"], opens)
    # carol's approval stays out of the escalation even once it is open
    at = (created + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    late = json.loads(server.alice.gitjit("verify", ACTION, "--target", target, "--json", "--at", at, check=1).stdout)
    assert late["requests"][0]["rules"][-1]["approvals"] == []
    assert "escalation 0 of 1 (open since" in late["reasons"][0]
    sign_at(server, rid, "erin", 180)  # erin signs three minutes from now: after escalation opens
    accepted(tag(server, "v2.0", target))
    [request] = verify_json(server, target)["requests"]
    assert request["state"] == "approved" and request["rules"][-1]["approvals"] == ["erin"]
    assert [r["holds"] for r in request["rules"]] == [False, True, True]  # security holds too (erin): sre does not


def test_escalation_opening_after_expiry_can_never_count(server: World):
    install(server, rules_policy(server.keys, sre_threshold=2, sre=("bob", "alice"),
                                 escalation=ESCALATION.replace('"1m"', '"2d"')))
    target = server.alice.commit_file("app.txt", "2.1\n")
    rid = server.writer.request(target, ttl=timedelta(hours=1))  # alice requests: sre can never hold
    data = verify_json_exit(server, target)
    [request] = data["requests"]
    assert request["approvable"] is False and "sre needs 2, only bob can approve" in request["unapprovable"]
    assert "escalation would open at" in request["reasons"][0]
    refused(tag(server, "v2.1", target), "refs/tags/v2.1", f"request {rid}")


def verify_json_exit(server: World, target: str) -> dict:
    return json.loads(server.alice.gitjit("verify", ACTION, "--target", target, "--json", check=1).stdout)


@pytest.mark.parametrize("body, expected", [
    ("rules = [" + "{}, " * 10000 + "]\n", "10000 rules, the limit is 32"),
    ("rules = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ('rules = [{name = "r", approvers = ["bob"], threshold = 9223372036854775807}]\n', "is above the number"),
])
def test_a_hostile_rules_policy_is_refused_by_the_hook(server: World, body: str, expected: str):
    text = rules_policy(server.keys) + f"\n[actions.hostile]\n{body}"
    server.writer.commit({"policy.toml": text, "keys/erin.asc": server.keys["erin"].asc}, "gitjit: hostile")
    before = server.refs()
    started = time.monotonic()
    refused(server.push(server.alice, "approvals"), "refs/heads/approvals", expected)
    assert time.monotonic() - started < 30 and server.refs() == before


def test_two_rules_approved_from_two_clones_racing(server: World):
    install(server, rules_policy(server.keys, sre=("bob", "carol", "dave"), sre_threshold=1))
    target = server.alice.commit_file("app.txt", "3.0\n")
    rid = server.writer.request(target)
    accepted(server.push(server.alice, "main", "approvals"))
    clones = {p: server.clone(p) for p in ("bob", "erin")}
    results = {}

    def approve(person):
        results[person] = clones[person].gitjit("approve", rid, "--push", check=None)

    threads = [threading.Thread(target=approve, args=(p,)) for p in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for person, result in results.items():
        if result.returncode != 0:  # lost the race: fetch and approve again, as the hint says
            clones[person].git("fetch", "-q", "origin")
            clones[person].git("branch", "-f", "approvals", "origin/approvals")
            clones[person].gitjit("approve", rid, "--push", check=0)
    dave = server.clone("dave")
    data = json.loads(dave.gitjit("verify", ACTION, "--target", target, "--json", check=0).stdout)
    assert [(r["name"], r["approvals"]) for r in data["requests"][0]["rules"]] == [("sre", ["bob"]), ("security", ["erin"])]
    dave.git("tag", "v3.0", target)
    accepted(server.push(dave, "v3.0"))
