"""`gitjit policy check [FILE]`, the warning `request` gives for a request nobody can approve
(docs/format.md, section 13.3).

A policy is checked against the branch's people and keys as they are at the
tip: a person counts as able to approve only with a key listed for them, in
their own `keys/` file, neither expired nor revoked now. For every action,
every requester the action allows is tried in turn: where self-approval is
off the requester is left out, and the request must still have a route that
can hold (every rule, or the escalation). Anything else is a problem, named
by its key in the file; the policy is then refused (exit 2) before anyone
commits it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from gitjit.errors import BadInput
from gitjit.git.branch import ApprovalsBranch
from gitjit.model.limits import MAX_POLICY_BYTES
from gitjit.model.policy import POLICY_FILE, Action, Policy, parse_policy
from gitjit.namedtuple import NamedTuple
from gitjit.trust.eligibility import signers
from gitjit.trust.signatures import Keyring
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import judge_request


class PolicyCheck(NamedTuple):
    source: str
    problems: tuple[str, ...]  # each "<key>: <problem>"; any one refuses the policy
    notes: tuple[str, ...]  # worth knowing, not wrong (a person without a usable key)
    actions: int
    rules: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"source": self.source, "ok": self.ok, "problems": list(self.problems), "notes": list(self.notes),
                "actions": self.actions, "rules": self.rules}


def read_policy_file(path: str) -> bytes:
    try:
        size = Path(path).stat().st_size
        if size > MAX_POLICY_BYTES:
            raise BadInput(f"{path} is {size} bytes, the limit is {MAX_POLICY_BYTES}")
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def check(branch: ApprovalsBranch, path: str | None, now: datetime) -> PolicyCheck:
    """The branch's policy (or the one in `path`) checked against the branch's people and keys."""
    trusted = TrustedBranch.load(branch)
    if path is None:
        policy, source = trusted.policy, f"{POLICY_FILE} on {branch.name}"
    else:
        policy, source = parse_policy(read_policy_file(path), path), path  # BadInput: exit 2, one line
    return check_policy(policy, trusted.state.keyring, now, source)


def check_policy(policy: Policy, keyring: Keyring, now: datetime, source: str = POLICY_FILE) -> PolicyCheck:
    able = signers(policy, keyring, frozenset(policy.people), now)
    notes = tuple(f"people.{p}: no usable key in keys/{p}.asc: their approvals cannot count"
                  for p in sorted(set(policy.people) - able))
    problems: list[str] = []
    for p in sorted(policy.admins - able):
        problems.append(f"admins.people: {p} has no usable key in keys/{p}.asc")
    if len(policy.admins & able) < policy.admin_threshold:
        problems.append(f"admins.threshold: {policy.admin_threshold}, but only {len(policy.admins & able)} admins "
                        f"can sign: no policy change could ever be made")
    for action in policy.actions.values():
        problems += _action_problems(policy, action, able)
    rules = sum(len(a.rules) for a in policy.actions.values())
    return PolicyCheck(source, tuple(problems), notes, len(policy.actions), rules)


def _action_problems(policy: Policy, action: Action, able: frozenset[str]) -> list[str]:
    key = f"actions.{action.name}"
    routes = [(f"{key}.rules.{r.name}" if not action.simple else key, r.approvers, r.threshold) for r in action.rules]
    escalation = action.escalation
    out = []
    for where, approvers, threshold in routes:
        have = approvers & able
        if len(have) < threshold:
            out.append(f"{where}: can never hold: threshold {threshold}, but only {len(have)} of its approvers "
                       f"can sign ({', '.join(sorted(have)) or 'nobody'})")
    if out or action.self_approval:
        return out
    # self-approval off: a requester who is also an approver is left out of their own request
    requesters = sorted(action.requesters if action.requesters is not None else policy.people)
    for person in requesters:
        blocked = [(where, approvers, threshold) for where, approvers, threshold in routes
                   if len((approvers & able) - {person}) < threshold]
        if not blocked:
            continue
        if escalation is not None and len((escalation.approvers & able) - {person}) >= escalation.threshold:
            continue  # the escalation is still a route
        for where, approvers, threshold in blocked:
            left = sorted((approvers & able) - {person})
            out.append(f"{where}: can never hold when {person} requests (self_approval = false): threshold "
                       f"{threshold}, only {', '.join(left) or 'nobody'} left")
    return out


def unapprovable(branch: ApprovalsBranch, request_id: str, now: datetime) -> str | None:
    """Why a request just written can never be approved (judged on the local branch), or None."""
    trusted = TrustedBranch.load(branch, save=False)  # the write saved its own snapshot: this look changes nothing
    entry = trusted.requests.get(request_id)
    if entry is None:
        return None
    verdict = judge_request(trusted, entry, now)
    if verdict.approvable:
        return None
    return next((r for r, c in zip(verdict.reasons, verdict.codes, strict=True) if c == "unapprovable"), None)

