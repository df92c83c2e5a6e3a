"""policy.toml's rules, escalation and admin quorum (docs/format.md, sections 13 and 14): parsing and
one-line refusals, hostile input included."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_policy import BASE, policy, refused

from gitjit.model.policy import POLICY_ACTION

RULES = """
[actions.deploy]
[[actions.deploy.rules]]
name = "sre"
approvers = ["@sre"]
threshold = 2
[[actions.deploy.rules]]
name = "security"
approvers = ["carol", "bob"]
[actions.deploy.escalation]
after = "30m"
approvers = ["alice"]
"""


def test_rules_and_escalation_parse():
    action = policy(RULES).actions["deploy"]
    assert [(r.name, r.approvers, r.threshold) for r in action.rules] == [
        ("sre", frozenset({"alice", "bob"}), 2), ("security", frozenset({"bob", "carol"}), 1)]
    assert action.escalation.after == timedelta(minutes=30) and action.escalation.threshold == 1
    assert action.approvers == {"alice", "bob", "carol"} and action.threshold == 3 and not action.simple


def test_the_old_form_is_one_rule_named_default():
    action = policy('[actions.deploy]\napprovers = ["@sre"]\nthreshold = 2\n').actions["deploy"]
    assert [(r.name, r.threshold) for r in action.rules] == [("default", 2)] and action.simple
    assert action.escalation is None


@pytest.mark.parametrize("extra, expected", [
    ('[actions.d]\napprovers = ["bob"]\nrules = [{name = "r", approvers = ["bob"]}]\n',
     "actions.d.rules: an action has rules or approvers/threshold, not both"),
    ("[actions.d]\nrules = []\n", "actions.d.rules: names no rule"),
    ("[actions.d]\nrules = 3\n", "must be an array of tables"),
    ("[actions.d]\nrules = [" + "{}, " * 10000 + "]\n", "actions.d.rules: 10000 rules, the limit is 32"),
    ('[actions.d]\nrules = [{name = "r", approvers = ["bob"], threshold = 2}]\n',
     "actions.d.rules.r.threshold: 2 is above the number of approvers (1)"),
    ('[actions.d]\nrules = [{name = "r", approvers = ["bob"], threshold = 9223372036854775807}]\n',
     "9223372036854775807 is above the number of approvers (1)"),
    ('[actions.d]\nrules = [{name = "r", approvers = ["bob"], threshold = 9223372036854775808}]\n',
     "an integer beyond 64 bits"),
    ('[actions.d]\nrules = [{name = "R!", approvers = ["bob"]}]\n', "actions.d.rules[0].name: is missing or not"),
    ('[actions.d]\nrules = [{name = "r", approvers = ["zed"]}]\n', "unknown person 'zed'"),
    ('[actions.d]\nrules = [{name = "r", approvers = ["bob"], extra = 1}]\n', "actions.d.rules[0].extra: unknown key"),
    ('[actions.d]\napprovers = ["bob"]\n[actions.d.escalation]\nafter = "forever"\napprovers = ["bob"]\n',
     "actions.d.escalation.after"),
    ('[actions.d]\napprovers = ["bob"]\n[actions.d.escalation]\nafter = "1h"\n', "actions.d.escalation.approvers: is missing"),
    ('[actions.d]\napprovers = ["bob"]\nescalation = 1\n', "actions.d.escalation: must be a table"),
])
def test_bad_rules_are_refused_on_one_line(extra, expected):
    message = refused(BASE + extra)
    assert expected in message and "\n" not in message


def test_admin_threshold():
    text = BASE.replace('people = ["alice"]', 'people = ["alice", "bob"]\nthreshold = 2')
    p = policy(base=text)
    assert p.admin_threshold == 2 and p.quorum
    reserved = p.action(POLICY_ACTION)
    assert reserved.rules[0].approvers == {"alice", "bob"} and reserved.self_approval
    assert policy().action(POLICY_ACTION) is None  # no quorum: no reserved action
    assert "'policy' is reserved" in refused(text + '[actions.policy]\napprovers = ["bob"]\n')
    assert policy('[actions.policy]\napprovers = ["bob"]\n').actions["policy"]  # without a quorum, as before


@pytest.mark.parametrize("value, expected", [
    ("3", "admins.threshold: 3 is not between 1 and the number of admins (2)"),
    ("0", "admins.threshold: 0 is not between 1"),
    ("true", "admins.threshold: must be an integer"),
    ("9223372036854775807", "is not between 1 and the number of admins"),
])
def test_bad_admin_thresholds(value, expected):
    text = BASE.replace('people = ["alice"]', f'people = ["alice", "bob"]\nthreshold = {value}')
    assert expected in refused(text)
