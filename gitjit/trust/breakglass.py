"""Break-glass requests at a time `now` (docs/format.md, section 6.5).

`trust/trusted.py` has already made sure a break-glass request counts only
when a person its action's `break_glass` names signed it. What is left
depends on the time, and is judged here on top of the request's verdict of
section 6:

- the request grants the action while it is live: inside its window
  (`created - clock_skew <= now < expires`), not vetoed, and its breaker
  still allowed by today's policy with a key neither expired nor revoked
  now;
- its review: the action's normal approvals, freshness aside (a review
  does not go stale), never the breaker's own. It is `reviewed` once enough
  count, `overdue` while not reviewed from `created + review_within` on,
  else due. A late review still ends the overdue state; the JSON says it
  was late.
"""

from __future__ import annotations

from datetime import datetime

from gitjit import reasons as R
from gitjit.model.grammar import format_time
from gitjit.reasons import Reason
from gitjit.trust.trusted import RequestEntry, TrustedBranch
from gitjit.trust.verdicts import (
    BREAK_GLASS,
    EXPIRED,
    NOT_YET_VALID,
    REJECTED,
    BreakGlassReview,
    DecisionVerdict,
    RequestVerdict,
)

REVIEWED, OVERDUE = f"{BREAK_GLASS} reviewed", f"{BREAK_GLASS} overdue"


def due_state(due: datetime) -> str:
    return f"{BREAK_GLASS} (review due {format_time(due)})"


def judge_break_glass(trusted: TrustedBranch, entry: RequestEntry, verdict: RequestVerdict,
                      now: datetime) -> RequestVerdict:
    request = entry.request
    then = entry.state.policy.action(request.action)  # the request counted: its action had break_glass then
    due = request.created + then.break_glass.review_within
    check = entry.signature(trusted)
    breaker = entry.signer(trusted)

    decisions = tuple(_own_review(d) if d.person == breaker else _never_stale(d) for d in verdict.decisions)
    reviews = sorted((d.signed_at, d.person) for d in decisions
                     if d.decision == "approve" and d.counts and d.signed_at is not None)
    reviewers = tuple(sorted({person for _, person in reviews}))
    threshold = verdict.threshold
    reviewed_at = reviews[threshold - 1][0] if threshold and len(reviewers) >= threshold else None
    if verdict.state == REJECTED:
        review = "rejected"
    elif reviewed_at is not None:
        review = "reviewed"
    elif now >= due:
        review = "overdue"
    else:
        review = "due"

    problem = _breaker_problem(trusted, entry, check, breaker, now)
    kept = verdict.state in (REJECTED, NOT_YET_VALID) or verdict.threshold == 0  # vetoed, early, or no action
    live = not kept and verdict.state != EXPIRED and problem is None
    state = {"reviewed": REVIEWED, "overdue": OVERDUE}.get(review, due_state(due))
    if kept:
        state = verdict.state
    reasons = [Reason(c, t) for t, c in zip(verdict.reasons, verdict.codes, strict=False)]
    if live:
        reasons = []
    else:
        reasons = [r for r in reasons if r.code != R.PENDING]  # a break-glass request waits for no approval
        if problem is not None:
            reasons.insert(0, problem)
    return verdict._replace(
        state=state,
        approvals=reviewers,
        decisions=decisions,
        reasons=tuple(r.text for r in reasons),
        codes=tuple(r.code for r in reasons),
        break_glass=BreakGlassReview(breaker, due, review, reviewers, reviewed_at, live),
    )


def _own_review(decision: DecisionVerdict) -> DecisionVerdict:
    """The breaker's own approval never counts for their break-glass request."""
    if decision.decision != "approve" or not (decision.counts or decision.code == R.STALE):
        return decision
    return decision._replace(counts=False, reason=f"{decision.person} broke the glass: their own review never counts",
                             code=R.OWN_REVIEW)


def _never_stale(decision: DecisionVerdict) -> DecisionVerdict:
    """A review counts whatever its age: freshness does not apply to break-glass reviews."""
    if decision.code != R.STALE:
        return decision
    return decision._replace(counts=True, reason="", code="")


def _breaker_problem(trusted: TrustedBranch, entry: RequestEntry, check, breaker: str | None,
                     now: datetime) -> Reason | None:
    """Why the breaker may not act now: today's policy and the key material, as for an approval."""
    action = trusted.policy.action(entry.request.action)
    if action is None or action.break_glass is None:
        return Reason(R.NO_BREAK_GLASS, f"action {entry.request.action} no longer has break_glass")
    if check is None or breaker is None or breaker not in action.break_glass.people:
        return Reason(R.NOT_A_BREAKER, f"{breaker or 'nobody'} may no longer break the glass for {action.name}")
    if trusted.state.key_owner(check) != breaker:
        return Reason(R.WRONG_SIGNER, f"key {check.primary_key[-16:]} is no longer {breaker}'s in the policy")
    for keyring in (entry.state.keyring, trusted.state.keyring):
        key = keyring.keys.get(check.primary_key)
        problem = key.problem_at(check.signing_key, now) if key is not None else None
        if problem:
            return problem.prefixed(breaker)
    if check.expires is not None and now >= check.expires:
        return Reason(R.EXPIRED_SIGNATURE, f"{breaker}: signature expired at {format_time(check.expires)}")
    return None
