"""Bounded input (docs/format.md, section 10).

Every file of the approvals branch has a size limit, checked from git's
object header before the file is read; every time a range (years 1970-9999)
and every duration one (up to ten years); whatever a hostile file or commit
holds, the hook refuses it on one short line and the CLI exits 2 on one
line, never with an unexpected error. Real pushes into a server whose hook
was installed by `gitjit hook install`, and the real CLI.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import Keys, git
from hookkit import ACTION, copy_world, policy_toml, refused, toml_time
from hookkit import World as Server
from world import World, template_world, utc

APPROVALS = "refs/heads/approvals"
MAX_LINE = 400  # a refusal line, whatever the commit holds


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> Server:  # noqa: F811 (the fixture)
    """test_hook's server and alice's clone, over file:// only."""
    return copy_world(golden, tmp_path, keys)


def refused_briefly(result, *fragments: str) -> str:
    line = refused(result, APPROVALS, *fragments)
    assert len(line) < MAX_LINE, line
    assert "unexpected error" not in result.stderr and "Traceback" not in result.stderr
    return line


def request_text(target: str, request_id: str = "hostile", created: str | None = None, expires: str | None = None,
                 extra: str = "", reason: str = "test") -> str:
    now = utc(seconds=-30)
    return (f'gitjit = 1\nid = "{request_id}"\naction = "{ACTION}"\ntarget = "{target}"\n'
            f'requested_by = "alice"\nreason = "{reason}"\n'
            f"created = {created or toml_time(now)}\nexpires = {expires or toml_time(now + timedelta(hours=1))}\n"
            + extra)


# -- sizes -------------------------------------------------------------------------------------


def test_a_100_mb_request_file_is_refused_from_its_size_alone(server: Server):
    """Before, the hook read and parsed it: 15 s and 416 MiB for one push."""
    target = server.alice.commit_file("app.txt", "1.0\n")
    text = request_text(target) + "# " + "x" * (100 * 1024 * 1024) + "\n"
    size = len(text.encode())
    server.writer.commit({"requests/hostile.toml": text}, "a huge request")
    started = time.monotonic()
    result = server.push(server.alice, "main", "approvals")
    line = refused_briefly(result, f"requests/hostile.toml is {size} bytes, the limit is 16384")
    assert time.monotonic() - started < 60, line  # was 15 s of hook alone; now the push's own cost


def test_a_comment_or_reason_above_4_kib_is_refused(server: Server):
    target = server.alice.commit_file("app.txt", "1.0\n")
    server.writer.commit({"requests/long.toml": request_text(target, "long", reason="r" * 5000)})
    refused_briefly(server.push(server.alice, "main", "approvals"),
                    "requests/long.toml: reason is 5000 bytes, the limit is 4096")
    server.writer.git("reset", "-q", "--hard", "HEAD~1")
    request_id = server.writer.request(target)
    text = server.writer.decision_text(request_id).replace('comment = "by hand"', f'comment = "{"é" * 2100}"')
    server.writer.commit({f"approvals/{request_id}/bob.toml": text}, sign=server.keys["bob"].fpr)
    refused_briefly(server.push(server.alice, "main", "approvals"), "comment is 4200 bytes, the limit is 4096")


def test_an_admin_signed_key_file_or_policy_above_its_limit_is_refused(server: Server):
    keys = server.keys
    big_key = keys["bob"].asc + "\n" + "x" * 70_000 + "\n"
    server.writer.commit({"keys/bob.asc": big_key}, "a huge key file")  # signed by alice, the admin
    refused_briefly(server.push(server.alice, "approvals"),
                    f"keys/bob.asc is {len(big_key.encode())} bytes, the limit is 65536")
    server.writer.git("reset", "-q", "--hard", "HEAD~1")
    big_policy = policy_toml(keys) + "#" * 300_000 + "\n"
    server.writer.commit({"policy.toml": big_policy}, "a huge policy")
    refused_briefly(server.push(server.alice, "approvals"),
                    f"policy.toml is {len(big_policy.encode())} bytes, the limit is 262144")


