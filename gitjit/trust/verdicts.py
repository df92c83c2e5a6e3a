"""When is an action approved: verdicts at a time `now` (docs/format.md, section 6).

`trust/trusted.py` has already settled everything that does not depend on the
time. What is left is judged here, at `now`:

- the request's window: `created - clock_skew <= now < expires`;
- each decision's key: neither expired nor revoked at `now`, judged from the
  key material on the branch (at the decision's commit and, where the key is
  still there, at the tip: a revocation published later counts); and the
  signature itself not expired (GnuPG's verdict is kept between runs, so
  what changes with time is judged here);
- each signature time S: `S <= now + clock_skew`, and for approvals
  `now - S <= freshness`;
- the current policy: the action still exists, the person is still one of
  its approvers, self-approval is still allowed where used (and where it is
  not, the request's requester is known: a signed request), and the signing
  key is still theirs (listed for them, in their keys/ file). The replay
  checked the policy in force at the decision; gitjit also requires today's,
  so taking someone off an action, or a key out of the policy, withdraws
  their outstanding decisions.

A verdict is a value: the CLI renders it as a table or JSON, the hook as
refusal lines. Every reason a request is not approved is kept.
"""

from __future__ import annotations

from datetime import datetime

from gitjit import reasons as R
from gitjit.errors import BadInput, NotTrusted
from gitjit.model.grammar import describe_age, format_duration, format_time
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.reasons import Reason
from gitjit.trust.trusted import DecisionEntry, RequestEntry, TrustedBranch

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

APPROVED, PENDING, REJECTED, EXPIRED, NOT_YET_VALID = "approved", "pending", "rejected", "expired", "not-yet-valid"


class DecisionVerdict(NamedTuple):
    person: str
    decision: str | None  # "approve", "reject", or None when the file is unreadable
    commit: str
    key: str | None  # primary-key fingerprint of the signer
    signed_at: datetime | None
    counts: bool
    reason: str  # why it does not count; empty when it counts
    code: str = ""  # the reason's code (gitjit.reasons); empty when it counts

    def to_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "decision": self.decision,
            "commit": self.commit,
            "key": self.key,
            "signed_at": format_time(self.signed_at) if self.signed_at else None,
            "counts": self.counts,
            "reason": self.reason or None,
            "code": self.code or None,
        }


class RequestVerdict(NamedTuple):
    id: str
    action: str
    target: str
    requested_by: str
    requesters: tuple[str, ...]  # people taken as the requester (signer, author email)
    reason_text: str
    created: datetime
    expires: datetime
    commit: str
    state: str
    approvals: tuple[str, ...]  # people whose approval counts
    rejections: tuple[str, ...]  # people whose veto counts
    threshold: int
    decisions: tuple[DecisionVerdict, ...]
    reasons: tuple[str, ...]  # why it is not approved; empty when approved
    codes: tuple[str, ...] = ()  # the code of each of `reasons`, in the same order

    @property
    def approved(self) -> bool:
        return self.state == APPROVED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "target": self.target,
            "requested_by": self.requested_by,
            "requesters": list(self.requesters),
            "reason": self.reason_text,
            "created": format_time(self.created),
            "expires": format_time(self.expires),
            "commit": self.commit,
            "state": self.state,
            "approved": self.approved,
            "approvals": list(self.approvals),
            "rejections": list(self.rejections),
            "threshold": self.threshold,
            "decisions": [d.to_json() for d in self.decisions],
            "reasons": list(self.reasons),
            "codes": list(self.codes),
        }


class Verdict(NamedTuple):
    action: str
    target: str
    at: datetime
    approved_by: str | None  # the id of a request that is approved
    requests: tuple[RequestVerdict, ...]
    reasons: tuple[str, ...]
    codes: tuple[str, ...] = ()  # the code of each of `reasons`, in the same order

    @property
    def approved(self) -> bool:
        return self.approved_by is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "target": self.target,
            "at": format_time(self.at),
            "approved": self.approved,
            "approved_by": self.approved_by,
            "requests": [r.to_json() for r in self.requests],
            "reasons": list(self.reasons),
            "codes": list(self.codes),
        }


