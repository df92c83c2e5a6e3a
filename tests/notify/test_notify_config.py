"""Notification endpoints from git config, and the chat escaping (SPEC s.14).

The config is written with real `git config` into a real bare repository
and read back by gitjit; an endpoint that is wrong in any way is reported
with its problem, never half-used.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, make_bare

from gitjit.notify.config import read_config, redact_url, url_problem
from gitjit.notify.formats import escape


@pytest.fixture
def server(tmp_path: Path, keys) -> tuple[Path, dict]:
    return make_bare(tmp_path / "server.git", keys.env), keys.env


def _set(server, key: str, value: str) -> None:
    path, env = server
    git("config", key, value, cwd=path, env=env)


def test_endpoints_are_read_as_git_writes_them(server):
    _set(server, "gitjit.notify.ops.url", "https://chat.example.com/hooks/abc")
    _set(server, "gitjit.notify.ops.format", "slack")
    _set(server, "gitjit.notify.ops.secret", "k")
    _set(server, "gitjit.notify.ops.events", "request, approved,break-glass")
    _set(server, "gitjit.notify.mail.command", "/usr/local/bin/send-gitjit-mail --to ops")
    _set(server, "gitjit.branch", "approvals")
    config = read_config(str(server[0]))
    ops, mail = config.endpoints
    assert (ops.name, ops.url, ops.format, ops.secret, ops.problem) == (
        "ops", "https://chat.example.com/hooks/abc", "slack", "k", None)
    assert ops.events == {"request", "approved", "break-glass"}
    assert ops.wants("approved") and not ops.wants("approve")
    assert (mail.kind, mail.command, mail.format, mail.events, mail.problem) == (
        "command", "/usr/local/bin/send-gitjit-mail --to ops", "json", None, None)
    assert ops.shown_target() == "https://chat.example.com/…"  # the path of a webhook is its secret


@pytest.mark.parametrize("settings, problem", [
    ({"url": "file:///etc/passwd"}, "url scheme file: is not http or https"),
    ({"url": "ftp://example.com/x"}, "url scheme ftp: is not http or https"),
    ({"url": "javascript:alert(1)"}, "url scheme javascript: is not http or https"),
    ({"url": "example.com/hook"}, "is not http or https"),
    ({"url": "http:///nohost"}, "url has no host"),
    ({"url": "http://example.com:99999/"}, "not a valid URL"),
    ({"url": "http://a b.example/"}, "spaces or control characters"),
    ({"url": "https://u:p@example.com/"}, "user name or password"),
    ({"url": "https://example.com/", "command": "true"}, "both url and command"),
    ({"format": "slack"}, "neither url nor command"),
    ({"url": "https://example.com/", "format": "xml"}, "format 'xml' is not one of json, slack"),
    ({"url": "https://example.com/", "secert": "x"}, "unknown key 'secert'"),
    ({"url": "https://example.com/", "events": "request,aproved"}, "unknown event 'aproved'"),
    ({"url": "https://example.com/", "events": ","}, "events is empty"),
    ({"url": "https://example.com/", "secret": ""}, "secret is empty"),
    ({"command": "  "}, "command is empty"),
])
def test_a_misconfigured_endpoint_is_reported_with_its_problem(server, settings, problem):
    for key, value in settings.items():
        _set(server, f"gitjit.notify.bad.{key}", value)
    (endpoint,) = read_config(str(server[0])).endpoints
    assert endpoint.problem is not None and problem in endpoint.problem
    assert read_config(str(server[0])).usable == ()


def test_an_endpoint_needs_a_valid_name(server):
    _set(server, "gitjit.notify.Ops.url", "https://example.com/")
    _set(server, "gitjit.notify.url", "https://example.com/")
    _set(server, "gitjit.notify.a/../../x.url", "https://example.com/")
    problems = [e.problem for e in read_config(str(server[0])).endpoints]
    assert len(problems) == 3 and all("is not a valid name" in p for p in problems)


def test_urls_that_may_be_contacted():
    assert url_problem("https://hooks.slack.com/services/T0/B0/x") is None
    assert url_problem("HTTP://127.0.0.1:8080/hook?x=1") is None
    assert redact_url("http://127.0.0.1:8080/secret/path") == "http://127.0.0.1:8080/…"
    assert redact_url("file:///etc/passwd") == "file:…"


def test_chat_escaping_makes_untrusted_text_inert():
    assert escape("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
    assert escape("a\x1b[2Jb\u202ec\x00d\x85e") == "a[2Jbcde"
    assert escape("@here ok") == "@\u200bhere ok"
    assert escape("line\nbreak", one_line=True) == "line break"
    assert escape("x" * 50, limit=10) == "x" * 10 + "… (40 more characters)"