def test_a_commit_adding_200000_files_is_refused_quickly_on_a_short_line(server: Server):
    """Before: a 3.4 MB refusal line listing every file."""
    alice, writer = server.alice, server.writer
    blob = git("hash-object", "-w", "--stdin", cwd=alice.path, env=alice.env, input="gitjit = 1\n").stdout.strip()
    entries = "".join(f"100644 blob {blob}\tr{i:06}.toml\n" for i in range(200_000))
    requests = git("mktree", cwd=alice.path, env=alice.env, input=entries).stdout.strip()
    top = writer.git("ls-tree", "HEAD").stdout + f"040000 tree {requests}\trequests\n"
    tree = git("mktree", cwd=alice.path, env=alice.env, input=top).stdout.strip()
    commit = git("commit-tree", tree, "-p", writer.tip(), "-m", "200,000 requests", cwd=alice.path,
                 env=alice.env).stdout.strip()
    started = time.monotonic()
    result = server.push(alice, f"{commit}:{APPROVALS}")
    elapsed = time.monotonic() - started
    line = refused_briefly(result, f"commit {commit[:12]}: a commit must add exactly one file; this one changes "
                                   "A requests/r000000.toml, A requests/r000001.toml, A requests/r000002.toml "
                                   "and 199997 more")
    assert elapsed < 60, (elapsed, line)


# -- extreme values ----------------------------------------------------------------------------


HOSTILE_REQUESTS = {
    "a time that overflows with its zone": (
        {"expires": "9999-12-31T23:59:59-23:59"}, "expires: 9999-12-31 23:59:59-23:59 is outside years 1970 to 9999"),
    "a request created in year 1": (
        {"created": "0001-01-01T00:00:00Z"}, "created: 0001-01-01 00:00:00+00:00 is outside years 1970 to 9999"),
    "a time before 1970": ({"created": "1969-12-31T23:59:59Z"}, "created: 1969-12-31 23:59:59+00:00 is outside"),
    "arrays nested thousands deep": (
        {"extra": "x = " + "[" * 5000 + "]" * 5000 + "\n"}, "requests/hostile.toml: not valid TOML: nested too deeply"),
    "inline tables nested thousands deep": (
        {"extra": "x = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n"}, "not valid TOML: nested too deeply"),
    "a 10,000-digit integer": ({"extra": "x = " + "9" * 10_000 + "\n"}, "requests/hostile.toml: not valid TOML: "),
}


@pytest.mark.parametrize("fields, message", HOSTILE_REQUESTS.values(), ids=HOSTILE_REQUESTS.keys())
def test_hostile_values_in_a_request_are_refused_on_one_line(server: Server, fields, message):
    target = server.alice.commit_file("app.txt", "1.0\n")
    server.writer.commit({"requests/hostile.toml": request_text(target, **fields)})
    refused_briefly(server.push(server.alice, "main", "approvals"), message)


@pytest.mark.parametrize("seconds", ["99999999999999", "253402300800", "-1"])
def test_committer_times_outside_years_1970_to_9999_are_refused(server: Server, seconds):
    alice, writer = server.alice, server.writer
    target = alice.commit_file("app.txt", "1.0\n")
    writer.commit({"requests/hostile.toml": request_text(target)}, sign=False)
    raw = writer.git("cat-file", "commit", "HEAD").stdout
    forged = "\n".join(line.rsplit(" ", 2)[0] + f" {seconds} +0000" if line.startswith("committer ") else line
                       for line in raw.split("\n"))
    commit = git("hash-object", "-t", "commit", "-w", "--stdin", cwd=alice.path, env=alice.env,
                 input=forged).stdout.strip()
    refused_briefly(server.push(alice, "main", f"{commit}:{APPROVALS}"),
                    f"commit {commit[:12]}: time {seconds} is outside years 1970 to 9999")


HOSTILE_POLICIES = {
    "clock_skew of 999999999d": (('clock_skew = "5m"', 'clock_skew = "999999999d"'),
                                 "defaults.clock_skew: '999999999d' is above 3653d (ten years)"),
    "freshness of 3654d": (('freshness = "1h"', 'freshness = "3654d"'),
                           f"actions.{ACTION}.freshness: '3654d' is above 3653d (ten years)"),
    "a 10,000-digit threshold": (("threshold = 2", "threshold = " + "9" * 10_000), "policy.toml at "),
    "arrays nested thousands deep": (("threshold = 2", "threshold = 2\nx = " + "[" * 5000 + "]" * 5000),
                                     "not valid TOML: nested too deeply"),
}


