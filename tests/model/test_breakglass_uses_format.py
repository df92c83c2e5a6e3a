"""The formats of break-glass and single-use (docs/format.md, sections 3.2.1, 3.2.2, 3.4.1, 3.6):
what parses, and that everything else is refused with a one-line reason naming file and key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from model.test_policy import BASE, policy, refused

from gitjit.errors import BadInput
from gitjit.model.records import Use, parse_request, parse_use, render_use, use_number

ACTION = """
[actions.deploy]
approvers = ["@sre", "carol"]
threshold = 2
"""


def test_break_glass_and_uses_parse_with_groups_expanded():
    parsed = policy(ACTION + '\n[actions.deploy.break_glass]\npeople = ["@sre"]\nreview_within = "24h"\n'
                    + '\n[actions.export]\napprovers = ["carol"]\nuses = 3\n')
    deploy, export = parsed.actions["deploy"], parsed.actions["export"]
    assert deploy.break_glass.people == frozenset({"alice", "bob"})
    assert deploy.break_glass.review_within == timedelta(hours=24) and deploy.uses is None
    assert export.uses == 3 and export.break_glass is None


def test_an_action_without_the_new_keys_means_what_it_meant():
    deploy = policy(ACTION).actions["deploy"]
    assert deploy.break_glass is None and deploy.uses is None


@pytest.mark.parametrize(("extra", "key", "problem"), [
    ("[actions.deploy.break_glass]\nreview_within = \"1h\"\n", "actions.deploy.break_glass.people", "is missing"),
    ("[actions.deploy.break_glass]\npeople = [\"bob\"]\n", "actions.deploy.break_glass.review_within", "is missing"),
    ("[actions.deploy.break_glass]\npeople = []\nreview_within = \"1h\"\n", "actions.deploy.break_glass.people",
     "names nobody"),
    ("[actions.deploy.break_glass]\npeople = [\"zoe\"]\nreview_within = \"1h\"\n",
     "actions.deploy.break_glass.people", "unknown person"),
    ("[actions.deploy.break_glass]\npeople = [\"bob\"]\nreview_within = \"soon\"\n",
     "actions.deploy.break_glass.review_within", "not a duration"),
    ("[actions.deploy.break_glass]\npeople = [\"bob\"]\nreview_within = \"1h\"\nreveiw = 1\n",
     "actions.deploy.break_glass.reveiw", "unknown key"),
    ("break_glass = true\n", "actions.deploy.break_glass", "must be a table"),
    ("uses = 0\n", "actions.deploy.uses", "outside 1 to"),
    ("uses = 1000001\n", "actions.deploy.uses", "outside 1 to"),
    ("uses = true\n", "actions.deploy.uses", "must be an integer"),
    ("uses = \"1\"\n", "actions.deploy.uses", "must be an integer"),
    ("uses = 99999999999999999999999\n", "", "not valid TOML"),
])
def test_bad_break_glass_and_uses_are_refused(extra, key, problem):
    message = refused(BASE + ACTION + extra)
    assert message.startswith("policy.toml: ") and problem in message and "\n" not in message
    assert key in message


REQUEST = """gitjit = 1
id = "r1"
action = "deploy"
target = "{t}"
created = 2026-11-25T23:00:00Z
expires = 2026-11-26T01:00:00Z
""".format(t="1" * 40)


def test_a_request_is_break_glass_only_when_it_says_true():
    assert parse_request(REQUEST.encode(), "requests/r1.toml").break_glass is False
    assert parse_request((REQUEST + "break_glass = true\n").encode(), "requests/r1.toml").break_glass is True
    with pytest.raises(BadInput, match="break_glass: must be true or false"):
        parse_request((REQUEST + 'break_glass = "yes"\n').encode(), "requests/r1.toml")


def test_use_records_round_trip_and_refuse_what_is_not_a_use():
    record = Use("r1", "2" * 40, "1" * 40, 2, "rel-1.0")
    assert parse_use(render_use(record), "uses/r1/2.toml") == record
    assert b"tag" not in render_use(record._replace(tag=""))
    for bad, problem in ((b"use = 0", "use: must be a whole number"), (b"use = true", "use: must be"),
                         (b'tag = "a b"', "is not a tag name"), (b'tag = "../x"', "is not a tag name"),
                         (b"extra = 1", "unknown key")):
        text = render_use(record._replace(tag="")).replace(b"use = 2", bad if bad.startswith(b"use") else
                                                            b"use = 2\n" + bad)
        with pytest.raises(BadInput, match=problem):
            parse_use(text, "uses/r1/2.toml")


@pytest.mark.parametrize(("name", "number"), [("1.toml", 1), ("12.toml", 12), ("01.toml", None), ("0.toml", None),
                                               ("-1.toml", None), ("1", None), ("12345678.toml", None),
                                               ("a.toml", None)])
def test_use_file_names(name, number):
    assert use_number(name) == number
