"""Delivering notifications (SPEC s.14) to real HTTP servers on 127.0.0.1 and real commands.

A push never waits for an endpoint: the post-receive hook spools the events
and a detached process sends them. Endpoints that fail (500), hang (longer
than the timeout), refuse connections, or are commands that fail or hang
leave their events queued with the error and the attempt counted, and
`gitjit notify flush` delivers them once the endpoint answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC
from pathlib import Path

import pytest
from helpers import free_port
from notifykit import (
    Listener,
    NotifyServer,
    Receiver,
    accepted,
    command_log,
    logged_events,
    wait_for,
)


@pytest.fixture(params=["file", "daemon"])
def ns(request, golden: Path, tmp_path: Path, keys) -> NotifyServer:  # noqa: F811 (the fixture)
    url = request.getfixturevalue("git_daemon") + "server.git" if request.param == "daemon" else None
    return NotifyServer.from_golden(golden, tmp_path, keys, url)


@pytest.fixture
def ns_file(golden: Path, tmp_path: Path, keys) -> NotifyServer:  # noqa: F811 (the fixture)
    return NotifyServer.from_golden(golden, tmp_path, keys)


def _timed_push(ns: NotifyServer) -> float:
    started = time.monotonic()
    accepted(ns.push())
    return time.monotonic() - started


def _queued_after_an_attempt(ns: NotifyServer, endpoint: str) -> dict:
    def attempted():
        found = [e for e in ns.status()["queued"] if e["endpoint"] == endpoint and e["attempts"] >= 1
                 and not e["last_error"].startswith("interrupted")]
        return found[0] if found else None

    return wait_for(attempted, what=f"a failed attempt for {endpoint}")


def test_a_200_endpoint_gets_the_event_with_its_hmac(ns: NotifyServer):
    secret = "s3cret-with-ünïcode"
    with Receiver("ok") as receiver:
        ns.configure("ops", url=receiver.url, secret=secret)
        ns.configure("plain", url=receiver.url + "?plain")
        request_id = ns.writer.request(ns.alice.head())
        assert _timed_push(ns) < 5
        wait_for(lambda: len(receiver.received) == 2, what="two deliveries")
    signed = [(h, b) for h, b in receiver.received if "x-gitjit-signature-256" in h]
    assert len(signed) == 1
    headers, body = signed[0]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-gitjit-signature-256"] == expected
    assert headers["content-type"].startswith("application/json")
    event = json.loads(body)
    assert headers["x-gitjit-event"] == "request" and headers["x-gitjit-delivery"] == event["id"]
    assert event["gitjit_event"] == 1 and event["request"]["id"] == request_id
    assert all(json.loads(b) == event for _, b in receiver.received)  # the json format is the event itself
    assert ns.status()["queued"] == []


def test_a_failing_endpoint_keeps_its_events_queued_until_flush(ns: NotifyServer):
    with Receiver("fail") as receiver:
        ns.configure("ops", url=receiver.url)
        request_id = ns.writer.request(ns.alice.head())
        assert _timed_push(ns) < 5
        entry = _queued_after_an_attempt(ns, "ops")
        assert entry["last_error"] == "HTTP 500 Internal Server Error"
        assert (entry["event"], entry["request"], entry["attempts"]) == ("request", request_id, 1)
        text = ns.gitjit("notify", "status", check=True).stdout
        assert "queued: 1" in text and "HTTP 500" in text and "ops: url http://127.0.0.1:" in text

        flushed = ns.gitjit("notify", "flush", check=1)
        assert "still queued 1" in flushed.stdout
        assert ns.status()["queued"][0]["attempts"] == 2

        receiver.mode = "ok"
        flushed = ns.gitjit("notify", "flush", check=0)
        assert "delivered 1, still queued 0, failed 0" in flushed.stdout
        assert [e["request"]["id"] for e in receiver.events()] == [request_id]
        assert ns.status()["queued"] == []


def test_a_hanging_endpoint_never_holds_the_push(ns: NotifyServer):
    with Receiver("hang", hang=30) as hanging, Receiver("ok") as healthy:
        ns.configure("slow", url=hanging.url)
        ns.configure("fine", url=healthy.url)
        request_id = ns.writer.request(ns.alice.head())
        assert _timed_push(ns) < 5  # the endpoint hangs 30 s
        wait_for(lambda: len(healthy.received) == 1, what="the healthy endpoint")  # not held by the other
        entry = _queued_after_an_attempt(ns, "slow")
        assert entry["last_error"] == "no answer within 2s"
        # a second push while the endpoint still hangs is just as quick
        ns.writer.decide(request_id, "bob", sign=ns.keys["bob"].fpr)
        assert _timed_push(ns) < 5
        wait_for(lambda: len(healthy.received) == 2, what="the second event")

        hanging.mode = "ok"
        flushed = ns.gitjit("notify", "flush", check=0)
        assert "still queued 0" in flushed.stdout
        assert [e["event"] for e in hanging.events()] == ["request", "approve"]  # in order


def test_refused_connections_and_bad_commands_queue_with_their_reason(ns_file: NotifyServer):
    ns = ns_file
    ns.configure("closed", url=f"http://127.0.0.1:{free_port()}/hook")
    ns.configure("failing", command="echo 'smtp: relay denied' >&2; exit 3")
    ns.configure("stuck", command="sleep 30")
    ns.writer.request(ns.alice.head())
    assert _timed_push(ns) < 5
    errors = {name: _queued_after_an_attempt(ns, name)["last_error"] for name in ("closed", "failing", "stuck")}
    assert errors["closed"].startswith("cannot connect:")
    assert errors["failing"] == "the command exited with 3: smtp: relay denied"
    assert errors["stuck"] == "the command did not finish within 2s and was killed"


def test_a_command_endpoint_gets_the_event_json_on_stdin(ns_file: NotifyServer):
    ns = ns_file
    log = ns.tmp / "mail.jsonl"
    ns.configure("mail", command=command_log(log) + f" && echo \"$GITJIT_EVENT $GITJIT_ENDPOINT\" >> '{log}.env'")
    request_id = ns.writer.request(ns.alice.head())
    accepted(ns.push())
    events = wait_for(lambda: logged_events(log), what="the command's event")
    assert events[0]["request"]["id"] == request_id
    assert wait_for(lambda: Path(f"{log}.env").exists() and Path(f"{log}.env").read_text()) == "request mail\n"


def test_events_failing_too_often_move_to_failed_and_can_be_retried(ns_file: NotifyServer):
    ns = ns_file
    with Receiver("fail") as receiver:
        ns.configure("ops", url=receiver.url)
        ns.writer.request(ns.alice.head())
        accepted(ns.push())
        _queued_after_an_attempt(ns, "ops")
        for _ in range(4):
            ns.gitjit("notify", "flush", check=1)
        status = ns.status()
        assert status["queued"] == [] and len(status["failed"]) == 1
        assert status["failed"][0]["attempts"] == 5 and "gave up after 5 attempts" in status["failed"][0]["last_error"]
        receiver.mode = "ok"
        assert "still queued 0, failed 1" in ns.gitjit("notify", "flush", check=1).stdout  # failed/ stays put
        assert "delivered 1" in ns.gitjit("notify", "flush", "--retry-failed", check=0).stdout
        assert ns.status()["failed"] == [] and len(receiver.received) == 1


HOSTILE = ("<!channel> <https://evil.example|click me> *bold* `code` &amp; @here @channel "
           "\\u001b[2J\\u0007 \\u202egnp.exe \\u0000 end")


def _hostile_request(ns: NotifyServer) -> tuple[str, str]:
    """A request whose reason holds markup, mentions, control characters and 4 KB of text."""
    from datetime import datetime, timedelta

    from hookkit import toml_time as iso

    created = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    request_id = "deploy-prod-hostile-1"
    from gitjit.model.limits import MAX_TEXT_BYTES

    reason = HOSTILE + " " + "x" * (MAX_TEXT_BYTES - len(HOSTILE.encode()) - 1)  # as long as a reason may be
    text = (f'gitjit = 1\nid = "{request_id}"\naction = "deploy-prod"\ntarget = "{ns.alice.head()}"\n'
            f'requested_by = "Mallory <b>&lt;</b> @all"\nreason = "{reason}"\n'
            f"created = {iso(created)}\nexpires = {iso(created + timedelta(hours=1))}\n")
    ns.writer.commit({f"requests/{request_id}.toml": text}, "gitjit: request (hostile)")
    return request_id, reason


def test_hostile_text_is_escaped_for_chat_and_intact_in_json(ns_file: NotifyServer):
    ns = ns_file
    with Receiver("ok") as receiver:
        ns.configure("chat", url=receiver.url + "?slack", format="slack")
        ns.configure("raw", url=receiver.url + "?json")
        request_id, _ = _hostile_request(ns)
        accepted(ns.push())
        wait_for(lambda: len(receiver.received) == 2, what="both deliveries")
    bodies = {h["x-gitjit-delivery"] + ("slack" if b"blocks" in b else "json"): json.loads(b)
              for h, b in receiver.received}
    slack = next(v for k, v in bodies.items() if k.endswith("slack"))
    raw = next(v for k, v in bodies.items() if k.endswith("json"))

    assert raw["request"]["reason"].startswith("<!channel> <https://evil.example|click me>")
    assert "\x1b[2J" in raw["request"]["reason"] and len(raw["request"]["reason"]) > 4000

    texts = [slack["text"]] + [b["text"]["text"] for b in slack["blocks"] if "text" in b]
    texts += [f["text"] for b in slack["blocks"] for f in b.get("fields", [])]
    texts += [e["text"] for b in slack["blocks"] for e in b.get("elements", [])]
    for text in texts:
        assert "<" not in text and ">" not in text, text[:200]
        assert not any(ord(c) < 32 and c != "\n" for c in text)
        assert "\u202e" not in text and "@here" not in text and "@channel" not in text and "@all" not in text
    assert all(len(b["text"]["text"]) <= 3000 for b in slack["blocks"] if "text" in b)
    assert "&lt;!channel&gt; &lt;https://evil.example|click me&gt;" in slack["text"]
    assert "&amp;amp;" in slack["text"]  # the reason's own "&amp;" is shown as typed
    assert "more characters)" in slack["text"]  # 4 KB cut for the chat, and said so
    assert request_id in slack["text"] and f"gitjit approve {request_id} --push" in slack["text"]


def test_twenty_endpoints_and_misconfigured_ones_never_contacted(ns_file: NotifyServer):
    ns = ns_file
    listener = Listener()
    try:
        with Receiver("ok") as receiver:
            for i in range(20):
                ns.configure(f"team-{i:02d}", url=f"{receiver.url}?team={i}", format="slack" if i % 2 else "json")
            bad = {
                "ftp": f"ftp://127.0.0.1:{listener.port}/hook",
                "file": f"file://{ns.tmp}/leak.txt",
                "gopher": f"gopher://127.0.0.1:{listener.port}/",
                "schemeless": f"127.0.0.1:{listener.port}/hook",
                "userinfo": f"http://user:pw@127.0.0.1:{listener.port}/hook",
            }
            for name, url in bad.items():
                ns.configure(name, url=url)
            ns.configure("typo", url=f"http://127.0.0.1:{listener.port}/hook", secert="oops")
            ns.writer.request(ns.alice.head())
            result = ns.push()
            accepted(result)
            assert "6 endpoints misconfigured: see gitjit notify status" in result.stderr
            wait_for(lambda: len(receiver.received) == 20, what="twenty deliveries")
            wait_for(lambda: len(ns.status()["failed"]) == 6, what="the misconfigured endpoints' events")
            time.sleep(0.5)
            assert len(receiver.received) == 20
            assert ns.gitjit("notify", "flush", check=1).stdout.startswith("delivered 0, still queued 0, failed 6")
        status = ns.status()
        problems = {e["name"]: e["problem"] for e in status["endpoints"] if not e["ok"]}
        assert set(problems) == set(bad) | {"typo"}
        assert "not http or https" in problems["ftp"] and "not http or https" in problems["file"]
        assert "user name or password" in problems["userinfo"] and "'secert'" in problems["typo"]
        assert {e["endpoint"] for e in status["failed"]} == set(problems)
        assert all("misconfigured" in e["last_error"] for e in status["failed"])
        assert all(e["target"].endswith("/…") for e in status["endpoints"] if e["ok"])  # webhook paths hidden
        assert listener.connections == 0
    finally:
        listener.close()


def test_a_push_whose_events_cannot_be_worked_out_is_kept_in_failed(ns_file: NotifyServer):
    from gitjit.notify.queue import Spool

    ns = ns_file
    log = ns.tmp / "log.jsonl"
    ns.configure("log", command=command_log(log))
    Spool(str(ns.server)).add_push({"ref": "refs/heads/approvals", "old": None, "new": "ab" * 20,
                                    "at": "2026-11-30T00:00:00Z"})
    assert "failed 1" in ns.gitjit("notify", "flush", check=1).stdout
    (failed,) = ns.status()["failed"]
    assert failed["push"]["new"] == "ab" * 20 and failed["event"] is None
    assert failed["last_error"].startswith("the events of this push could not be worked out:")
    assert "failed 1" in ns.gitjit("notify", "flush", "--retry-failed", check=1).stdout  # tried again, kept
    assert logged_events(log) == []


def test_the_spool_is_shared_as_the_repository_is(ns_file: NotifyServer):
    """Pushes by several Unix users share one spool: core.sharedRepository=group makes its
    folders group-writable and set-group-id, and its files group-writable, as git does."""
    import stat

    from helpers import git

    ns = ns_file
    git("config", "core.sharedRepository", "group", cwd=ns.server, env=ns.keys.env)
    ns.configure("typo", url="http://127.0.0.1:1/hook", secert="x")  # leaves its event in failed/
    ns.writer.request(ns.alice.head())
    accepted(ns.push())
    wait_for(lambda: ns.status()["failed"], what="the misconfigured endpoint's event")
    spool = ns.server / "gitjit" / "notify"
    for folder in (spool, spool / "failed", spool / "tmp", spool / "pushes"):
        mode = folder.stat().st_mode
        assert mode & 0o070 == 0o070 and mode & stat.S_ISGID, (folder, oct(mode))
    for path in [*spool.joinpath("failed").iterdir(), spool / "deliver.lock"]:
        assert path.stat().st_mode & 0o060 == 0o060, (path, oct(path.stat().st_mode))