@pytest.mark.parametrize("change, message", HOSTILE_POLICIES.values(), ids=HOSTILE_POLICIES.keys())
def test_hostile_values_in_an_admin_signed_policy_are_refused_on_one_line(server: Server, change, message):
    text = policy_toml(server.keys)
    assert change[0] in text
    server.writer.commit({"policy.toml": text.replace(change[0], change[1], 1)}, "hostile policy")
    refused_briefly(server.push(server.alice, "approvals"), message)


# -- the CLI: exit 2, one line, nothing written ------------------------------------------------


@pytest.fixture(scope="module")
def template(keys, tmp_path_factory) -> World:
    return template_world(tmp_path_factory.mktemp("bounds"), keys)


@pytest.fixture
def world(template, tmp_path) -> World:
    return template.copy(tmp_path)


def bad_input(world: World, person: str, *args: str, message: str) -> None:
    before = world.snapshot()
    proc = world.gitjit(person, *args, check=2)
    assert proc.stdout == ""
    assert proc.stderr.startswith("gitjit: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr and "unexpected" not in proc.stderr
    assert world.snapshot() == before


def test_cli_refuses_values_beyond_the_bounds(world, tmp_path):
    target = world.target()
    bad_input(world, "carol", "request", "deploy", "--target", target, "--ttl", "999999999d",
              message="--ttl '999999999d' is above 3653d (ten years)")
    bad_input(world, "carol", "request", "deploy", "--target", target, "--reason", "r" * 5000,
              message="--reason is 5000 bytes, the limit is 4096")
    rid = world.request("carol", "deploy", target)
    bad_input(world, "alice", "approve", rid, "--comment", "c" * 4097,
              message="--comment is 4097 bytes, the limit is 4096")
    big = tmp_path / "zoe.asc"
    big.write_text(world.keys["erin"].asc + "x" * 70_000)
    bad_input(world, "alice", "person", "add", "zoe", "--key-file", str(big),
              message=f"key file {big} is {big.stat().st_size} bytes, the limit is 65536")


@pytest.mark.parametrize("change, message", [
    (('clock_skew = "5m"', 'clock_skew = "999999999d"'), "defaults.clock_skew: '999999999d' is above 3653d"),
    (('max_ttl = "5d"', 'max_ttl = "5d"\nx = ' + "[" * 5000 + "]" * 5000), "not valid TOML: nested too deeply"),
    (('max_ttl = "5d"', 'max_ttl = "5d"\nx = ' + "1" * 10_000), "not valid TOML: "),
], ids=["clock_skew", "nesting", "digits"])
def test_cli_reports_a_hostile_policy_on_the_branch_as_a_bad_policy(world, change, message):
    """Before, clock_skew = "999999999d" was accepted, after which status and approve crashed."""
    world.edit_policy("alice", lambda text: text.replace(*change, 1))
    for args in (("status",), ("verify", "deploy", "--target", world.target())):
        bad_input(world, "erin", *args, message=message)
        assert "bad policy on the approvals branch: policy.toml at " in world.gitjit("erin", *args, check=2).stderr


def test_a_request_created_in_year_1_does_not_count_and_breaks_nothing(world):
    """Before, it was accepted, and every approval of it raised OverflowError."""
    target = world.target()
    text = request_text(target, "deploy-year-1", created="0001-01-01T00:00:00Z").replace(ACTION, "deploy")
    world.commit_on_branch("carol", {"requests/deploy-year-1.toml": text})
    proc = world.gitjit("erin", "verify", "deploy", "--target", target, check=1)
    assert "no request for deploy" in proc.stdout and "unexpected" not in proc.stdout + proc.stderr
    status = world.json("erin", "status")
    assert "deploy-year-1" not in [r["id"] for r in status["requests"]]
