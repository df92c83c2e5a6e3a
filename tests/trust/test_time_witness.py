"""The server's clock is a witness (docs/format.md, section 7.1).

A request or decision arriving in a push whose committer time or signature
time is ahead of the server's clock by more than clock_skew is refused. The
signature time is really in the future: git signs through a `gpg.program`
wrapper that runs GnuPG with `--faked-system-time`. Real pushes into a server
whose hook was installed by `gitjit hook install`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import GPG, Keys, git
from hookkit import World as Server
from hookkit import accepted, copy_world, refused

TWO_DAYS = 2 * 86400


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> Server:  # noqa: F811 (the fixture)
    """test_hook's server and alice's clone, over file:// only."""
    return copy_world(golden, tmp_path, keys)


def future_gpg(tmp: Path, ahead: int) -> Path:
    """A gpg.program that signs as if the clock were `ahead` seconds later."""
    wrapper = tmp / f"gpg-ahead-{ahead}"
    wrapper.write_text(f'#!/bin/sh\nexec "{GPG}" --faked-system-time {int(time.time()) + ahead} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def commit_ahead(server: Server, path: str, text: str, signer: str, committed: int = 0, signed: int = 0) -> str:
    """Commits one file on the approvals branch, dated `committed` seconds and signed `signed` seconds ahead."""
    writer = server.writer
    writer.git("reset", "-q", "--hard")
    (writer.wt / path).parent.mkdir(parents=True, exist_ok=True)
    (writer.wt / path).write_text(text)
    writer.git("add", path)
    env = dict(server.alice.env)
    if committed:
        env["GIT_COMMITTER_DATE"] = f"@{int(time.time()) + committed} +0000"
    config = ["-c", f"gpg.program={future_gpg(server.tmp, signed)}"] if signed else []
    git(*config, "commit", "-q", f"-S{server.keys[signer].fpr}", "-m", f"add {path}", cwd=writer.wt, env=env)
    return writer.tip()


def signature_time(server: Server, commit: str) -> int:
    """The signature's creation time, as GnuPG reads it (git's %GT is not in every git: the status line is)."""
    out = server.alice.git("verify-commit", "--raw", commit, check=False).stderr
    validsig = next(line for line in out.splitlines() if "VALIDSIG" in line).split()
    return int(validsig[4])


def test_a_decision_committed_and_signed_two_days_ahead_is_refused(server: Server):
    target = server.alice.commit_file("app.txt", "1.0\n")
    request_id = server.writer.request(target)
    accepted(server.push(server.alice, "main", "approvals"))
    commit = commit_ahead(server, f"approvals/{request_id}/bob.toml", server.writer.decision_text(request_id),
                          "bob", committed=TWO_DAYS, signed=TWO_DAYS)
    assert signature_time(server, commit) > time.time() + TWO_DAYS - 600  # really signed in the future
    before = server.refs()
    line = refused(server.push(server.alice, "approvals"), "refs/heads/approvals")
    assert f"commit {commit[:12]}: bob: committed 2d in the future" in line and "by the server's clock" in line
    assert server.refs() == before


def test_a_decision_signed_two_days_ahead_is_refused_whatever_its_committer_time(server: Server):
    target = server.alice.commit_file("app.txt", "1.0\n")
    request_id = server.writer.request(target)
    commit = commit_ahead(server, f"approvals/{request_id}/bob.toml", server.writer.decision_text(request_id),
                          "bob", signed=TWO_DAYS)
    refused(server.push(server.alice, "main", "approvals"), "refs/heads/approvals",
            f"commit {commit[:12]}: bob: signed 2d in the future")


def test_a_request_committed_or_signed_two_days_ahead_is_refused(server: Server):
    target = server.alice.commit_file("app.txt", "1.0\n")
    accepted(server.push(server.alice, "main"))
    text = _request_text(target)
    commit = commit_ahead(server, "requests/witness-1.toml", text, "alice", committed=TWO_DAYS, signed=TWO_DAYS)
    refused(server.push(server.alice, "approvals"), "refs/heads/approvals",
            f"commit {commit[:12]}: requests/witness-1.toml: committed 2d in the future")
    server.writer.git("reset", "-q", "--hard", "HEAD~1")
    commit = commit_ahead(server, "requests/witness-1.toml", text, "alice", signed=TWO_DAYS)
    refused(server.push(server.alice, "approvals"), "refs/heads/approvals",
            f"commit {commit[:12]}: requests/witness-1.toml: signed 2d in the future")


def test_times_within_clock_skew_of_the_server_pass(server: Server):
    """Two minutes ahead is within the policy's clock_skew (5m): the tag lands."""
    target = server.alice.commit_file("app.txt", "1.0\n")
    request_id = server.writer.request(target)
    for person in ("bob", "carol"):
        commit_ahead(server, f"approvals/{request_id}/{person}.toml", server.writer.decision_text(request_id),
                     person, committed=120, signed=120)
    server.alice.git("tag", "v1.0", target)
    accepted(server.push(server.alice, "main", "approvals", "refs/tags/v1.0"))


def _request_text(target: str) -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return (f'gitjit = 1\nid = "witness-1"\naction = "deploy-prod"\ntarget = "{target}"\n'
            f'requested_by = "alice"\nreason = "test"\ncreated = {now}\nexpires = {later}\n')
