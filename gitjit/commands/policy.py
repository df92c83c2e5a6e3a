"""`gitjit policy check [FILE]`, the warning `request` gives for a request nobody can approve
(docs/format.md, section 13.3), and `gitjit policy propose` / `apply` (section 14).

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

import difflib
import secrets
from datetime import datetime
from pathlib import Path

from gitjit import reasons as R
from gitjit.commands import write
from gitjit.errors import BadInput, GitjitError, NotTrusted
from gitjit.git.branch import ApprovalsBranch
from gitjit.model import layout
from gitjit.model.grammar import is_valid_name, parse_duration
from gitjit.model.limits import MAX_POLICY_BYTES
from gitjit.model.policy import POLICY_ACTION, POLICY_FILE, Action, Policy, parse_policy
from gitjit.model.records import Request, render_request
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.trust.eligibility import signers
from gitjit.trust.quorum import PROPOSALS, TRAILER, proposed_tree
from gitjit.trust.signatures import Keyring
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import judge_request

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from gitjit.git.read import TreeEntry


class PolicyCheck(NamedTuple):
    source: str
    problems: tuple[str, ...]  # each "<key>: <problem>"; any one refuses the policy
    notes: tuple[str, ...]  # worth knowing, not wrong (a person without a usable key)
    actions: int
    rules: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
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
    if trusted.state is None:  # a loaded view has its policy
        raise NotTrusted("the approvals branch has no policy in force")
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
    return judge_request(trusted, entry, now).unapprovable or None


# -- admin quorum: propose, apply, show (docs/format.md, section 14) -------------------------------------


class ProposalNotReady(GitjitError):
    """`policy apply` on a proposal without its quorum, or rejected: exit 1, nothing written."""

    code = R.NO_QUORUM
    exit_code = 1


def _tip_files(branch: ApprovalsBranch, base: str) -> tuple[bytes, dict[str, bytes]]:
    """policy.toml and every keys/<person>.asc at `base`."""
    top = branch.tree(branch.commit(base).tree)
    keys = {}
    folder = top.get("keys")
    if folder is not None and folder.is_tree:
        keys = {e.name[:-4]: branch.blob(e.id) for e in branch.tree(folder.id).values() if e.name.endswith(".asc")}
    return branch.blob(top[POLICY_FILE].id), keys


def propose(branch: ApprovalsBranch, policy_file: str | None, add_keys: list[str], remove_keys: list[str],
            reason: str, ttl: str | None, now: datetime, push: bool = False, offline: bool = False) -> tuple[str, str]:
    """Records a proposal (its bytes, then its request, signed); returns (id, the request commit)."""
    if not reason.strip():
        raise BadInput("give --reason: admins see it when they decide")
    write._check_text(reason, "--reason")
    proposed_policy = read_policy_file(policy_file) if policy_file else None
    added = {}
    for spec in add_keys:
        person, sep, path = spec.partition("=")
        if not sep or not is_valid_name(person):
            raise BadInput(f"--add-key {spec!r}: expected PERSON=FILE")
        added[person] = write.read_key_file(path)[1]
    if proposed_policy is not None:
        parse_policy(proposed_policy, policy_file or POLICY_FILE)  # a proposal that could never apply is bad input
    ids: list[tuple[str, str]] = []  # (the proposal's id, its shard): the same on every attempt

    def compose(trusted: TrustedBranch, base: str) -> write.Draft:
        policy = trusted.policy
        if not ids:
            # layout 2: the request's id ends with the shard of its target, the commit that holds proposals/<id>/
            shard = layout.new_id_suffix(secrets.token_hex(1), policy.layout)
            ids.append((write.new_request_id(POLICY_ACTION, now, shard, policy.layout), shard))
        proposal, shard = ids[0]
        if not policy.quorum:
            raise BadInput("admins.threshold is 1: a policy change needs no proposal (commit it signed, as an admin)")
        current_policy, current_keys = _tip_files(branch, base)
        keys = {**current_keys, **added}
        for person in remove_keys:
            if person not in keys:
                raise BadInput(f"--remove-key {person}: keys/{person}.asc is not on the branch")
            del keys[person]
        new_policy = proposed_policy if proposed_policy is not None else current_policy
        if new_policy == current_policy and keys == current_keys:
            raise BadInput("the proposal changes nothing: give --policy FILE, --add-key or --remove-key")
        lifetime = parse_duration(ttl, "--ttl") if ttl else min(write.DEFAULT_TTL, policy.max_ttl)
        if lifetime > policy.max_ttl or lifetime.total_seconds() <= 0:
            raise BadInput(f"--ttl {ttl} is above max_ttl of the policy or not positive")
        files: dict[str, bytes | None] = {f"{PROPOSALS}/{proposal}/{POLICY_FILE}": new_policy}
        files.update({f"{PROPOSALS}/{proposal}/keys/{p}.asc": data for p, data in keys.items()})

        def request_commit(first: str) -> write.Draft:
            record = Request(proposal, POLICY_ACTION, first, write._identity(branch), reason, now, now + lifetime)
            message = f"gitjit: request {proposal}\n\npolicy change proposed in {first}\n"
            path = layout.request_path(proposal, first, policy.layout)
            return write.Draft({path: render_request(record)}, message, True)

        return write.Draft(files, f"gitjit: proposal {proposal} (the proposed bytes)\n", False, then=request_commit,
                           prefix=shard)

    written, _ = write._write(branch, compose, push, offline)
    return ids[0][0], written.commit


def proposal_diff(trusted: TrustedBranch, proposal: str) -> list[str]:
    """The proposed change against the policy in force, as unified-diff lines (policy.toml, then keys/)."""
    entry = trusted.requests.get(proposal)
    if entry is None or entry.request.action != POLICY_ACTION:
        return []
    proposed = proposed_tree(trusted, entry.request.target, proposal)
    if proposed is None or POLICY_FILE not in proposed:
        return [f"(the proposed bytes of {proposal} cannot be read)"]
    branch = trusted.branch
    if trusted.state is None:  # a loaded view has its policy
        raise NotTrusted("the approvals branch has no policy in force")
    in_force = branch.tree(branch.commit(trusted.state.commit).tree)
    old = branch.blob(in_force[POLICY_FILE].id).decode("utf-8", "replace").splitlines()
    new = branch.blob(proposed[POLICY_FILE].id).decode("utf-8", "replace").splitlines()
    lines = list(difflib.unified_diff(old, new, f"a/{POLICY_FILE}", f"b/{POLICY_FILE}", lineterm=""))

    def key_ids(top: dict[str, TreeEntry]) -> dict[str, str]:
        folder = top.get("keys")
        return {e.name: e.id for e in branch.tree(folder.id).values()} if folder is not None and folder.is_tree else {}

    before, after = key_ids(in_force), key_ids(proposed)
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            lines.append(f"keys/{name}: removed")
        elif name not in before:
            lines.append(f"keys/{name}: added ({', '.join(write.fingerprints_in(branch.blob(after[name]))) or '?'})")
        elif before[name] != after[name]:
            lines.append(f"keys/{name}: changed ({', '.join(write.fingerprints_in(branch.blob(after[name]))) or '?'})")
    return lines or ["(no change against the policy in force)"]


def apply(branch: ApprovalsBranch, proposal: str, now: datetime, push: bool = False,
          offline: bool = False) -> tuple[str, tuple[str, ...]]:
    """Commits an approved proposal; returns (the commit, the admins who signed for it)."""
    signed: list[str] = []

    def compose(trusted: TrustedBranch, base: str) -> write.Draft:
        policy = trusted.policy
        entry = trusted.requests.get(proposal)
        if entry is None or entry.request.action != POLICY_ACTION:
            raise BadInput(f"unknown policy proposal {proposal!r}")
        me = policy.person_with_key(write.signing_key(branch))
        if me is None or me not in policy.admins:
            raise BadInput(f"your signing key is not an admin's: {me or 'nobody'} may not apply a policy change")
        if trusted.state is None:  # trusted.policy raised already
            raise NotTrusted("the approvals branch has no policy in force")
        if entry.state_commit != trusted.state.commit:
            raise BadInput(f"proposal {proposal} was made under an earlier policy (applied already, or the policy "
                           f"changed since): propose again")
        verdict = judge_request(trusted, entry, now)
        if verdict.rejections:
            raise ProposalNotReady(f"proposal {proposal} is rejected by {', '.join(verdict.rejections)}")
        if now >= entry.request.expires:
            raise ProposalNotReady(f"proposal {proposal} expired at {entry.request.expires:%Y-%m-%dT%H:%M:%SZ}")
        admins = set(verdict.approvals) & policy.admins | {me}
        if len(admins) < policy.admin_threshold:
            others = sorted(policy.admins - admins)
            raise ProposalNotReady(f"proposal {proposal} has {len(admins)} of {policy.admin_threshold} admin "
                                   f"signatures ({', '.join(sorted(admins))}, yours included): needs "
                                   f"{policy.admin_threshold - len(admins)} more of {', '.join(others)}")
        proposed = proposed_tree(trusted, entry.request.target, proposal)
        if proposed is None or POLICY_FILE not in proposed:
            raise BadInput(f"the proposed bytes of {proposal} cannot be read")
        signed[:] = sorted(admins)
        message = f"gitjit: apply policy proposal {proposal}\n\n{TRAILER}: {proposal}\n"
        return write.Draft({}, message, True, tree=lambda at: _applied_tree(branch, at or base, proposed))

    written, _ = write._write(branch, compose, push, offline)
    return written.commit, tuple(signed)


def _applied_tree(branch: ApprovalsBranch, base: str, proposed: dict[str, TreeEntry]) -> str:
    """The tree at `base` with policy.toml and keys/ taken, as objects, from the proposal."""
    import pygit2

    builder = branch.repo.TreeBuilder(branch.repo[base].tree)
    builder.insert(POLICY_FILE, pygit2.Oid(hex=proposed[POLICY_FILE].id), pygit2.enums.FileMode.BLOB)
    if "keys" in proposed:
        builder.insert("keys", pygit2.Oid(hex=proposed["keys"].id), pygit2.enums.FileMode.TREE)
    elif builder.get("keys") is not None:
        builder.remove("keys")
    return str(builder.write())
