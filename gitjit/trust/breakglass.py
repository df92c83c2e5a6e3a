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
  does not go stale), never the breaker's own. It is `reviewed` once every
  rule of the action holds on such approvals (or the escalation does, from
  those signed once it opens: the routes of a normal approval), `overdue`
  while not reviewed from `created + review_within` on, else due. A late
  review still ends the overdue state; the JSON says it was late.
"""

from __future__ import annotations

from datetime import datetime

from gitjit import reasons as R
from gitjit.errors import NotTrusted
from gitjit.model.grammar import format_time
from gitjit.namedtuple import TYPE_CHECKING
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
    RuleTally,
    _approvable,
    _approved,
    _unapprovable_reason,
    tally,
)

if TYPE_CHECKING:  # pragma: no cover
    from gitjit.model.policy import Action
    from gitjit.trust.signatures import CommitParts, SignatureCheck

REVIEWED, OVERDUE = f"{BREAK_GLASS} reviewed", f"{BREAK_GLASS} overdue"


def due_state(due: datetime) -> str:
    return f"{BREAK_GLASS} (review due {format_time(due)})"


def judge_break_glass(trusted: TrustedBranch, entry: RequestEntry, verdict: RequestVerdict,
                      now: datetime) -> RequestVerdict:
    request = entry.request
    then = entry.state.policy.action(request.action)  # the request counted: its action had break_glass then
    if then is None or then.break_glass is None:
        raise NotTrusted(f"break-glass request {request.id}: its action had no break_glass when it was made")
    due = request.created + then.break_glass.review_within
    check = entry.signature(trusted)
    breaker = entry.signer(trusted)

    decisions = tuple(_own_review(d) if d.person == breaker else _never_stale(d) for d in verdict.decisions)
    reviews = sorted((d.signed_at, d.person) for d in decisions
                     if d.decision == "approve" and d.counts and d.signed_at is not None)
    reviewers = tuple(sorted({person for _, person in reviews}))
    action = trusted.policy.action(request.action)
    tallies = _review_tallies(trusted, action, entry, decisions, breaker, now) if action else ()
    reviewed_at = _reviewed_at(tallies, {person: at for at, person in reviews})
    unapprovable = ""
    if action is not None and tallies and reviewed_at is None and not _approvable(tallies):
        unapprovable = _unapprovable_reason(tallies, {breaker} if breaker else set(), action).text
    review = _review(verdict, reviewed_at, now, due)
    problem = _breaker_problem(trusted, entry, check, breaker, now)
    state, live, reasons = _outcome(verdict, review, due, problem)
    return verdict._replace(
        state=state,
        approvals=reviewers,
        decisions=decisions,
        reasons=tuple(r.text for r in reasons),
        codes=tuple(r.code for r in reasons),
        break_glass=BreakGlassReview(breaker, due, review, reviewers, reviewed_at, live),
        rules=tallies,
        unapprovable=unapprovable,
    )


def _review(verdict: RequestVerdict, reviewed_at: datetime | None, now: datetime, due: datetime) -> str:
    """Where the review stands: rejected, reviewed, overdue or due."""
    if verdict.state == REJECTED:
        return "rejected"
    if reviewed_at is not None:
        return "reviewed"
    return "overdue" if now >= due else "due"


def _outcome(verdict: RequestVerdict, review: str, due: datetime,
             problem: Reason | None) -> tuple[str, bool, list[Reason]]:
    """(state, live, reasons): live means CMD may run now, on the breaker's word, before any review."""
    kept = verdict.state in (REJECTED, NOT_YET_VALID) or verdict.threshold == 0  # vetoed, early, or no action
    live = not kept and verdict.state != EXPIRED and problem is None
    state = verdict.state if kept else {"reviewed": REVIEWED, "overdue": OVERDUE}.get(review, due_state(due))
    if live:
        return state, live, []
    reasons = [Reason(c, t) for t, c in zip(verdict.reasons, verdict.codes, strict=False)]
    reasons = [r for r in reasons if r.code != R.PENDING]  # a break-glass request waits for no approval
    if problem is not None:
        reasons.insert(0, problem)
    return state, live, reasons


