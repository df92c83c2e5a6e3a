"""The events an accepted push of the approvals branch produced, as JSON (SPEC s.14).

One event per request the push added (`request`), per decision it added
(`approve`, `reject`), and per state change of a request it touched (added,
given a decision or a use record): `approved`, `rejected`, `expired`, `used`.
A break-glass request is announced as `break-glass` instead of `request`. A state change
compares the request's verdict before and after the push, both judged at the
same `now`, so of two pushes racing to approve a request only the one that
made it approved reports `approved`.

Expiry happens with no push, so it is reported by the first push that
touches the request after it expired: `expired` when the request is expired
now and no earlier touch of it (its request or decision commits, by committer
time) came after its expiry, which would have reported it already.

Both views come from the trusted view (`TrustedBranch`) and the verdicts
from `verdicts.judge_request`, exactly as `gitjit status` would show them.
The JSON layout is versioned (`"gitjit_event": 1`) and documented in
docs/notifications.md; `rules` is a list so that approval rules (SPEC s.10)
add entries to it, with today's single rule named `default`.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

EVENT_VERSION = 1
STATE_EVENTS = ("approved", "rejected", "expired", "used")
REASON_LIMIT = 8192  # characters of a request's reason or a decision's comment kept in an event


class PushEvents:
    """The events of one push of the approvals branch from `old` to `new`."""

    def __init__(self, git_dir: str, old: str | None, new: str, now: datetime, repository: str):
        from gitjit.git.branch import ApprovalsBranch

        self.branch = ApprovalsBranch(git_dir)
        self.old, self.new, self.now = old, new, now
        self.repository = repository
        self._verdicts: dict = {}

    def events(self) -> list[dict]:
        """Requests and decisions in branch order, then the state changes they caused."""
        from gitjit.trust.trusted import TrustedBranch

        branch = self.branch
        if self.old == self.new or (self.old is not None and not branch.is_ancestor(self.old, self.new)):
            return []  # not a fast-forward: the pre-receive hook refuses those
        # save=False: the pre-receive hook saved the snapshot at `new`; these reads must not move it.
        self.after = TrustedBranch.load(branch, tip=self.new, pin=False, save=False)
        self.before = TrustedBranch.load(branch, tip=self.old, pin=False, save=False) if self.old else None
        events: list[dict] = []
        last_touch: dict[str, str] = {}  # request id -> the last commit of this push that touched it
        for commit_id, changes in branch.changes(branch.first_parent_chain(self.new, stop=self.old)):
            for change in changes:
                event = self._added(commit_id, change.path) if change.status == "A" else None
                if event is not None:
                    events.append(event)
                    last_touch[event["request"]["id"]] = commit_id
                elif change.status == "A" and change.path.startswith("uses/") and change.path.count("/") == 2:
                    request_id = change.path.split("/")[1]  # a use record: the request may now be `used`
                    if request_id in self.after.requests:
                        last_touch[request_id] = commit_id
        for request_id, commit_id in last_touch.items():
            state_change = self._state_change(request_id, commit_id)
            if state_change is not None:
                events.append(state_change)
        return events

    # -- what the push added ---------------------------------------------------

    def _added(self, commit_id: str, path: str) -> dict | None:
        from gitjit.model.layout import LAYOUTS, record_path  # either layout: what counts is the commit's entry

        record = next((r for r in (record_path(path, n) for n in LAYOUTS) if r is not None), None)
        if record is not None and record.person is None:
            entry = self.after.requests.get(record.request_id)
            if entry is None or entry.commit != commit_id:
                return None  # a commit that does not count: the pre-receive hook refuses it
            # a break-glass request is announced as such: it needs its review, not an approval first
            return self._event("break-glass" if entry.request.break_glass else "request", entry, commit_id)
        if record is not None:
            request = self.after.requests.get(record.request_id)
            found = [d for d in self.after.decisions.get(record.request_id, []) if d.commit == commit_id]
            decision = found[0] if found else None
            if request is None or decision is None or decision.problem is not None or decision.decision is None:
                return None
            return self._event(decision.decision.decision, request, commit_id, decision)
        return None

    def _verdict(self, entry):
        """The request's verdict after the push, at `now` (judged once per request)."""
        from gitjit.trust.verdicts import judge_request

        found = self._verdicts.get(entry.request.id)
        if found is None:
            found = self._verdicts[entry.request.id] = judge_request(self.after, entry, self.now)
        return found

    # -- state changes -------------------------------------------------------

    def _state_change(self, request_id: str, commit_id: str) -> dict | None:
        from gitjit.trust.verdicts import judge_request

        entry = self.after.requests[request_id]
        after = self._verdict(entry)
        if after.state not in STATE_EVENTS:
            return None
        earlier = self.before.requests.get(request_id) if self.before is not None else None
        if after.state == "expired":
            if self.before is not None and earlier is not None and self._touched_after_expiry(self.before, earlier):
                return None
            return self._event("expired", entry, commit_id)
        before = None
        if self.before is not None and earlier is not None:
            before = judge_request(self.before, earlier, self.now).state
        if before == after.state:
            return None
        return self._event(after.state, entry, commit_id, previous=before)

    def _touched_after_expiry(self, before, entry) -> bool:
        """Whether a commit before this push touched the request once it had expired (and so reported it)."""
        expires = entry.request.expires.timestamp()
        commits = [entry.commit] + [d.commit for d in before.decisions.get(entry.request.id, [])]
        return any(self.branch.commit(c).committer_time >= expires for c in commits)

    # -- the JSON --------------------------------------------------------------

    def _event(self, kind: str, entry, commit_id: str, decision=None, previous: str | None = None) -> dict:
        from gitjit.model.grammar import format_time

        verdict = self._verdict(entry)
        request = entry.request
        person = decision.person if decision is not None else ""
        event = {
            "gitjit_event": EVENT_VERSION,
            "id": event_id(kind, request.id, commit_id, person),
            "event": kind,
            "at": format_time(self.now),
            "repository": self.repository,
            "branch": self.branch.ref,
            "commit": commit_id,
            "request": {
                "id": request.id,
                "action": request.action,
                "target": request.target,
                "requested_by": request.requested_by,
                "requesters": list(verdict.requesters),
                "reason": request.reason[:REASON_LIMIT],
                "reason_truncated": len(request.reason) > REASON_LIMIT,
                "created": format_time(request.created),
                "expires": format_time(request.expires),
                "commit": entry.commit,
                "blob": entry.blob,
            },
            "state": verdict.state,
            "previous_state": previous,
            "decision": _decision_json(decision, verdict) if decision is not None else None,
            "rules": self._rules(entry, verdict),
            "reasons": list(verdict.reasons),
            "codes": list(verdict.codes),
            "commands": commands(request.id, request.target, entry.blob, self.branch.name, self.after.policy.layout),
        }
        return event

    def _rules(self, entry, verdict) -> list[dict]:
        """Who is still needed, per rule (and for the escalation), as the verdict tallied them."""
        if self.after.policy.action(entry.request.action) is None:
            return []
        open_ = verdict.state == "pending" or _review_open(verdict)  # a break-glass review still wants reviewers
        return [{
            "name": t.name,
            "have": len(t.approvals),
            "need": t.threshold,
            "approvals": list(t.approvals),
            "candidates": list(t.candidates) if open_ else [],
        } for t in verdict.rules]


