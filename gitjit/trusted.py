"""The trusted view of the approvals branch, built commit by commit (SPEC s.1, s.2, s.5, s.7).

Like python-tuf's trusted metadata set, one class owns "what is trusted so
far" and extends it one untrusted commit at a time, checking in a fixed
order and storing nothing half-checked:

1. The root commit is the pinned one (`gitjit.root`); it adds only
   `policy.toml` and `keys/`, and an admin its own policy names signed it
   with a key from its own `keys/` (s.7).
2. Every commit has at most one parent: the branch is linear (s.1).
3. A commit that touches `policy.toml` or `keys/` touches nothing else, its
   policy parses, and an admin of the policy in force at its parent signed it
   with a key from the parent's `keys/` (s.7). Anything less makes the whole
   branch untrusted (`NotTrusted`): it never silently falls back.
4. Any other commit adds exactly one file and changes nothing else (s.1);
   one that does not is recorded as a `Refusal` and does not count.
5. An added request parses, names an action of the policy in force, asks for
   no more than `max_ttl`, and was made by an allowed requester (s.4).
6. An added decision parses, is signed by the person its path names with a
   key the policy in force lists for them, was made by an approver of the
   action, and is bound to the request's id, blob and target (s.5, s.6).
   What depends on the time of verification (freshness, expiry of keys and
   requests) is judged later, by `verdicts.py`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from .branch import ApprovalsBranch, Change, cache_dir
from .errors import BadInput, BadPolicy, NotTrusted
from .names import is_valid_name
from .policy import POLICY_FILE, Policy, parse_policy
from .records import Decision, Request, parse_decision, parse_request
from .sigcache import SignatureCache
from .signatures import CommitParts, Keyring, MalformedCommit, SignatureCheck, split_commit


@dataclass(frozen=True)
class PolicyState:
    """The policy in force and the keyring of the `keys/` beside it."""

    policy: Policy
    keyring: Keyring
    commit: str

    def key_owner(self, check: SignatureCheck) -> str | None:
        """The person a good signature counts for: key in the policy and in their own keys/ file."""
        if not check.good or check.primary_key is None:
            return None
        person = self.policy.person_with_key(check.primary_key)
        if person is None or check.primary_key not in self.keyring.owners.get(person, ()):
            return None
        return person


@dataclass(frozen=True)
class Refusal:
    """A commit on the branch that does not count, and why."""

    commit: str
    reason: str


@dataclass
class RequestEntry:
    request: Request
    commit: str
    blob: str
    position: int
    parts: CommitParts
    state: PolicyState  # in force when the request was added
    _signature: SignatureCheck | None = None

    def signature(self, trusted: "TrustedBranch") -> SignatureCheck | None:
        if self.parts.signature is None:
            return None
        if self._signature is None:
            self._signature = trusted.check_signature(self.commit, self.parts, self.state.keyring)
        return self._signature

    def signer(self, trusted: "TrustedBranch") -> str | None:
        check = self.signature(trusted)
        return self.state.key_owner(check) if check is not None else None

    def requesters(self, trusted: "TrustedBranch") -> set[str]:
        """Everyone who may be the requester: the signer, and the author by email.

        The author email is not authenticated, so it may only ever take
        approvals away (self-approval), never grant anything.
        """
        found = {self.signer(trusted), self.state.policy.person_with_email(self.parts.author_email)}
        return {p for p in found if p}


@dataclass
class DecisionEntry:
    person: str
    request_id: str
    commit: str
    position: int
    parts: CommitParts
    state: PolicyState  # in force at the decision's commit
    decision: Decision | None = None
    signature: SignatureCheck | None = None
    problem: str | None = None  # why it does not count, whatever the time

    @property
    def approves(self) -> bool:
        return self.decision is not None and self.decision.approves


@dataclass
class TrustedBranch:
    branch: ApprovalsBranch
    root: str
    tip: str | None = None
    state: PolicyState | None = None
    requests: dict[str, RequestEntry] = field(default_factory=dict)
    decisions: dict[str, list[DecisionEntry]] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    policy_changes: list[tuple[str, str]] = field(default_factory=list)  # (commit, signer)
    count: int = 0

    # -- building ------------------------------------------------------------

    @classmethod
    def load(cls, branch: ApprovalsBranch, tip: str | None = None, root: str | None = None,
             pin: bool = True) -> "TrustedBranch":
        """Authenticates the branch from its pinned root to `tip` (s.7).

        Where no root is pinned yet, the branch's own root is pinned on this
        first use (trust on first use), as the spec asks of a first fetch.
        """
        tip = tip or branch.read_tip()
        if tip is None:
            raise BadInput(f"no approvals branch: neither {branch.ref} nor {branch.remote_ref} exists "
                           f"(run 'gitjit init' or fetch the branch)")
        chain = branch.first_parent_chain(tip)
        pinned = root or branch.pinned_root()
        if pinned is not None and chain[0] != pinned:
            raise NotTrusted(f"the approvals branch starts at {chain[0][:12]}, not at the pinned root {pinned[:12]}")
        trusted = cls(branch, chain[0])
        trusted.extend(chain)
        if pinned is None and pin:
            branch.set_config("gitjit.root", chain[0])
        return trusted

    def extend(self, commit_ids: list[str]) -> list[Refusal]:
        """Applies commits in order; returns the refusals among them."""
        before = len(self.refusals)
        pending: list[DecisionEntry] = []
        for commit_id, changes in self.branch.changes(commit_ids):
            self._apply(commit_id, changes, pending)
        self._check_decision_signatures(pending)
        return self.refusals[before:]

    def _apply(self, commit_id: str, changes: list[Change], pending: list["DecisionEntry"]) -> None:
        commit = self.branch.commit(commit_id)
        parents = [str(p) for p in commit.parent_ids]
        if self.tip is None:
            if commit_id != self.root or parents:
                raise NotTrusted(f"commit {commit_id[:12]} is not the pinned root")
        elif parents != [self.tip]:
            raise NotTrusted(f"commit {commit_id[:12]} does not extend {self.tip[:12]} linearly")
        try:
            parts = split_commit(self.branch.raw_object(commit_id))
        except MalformedCommit as exc:
            parts = None
            malformed = str(exc)
        position = self.count
        self.tip, self.count = commit_id, self.count + 1

        touches_policy = [c for c in changes if c.path == POLICY_FILE or c.path.startswith("keys/")]
        if self.state is None or touches_policy:
            if parts is None:
                raise NotTrusted(f"policy commit {commit_id[:12]}: {malformed}")
            self._apply_policy_change(commit, parts, changes)
            return
        if parts is None:
            self.refusals.append(Refusal(commit_id, malformed))
            return
        if len(changes) != 1 or changes[0].status != "A":
            what = ", ".join(f"{c.status} {c.path}" for c in changes) or "nothing"
            self.refusals.append(Refusal(commit_id, f"a commit must add exactly one file; this one changes {what}"))
            return
        change = changes[0]
        if not change.is_regular_file:
            self.refusals.append(Refusal(commit_id, f"{change.path} is not a regular file (mode {change.new_mode})"))
            return
        segments = change.path.split("/")
        if len(segments) == 2 and segments[0] == "requests" and segments[1].endswith(".toml"):
            self._apply_request(commit_id, position, parts, change)
        elif len(segments) == 3 and segments[0] == "approvals" and segments[2].endswith(".toml"):
            self._apply_decision(commit_id, position, parts, change, pending)
        else:
            self.refusals.append(Refusal(commit_id, f"{change.path} is outside the approvals branch layout"))

    def _apply_policy_change(self, commit: pygit2.Commit, parts: CommitParts, changes: list[Change]) -> None:
        commit_id = str(commit.id)
        for change in changes:
            name = change.path[len("keys/"):] if change.path.startswith("keys/") else None
            if change.path != POLICY_FILE and not (name and name.endswith(".asc") and is_valid_name(name[:-4])):
                raise NotTrusted(f"policy commit {commit_id[:12]} also changes {change.path}")
            if change.status != "D" and not change.is_regular_file:
                raise NotTrusted(f"policy commit {commit_id[:12]}: {change.path} is not a regular file")
        tree = commit.tree
        try:
            policy_blob = tree[POLICY_FILE]
        except KeyError:
            raise NotTrusted(f"commit {commit_id[:12]} removes {POLICY_FILE}") from None
        # A later change is authorized by the policy before it, so its signature is
        # checked before its policy is even read: an unauthorized change is "not
        # trusted" whatever it holds. The root authorizes itself, by its own policy.
        signer = None if self.state is None else self._authorize(commit_id, parts, self.state, "policy change")
        try:
            policy = parse_policy(self.branch.blob(str(policy_blob.id)), f"{POLICY_FILE} at {commit_id[:12]}")
        except BadInput as exc:
            raise BadPolicy(str(exc)) from None
        new_state = PolicyState(policy, self.keyring_for(tree), commit_id)
        if signer is None:
            signer = self._authorize(commit_id, parts, new_state, "root commit")
        self.state = new_state
        self.policy_changes.append((commit_id, signer))

    def _authorize(self, commit_id: str, parts: CommitParts, authority: PolicyState, what: str) -> str:
        """The admin of `authority` who signed this policy commit, or NotTrusted (s.7)."""
        if parts.signature is None:
            raise NotTrusted(f"{what} {commit_id[:12]} is not signed")
        check = self.check_signature(commit_id, parts, authority.keyring)
        signer = authority.key_owner(check)
        if not check.good:
            raise NotTrusted(f"{what} {commit_id[:12]}: {check.reason}")
        if signer is None or signer not in authority.policy.admins:
            raise NotTrusted(f"{what} {commit_id[:12]} is signed by key {check.primary_key}, "
                             f"which is not an admin's key in the policy in force")
        key = authority.keyring.keys.get(check.primary_key)
        problem = key.problem_at(check.signing_key, check.created) if key else "key material is missing"
        if problem:
            raise NotTrusted(f"{what} {commit_id[:12]}: {problem} when it signed")
        if abs(check.created - parts.committer_time) > authority.policy.clock_skew:
            raise NotTrusted(f"{what} {commit_id[:12]}: signature time and committer time disagree")
        return signer

    def _apply_request(self, commit_id: str, position: int, parts: CommitParts, change: Change) -> None:
        try:
            request = parse_request(self.branch.blob(change.new_id), change.path)
        except BadInput as exc:
            self.refusals.append(Refusal(commit_id, str(exc)))
            return
        policy = self.state.policy
        problem = None
        if request.id in self.requests:
            problem = f"request {request.id} already exists"
        elif request.action not in policy.actions:
            problem = f"{change.path}: action {request.action!r} is not in the policy"
        elif request.expires - request.created > policy.max_ttl:
            problem = f"{change.path}: asks to live longer than max_ttl"
        if problem:
            self.refusals.append(Refusal(commit_id, problem))
            return
        entry = RequestEntry(request, commit_id, change.new_id, position, parts, self.state)
        action = policy.actions[request.action]
        if action.requesters is not None:
            signer = entry.signer(self)
            if not action.may_request(signer):
                who = signer or "an unsigned or unknown-key commit"
                self.refusals.append(Refusal(commit_id, f"{who} may not request {request.action}"))
                return
        self.requests[request.id] = entry

    def _apply_decision(self, commit_id: str, position: int, parts: CommitParts, change: Change,
                        pending: list[DecisionEntry]) -> None:
        _, request_id, file_name = change.path.split("/")
        person = file_name[: -len(".toml")]
        if not (is_valid_name(request_id) and is_valid_name(person)):
            self.refusals.append(Refusal(commit_id, f"{change.path} is not a valid decision path"))
            return
        entry = DecisionEntry(person, request_id, commit_id, position, parts, self.state)
        earlier = [e.commit for e in self.decisions.get(request_id, []) if e.person == person]
        self.decisions.setdefault(request_id, []).append(entry)
        request = self.requests.get(request_id)
        try:
            entry.decision = parse_decision(self.branch.blob(change.new_id), change.path)
        except BadInput as exc:
            entry.problem = str(exc)
        if entry.problem is None and earlier:
            entry.problem = f"{person} already decided on {request_id} in commit {earlier[0][:12]}"
        if entry.problem is None:
            entry.problem = self._binding_problem(entry, request)
        if entry.problem is None and parts.signature is None:
            entry.problem = "decision commit is not signed"
        if entry.problem is None:
            pending.append(entry)
        else:
            self.refusals.append(Refusal(commit_id, f"{person}: {entry.problem}"))

    def _binding_problem(self, entry: DecisionEntry, request: RequestEntry | None) -> str | None:
        decision = entry.decision
        if request is None:
            return f"request {entry.request_id} does not exist before this decision"
        if decision.request != request.request.id:
            return f"decision names request {decision.request!r}, its path {request.request.id!r}"
        if decision.request_blob != request.blob:
            return "decision is bound to another version of the request (request_blob differs)"
        if decision.target != request.request.target:
            return f"decision is for target {decision.target[:12]}, the request for {request.request.target[:12]}"
        policy = entry.state.policy
        action = policy.actions.get(request.request.action)
        if action is None or entry.person not in action.approvers:
            return f"{entry.person} is not an approver of {request.request.action}"
        return None

    def _check_decision_signatures(self, pending: list[DecisionEntry]) -> None:
        checks = self.check_signatures([(e.commit, e.parts, e.state.keyring) for e in pending])
        for entry, check in zip(pending, checks):
            entry.signature = check
            entry.problem = self._signature_problem(entry, check)
            if entry.problem is not None:
                self.refusals.append(Refusal(entry.commit, f"{entry.person}: {entry.problem}"))

    def _signature_problem(self, entry: DecisionEntry, check: SignatureCheck) -> str | None:
        if not check.good:
            return check.reason
        owner = entry.state.key_owner(check)
        if owner is None:
            return f"signature by key {check.primary_key}, which is not in the policy with its keys/ file"
        if owner != entry.person:
            return f"signed by {owner}'s key, not {entry.person}'s"
        request = self.requests[entry.request_id]
        skew = entry.state.policy.clock_skew
        if abs(check.created - entry.parts.committer_time) > skew:
            return "signature time and committer time disagree by more than clock_skew"
        if check.created < request.request.created - skew:
            return "signed before the request was created"
        action = entry.state.policy.actions[request.request.action]
        if not action.self_approval and entry.person in request.requesters(self):
            return f"{entry.person} requested it: self-approval is not allowed for {action.name}"
        return None

    # -- signatures ----------------------------------------------------------

    def keyring_for(self, tree: pygit2.Tree) -> Keyring:
        try:
            keys_tree = tree["keys"]
        except KeyError:
            keys_tree = None
        if keys_tree is None or not isinstance(keys_tree, pygit2.Tree):
            raise NotTrusted("the policy commit has no keys/ folder")
        files = {}
        for entry in keys_tree:
            if entry.type_str == "blob" and entry.name.endswith(".asc") and is_valid_name(entry.name[:-4]):
                files[entry.name[:-4]] = self.branch.blob(str(entry.id))
        return Keyring.load_or_build(cache_dir(self.branch.repo) / "keyrings", str(keys_tree.id), files)

    def check_signature(self, commit_id: str, parts: CommitParts, keyring: Keyring) -> SignatureCheck:
        return self.check_signatures([(commit_id, parts, keyring)])[0]

    def check_signatures(self, jobs: list[tuple[str, CommitParts, Keyring]]) -> list[SignatureCheck]:
        """GnuPG verdicts for many commits; good ones reached by an earlier run come from sigcache.py."""
        return SignatureCache.for_directory(cache_dir(self.branch.repo)).check(jobs, self._verify_signatures)

    @staticmethod
    def _verify_signatures(jobs: list[tuple[str, CommitParts, Keyring]]) -> list[SignatureCheck]:
        """GnuPG verdicts for many commits, on every core when there are many."""

        def one(job: tuple[str, CommitParts, Keyring]) -> SignatureCheck:
            _, parts, keyring = job
            if parts.signature is None:
                return SignatureCheck(False, "not signed")
            return keyring.verify(parts.payload, parts.signature)

        if len(jobs) < 4:
            return [one(job) for job in jobs]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            return list(pool.map(one, jobs))

    # -- lookups -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self.state.policy

    def requests_for(self, action: str, target: str) -> list[RequestEntry]:
        return [r for r in self.requests.values() if r.request.action == action and r.request.target == target]


def keyring_cache(repo: pygit2.Repository) -> Path:
    return cache_dir(repo) / "keyrings"
