"""Reason codes (gitjit/reasons.py) and the one error family (gitjit/errors.py).

The catalogue is checked against itself and against docs/format.md; the
codes are checked where consumers read them, in the JSON of real
repositories with real keys, and on the refusals of the real hook.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import REPO_ROOT
from world import World, iso, template_world, utc

from gitjit import reasons
from gitjit.errors import BadInput, BadPolicy, GitFailed, GitjitError, NotTrusted

KEBAB = re.compile(r"^[a-z]+(-[a-z]+)*\Z")


@pytest.fixture(scope="module")
def template(keys, tmp_path_factory) -> World:
    return template_world(tmp_path_factory.mktemp("reasons"), keys)


@pytest.fixture
def world(template, tmp_path) -> World:
    return template.copy(tmp_path)


def catalogue() -> dict[str, str]:
    """Every code constant of gitjit.reasons: NAME -> code."""
    return {name: value for name, value in vars(reasons).items() if name.isupper() and isinstance(value, str)}


def documented_codes() -> list[str]:
    """The codes listed in docs/format.md, section 9.1, in order."""
    text = (REPO_ROOT / "docs" / "format.md").read_text()
    section = text.split("### 9.1 Reason codes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


# -- the catalogue ------------------------------------------------------------------------


def test_every_code_is_unique_and_kebab_case():
    codes = catalogue()
    assert len(codes) >= 40
    assert len(set(codes.values())) == len(codes), "a code is used by two constants"
    assert [c for c in codes.values() if not KEBAB.match(c)] == []


def test_every_code_has_its_one_line_meaning_in_the_source():
    source = Path(reasons.__file__).read_text()
    for name, code in catalogue().items():
        assert re.search(rf'^{name} = "{code}"  # \S', source, flags=re.MULTILINE), name


def test_every_code_is_documented_in_the_format_and_nothing_else_is():
    documented = documented_codes()
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(catalogue().values())


def test_a_reason_reads_as_its_text_and_keeps_its_code_when_prefixed():
    reason = reasons.Reason(reasons.STALE, "approval is 3h old, freshness is 1h")
    assert str(reason) == f"{reason}" == "approval is 3h old, freshness is 1h"
    assert reason.prefixed("bob") == (reasons.STALE, "bob: approval is 3h old, freshness is 1h")
    assert reason.to_json() == {"code": "stale", "text": "approval is 3h old, freshness is 1h"}


# -- codes in the JSON of real repositories --------------------------------------------------


def decision_codes(data: dict) -> dict[str, str | None]:
    return {d["person"]: d["code"] for r in data["requests"] for d in r["decisions"]}


def test_a_stale_approval_is_coded_stale(world: World):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("alice", rid)
    world.approve("bob", rid)
    fresh = world.json("dave", "verify", "deploy", "--target", target)
    assert fresh["approved"] and fresh["codes"] == [] and set(decision_codes(fresh).values()) == {None}
    late = world.json("dave", "verify", "deploy", "--target", target, "--at", iso(utc(hours=2)), check=1)
    assert decision_codes(late) == {"alice": "stale", "bob": "stale"}
    assert late["requests"][0]["codes"] == ["pending", "stale", "stale"]
    assert late["codes"] == late["requests"][0]["codes"] and len(late["codes"]) == len(late["reasons"])


def test_an_unknown_key_a_non_approver_and_self_approval_are_coded(world: World):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.hand_decision("erin", rid, as_person="alice")  # erin's key is nowhere in keys/
    world.hand_decision("dave", rid)  # dave is in the policy, not an approver of deploy
    world.hand_decision("carol", rid)  # carol asked for it: deploy does not allow self-approval
    data = world.json("erin", "status", rid)
    assert decision_codes(data) == {"alice": "unknown-key", "dave": "not-approver", "carol": "self-approval"}
    request = data["requests"][0]
    assert request["codes"] == ["pending", "unknown-key", "not-approver", "self-approval"]
    # the text beside each code is unchanged
    reasons_by_person = {d["person"]: d["reason"] for d in request["decisions"]}
    assert reasons_by_person["dave"] == "dave is not an approver of deploy"


def test_an_expired_request_is_coded_expired(world: World):
    target = world.target()
    rid = world.request("carol", "deploy", target, "--ttl", "1h")
    world.approve("alice", rid)
    data = world.json("dave", "verify", "deploy", "--target", target, "--at", iso(utc(hours=3)), check=1)
    assert data["requests"][0]["state"] == "expired"
    assert data["requests"][0]["codes"][0] == "expired" and data["codes"][0] == "expired"


def test_no_request_is_coded(world: World):
    data = world.json("dave", "verify", "deploy", "--target", world.target(), check=1)
    assert data["codes"] == ["no-request"] and len(data["reasons"]) == 1


def test_audit_codes_refused_commits_and_decisions(world: World):
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.hand_decision("bob", rid, sign=False)
    world.commit_on_branch("alice", {"notes.txt": "hello\n"})
    data = world.json("erin", "audit", check=1)
    assert [(r["code"], r["reason"]) for r in data["refusals"]] == [
        ("not-signed", "bob: decision commit is not signed"),
        ("layout", "notes.txt is outside the approvals branch layout"),
    ]
    decisions = data["requests"][0]["decisions"]
    assert [(d["person"], d["counts"], d["code"]) for d in decisions] == [("bob", False, "not-signed")]


def test_audit_codes_why_the_branch_is_not_trusted(world: World):
    world.edit_policy("bob", lambda text: text + "\n", message="bob is no admin")
    data = world.json("erin", "audit", check=1)
    assert data["trusted"] is False
    assert data["not_trusted"]["code"] == "unauthorized-policy-change"
    assert "not an admin's key" in data["not_trusted"]["reason"]


# -- one error family ---------------------------------------------------------------------


def test_every_error_gitjit_raises_is_in_the_family():
    from gitjit.git.read import MissingObject
    from gitjit.server.pre_receive import BadPushLine
    from gitjit.trust.signatures import GpgFailure, KeyringError, MalformedCommit
    from gitjit.trust.sigpacket import MalformedSignature

    for error in (BadInput, BadPolicy, NotTrusted, GitFailed, MissingObject, BadPushLine, GpgFailure, KeyringError,
                  MalformedCommit, MalformedSignature):
        assert issubclass(error, GitjitError), error
        assert error.code in catalogue().values(), error
    assert not issubclass(MissingObject, KeyError)  # never confused with a plain dict miss
    assert (BadInput.exit_code, BadPolicy.exit_code, NotTrusted.exit_code, GitFailed.exit_code) == (2, 2, 1, 1)
    assert NotTrusted("x", reasons.NOT_LINEAR).reason == (reasons.NOT_LINEAR, "x")


def test_a_missing_object_is_its_own_error(world: World):
    from gitjit.git.read import GitReader, MissingObject

    reader = GitReader(str(world.path / ".git"))
    with pytest.raises(MissingObject) as caught:
        reader.object("0123456789" * 4)
    assert caught.value.code == "missing-object"


def test_git_failures_are_classified_where_the_cause_is_known(world: World):
    from gitjit.git.branch import run_git

    with pytest.raises(GitFailed) as caught:
        run_git(str(world.path / ".git"), "fetch", "no-such-remote")
    assert caught.value.code == "git-failed" and str(caught.value).startswith("git fetch failed")
    with pytest.raises(BadInput):
        run_git(str(world.path / ".git"), "update-ref", "refs/heads/x", "0" * 39, failure=BadInput)


def test_exit_codes_come_from_the_kind_of_error(world: World):
    bad = world.gitjit("dave", "verify", "no-such-action", "--target", world.target(), check=2)
    assert bad.stderr.startswith("gitjit: unknown action 'no-such-action'") and "Traceback" not in bad.stderr
    world.edit_policy("bob", lambda text: text + "\n", message="bob is no admin")
    untrusted = world.gitjit("dave", "status", check=1)
    assert untrusted.stderr.startswith("gitjit: the approvals branch is not trusted: ")
    assert untrusted.stderr.count("\n") == 1


# -- the hook ------------------------------------------------------------------------------


def test_hook_refusals_carry_codes(world: World, tmp_path: Path):
    from gitjit.server.pre_receive import pre_receive

    target = world.target()
    server = tmp_path / "server.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(world.path), str(server)], check=True,
                   env=world.env("alice"))
    tip = world.tip()
    now = datetime.now(UTC)
    deleted = pre_receive(str(server), [f"{tip} {'0' * 40} refs/heads/approvals"], now, guarded=False)
    assert [(r.code, r.reason) for r in deleted] == [("branch-deleted", "the approvals branch may not be deleted")]
    unreadable = pre_receive(str(server), ["not a ref update"], now, guarded=False)
    assert [r.code for r in unreadable] == ["bad-push-line"]
    untagged = pre_receive(str(server), [f"{'0' * 40} {target} refs/tags/v1.0"], now, guarded=False)
    assert [r.code for r in untagged] == ["tag-not-approved"]
    assert untagged[0].line().startswith("gitjit: refs/tags/v1.0 refused: no request for deploy on ")

