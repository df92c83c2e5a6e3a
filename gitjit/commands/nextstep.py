"""What happens next, said after each write (docs/format.md, section 8.3).

One function words it from the request's verdict, so every command says it
the same way: "1 of 2: waiting for carol (approve: gitjit approve ID)".
"""

from __future__ import annotations

from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import APPROVED, EXPIRED, NOT_YET_VALID, PENDING, REJECTED, RequestVerdict


def _names(people: list[str]) -> str:
    if len(people) <= 1:
        return "".join(people)
    return ", ".join(people[:-1]) + " or " + people[-1]


def waiting_for(trusted: TrustedBranch, verdict: RequestVerdict) -> list[str]:
    """Who could still approve: the action's approvers, less the requester (where self-approval is off)
    and anyone who already decided."""
    action = trusted.policy.actions.get(verdict.action)
    if action is None:
        return []
    eligible = set(action.approvers)
    if not action.self_approval:
        eligible -= set(verdict.requesters)
    decided = {d.person for d in verdict.decisions}
    return sorted(eligible - decided)


def next_step(trusted: TrustedBranch, verdict: RequestVerdict, pushed: bool, remote: str, branch: str) -> str:
    got, need = len(verdict.approvals), verdict.threshold
    if verdict.state == APPROVED:
        text = (f"{got} of {need}: approved by {', '.join(verdict.approvals)} "
                f"(check: gitjit verify {verdict.action} --target {verdict.target})")
    elif verdict.state == REJECTED:
        text = (f"rejected by {', '.join(verdict.rejections)}: it can no longer be approved "
                f"(ask again: gitjit request {verdict.action} --target {verdict.target})")
    elif verdict.state == EXPIRED:
        text = f"expired: it can no longer be approved (ask again: gitjit request {verdict.action})"
    elif verdict.state in (PENDING, NOT_YET_VALID):
        people = waiting_for(trusted, verdict)
        missing = need - got
        if not people:
            who = "nobody left who may approve it"
        elif missing >= len(people):
            who = " and ".join([", ".join(people[:-1]), people[-1]] if len(people) > 1 else people)
        else:
            who = f"{missing} more of {', '.join(people)}" if missing > 1 else _names(people)
        text = f"{got} of {need}: waiting for {who} (approve: gitjit approve {verdict.id})"
    else:
        text = f"{verdict.state}: {'; '.join(verdict.reasons)}"
    if not pushed:
        text += f"; not pushed yet: others see it after 'git push {remote} {branch}' (or use --push)"
    return text
