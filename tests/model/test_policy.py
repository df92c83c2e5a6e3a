"""policy.toml: parsing, validation, defaults and group expansion (docs/format.md, section 3.2).

A policy either loads completely or is refused with a BadInput that names
the file, the key and the problem.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gitjit.errors import BadInput
from gitjit.model.policy import parse_policy, render_initial_policy, render_person

A = "A" * 40
B = "B" * 40
C = "C" * 40

BASE = f"""
gitjit = 1

[people.alice]
keys = ["{A}"]
emails = ["alice@example.com"]

[people.bob]
keys = ["{B}"]

[people.carol]
keys = ["{C}"]

[groups]
sre = ["alice", "bob"]

[admins]
people = ["alice"]
"""


def policy(extra: str = "", base: str = BASE):
    return parse_policy(base + extra, "policy.toml")


def refused(text: str, source: str = "policy.toml") -> str:
    with pytest.raises(BadInput) as info:
        parse_policy(text, source)
    return str(info.value)


# -- what a good policy gives --------------------------------------------------


def test_spec_example_parses_with_groups_expanded():
    p = policy("""
[defaults]
freshness = "24h"
max_ttl = "72h"
clock_skew = "5m"

[actions.deploy-prod]
approvers = ["@sre", "carol"]
threshold = 2
freshness = "1h"
self_approval = false
requesters = ["*"]
tags = ["v*"]
""")
    action = p.actions["deploy-prod"]
    assert action.approvers == frozenset({"alice", "bob", "carol"})
    assert action.threshold == 2
    assert action.freshness == timedelta(hours=1)
    assert action.self_approval is False
    assert action.requesters is None and action.may_request(None) and action.may_request("anyone")
    assert action.matches_tag("v1.2") and not action.matches_tag("release-1")
    assert p.groups == {"sre": frozenset({"alice", "bob"})}
    assert p.admins == frozenset({"alice"})
    assert p.people["alice"].keys == (A,) and p.people["alice"].emails == ("alice@example.com",)
    assert p.person_with_key(B) == "bob" and p.person_with_key("D" * 40) is None
    assert p.person_with_email("ALICE@example.com") == "alice"
    assert [a.name for a in p.actions_for_tag("v9")] == ["deploy-prod"]


def test_defaults_when_absent():
    p = policy("""
[actions.deploy]
approvers = ["bob"]
""")
    assert (p.freshness, p.max_ttl, p.clock_skew) == (timedelta(hours=24), timedelta(hours=72), timedelta(minutes=5))
    action = p.actions["deploy"]
    assert action.threshold == 1
    assert action.freshness == timedelta(hours=24)  # inherits defaults.freshness
    assert action.self_approval is False
    assert action.requesters is None  # anyone
    assert action.tags == ()


def test_action_freshness_inherits_a_changed_default():
    p = policy("""
[defaults]
freshness = "2h"
[actions.deploy]
approvers = ["bob"]
""")
    assert p.actions["deploy"].freshness == timedelta(hours=2)


def test_requesters_groups_and_people_expand():
    p = policy("""
[actions.deploy]
approvers = ["carol"]
requesters = ["@sre", "carol"]
""")
    action = p.actions["deploy"]
    assert action.requesters == frozenset({"alice", "bob", "carol"})
    assert action.may_request("bob") and not action.may_request(None) and not action.may_request("dave")


def test_admins_may_be_a_group():
    p = policy("", BASE.replace('people = ["alice"]', 'people = ["@sre"]'))
    assert p.admins == frozenset({"alice", "bob"})


def test_fingerprints_are_normalized_to_upper_case_without_spaces():
    spaced = " ".join(["abcd"] * 10)
    p = policy(f"""
[people.dave]
keys = ["{spaced}"]
""")
    assert p.people["dave"].keys == ("ABCD" * 10,)


def test_group_duplicates_count_once_for_the_threshold():
    # alice is both in @sre and named directly: 2 distinct approvers, not 3
    text = """