def _review_open(verdict) -> bool:
    """A break-glass request still waiting for its after-the-fact review: its reviewers are still needed."""
    return verdict.break_glass is not None and verdict.break_glass.review in ("due", "overdue")


def _decision_json(decision, verdict) -> dict:
    judged = next((d for d in verdict.decisions if d.commit == decision.commit), None)
    comment = decision.decision.comment
    return {
        "person": decision.person,
        "decision": decision.decision.decision,
        "comment": comment[:REASON_LIMIT],
        "commit": decision.commit,
        "counts": bool(judged and judged.counts),
        "reason": (judged.reason or None) if judged else "not judged",
        "code": (judged.code or None) if judged else "not-checked",
    }


def commands(request_id: str, target: str, blob: str, branch: str, layout: int = 1) -> dict:
    """The exact commands to approve or veto, with gitjit and by hand (docs/format.md, sections 2.4, 3.5)."""
    from gitjit.model.layout import decision_path

    by_hand = (f"on the {branch} branch add {decision_path(request_id, '<you>', target, layout)} containing: gitjit = 1, "
               f"request = \"{request_id}\", request_blob = \"{blob}\", target = \"{target}\", "
               f"decision = \"approve\" (or \"reject\"), comment = \"...\"; then git commit -S "
               f"and git push origin {branch}")
    return {
        "approve": f"gitjit approve {request_id} --push",
        "reject": f"gitjit reject {request_id} --push",
        "status": f"gitjit status {request_id}",
        "by_hand": by_hand,
    }


def event_id(kind: str, request_id: str, commit_id: str, person: str = "") -> str:
    """Stable for the same happening: a receiver can drop a repeated delivery by it."""
    return hashlib.sha256(f"{kind}\0{request_id}\0{commit_id}\0{person}".encode()).hexdigest()[:32]


def repository_name(git_dir: str) -> str:
    """`server` for /srv/git/server.git, `app` for /home/me/app/.git."""
    path = git_dir.rstrip("/")
    if os.path.basename(path) == ".git":
        path = os.path.dirname(path)
    name = os.path.basename(path)
    return name[: -len(".git")] if name.endswith(".git") and len(name) > 4 else name


def push_events(git_dir: str, old: str | None, new: str, now: datetime, repository: str) -> list[dict]:
    return PushEvents(git_dir, old, new, now, repository).events()
