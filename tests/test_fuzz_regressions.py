"""Inputs `make fuzz` found, kept as tests once fixed.

split_commit let a ValueError out for an identity time beyond the calendar
(`year 33658 is out of range`) or longer than int() reads (4,300 digits):
such a commit must be malformed, its documented refusal, not an unexpected
error that refuses the whole push without saying which commit is wrong.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from helpers import Clone, Keys, git
from hookkit import APPROVALS, BranchWriter, World, refused

from gitjit.trust.signatures import MalformedCommit, split_commit

TREE = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"


def _commit(author_time: bytes, committer_time: bytes) -> bytes:
    return (TREE + b"author A U Thor <a@example.com> " + author_time + b" +0000\n"
            b"committer A U Thor <a@example.com> " + committer_time + b" +0000\n\nmessage\n")


@pytest.mark.parametrize("author_time, committer_time", [
    (b"0", b"999999999999"),  # year 33658
    (b"0", b"-62135596801"),  # before year 1
    (b"0", b"9" * 5000),  # beyond int()'s 4,300 digits
    (b"9" * 5000, b"0"),
    (b"-1", b"0"),  # git writes no sign
])
def test_an_identity_time_out_of_range_is_a_malformed_commit(author_time: bytes, committer_time: bytes):
    with pytest.raises(MalformedCommit, match="malformed identity line"):
        split_commit(_commit(author_time, committer_time))


def test_the_latest_identity_time_still_reads():
    parts = split_commit(_commit(b"99999999999", b"99999999999"))
    assert parts.committer_time.year == 5138


@pytest.fixture
def world(golden: Path, tmp_path: Path, keys: Keys) -> World:  # noqa: F811 - over test_hook's, file:// only
    server = tmp_path / "server.git"
    shutil.copytree(golden / "server.git", server, symlinks=True)
    alice_path = tmp_path / "alice-main"
    shutil.copytree(golden / (golden / "alice-path").read_text(), alice_path, symlinks=True)
    alice = Clone(alice_path, keys["alice"], keys)
    return World(keys, tmp_path, server, server.as_uri(), alice, BranchWriter(alice))


def test_a_pushed_commit_with_a_time_beyond_the_calendar_is_refused_as_malformed(world: World):
    world.writer.request(world.alice.head(), sign=False)
    raw = world.writer.git("cat-file", "commit", "HEAD").stdout
    forged = re.sub(r"^(committer .*> )[0-9]+ ", r"\g<1>999999999999 ", raw, count=1, flags=re.MULTILINE)
    assert forged != raw
    commit = git("hash-object", "-t", "commit", "-w", "--literally", "--stdin", cwd=world.alice.path,
                 env=world.keys.env, input=forged).stdout.strip()
    world.alice.git("update-ref", APPROVALS, commit)
    before = world.refs()
    line = refused(world.push(world.alice, "approvals"), APPROVALS, f"commit {commit[:12]}", "malformed identity line")
    assert "unexpected error" not in line
    assert world.refs() == before


# The TOML readers: a hex integer of thousands of digits parses, and Python then
# refuses to print it in the error message (ValueError); a key dotted thousands
# deep costs tomllib time and memory quadratic in its depth.

def _refused_as_bad_toml(data: bytes, path: str = "requests/x.toml") -> str:
    import time

    from gitjit.errors import BadInput
    from gitjit.model.policy import load_policy_document
    from gitjit.model.records import parse_request

    started = time.monotonic()
    reader = load_policy_document if path == "policy.toml" else parse_request
    with pytest.raises(BadInput) as caught:
        reader(data, path)
    assert time.monotonic() - started < 1.0, "a bounded refusal, not a slow parse"
    return str(caught.value)


def test_an_integer_beyond_64_bits_is_bad_input_not_an_unprintable_value():
    assert "an integer beyond 64 bits" in _refused_as_bad_toml(b"gitjit = 0x" + b"f" * 3600)
    assert "an integer beyond 64 bits" in _refused_as_bad_toml(b"gitjit = 1\nx = [[0x" + b"f" * 40 + b"]]\n")


@pytest.mark.parametrize("path", ["requests/x.toml", "policy.toml"])
def test_a_key_dotted_thousands_deep_is_refused_before_tomllib_sees_it(path: str):
    deep_key = b"gitjit = 1\n" + b"a." * 8000 + b"b = 1\n"
    deep_table = b"gitjit = 1\n[" + b"a." * 8000 + b"b]\n"
    for data in (deep_key, deep_table):
        assert "dots outside strings" in _refused_as_bad_toml(data, path)


def test_dots_in_strings_and_comments_are_not_keys():
    from gitjit.model.records import load_toml

    text = ('gitjit = 1\nreason = "' + "v1.2." * 100 + '"\nnote = \'\'\'' + "a." * 100 + "'''\n"
            "# " + "." * 100 + "\nescaped = \"\\\"" + "." * 100 + "\"\n")
    assert load_toml(text, "requests/x.toml")["reason"].startswith("v1.2.")
