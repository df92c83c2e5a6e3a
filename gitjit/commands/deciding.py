"""Before signing a decision: is there anything to decide, and what is it (docs/format.md, section 8.3).

An approver is told, before anything is signed, what they are approving
(action, the target's subject line, requester, reason), and is refused with
a reason code where the decision could never count or is already made: a
request this clone does not know even after fetching, one that has expired,
one they already decided on (pushed or not). A target commit the clone does
not have is only a warning: the request binds the exact id.
"""

from __future__ import annotations

from datetime import datetime

from gitjit import notices
from gitjit import reasons as R
from gitjit.errors import BadInput
from gitjit.git.branch import ApprovalsBranch, run_git
from gitjit.model.grammar import format_time
from gitjit.trust.trusted import RequestEntry, TrustedBranch

_VERB = {"approve": "approved", "reject": "rejected"}


def decidable(branch: ApprovalsBranch, trusted: TrustedBranch, request_id: str, person: str, decision: str,
              now: datetime, fetched: bool) -> RequestEntry:
    """The request `person` may decide on now, or BadInput with the reason code of why not."""
    entry = trusted.requests.get(request_id)
    if entry is None:
        where = (f"not on {branch.remote}/{branch.name} either, as just fetched" if fetched
                 else f"this clone's view was not fetched (--offline): 'git fetch {branch.remote}' may bring it")
        raise BadInput(f"unknown request {request_id!r}: {where} (see gitjit status)", R.NO_SUCH_REQUEST)
    earlier = [d for d in trusted.decisions.get(request_id, []) if d.person == person]
    if earlier:
        commit = earlier[0].commit
        said = earlier[0].decision.decision if earlier[0].decision else "decided on"
        remote_tip = branch.ref_target(branch.remote_ref)
        if remote_tip and branch.is_ancestor(commit, remote_tip):
            where = f"on {branch.remote} already"
        else:
            where = f"not yet pushed: push it with 'git push {branch.remote} {branch.name}'"
        raise BadInput(f"you {_VERB.get(said, said)} {request_id} in {commit[:12]}, {where}; "
                       f"a second decision by you would not count", R.DUPLICATE_DECISION)
    if now >= entry.request.expires:
        raise BadInput(f"request {request_id} expired at {format_time(entry.request.expires)}: a decision on it "
                       f"can no longer count (ask for a new request)", R.EXPIRED)
    return entry


def target_subject(branch: ApprovalsBranch, target: str) -> str | None:
    """The target commit's subject line, or None where this clone does not have the commit."""
    result = run_git(branch.repo, "log", "-1", "--format=%s", f"{target}^{{commit}}", "--", check=False)
    return result.stdout.decode("utf-8", "replace").strip() if result.returncode == 0 else None


def describe(branch: ApprovalsBranch, entry: RequestEntry, decision: str) -> list[str]:
    """What is about to be signed, for people: a line or two."""
    request = entry.request
    subject = target_subject(branch, request.target)
    shown = f"{request.target[:12]} {subject!r}" if subject is not None else request.target
    reason = f"; reason: {request.reason!r}" if request.reason else "; no reason given"
    lines = [f"{decision} {request.id}: {request.action} on {shown}, requested by {request.requested_by or '?'}"
             f"{reason}"]
    if subject is None:
        lines.append(f"warning: this clone does not have commit {request.target}: fetch it "
                     f"('git fetch {branch.remote}') to see what you are deciding on")
    return lines


def say_description(branch: ApprovalsBranch, entry: RequestEntry, decision: str) -> None:
    for line in describe(branch, entry, decision):
        notices.say(line)
