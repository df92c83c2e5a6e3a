"""`gitjit status`: --pending, --mine, reasons and comments shown (human and JSON), tables that never cut an id.

The world is tests/world.py's template (alice admin; deploy needs 2 of
alice, bob, carol with self-approval off; ops needs 1 of bob, carol, ...).
"""

from __future__ import annotations

import re

import pytest
from world import World, template_world


@pytest.fixture(scope="module")
def template(keys, tmp_path_factory) -> World:
    return template_world(tmp_path_factory.mktemp("status"), keys)


@pytest.fixture
def world(template, tmp_path) -> World:
    return template.copy(tmp_path)


def ids_of(data: dict) -> set[str]:
    return {r["id"] for r in data["requests"]}


def test_pending_and_mine(world):
    target = world.target()
    open_one = world.request("carol", "deploy", target, "--reason", "Release 1.4.2")
    approved = world.request("dave", "ops", target)
    world.approve("bob", approved)
    bob_approved = world.request("dave", "deploy", target)
    world.approve("bob", bob_approved)

    everything = world.json("dave", "status")
    assert ids_of(everything) == {open_one, approved, bob_approved}
    assert ids_of(world.json("dave", "status", "--pending")) == {open_one, bob_approved}
    # alice may approve both open deploy requests; bob decided one; carol requested the other (self-approval off)
    assert ids_of(world.json("alice", "status", "--mine")) == {open_one, bob_approved}
    assert ids_of(world.json("bob", "status", "--mine")) == {open_one}
    assert ids_of(world.json("carol", "status", "--mine")) == {bob_approved}
    # erin's key belongs to nobody in the policy: nothing can wait on her, and she is told why (exit 2)
    proc = world.gitjit("erin", "status", "--mine", check=2)
    assert "belongs to nobody in the policy" in proc.stderr and proc.stderr.count("\n") == 1

    table = world.gitjit("alice", "status", "--mine", env={"COLUMNS": "120"}).stdout
    assert open_one in table and bob_approved in table and approved not in table
    assert "Release 1.4.2" in table  # the request's reason


def test_mine_after_an_approval_gone_stale(world):
    """A stale approval does not count: the request waits on its approver again."""
    target = world.target()
    rid = world.request("carol", "deploy", target)
    world.approve("bob", rid)
    assert rid not in ids_of(world.json("bob", "status", "--mine"))
    later = "--at", _iso_hours_from_now(2)  # deploy's freshness is 1h
    assert rid in ids_of(world.json("bob", "status", "--mine", *later))


def _iso_hours_from_now(hours: int) -> str:
    from world import iso, utc

    return iso(utc(hours=hours))


def test_comments_and_reasons_in_status_verify_and_json(world):
    target = world.target()
    rid = world.request("dave", "deploy", target, "--reason", "Release 1.4.2")
    world.approve("alice", rid, "--comment", "LGTM, tested on staging")
    world.gitjit("carol", "reject", rid, "--comment", "not during the freeze")

    data = world.json("bob", "status", rid)
    request = data["requests"][0]
    assert request["reason"] == "Release 1.4.2" and request["state"] == "rejected"
    comments = {d["person"]: d["comment"] for d in request["decisions"]}
    assert comments == {"alice": "LGTM, tested on staging", "carol": "not during the freeze"}

    detail = world.gitjit("bob", "status", rid).stdout
    assert "comment: LGTM, tested on staging" in detail and "comment: not during the freeze" in detail
    assert "reason: Release 1.4.2" in detail

    verdict = world.json("bob", "verify", "deploy", "--target", target, check=1)
    assert {d["comment"] for d in verdict["requests"][0]["decisions"]} == {"LGTM, tested on staging",
                                                                          "not during the freeze"}
    human = world.gitjit("bob", "verify", "deploy", "--target", target, check=1).stdout
    assert f"carol vetoed {rid}: not during the freeze" in human

    audit = world.json("bob", "audit", check=None)
    decisions = [d for r in audit["requests"] if r["id"] == rid for d in r["decisions"]]
    assert {d["comment"] for d in decisions} == {"LGTM, tested on staging", "not during the freeze"}


def test_hostile_comment_and_reason_are_shown_inert(world):
    """Markup, escape sequences and newlines from the branch never style, move or forge output."""
    target = world.target()
    rid = world.request("dave", "ops", target, "--reason", "[green]approved[/] \x1b[2Jx")
    world.gitjit("bob", "reject", rid, "--comment", "[/bold]\nfake: approved\x1b]0;title\x07")
    for args in ((), (rid,)):
        out = world.gitjit("alice", "status", *args, env={"COLUMNS": "200"}).stdout
        assert "\x1b" not in out and "\x07" not in out
        assert "[green]approved[/]" in out
    detail = world.gitjit("alice", "status", rid).stdout
    assert "\\nfake: approved" in detail  # the newline is shown as an escape, on the comment's own line
    data = world.json("alice", "status", rid)
    assert data["requests"][0]["decisions"][0]["comment"] == "[/bold]\nfake: approved\x1b]0;title\x07"


@pytest.mark.parametrize("columns", ["80", "40", "200"])
def test_tables_never_cut_what_people_copy(world, columns):
    target = world.target()
    ids = [world.request("carol", "deploy", target, "--reason", "a long reason " * 8),
           world.request("dave", "ops", target)]
    world.approve("bob", ids[1])
    out = world.gitjit("alice", "status", env={"COLUMNS": columns}).stdout
    lines = out.splitlines()
    for rid in ids:
        assert any(rid in line for line in lines), f"{rid} cut at {columns} columns:\n{out}"
    if columns == "80":
        assert max(len(line) for line in lines) <= 80, out
        assert any(line.startswith("request") for line in lines)  # the table layout fits 80 columns
    audit = world.gitjit("alice", "audit", env={"COLUMNS": columns}, check=None).stdout
    for rid in ids:
        assert any(rid in line for line in audit.splitlines()), f"{rid} cut in audit at {columns} columns:\n{audit}"
    person_list = world.gitjit("alice", "person", "list", env={"COLUMNS": columns}).stdout
    for name in ("bob", "carol"):
        assert re.search(rf"key {world.keys[name].fpr}\b", person_list), person_list


def documented_fields() -> set[str]:
    """Every field name in the first column of docs/json.md's tables."""
    from helpers import REPO_ROOT

    names = set()
    for line in (REPO_ROOT / "docs" / "json.md").read_text().splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def keys_in(data, found=None) -> set[str]:
    found = set() if found is None else found
    if isinstance(data, dict):
        for key, value in data.items():
            found.add(key)
            keys_in(value, found)
    elif isinstance(data, list):
        for value in data:
            keys_in(value, found)
    return found


def test_every_json_field_is_documented(world):
    """JSON is built from the values (cli/render_json.py): a field added to a value must be documented."""
    target = world.target()
    rid = world.request("dave", "deploy", target, "--reason", "why")
    world.approve("alice", rid, "--comment", "ok")
    outputs = [world.json("bob", "status"), world.json("bob", "verify", "deploy", "--target", target, check=1),
               world.json("bob", "audit", check=None), world.json("bob", "person", "list")]
    world.git("tag", "v1.0", target)
    outputs.append(world.json("bob", "verify-tag", "v1.0", check=1))
    missing = set().union(*(keys_in(o) for o in outputs)) - documented_fields() - {"counts", "commits"}
    assert not missing, f"undocumented JSON fields: {sorted(missing)}"
