"""Single-use approvals (docs/format.md, section 6.6): use records, uses left, and protected tags.

`trust/trusted.py` adds a use record to the view when it takes the next
number within the action's `uses` (the hook refuses any other), and
records whether it counts (bound to the request, signed by a person who may
request the action). A use is consumed by its file whether or not the
record counts: uses only ever go down, never up.

Here, at `now`:
- a request with every use recorded is `used`, no longer approved;
- a protected tag of a single-use action is approved by a request that was
  approved before its uses ran out and that holds a counted use record
  naming that tag: the tag's use is recorded on the branch before the tag
  lands, like every other use.
"""

from __future__ import annotations

from datetime import datetime

from gitjit import reasons as R
from gitjit.model.records import Use
from gitjit.namedtuple import TYPE_CHECKING
from gitjit.reasons import Reason
from gitjit.trust.trusted import RequestEntry, TrustedBranch
from gitjit.trust.verdicts import USED, RequestVerdict, UseVerdict, Verdict, verify

if TYPE_CHECKING:  # pragma: no cover
    from gitjit.model.policy import Action


class UseEntry:
    """A use record's commit on the branch, and whether the record counts."""

    __slots__ = ("request_id", "number", "commit", "position", "problem", "use", "user", "signed_at")

    def __init__(self, request_id: str, number: int, commit: str, position: int):
        self.request_id = request_id
        self.number = number
        self.commit = commit
        self.position = position
        self.problem: Reason | None = None  # why the record does not count (the use is consumed anyway)
        self.use: Use | None = None
        self.user: str | None = None  # who signed it, where it counts
        self.signed_at: datetime | None = None

    def __repr__(self) -> str:
        return f"UseEntry({self.request_id!r}, {self.number}, commit={self.commit[:12]!r})"


def judge_uses(trusted: TrustedBranch, entry: RequestEntry, verdict: RequestVerdict,
               action: Action | None) -> RequestVerdict:
    records = trusted.uses.get(entry.request.id, [])
    judged = tuple(UseVerdict(u.number, u.commit, u.user, u.use.tag if u.use else "", u.signed_at,
                              u.problem is None, u.problem.text if u.problem else "",
                              u.problem.code if u.problem else "") for u in records)
    limit = action.uses if action is not None else None
    if limit is None:
        return verdict._replace(use_records=judged)
    left = max(0, limit - len(records))
    verdict = verdict._replace(uses=limit, uses_left=left, use_records=judged)
    if verdict.approved and left == 0:
        verdict = verdict._replace(state=USED, reasons=(f"all {limit} uses are recorded ({_plural(limit)})",),
                                   codes=(R.USED,))
    return verdict


def _plural(limit: int) -> str:
    return "used up" if limit == 1 else f"{limit} of {limit} used"


def tag_verdict(trusted: TrustedBranch, action: str, commit: str, tag: str, now: datetime) -> Verdict:
    """`verify` for a protected tag: for a single-use action, the tag needs its own recorded use."""
    verdict = verify(trusted, action, commit, now)
    found = trusted.policy.action(action)
    limit = found.uses if found is not None else None
    if limit is None:
        return verdict
    for request in verdict.requests:
        if (request.approved or request.state == USED) and any(u.counts and u.tag == tag for u in request.use_records):
            return verdict._replace(approved_by=request.id, reasons=(), codes=())
    usable = [r for r in verdict.requests if r.approved]
    if not usable:
        return verdict._replace(approved_by=None)
    reason = Reason(R.USE_NOT_RECORDED, f"{action} has uses = {limit}: record this tag's use on the approvals "
                                        f"branch first ('gitjit run {action} --target {commit} --tag {tag} -- "
                                        f"git push <remote> refs/tags/{tag}')")
    return verdict._replace(approved_by=None, reasons=(reason.text,), codes=(reason.code,))
