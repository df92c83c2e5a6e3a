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

The rules of docs/format.md, section 13, are tallied here too: each rule of the action counts the
approvals of its own approvers (one person counts for every rule they are
in); the request is approved when every rule holds, or when the escalation
holds from approvals signed at least `after` past the request's `created`.
A rule that cannot hold any more (too few people left who can sign, the
requester aside) makes the request unapprovable, which `run` acts on at once.

Break-glass requests and single-use actions (sections 6.5, 6.6) are judged
on top of that verdict, by trust/breakglass.py and trust/uses.py: they add
states (`break-glass ...`, `used`) and fields, and change nothing else.

A verdict is a value: the CLI renders it as a table or JSON, the hook as
refusal lines. Every reason a request is not approved is kept.
"""

from __future__ import annotations

from datetime import datetime

from gitjit import reasons as R
from gitjit.errors import BadInput, NotTrusted
from gitjit.model.grammar import describe_age, format_duration, format_time
from gitjit.model.policy import Action
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.reasons import Reason
from gitjit.trust.eligibility import signers
from gitjit.trust.trusted import DecisionEntry, RequestEntry, TrustedBranch

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

APPROVED, PENDING, REJECTED, EXPIRED, NOT_YET_VALID = "approved", "pending", "rejected", "expired", "not-yet-valid"
USED = "used"  # a single-use request whose every use is recorded (section 6.6)
BREAK_GLASS = "break-glass"  # every break-glass state starts with it (section 6.5)


class DecisionVerdict(NamedTuple):
    person: str
    decision: str | None  # "approve", "reject", or None when the file is unreadable
    commit: str
    key: str | None  # primary-key fingerprint of the signer
    signed_at: datetime | None
    counts: bool
    reason: str  # why it does not count; empty when it counts
    code: str = ""  # the reason's code (gitjit.reasons); empty when it counts
    comment: str = ""  # the decision file's comment: why they approved or vetoed


ESCALATION = "escalation"  # the name of the escalation's tally
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


class RuleTally(NamedTuple):
    """One rule (or the escalation) of a request's action, counted at `now` (docs/format.md, section 13)."""

    name: str
    threshold: int
    approvals: tuple[str, ...]  # people of the rule whose approval counts for it
    candidates: tuple[str, ...]  # people of the rule who have not decided and can still sign one that counts
    opens: datetime | None = None  # the escalation only: when its approvals start to count
    open: bool = True  # the escalation only: whether it can still be met before the request expires

    @property
    def holds(self) -> bool:
        return len(self.approvals) >= self.threshold

    @property
    def possible(self) -> bool:
        """Whether the rule can still hold, with the people and keys as they are."""
        return self.open and len(self.approvals) + len(self.candidates) >= self.threshold

    @property
    def missing(self) -> int:
        return max(0, self.threshold - len(self.approvals))

    def needs(self) -> str:
        """"one of dave, erin": who is still needed."""
        count = _WORDS.get(self.missing, str(self.missing))
        if not self.candidates:
            return f"{count} more, and nobody is left"
        if len(self.candidates) < self.missing:
            return f"{count}, and only {', '.join(self.candidates)} is left"
        return f"{count} of {', '.join(self.candidates)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "have": len(self.approvals),
            "need": self.threshold,
            "holds": self.holds,
            "approvals": list(self.approvals),
            "candidates": list(self.candidates),
            "possible": self.possible,
            "opens": format_time(self.opens) if self.opens else None,
        }