def judge_decision(trusted: TrustedBranch, entry: DecisionEntry, request: RequestEntry, now: datetime) -> DecisionVerdict:
    check = entry.signature

    def verdict(reason: Reason | None) -> DecisionVerdict:
        return DecisionVerdict(
            person=entry.person,
            decision=entry.decision.decision if entry.decision else None,
            commit=entry.commit,
            key=check.primary_key if check else None,
            signed_at=check.created if check else None,
            counts=reason is None,
            reason=reason.text if reason else "",
            code=reason.code if reason else "",
        )

    if entry.problem is not None or check is None or not check.good:
        return verdict(entry.problem or Reason(R.NOT_CHECKED, "signature was not checked"))
    if check.primary_key is None or check.signing_key is None or check.created is None:  # a good check names them
        return verdict(Reason(R.MALFORMED_SIGNATURE, "GnuPG named no key or time for the signature"))
    policy = trusted.policy
    if trusted.state is None:  # trusted.policy raised already
        raise NotTrusted("the approvals branch has no policy in force")
    action = policy.actions.get(request.request.action)
    if action is None:
        return verdict(Reason(R.UNKNOWN_ACTION, f"action {request.request.action} is no longer in the policy"))
    if entry.person not in action.approvers:
        return verdict(Reason(R.NOT_APPROVER, f"{entry.person} is no longer an approver of {action.name}"))
    if not action.self_approval:
        if entry.person in request.requesters(trusted):
            return verdict(Reason(R.SELF_APPROVAL,
                                  f"{entry.person} requested it: self-approval is not allowed for {action.name}"))
        unknown = request.unknown_requester(trusted)
        if unknown:
            return verdict(unknown)
    if trusted.state.key_owner(check) != entry.person:
        # an admin takes a stolen key out of the policy (they cannot revoke it): its decisions stop counting
        return verdict(Reason(R.WRONG_SIGNER, f"key {check.primary_key[-16:]} is no longer {entry.person}'s in the policy"))
    for keyring in (entry.state.keyring, trusted.state.keyring):
        key = keyring.keys.get(check.primary_key)
        if key is None:
            if keyring is entry.state.keyring:
                return verdict(Reason(R.KEY_MISSING, f"key {check.primary_key} is missing from keys/"))
            continue
        problem = key.problem_at(check.signing_key, now)
        if problem:
            return verdict(problem)
    if check.expires is not None and now >= check.expires:
        return verdict(Reason(R.EXPIRED_SIGNATURE, f"signature expired at {format_time(check.expires)}"))
    skew = policy.clock_skew
    if check.created > now + skew:
        return verdict(Reason(R.FUTURE, f"signed in the future ({format_time(check.created)})"))
    if entry.approves and now - check.created > action.freshness:
        return verdict(Reason(R.STALE, f"approval is {describe_age(now - check.created)} old, "
                                       f"freshness is {format_duration(action.freshness)}"))
    return verdict(None)


def judge_request(trusted: TrustedBranch, entry: RequestEntry, now: datetime) -> RequestVerdict:
    request = entry.request
    action = trusted.policy.actions.get(request.action)
    decisions = tuple(judge_decision(trusted, d, entry, now) for d in trusted.decisions.get(request.id, []))
    approvals = tuple(sorted({d.person for d in decisions if d.counts and d.decision == "approve"}))
    rejections = tuple(sorted({d.person for d in decisions if d.counts and d.decision == "reject"}))
    threshold = action.threshold if action else 0
    skew = trusted.policy.clock_skew
    reasons = [Reason(d.code, f"{d.person}: {d.reason}") for d in decisions if not d.counts]
    unknown = entry.unknown_requester(trusted) if action is not None and not action.self_approval else None
    if action is None:
        state = PENDING
        reasons.insert(0, Reason(R.UNKNOWN_ACTION, f"action {request.action} is no longer in the policy"))
    elif rejections:
        state = REJECTED
        reasons.insert(0, Reason(R.REJECTED, f"rejected by {', '.join(rejections)}"))
    elif now >= request.expires:
        state = EXPIRED
        reasons.insert(0, Reason(R.EXPIRED, f"request expired at {format_time(request.expires)}"))
    elif now < request.created - skew:
        state = NOT_YET_VALID
        reasons.insert(0, Reason(R.NOT_YET_VALID, f"request is valid only from {format_time(request.created)}"))
    elif len(approvals) >= threshold:
        state = APPROVED
        reasons = []
    else:
        state = PENDING
        who = f" ({', '.join(approvals)})" if approvals else ""
        reasons.insert(0, Reason(R.PENDING, f"{len(approvals)} of {threshold} approvals{who}"))
        if unknown and not decisions:
            reasons.insert(1, unknown)  # with decisions, each of them says it
    return RequestVerdict(
        id=request.id,
        action=request.action,
        target=request.target,
        requested_by=request.requested_by,
        requesters=tuple(sorted(entry.requesters(trusted))),
        reason_text=request.reason,
        created=request.created,
        expires=request.expires,
        commit=entry.commit,
        state=state,
        approvals=approvals,
        rejections=rejections,
        threshold=threshold,
        decisions=decisions,
        reasons=tuple(r.text for r in reasons),
        codes=tuple(r.code for r in reasons),
    )


def verify(trusted: TrustedBranch, action: str, target: str, now: datetime) -> Verdict:
    """`verify(action, target, now)` of docs/format.md, section 6."""
    if action not in trusted.policy.actions:
        raise BadInput(f"unknown action {action!r}: the policy has {', '.join(sorted(trusted.policy.actions)) or 'none'}")
    verdicts = tuple(judge_request(trusted, r, now) for r in trusted.requests_for(action, target))
    approved = next((v.id for v in verdicts if v.approved), None)
    if approved:
        reasons: tuple[str, ...] = ()
        codes: tuple[str, ...] = ()
    elif not verdicts:
        reasons, codes = (f"no request for {action} on {target[:12]}",), (R.NO_REQUEST,)
    else:
        reasons = tuple(f"request {v.id}: {r}" for v in verdicts for r in v.reasons)
        codes = tuple(c for v in verdicts for c in v.codes)
    return Verdict(action, target, now, approved, verdicts, reasons, codes)