[actions.deploy]
approvers = ["@sre", "alice"]
threshold = 3
"""
    assert "3 is above the number of approvers (2)" in refused(BASE + text)


# -- every refusal names the file, the key and the problem --------------------


@pytest.mark.parametrize(
    "extra, key, problem",
    [
        ('[actions.deploy]\napprovers = ["zed"]\n', "actions.deploy.approvers", "unknown person 'zed'"),
        ('[actions.deploy]\napprovers = ["@ops"]\n', "actions.deploy.approvers", "unknown group '@ops'"),
        ('[actions.deploy]\napprovers = ["bob"]\nrequesters = ["zed"]\n', "actions.deploy.requesters", "unknown person 'zed'"),
        ('[actions.deploy]\napprovers = ["bob"]\nthreshold = 0\n', "actions.deploy.threshold", "0 is below 1"),
        ('[actions.deploy]\napprovers = ["bob"]\nthreshold = -1\n', "actions.deploy.threshold", "-1 is below 1"),
        ('[actions.deploy]\napprovers = ["@sre"]\nthreshold = 3\n', "actions.deploy.threshold", "3 is above the number of approvers (2)"),
        ('[actions.deploy]\napprovers = ["bob"]\nthreshold = "2"\n', "actions.deploy.threshold", "must be an integer"),
        ('[actions.deploy]\napprovers = ["bob"]\nthreshold = true\n', "actions.deploy.threshold", "must be an integer"),
        ('[actions.deploy]\napprovers = ["bob"]\ntreshold = 1\n', "actions.deploy.treshold", "unknown key"),
        ('[actions.deploy]\napprovers = ["bob"]\nfreshness = "1 hour"\n', "actions.deploy.freshness", "is not a duration"),
        ('[actions.deploy]\napprovers = ["bob"]\nfreshness = 3600\n', "actions.deploy.freshness", "is not a duration"),
        ('[actions.deploy]\napprovers = ["bob"]\nself_approval = "no"\n', "actions.deploy.self_approval", "must be true or false"),
        ('[actions.deploy]\napprovers = "bob"\n', "actions.deploy.approvers", "must be a list of strings"),
        ('[actions.deploy]\nthreshold = 1\n', "actions.deploy.approvers", "is missing"),
        ('[actions.Deploy]\napprovers = ["bob"]\n', "actions.Deploy", "not a valid action name"),
        ('[actions.deploy]\napprovers = ["bob"]\ntags = "v*"\n', "actions.deploy.tags", "must be a list of strings"),
        ("[actions]\ndeploy = 1\n", "actions.deploy", "must be a table"),
        ('[defaults]\nfreshness = "1w"\n', "defaults.freshness", "is not a duration"),
        ('[defaults]\nmax_ttl = "-1h"\n', "defaults.max_ttl", "is not a duration"),
        ('[defaults]\nclock_skew = ""\n', "defaults.clock_skew", "is not a duration"),
        ('[defaults]\nfresh = "1h"\n', "defaults.fresh", "unknown key"),
        ('[people.dave]\nkeys = ["1234"]\n', "people.dave.keys", "is not a fingerprint of 40 hex digits"),
        (f'[people.dave]\nkeys = ["{"G" * 40}"]\n', "people.dave.keys", "is not a fingerprint of 40 hex digits"),
        (f'[people.dave]\nkeys = ["{A}0"]\n', "people.dave.keys", "is not a fingerprint of 40 hex digits"),
        (f'[people.dave]\nkeys = ["{A}"]\n', "people.dave.keys", f"{A} is also listed for alice"),
        (f'[people.dave]\nkeys = ["{B.lower()}"]\n', "people.dave.keys", f"{B} is also listed for bob"),
        ('[people.dave]\nkey = ["x"]\n', "people.dave.key", "unknown key"),
        ('[people."Dave"]\nkeys = []\n', "people.Dave", "not a valid person name"),
        ('[people."a..b"]\nkeys = []\n', "people.a..b", "not a valid person name"),
        ("[people]\ndave = 1\n", "people.dave", "must be a table"),
        ("[admin]\npeople = []\n", "admin", "unknown key"),
    ],
)
def test_refusals_name_file_key_and_problem(extra, key, problem):
    message = refused(BASE + extra, "policy.toml at 0123abcd")
    assert message.startswith("policy.toml at 0123abcd: ")
    assert f": {key}: " in message or f": {key} " in message, message
    assert problem in message, message


def test_group_member_must_be_a_person():
    text = BASE.replace('sre = ["alice", "bob"]', 'sre = ["alice", "zed"]')
    message = refused(text)
    assert message == "policy.toml: groups.sre: unknown person 'zed'"


def test_group_may_not_nest_groups():
    text = BASE.replace('sre = ["alice", "bob"]', 'sre = ["alice"]\nops = ["@sre"]')
    assert "groups.ops: unknown person '@sre'" in refused(text)


def test_admin_must_be_a_person_and_must_exist():
    assert "admins.people: unknown person 'zed'" in refused(BASE.replace('people = ["alice"]', 'people = ["zed"]'))
    assert "admins.people: names no admin" in refused(BASE.replace('people = ["alice"]', "people = []"))
    no_admins = BASE.replace('[admins]\npeople = ["alice"]\n', "")
    assert "admins.people: names no admin" in refused(no_admins)


@pytest.mark.parametrize("version", ["2", '"1"', "0", "1.0", "true"])
def test_format_version_must_be_the_integer_1(version):
    text = BASE.replace("gitjit = 1", f"gitjit = {version}")
    assert "policy.toml: gitjit: format version must be 1" in refused(text)


def test_unknown_top_level_key():
    assert refused("colour = 1\n" + BASE) == "policy.toml: colour: unknown key"


def test_missing_format_version():
    assert "gitjit: format version must be 1, found None" in refused(BASE.replace("gitjit = 1", ""))


@pytest.mark.parametrize("text", ["gitjit = 1\n[people\n", "not toml at all", "gitjit = 1\ngitjit = 1\n", b"\xff\xfe"])
def test_not_toml(text):
    message = refused(text)
    assert message.startswith("policy.toml: not valid TOML")


def test_the_first_problem_is_reported_and_nothing_half_loads():
    # a good action followed by a bad one: the whole policy is refused
    text = BASE + '[actions.a]\napprovers = ["bob"]\n[actions.b]\napprovers = ["zed"]\n'
    assert "actions.b.approvers: unknown person 'zed'" in refused(text)


# -- what gitjit writes parses back ---------------------------------------------


def test_initial_policy_parses_and_names_the_admin():
    text = render_initial_policy("alice", A, "alice@example.com")
    p = parse_policy(text)
    assert p.admins == frozenset({"alice"})
    assert p.people["alice"].keys == (A,)
    assert p.actions == {}
    # appending a person keeps it valid (what `gitjit person add` does)
    p2 = parse_policy(text + "\n" + render_person("bob", B, None))
    assert p2.people["bob"].keys == (B,) and p2.people["bob"].emails == ()


def test_a_trailing_newline_is_not_part_of_a_valid_name_or_fingerprint():
    assert "people.dave\n: is not a valid person name" in refused(BASE + '[people."dave\\n"]\nkeys = []\n')
    message = refused(BASE + f'[people.dave]\nkeys = ["{"D" * 40}\\n"]\n')
    assert "people.dave.keys" in message and "is not a fingerprint of 40 hex digits" in message
    message = refused(BASE + '[actions."deploy\\n"]\napprovers = ["bob"]\n')
    assert "is not a valid action name" in message
