"""`gitjit person list` and `gitjit person remove`, and `--remote` on writing commands, against a real server.

The server is a copy of the golden one (conftest.py): its hook was installed
by `gitjit hook install`; alice (admin), bob and carol approve deploy-prod
(threshold 2), dave has no role. Every removal is pushed, so the hook judges
it as any policy change.
"""

from __future__ import annotations

import json
import threading

import pytest
from helpers import Clone, make_clone
from hookkit import APPROVALS

KEY_FIELDS = {"fingerprint", "expires", "revoked", "in_keys"}


def remote_named(clone: Clone, url: str, name: str = "origin") -> Clone:
    clone.git("remote", "add", name, url)
    clone.git("fetch", "-q", name)
    return clone


def people(clone: Clone) -> dict[str, dict]:
    data = json.loads(clone.gitjit("person", "list", "--json", check=True).stdout)
    return {p["name"]: p for p in data["people"]}


def test_person_list(world):
    listed = people(world.alice)
    assert set(listed) == {"alice", "bob", "carol", "dave"}
    alice = listed["alice"]
    assert alice["admin"] is True and alice["approves"] == ["deploy-prod"] and alice["emails"] == ["alice@example.com"]
    assert [k["fingerprint"] for k in alice["keys"]] == [world.keys["alice"].fpr]
    assert set(alice["keys"][0]) == KEY_FIELDS and alice["keys"][0]["in_keys"] is True
    assert listed["dave"]["approves"] == [] and listed["dave"]["admin"] is False
    human = world.alice.gitjit("person", "list", check=True, env=dict(world.alice.env, COLUMNS="40")).stdout
    assert f"key {world.keys['carol'].fpr} (no expiry)" in human and "alice (admin)" in human


def test_person_remove_is_an_admin_signed_commit_the_hook_accepts(world):
    alice = remote_named(world.alice, world.url)
    before = world.refs()[APPROVALS]
    out = alice.gitjit("person", "remove", "dave", "--push", check=True).stdout
    assert out.startswith("removed dave in ") and "(pushed)" in out
    assert world.refs()[APPROVALS] != before
    tree = alice.git("ls-tree", "-r", "--name-only", "approvals").stdout.split()
    assert "keys/dave.asc" not in tree and "keys/bob.asc" in tree
    assert "dave" not in people(alice)
    # bob out too: deploy-prod keeps alice and carol, which still meets its threshold of 2
    alice.gitjit("person", "remove", "bob", "--push", check=True)
    assert set(people(alice)) == {"alice", "carol"}
    # a fresh clone authenticates the branch from the root, removals included
    fresh = make_clone(world.tmp, world.keys["carol"], world.keys, origin=world.url)
    fresh.git("fetch", "-q", "origin", "approvals:approvals")
    assert fresh.gitjit("audit", check=True).returncode == 0


def test_person_remove_refuses_what_would_break_the_policy(world):
    alice = remote_named(world.alice, world.url)
    alice.gitjit("person", "remove", "bob", "--push", check=True)
    tip = world.refs()[APPROVALS]
    local = alice.head("approvals")
    cases = {
        "carol": "threshold",  # deploy-prod would have 1 approver for a threshold of 2
        "alice": "last admin",
        "erin": "unknown person",
    }
    for name, why in cases.items():
        proc = alice.gitjit("person", "remove", name, "--push", check=2)
        assert why in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert world.refs()[APPROVALS] == tip and alice.head("approvals") == local  # nothing written


@pytest.mark.parametrize("name", ["../alice", "Alice", "a" * 100, "dave\n", "--", ""])
def test_person_remove_hostile_names(world, name):
    alice = world.alice
    local = alice.head("approvals")
    proc = alice.gitjit("person", "remove", "--", name, check=2)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("gitjit: ")
    assert alice.head("approvals") == local


def test_person_remove_needs_an_admin_signature(world):
    carol = make_clone(world.tmp, world.keys["carol"], world.keys, origin=world.url)
    carol.git("fetch", "-q", "origin", "approvals:approvals")
    local = carol.head("approvals")
    proc = carol.gitjit("person", "remove", "dave", check=2)
    assert "would not count" in proc.stderr
    assert carol.head("approvals") == local


def test_two_admins_clones_remove_at_once(world):
    """Two clones of alice remove dave at the same moment: the branch ends with one removal, never two."""
    first = remote_named(world.alice, world.url)
    second = make_clone(world.tmp, world.keys["alice"], world.keys, origin=world.url)
    second.git("fetch", "-q", "origin", "approvals:approvals")
    results = {}

    def remove(label: str, clone: Clone) -> None:
        results[label] = clone.gitjit("person", "remove", "dave", "--push")

    threads = [threading.Thread(target=remove, args=(label, c)) for label, c in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results.values())
    assert codes[0] == 0 and codes[1] != 0, {k: (r.returncode, r.stderr) for k, r in results.items()}
    first.git("fetch", "-q", "origin")
    log = first.git("log", "--format=%s", "origin/approvals").stdout
    assert log.count("gitjit: remove person dave") == 1


def test_remote_option_on_writing_commands(world):
    """--remote NAME: request, approve and person add push to that remote, not origin."""
    alice = remote_named(world.alice, world.url, "upstream")
    target = alice.head("main")
    alice.git("push", "-q", "upstream", "main")
    rid = alice.gitjit("request", "deploy-prod", "--target", target, "--push", "--remote", "upstream",
                       check=True).stdout.strip()
    server_tip = world.refs()[APPROVALS]
    assert alice.git("cat-file", "-e", f"{server_tip}:requests/{rid}.toml", check=False).returncode == 0
    bob = make_clone(world.tmp, world.keys["bob"], world.keys, origin=world.url)
    bob.git("remote", "rename", "origin", "upstream")
    bob.git("fetch", "-q", "upstream")
    out = bob.gitjit("approve", rid, "--comment", "ok", "--push", "--remote", "upstream", check=True).stdout
    assert "(pushed)" in out and world.refs()[APPROVALS] != server_tip
    # a remote that does not exist is named in a one-line error, and the commit is kept locally
    proc = bob.gitjit("request", "deploy-prod", "--target", target, "--push", "--remote", "nowhere")
    assert proc.returncode != 0 and "nowhere" in proc.stderr and "Traceback" not in proc.stderr
