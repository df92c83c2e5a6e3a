"""Notifications for break-glass and single-use (SPEC s.14 with docs/format.md, sections 6.5, 6.6): a
real `gitjit run --break-glass` and a real single-use run against a server with both hooks, events
received by a real HTTP endpoint on 127.0.0.1 filtered to `break-glass,used`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from glasskit import make_glass_golden
from notifykit import NotifyServer, Receiver, wait_for


@pytest.fixture(scope="module")
def glass(golden, tmp_path_factory, keys):
    return make_glass_golden(golden, tmp_path_factory.mktemp("notify-glass"), keys)


@pytest.fixture
def ns(glass: Path, tmp_path: Path, keys) -> NotifyServer:
    return NotifyServer.from_golden(glass, tmp_path, keys)


def test_break_glass_and_used_events_reach_the_endpoint(ns: NotifyServer):
    with Receiver("ok") as receiver:
        ns.configure("ops", url=receiver.url, format="json", events="break-glass,used")
        carol = ns.clone("carol")
        carol.gitjit("run", "hotfix", "--break-glass", "--reason", "outage", "--", sys.executable, "-c", "pass",
                     check=0)
        [event] = wait_for(lambda: receiver.events() or None, what="the break-glass event")
        assert event["event"] == "break-glass"
        assert event["request"]["action"] == "hotfix" and event["request"]["reason"] == "outage"
        assert event["state"].startswith("break-glass (review due ")
        # who can still review it: the approvers, never the breaker
        assert event["rules"][0]["candidates"] == ["alice", "bob"]
        assert event["commands"]["approve"] == f"gitjit approve {event['request']['id']} --push"

        dave = ns.clone("dave")
        rid = dave.gitjit("request", "db-export", "--target", "main", "--push", check=0).stdout.split()[-1]
        ns.clone("bob").gitjit("approve", rid, "--push", check=0)
        dave.gitjit("run", "db-export", "--target", "main", "--", sys.executable, "-c", "pass", check=0)
        events = wait_for(lambda: len(receiver.events()) >= 2 and receiver.events(), what="the used event")
        assert [e["event"] for e in events] == ["break-glass", "used"]
        assert events[1]["request"]["id"] == rid and events[1]["previous_state"] == "approved"
