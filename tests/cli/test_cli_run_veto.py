"""`gitjit run`: a veto says why (the rejecting decision's comment), with a real remote and clones."""

from __future__ import annotations

import re

import pytest
from gateworld import Background, Team, build_remote

ID_LINE = re.compile(r"request (\S+) \(new, pushed")
FAST = {"GITJIT_RUN_INTERVAL": "0.2"}


@pytest.fixture(scope="module")
def template(tmp_path_factory, keys):
    return build_remote(tmp_path_factory.mktemp("run-veto"), keys)


def test_a_veto_says_why(tmp_path, keys, template):
    team = Team(tmp_path, keys, template)
    ci = team.clone("dave")
    run = Background(ci, "run", "deploy", "--wait", "10m", "--reason", "Release 1.4.2", "--", "true",
                     env=dict(ci.env, **FAST))
    rid = ID_LINE.search(run.wait_for_line(ID_LINE.search)).group(1)
    carol = team.clone("carol")
    carol.gitjit("reject", rid, "--comment", "not during the [bold]freeze[/]", "--push", check=True)
    assert run.finish() == 1, run.stderr
    assert "rejected by carol" in run.stderr
    assert "carol says: not during the [bold]freeze[/]" in run.stderr  # shown as written, never as markup