def _review_tallies(trusted: TrustedBranch, action: Action, entry: RequestEntry, decisions: tuple[DecisionVerdict, ...],
                    breaker: str | None, now: datetime) -> tuple[RuleTally, ...]:
    """The action's rules (and escalation) counted on the review's decisions; the breaker is nobody's candidate."""
    tallies = tally(trusted, action, entry, decisions, now)
    return tuple(t._replace(candidates=tuple(p for p in t.candidates if p != breaker)) for t in tallies)


def _reviewed_at(tallies: tuple[RuleTally, ...], signed: dict[str, datetime]) -> datetime | None:
    """When the review became complete: the earliest time every rule held, or the escalation did; None if not yet."""
    if not tallies or not _approved(tallies):
        return None

    def held_at(t: RuleTally) -> datetime | None:
        times = sorted(signed[p] for p in t.approvals if p in signed)
        return times[t.threshold - 1] if len(times) >= t.threshold else None

    routes: list[datetime] = []
    rules = [held_at(t) for t in tallies if t.opens is None]
    held = [at for at in rules if at is not None]
    if rules and len(held) == len(rules):
        routes.append(max(held))
    routes += [at for t in tallies if t.opens is not None and (at := held_at(t)) is not None]
    return min(routes) if routes else None


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


def _breaker_problem(trusted: TrustedBranch, entry: RequestEntry, check: SignatureCheck | None, breaker: str | None,
                     now: datetime) -> Reason | None:
    """Why the breaker may not act now: today's policy and the key material, as for an approval."""
    action = trusted.policy.action(entry.request.action)
    if action is None or action.break_glass is None:
        return Reason(R.NO_BREAK_GLASS, f"action {entry.request.action} no longer has break_glass")
    if check is None or breaker is None or breaker not in action.break_glass.people:
        return Reason(R.NOT_A_BREAKER, f"{breaker or 'nobody'} may no longer break the glass for {action.name}")
    if check.primary_key is None or check.signing_key is None:  # a counted signature names them
        return Reason(R.MALFORMED_SIGNATURE, f"GnuPG named no key for {breaker}'s break-glass signature")
    if trusted.state is None:  # trusted.policy raised already
        raise NotTrusted("the approvals branch has no policy in force")
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


# -- replaying a break-glass request (the rule of section 6.5, applied by trust/trusted.py) --

def signer_problem(view: TrustedBranch, entry: RequestEntry, action: Action, parts: CommitParts) -> Reason | None:
    """Why a break-glass request does not count: it must be signed, when it says it was made,
    by a person its action's `break_glass` names (docs/format.md, section 6.5)."""
    if action.break_glass is None:
        return Reason(R.NO_BREAK_GLASS, f"action {action.name} has no break_glass")
    check = entry.signature(view)  # checked now: whether the request counts depends on it
    if check is None:
        return Reason(R.NOT_A_BREAKER, "a break-glass request must be signed by the person breaking the glass")
    if not check.good:
        return Reason(R.NOT_A_BREAKER, f"the break-glass signature does not count: {check.reason}")
    if check.created is None:
        return Reason(R.MALFORMED_SIGNATURE, "GnuPG gave no time for the break-glass signature")
    breaker = entry.state.key_owner(check)
    if breaker is None or breaker not in action.break_glass.people:
        who = breaker or f"key {check.primary_key}"
        return Reason(R.NOT_A_BREAKER, f"{who} may not break the glass for {action.name}")
    skew = entry.state.policy.clock_skew
    late = view.witness_problem(check.created, "signed", skew)
    if late:
        return late
    if abs(check.created - entry.request.created) > skew or abs(check.created - parts.committer_time) > skew:
        return Reason(R.CLOCK_SKEW, "a break-glass request's created, signature and committer times must agree "
                                    "within clock_skew")
    return None
