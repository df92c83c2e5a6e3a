"""Which requests `gitjit status --pending` and `--mine` list (docs/format.md, section 8).

A request is open while it is pending. It waits on a person when it is open,
that person may approve its action (and is not its requester where
self-approval is off), and they have no decision on it that counts: an
approval gone stale waits on them again.
"""

from __future__ import annotations

from gitjit.errors import BadInput
from gitjit.git.branch import ApprovalsBranch
from gitjit.model.policy import Policy
from gitjit.trust.verdicts import PENDING, RequestVerdict


def is_open(verdict: RequestVerdict) -> bool:
    return verdict.state == PENDING


def me(branch: ApprovalsBranch, policy: Policy) -> str:
    """The person of the policy whose key is this clone's signing key (git config user.signingkey)."""
    from gitjit.commands.write import signing_key

    fingerprint = signing_key(branch)
    person = policy.person_with_key(fingerprint)
    if person is None:
        raise BadInput(f"your signing key {fingerprint} (git config user.signingkey) belongs to nobody in the policy")
    return person


def waiting_on(policy: Policy, verdict: RequestVerdict, person: str) -> bool:
    action = policy.actions.get(verdict.action)
    if action is None or not is_open(verdict) or person not in action.approvers:
        return False
    if not action.self_approval and person in verdict.requesters:
        return False
    return not any(d.person == person and d.counts for d in verdict.decisions)