def rules_summary(tallies: tuple[RuleTally, ...], now: datetime) -> str:
    """"sre 2 of 2, security 0 of 1: needs one of dave, erin", then the escalation's state."""
    rules = [t for t in tallies if t.name != ESCALATION or t.opens is None]
    text = ", ".join(f"{t.name} {len(t.approvals)} of {t.threshold}" for t in rules)
    unmet = [t for t in rules if not t.holds]
    if len(unmet) == 1:
        text += f": needs {unmet[0].needs()}"
    elif unmet:
        text += ": needs " + " and ".join(f"{t.needs()} ({t.name})" for t in unmet)
    for t in tallies:
        if t.name == ESCALATION and t.opens is not None:
            if not t.open:
                text += f"; escalation would open at {format_time(t.opens)}, after the request expires"
            elif now < t.opens:
                text += f"; escalation opens at {format_time(t.opens)}: then {t.needs()}"
            else:
                text += f"; escalation {len(t.approvals)} of {t.threshold} (open since {format_time(t.opens)})"
                if not t.holds:
                    text += f": needs {t.needs()}"
    return text


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
    break_glass: BreakGlassReview | None = None  # for a break-glass request (section 6.5)
    uses: int | None = None  # the action's `uses`; None: unlimited (section 6.6)
    uses_left: int | None = None
    use_records: tuple[UseVerdict, ...] = ()
    rules: tuple[RuleTally, ...] = ()  # each rule of the action, then the escalation if it has one
    unapprovable: str = ""  # why no rule set (nor the escalation) can hold any more; empty while one can

    @property
    def approvable(self) -> bool:
        return not self.unapprovable

    @property
    def approved(self) -> bool:
        if self.break_glass is not None and self.state.startswith(BREAK_GLASS):
            return self.break_glass.live  # acted on before approval, while the request is live
        return self.state == APPROVED

    @property
    def progress(self) -> tuple[int, int]:
        """(have, need) over the rules: the approvals that count toward each rule's threshold, summed."""
        rules = [t for t in self.rules if t.opens is None]
        if not rules:
            return len(self.approvals), self.threshold
        return sum(min(len(t.approvals), t.threshold) for t in rules), sum(t.threshold for t in rules)


class BreakGlassReview(NamedTuple):
    """Where a break-glass request's after-the-fact review stands (section 6.5)."""

    breaker: str | None  # who broke the glass: the request's signer
    review_due: datetime  # created + review_within
    review: str  # "due", "reviewed", "overdue" or "rejected"
    reviewed_by: tuple[str, ...]  # approvers whose review counts (never the breaker)
    reviewed_at: datetime | None  # when the last review needed was signed
    live: bool  # the request grants the action now (its window, its breaker still allowed)

    @property
    def overdue(self) -> bool:
        return self.review == "overdue"



class UseVerdict(NamedTuple):
    """One recorded use of a single-use request (section 6.6)."""

    number: int
    commit: str
    user: str | None  # who signed the record
    tag: str  # the protected tag it is for, if any
    signed_at: datetime | None
    counts: bool  # the record is valid; a use is consumed either way
    reason: str = ""
    code: str = ""



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
            comment=entry.decision.comment if entry.decision else "",
        )

    if entry.problem is not None or check is None or not check.good:
        return verdict(entry.problem or Reason(R.NOT_CHECKED, "signature was not checked"))
    if check.primary_key is None or check.signing_key is None or check.created is None:  # a good check names them
        return verdict(Reason(R.MALFORMED_SIGNATURE, "GnuPG named no key or time for the signature"))
    policy = trusted.policy
    if trusted.state is None:  # trusted.policy raised already
        raise NotTrusted("the approvals branch has no policy in force")
    action = policy.action(request.request.action)
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


def tally(trusted: TrustedBranch, action: Action, entry: RequestEntry, decisions: tuple[DecisionVerdict, ...],
          now: datetime) -> tuple[RuleTally, ...]:
    """Each rule of `action` counted for one request, then its escalation (docs/format.md, section 13)."""
    counted = {d.person: d.signed_at for d in decisions if d.counts and d.decision == "approve"}
    decided = {d.person for d in decisions}  # a decision file is immutable: one per person
    excluded = entry.requesters(trusted) if not action.self_approval else set()
    state = trusted.state
    if state is None:  # trusted.policy raises the same
        raise NotTrusted("the approvals branch has no policy in force")

    def left(approvers: frozenset[str]) -> tuple[str, ...]:
        return tuple(sorted(signers(state.policy, state.keyring, approvers - decided - excluded, now)))

    tallies = [RuleTally(rule.name, rule.threshold, tuple(sorted(counted.keys() & rule.approvers)), left(rule.approvers))
               for rule in action.rules]
    escalation = action.escalation
    if escalation is not None:
        opens = entry.request.created + escalation.after
        late = tuple(sorted(p for p, at in counted.items() if p in escalation.approvers and at is not None and at >= opens))
        tallies.append(RuleTally(ESCALATION, escalation.threshold, late, left(escalation.approvers), opens,
                                 opens < entry.request.expires))
    return tuple(tallies)


