"""Turning spooled pushes into spooled events, one file per event and endpoint.

The post-receive hook only records each accepted push of the approvals
branch (`pushes/`); the deliverer, holding the delivery lock, works out its
events here (`events.py`, judged at the time the push was received) and
spools each for every endpoint whose filter admits it. A misconfigured
endpoint's events go straight to failed/ with its problem; a push whose
events cannot be worked out moves to failed/ with the error. The push's
file is removed only once all its events are spooled.
"""

from __future__ import annotations

from gitjit.notify.config import NotifyConfig
from gitjit.notify.queue import PUSHES, Spool


def prepare_pushes(git_dir: str, config: NotifyConfig, spool: Spool) -> int:
    """Spools the events of every push waiting in pushes/; returns how many events were spooled."""
    from gitjit.model.grammar import parse_time
    from gitjit.notify.events import push_events, repository_name

    spooled = 0
    for entry in spool.entries(PUSHES):
        push = entry.push or {}
        try:
            events = push_events(git_dir, push.get("old"), push["new"], parse_time(push["at"]),
                                 repository_name(git_dir))
        except Exception as exc:  # whatever it was, the push is kept in failed/ with it
            spool.give_up(entry, f"the events of this push could not be worked out: {type(exc).__name__}: {exc}")
            continue
        for sequence, event in enumerate(events):
            for endpoint in config.endpoints:
                if endpoint.wants(event["event"]):
                    error = None
                    if endpoint.problem is not None:
                        error = f"endpoint {endpoint.name or '(no name)'} is misconfigured: {endpoint.problem}"
                    spool.add(endpoint.name, event, sequence, error)
                    spooled += 1
        spool.remove(entry)
    return spooled
