"""Requests nobody can approve, and `gitjit policy check` (docs/format.md, section 10.3), with a real
bare remote, real keys and the real CLI. In gateworld's policy, deploy needs bob *and* carol with
self-approval off: a deploy that bob or carol requests can never be approved.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from gateworld import BRANCH, Team, build_remote

FAST = {"GITJIT_RUN_INTERVAL": "0.3"}
PROBE = ["--", sys.executable, "-c", "open('ran.txt', 'w').write('ran')"]


@pytest.fixture(scope="module")
def template(tmp_path_factory, keys):
    return build_remote(tmp_path_factory.mktemp("check-team"), keys)


@pytest.fixture
def team(tmp_path, keys, template):
    return Team(tmp_path, keys, template)


def policy_text(clone) -> str:
    return clone.git("show", "origin/approvals:policy.toml").stdout


def test_run_refuses_at_once_a_request_that_can_never_be_approved(team):
    bob = team.clone("bob")
    started = time.monotonic()
    proc = bob.gitjit("run", "deploy", "--wait", "10m", *PROBE, env=dict(bob.env, **FAST), check=1)
    assert time.monotonic() - started < 60  # not the ten minutes
    assert not (bob.path / "ran.txt").exists()
    assert "can never be approved" in proc.stderr
    assert "default needs 2, only carol can approve (bob requested it and may not approve)" in proc.stderr


def test_request_warns_and_still_prints_the_id(team):
    carol = team.clone("carol")
    carol.git("branch", "approvals", "origin/approvals")
    proc = carol.gitjit("request", "deploy", check=0)
    request_id = proc.stdout.strip()
    assert request_id.startswith("deploy-")
    assert f"warning: request {request_id} can never be approved" in proc.stderr
    quick = carol.gitjit("request", "quick", check=0)  # bob, erin are left for quick's threshold of 1
    assert "warning" not in quick.stderr


def test_verify_json_says_unapprovable(team):
    carol = team.clone("carol")
    carol.git("branch", "approvals", "origin/approvals")
    carol.gitjit("request", "deploy", check=0)
    data = json.loads(carol.gitjit("verify", "deploy", "--json", check=1).stdout)
    [request] = data["requests"]
    assert request["approvable"] is False and request["codes"] == ["pending"]
    assert request["unapprovable"] == ("can never be approved with the policy and keys as they are: default needs 2, "
                                       "only bob can approve (carol requested it and may not approve)")


def test_policy_check_of_the_branch_reports_the_requesters_who_block(team):
    dave = team.clone("dave")
    proc = dave.gitjit("policy", "check", check=2)
    lines = proc.stderr.strip().splitlines()
    assert "actions.deploy: can never hold when bob requests (self_approval = false): threshold 2, only carol left" \
        in proc.stderr
    assert "when carol requests" in proc.stderr and all(line.startswith("gitjit: ") for line in lines)
    data = json.loads(dave.gitjit("policy", "check", "--json", check=2).stdout)
    assert data["ok"] is False and len(data["problems"]) == 2


def test_policy_check_of_a_file_that_fixes_it(team, tmp_path):
    dave = team.clone("dave")
    fixed = policy_text(dave).replace('[actions.deploy]\napprovers = ["bob", "carol"]',
                                      '[actions.deploy]\nrequesters = ["dave", "erin"]\napprovers = ["bob", "carol"]')
    path = tmp_path / "fixed.toml"
    path.write_text(fixed)
    proc = dave.gitjit("policy", "check", str(path), check=0)
    assert proc.stdout.strip() == f"{path}: ok (2 actions, 2 rules)"


def test_policy_check_of_rules_with_a_person_who_has_no_key(team, tmp_path):
    dave = team.clone("dave")
    text = policy_text(dave).replace('[actions.deploy]\napprovers = ["bob", "carol"]\nthreshold = 2\n',
                                     '[actions.deploy]\nrequesters = ["dave"]\n')
    text += ('\n[people.zed]\nkeys = ["0123456789ABCDEF0123456789ABCDEF01234567"]\n'
             '[[actions.deploy.rules]]\nname = "sre"\napprovers = ["bob", "carol"]\nthreshold = 2\n'
             '[[actions.deploy.rules]]\nname = "security"\napprovers = ["zed"]\n')
    path = tmp_path / "zed.toml"
    path.write_text(text)
    proc = dave.gitjit("policy", "check", str(path), check=2)
    assert "actions.deploy.rules.security: can never hold: threshold 1, but only 0 of its approvers can sign (nobody)" \
        in proc.stderr
    assert "note: people.zed: no usable key in keys/zed.asc" in proc.stderr


HOSTILE = {
    "ten-thousand-rules": ("rules = [" + "{}, " * 10000 + "]\n", "10000 rules, the limit is 32"),
    "deep-nesting": ("rules = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "threshold-2**63": ('rules = [{name = "r", approvers = ["bob"], threshold = 9223372036854775808}]\n',
                        "not valid TOML: an integer beyond 64 bits"),
    "threshold-2**63-1": ('rules = [{name = "r", approvers = ["bob"], threshold = 9223372036854775807}]\n',
                          "9223372036854775807 is above the number of approvers (1)"),
    "rule-without-name": ('rules = [{approvers = ["bob"]}]\n', "is missing or not a valid rule name"),
    "both-forms": ('rules = [{name = "r", approvers = ["bob"]}]\napprovers = ["bob"]\n', "not both"),
    "twice-named": ('rules = [{name = "r", approvers = ["bob"]}, {name = "r", approvers = ["carol"]}]\n',
                    "rule 'r' is named twice"),
    "escalation-no-after": ('approvers = ["bob"]\nescalation = {approvers = ["carol"]}\n', "escalation.after: is missing"),
    "escalation-bad-key": ('approvers = ["bob"]\nescalation = {after = "1h", approvers = ["carol"], whom = 1}\n',
                           "unknown key"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_policy_check_refuses_hostile_rules_on_one_line(team, tmp_path, name):
    dave = team.clone("dave")
    body, expected = HOSTILE[name]
    path = tmp_path / "hostile.toml"
    path.write_text(policy_text(dave) + "\n[actions.hostile]\n" + body)
    started = time.monotonic()
    proc = dave.gitjit("policy", "check", str(path), check=2)
    assert time.monotonic() - started < 30
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_policy_check_of_a_missing_file(team, tmp_path):
    proc = team.clone("dave").gitjit("policy", "check", str(tmp_path / "nope.toml"), check=2)
    assert "cannot read" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert BRANCH  # the branch is untouched: nothing is ever written by a check