def _approved(tallies: tuple[RuleTally, ...]) -> bool:
    rules = [t for t in tallies if t.opens is None]
    return all(t.holds for t in rules) or any(t.holds for t in tallies if t.opens is not None)


def _approvable(tallies: tuple[RuleTally, ...]) -> bool:
    rules = [t for t in tallies if t.opens is None]
    return all(t.possible for t in rules) or any(t.possible for t in tallies if t.opens is not None)


def _unapprovable_reason(tallies: tuple[RuleTally, ...], requesters: set[str], action: Action) -> Reason:
    blocked = [t for t in tallies if not t.possible]
    parts = []
    for t in blocked:
        if not t.open:
            parts.append(f"{t.name} opens only after the request expires")
            continue
        who = ", ".join(sorted(set(t.approvals) | set(t.candidates)))
        parts.append(f"{t.name} needs {t.threshold}, only {who} can approve" if who
                     else f"{t.name} needs {t.threshold}, nobody can still approve")
    aside = ""
    if requesters and not action.self_approval:
        aside = f" ({', '.join(sorted(requesters))} requested it and may not approve)"
    return Reason(R.UNAPPROVABLE, "can never be approved with the policy and keys as they are: "
                                  + "; ".join(parts) + aside)


def judge_request(trusted: TrustedBranch, entry: RequestEntry, now: datetime) -> RequestVerdict:
    request = entry.request
    action = trusted.policy.action(request.action)
    decisions = tuple(judge_decision(trusted, d, entry, now) for d in trusted.decisions.get(request.id, []))
    approvals = tuple(sorted({d.person for d in decisions if d.counts and d.decision == "approve"}))
    rejections = tuple(sorted({d.person for d in decisions if d.counts and d.decision == "reject"}))
    threshold = action.threshold if action else 0
    tallies = tally(trusted, action, entry, decisions, now) if action else ()
    unapprovable = ""
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
    elif _approved(tallies):
        state = APPROVED
        reasons = []
    else:
        state = PENDING
        if action.simple:
            who = f" ({', '.join(approvals)})" if approvals else ""
            reasons.insert(0, Reason(R.PENDING, f"{len(approvals)} of {threshold} approvals{who}"))
        else:
            reasons.insert(0, Reason(R.PENDING, rules_summary(tallies, now)))
        if unknown and not decisions:
            reasons.insert(1, unknown)  # with decisions, each of them says it
        if not _approvable(tallies):  # beside the reasons: they say why not yet, this why never
            unapprovable = _unapprovable_reason(tallies, entry.requesters(trusted), action).text
    verdict = RequestVerdict(
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
        rules=tallies,
        unapprovable=unapprovable,
    )
    return _break_glass_and_uses(trusted, entry, verdict, now)


def _break_glass_and_uses(trusted: TrustedBranch, entry: RequestEntry, verdict: RequestVerdict,
                          now: datetime) -> RequestVerdict:
    """Sections 6.5 and 6.6, on top of the verdict of section 6 (only their requests pay for the imports)."""
    if entry.request.break_glass:
        from gitjit.trust.breakglass import judge_break_glass

        verdict = judge_break_glass(trusted, entry, verdict, now)
    action = trusted.policy.action(entry.request.action)
    if (action is not None and action.uses is not None) or entry.request.id in trusted.uses:
        from gitjit.trust.uses import judge_uses

        verdict = judge_uses(trusted, entry, verdict, action)
    return verdict


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
