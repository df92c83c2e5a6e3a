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
from gitjit.errors import BadInput, NotTrusted
from gitjit.model.grammar import is_valid_name
from gitjit.model.records import Use, parse_use, use_number
from gitjit.namedtuple import TYPE_CHECKING
from gitjit.reasons import Reason
from gitjit.trust.trusted import Refusal, RequestEntry, TrustedBranch, record_problem
from gitjit.trust.verdicts import USED, RequestVerdict, UseVerdict, Verdict, verify

if TYPE_CHECKING:  # pragma: no cover
    from gitjit.git.branch import Change
    from gitjit.model.policy import Action
    from gitjit.trust.signatures import CommitParts


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


# -- replaying a use record (the rule of section 6.6, applied by trust/trusted.py) --

def apply_use_record(view: TrustedBranch, commit_id: str, position: int, parts: CommitParts, change: Change) -> None:
    """A use record, `uses/<request id>/<n>.toml` (docs/format.md, section 6.6)."""
    if view.state is None:  # _apply: never before a policy
        raise NotTrusted(f"commit {commit_id[:12]}: {change.path} cannot be read as a use record")
    _, request_id, file_name = change.path.split("/")
    number = use_number(file_name)
    request = view.requests.get(request_id) if is_valid_name(request_id) else None
    action = view.state.policy.action(request.request.action) if request else None
    earlier = view.uses.get(request_id, [])
    problem = None
    if number is None:
        problem = Reason(R.LAYOUT, f"{change.path} is not a valid use record path")
    elif request is None:
        problem = Reason(R.NO_SUCH_REQUEST, f"request {request_id} does not exist before this use record")
    elif action is None or action.uses is None:
        problem = Reason(R.NOT_SINGLE_USE, f"{request.request.action} has no uses limit: nothing to record")
    elif len(earlier) >= action.uses:
        problem = Reason(R.USED_UP, f"request {request_id} has used all {action.uses} of its uses")
    elif number != len(earlier) + 1:
        problem = Reason(R.USE_OUT_OF_ORDER, f"use {number} of request {request_id}: the next use is "
                                             f"{len(earlier) + 1}")
    if problem:
        view.refusals.append(Refusal.of(commit_id, problem))
        return
    if number is None or request is None or action is None:  # each one set a problem above
        raise NotTrusted(f"commit {commit_id[:12]}: {change.path} cannot be read as a use record")
    entry = UseEntry(request_id, number, commit_id, position)
    view.uses.setdefault(request_id, []).append(entry)  # consumed, whether or not the record counts
    entry.problem = _use_problem(view, entry, request, action, parts, change)
    if entry.problem:
        view.refusals.append(Refusal.of(commit_id, entry.problem.prefixed(change.path)))

def _use_problem(view: TrustedBranch, entry: UseEntry, request: RequestEntry, action: Action, parts: CommitParts, change: Change) -> Reason | None:
    """Why a use record does not count: its content, its binding, or its signer."""
    try:
        use = parse_use(view.record_bytes(change), change.path)
    except BadInput as exc:
        return record_problem(exc)
    if view.state is None:  # _apply: never before a policy
        raise NotTrusted(f"commit {entry.commit[:12]}: {change.path} cannot be read as a use record")
    skew = view.state.policy.clock_skew
    late = view.witness_problem(parts.committer_time, "committed", skew)
    if late:
        return late
    if (use.request, use.use) != (request.request.id, entry.number):
        return Reason(R.USE_OUT_OF_ORDER, f"the record says use {use.use} of {use.request!r}, "
                                          f"its path use {entry.number} of {request.request.id!r}")
    if use.request_blob != request.blob:
        return Reason(R.WRONG_BLOB, "use record is bound to another version of the request (request_blob differs)")
    if use.target != request.request.target:
        return Reason(R.WRONG_TARGET, f"use record is for target {use.target[:12]}, "
                                      f"the request for {request.request.target[:12]}")
    if parts.signature is None:
        return Reason(R.NOT_SIGNED, "use record commit is not signed")
    try:
        check = view.check_signature(entry.commit, parts, view.state.keyring)
    except Exception as exc:  # fail closed: the record does not count (its use stays consumed)
        return Reason(R.GPG_FAILED, f"signature could not be checked: {exc}")
    signer = view.state.signer(check)
    if isinstance(signer, Reason):
        return signer
    if not action.may_request(signer.person):
        return Reason(R.WRONG_USER, f"{signer.person} may not request {action.name}, so may not use it")
    late = view.witness_problem(signer.at, "signed", skew)
    if late:
        return late
    if abs(signer.at - parts.committer_time) > skew:
        return Reason(R.CLOCK_SKEW, "signature time and committer time disagree by more than clock_skew")
    if signer.at < request.request.created - skew:
        return Reason(R.SIGNED_BEFORE_REQUEST, "signed before the request was created")
    entry.use, entry.user, entry.signed_at = use, signer.person, signer.at
    return None
