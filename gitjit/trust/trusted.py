"""The trusted view of the approvals branch, built commit by commit (docs/format.md, sections 2, 4, 5, 6).

Like python-tuf's trusted metadata set, one class owns "what is trusted so
far" and extends it one untrusted commit at a time, checking in a fixed
order and storing nothing half-checked:

1. The root commit is the pinned one (`gitjit.root`); it adds only
   `policy.toml` and `keys/`, and an admin its own policy names signed it
   with a key from its own `keys/` (section 5.1).
2. Every commit has at most one parent: the branch is linear (section 2.2).
3. A commit that touches `policy.toml` or `keys/` touches nothing else, its
   policy parses, and an admin of the policy in force at its parent signed it
   with a key from the parent's `keys/` (section 5.2). Anything less makes the whole
   branch untrusted (`NotTrusted`): it never silently falls back.
4. Any other commit adds exactly one file and changes nothing else (section 2.2);
   one that does not is recorded as a `Refusal` and does not count.
5. An added request parses, names an action of the policy in force, asks for
   no more than `max_ttl`, and was made by an allowed requester (section 6.1).
6. An added decision parses, is signed by the person its path names with a
   key the policy in force lists for them, was made by an approver of the
   action, and is bound to the request's id, blob and target (section 6.2).
   What depends on the time of verification (freshness, expiry of keys and
   requests) is judged later, by `trust/verdicts.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

from gitjit import reasons as R
from gitjit.errors import BadInput, BadPolicy, NotTrusted
from gitjit.git.branch import ApprovalsBranch, Change, cache_dir
from gitjit.git.read import CommitObject, MissingObject, TreeEntry
from gitjit.model.grammar import describe_age, format_time, from_timestamp, is_valid_name
from gitjit.model.layout import record_path, shard_problem
from gitjit.model.layout import request_path as layout_request_path
from gitjit.model.limits import MAX_CHANGES, MAX_RECORD_BYTES, SHOWN_CHANGES, list_some, max_bytes_for, size_problem
from gitjit.model.policy import POLICY_FILE, Policy, load_policy_document, policy_from_document
from gitjit.model.records import Decision, Request, parse_decision, parse_request
from gitjit.namedtuple import NamedTuple
from gitjit.reasons import Reason
from gitjit.trust.cache.snapshot import Head, Snapshot
from gitjit.trust.signatures import FATAL_STATUS, CommitParts, Keyring, MalformedCommit, SignatureCheck, split_commit


class PolicyState(NamedTuple):
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


class Refusal(NamedTuple):
    """A commit on the branch that does not count, and why."""

    commit: str
    reason: str
    code: str  # the reason's code (gitjit.reasons)

    @classmethod
    def of(cls, commit: str, reason: Reason) -> Refusal:
        return cls(commit, reason.text, reason.code)


class _Entry:
    """Shared by requests and decisions: the commit's parts and the policy in
    force are kept by commit id and resolved through the owning view, so an
    entry read back from a snapshot costs nothing until it is used."""

    __slots__ = ()

    @property
    def parts(self) -> CommitParts:
        if self._parts is None:
            self._parts = self.owner.commit_parts(self.commit)
        return self._parts

    @property
    def state(self) -> PolicyState:
        if self._state is None:
            self._state = self.owner.policy_state(self.state_commit)
        return self._state


class RequestEntry(_Entry):
    """A request that counts, and the commit that added it."""

    __slots__ = ("request", "commit", "blob", "position", "author_email", "signed", "state_commit", "owner",
                 "_parts", "_state", "_signature")

    def __init__(self, request: Request, commit: str, blob: str, position: int, author_email: str, signed: bool,
                 state_commit: str, owner: TrustedBranch, _parts: CommitParts | None = None,
                 _state: PolicyState | None = None, _signature: SignatureCheck | None = None):
        self.request = request
        self.commit = commit
        self.blob = blob
        self.position = position
        self.author_email = author_email
        self.signed = signed
        self.state_commit = state_commit  # the commit that set the policy in force when the request was added
        self.owner = owner
        self._parts = _parts
        self._state = _state
        self._signature = _signature

    def __repr__(self) -> str:
        return f"RequestEntry({self.request.id!r}, commit={self.commit[:12]!r})"

    def signature(self, trusted: TrustedBranch) -> SignatureCheck | None:
        if not self.signed:
            return None
        if self._signature is None:
            self._signature = trusted.check_signature(self.commit, self.parts, self.state.keyring)
        return self._signature

    def signer(self, trusted: TrustedBranch) -> str | None:
        check = self.signature(trusted)
        return self.state.key_owner(check) if check is not None else None

    def requesters(self, trusted: TrustedBranch) -> set[str]:
        """Everyone who may be the requester: the signer, and the author by email.

        The author email is not authenticated, so it may only ever take
        approvals away (self-approval), never grant anything.
        """
        found = {self.signer(trusted), self.state.policy.person_with_email(self.author_email)}
        return {p for p in found if p}

    def unknown_requester(self, trusted: TrustedBranch) -> Reason | None:
        """Why nobody can be excluded as this request's requester, or None (docs/format.md, section 6.3).

        Where self-approval is not allowed, a request nobody is known to have
        made never counts: an unsigned one could otherwise be approved by its
        own author, who only had to leave their email off it.
        """
        if not self.signed:
            return Reason(R.UNKNOWN_REQUESTER,
                          "request is unsigned: with self_approval = false the requester must be known")
        if self.signer(trusted) is None:
            return Reason(R.UNKNOWN_REQUESTER,
                          "request's signature counts for nobody: with self_approval = false the requester must be known")
        return None


class DecisionEntry(_Entry):
    """A decision file's commit: what it says, GnuPG's verdict, and why it does not count."""

    __slots__ = ("person", "request_id", "commit", "position", "state_commit", "owner", "decision", "signature",
                 "problem", "_parts", "_state")

    def __init__(self, person: str, request_id: str, commit: str, position: int, state_commit: str,
                 owner: TrustedBranch, decision: Decision | None = None, signature: SignatureCheck | None = None,
                 problem: Reason | None = None, _parts: CommitParts | None = None, _state: PolicyState | None = None):
        self.person = person
        self.request_id = request_id
        self.commit = commit
        self.position = position
        self.state_commit = state_commit  # the commit that set the policy in force at the decision's commit
        self.owner = owner
        self.decision = decision
        self.signature = signature
        self.problem = problem  # why it does not count, whatever the time
        self._parts = _parts
        self._state = _state

    def __repr__(self) -> str:
        return f"DecisionEntry({self.person!r}, {self.request_id!r}, commit={self.commit[:12]!r})"

    @property
    def approves(self) -> bool:
        return self.decision is not None and self.decision.approves


class RequestIndex(Mapping[str, RequestEntry]):
    """Requests by id: those read back from a snapshot (lazily) and those added since."""

    def __init__(self, owner: TrustedBranch, snapshot: Snapshot | None = None, limit: int = 0):
        self._owner, self._snapshot, self._limit = owner, snapshot, limit
        self._loaded: dict[str, RequestEntry] = {}
        self._added: dict[str, RequestEntry] = {}

    def add(self, entry: RequestEntry) -> None:
        self._added[entry.request.id] = entry

    def __getitem__(self, request_id: str) -> RequestEntry:
        entry = self._added.get(request_id) or self._loaded.get(request_id)
        if entry is None and self._snapshot is not None:
            row = self._snapshot.request(request_id, self._limit)
            if row is not None:
                entry = self._loaded[request_id] = _request_from_row(row, self._owner)
        if entry is None:
            raise KeyError(request_id)
        return entry

    def __iter__(self) -> Iterator[str]:
        if self._snapshot is not None:
            yield from self._snapshot.request_ids(self._limit)
        yield from self._added

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def values(self) -> list[RequestEntry]:  # type: ignore[override]
        if self._snapshot is not None:
            for row in self._snapshot.all_requests(self._limit):
                if row["id"] not in self._loaded:
                    self._loaded[row["id"]] = _request_from_row(row, self._owner)
        stored = [self._loaded[i] for i in self._snapshot.request_ids(self._limit)] if self._snapshot else []
        return stored + list(self._added.values())

    def for_target(self, action: str, target: str) -> list[RequestEntry]:
        found = []
        if self._snapshot is not None:
            for row in self._snapshot.requests_for(action, target, self._limit):
                found.append(self._loaded.get(row["id"]) or self._loaded.setdefault(
                    row["id"], _request_from_row(row, self._owner)))
        found += [e for e in self._added.values() if e.request.action == action and e.request.target == target]
        return found


class DecisionIndex(Mapping[str, list[DecisionEntry]]):
    """Decisions by request id, in branch order: read back lazily, plus those added since."""

    def __init__(self, owner: TrustedBranch, snapshot: Snapshot | None = None, limit: int = 0):
        self._owner, self._snapshot, self._limit = owner, snapshot, limit
        self._loaded: dict[str, list[DecisionEntry]] = {}
        self._added: dict[str, list[DecisionEntry]] = {}

    def add(self, entry: DecisionEntry) -> None:
        self._added.setdefault(entry.request_id, []).append(entry)

    def _stored(self, request_id: str) -> list[DecisionEntry]:
        if self._snapshot is None:
            return []
        if request_id not in self._loaded:
            rows = self._snapshot.decisions_for(request_id, self._limit)
            self._loaded[request_id] = [_decision_from_row(r, self._owner) for r in rows]
        return self._loaded[request_id]

    def __getitem__(self, request_id: str) -> list[DecisionEntry]:
        found = self._stored(request_id) + self._added.get(request_id, [])
        if not found:
            raise KeyError(request_id)
        return found

    def __iter__(self) -> Iterator[str]:
        seen = set()
        if self._snapshot is not None:
            for row in self._snapshot.all_decisions(self._limit):
                if row["request_id"] not in seen:
                    seen.add(row["request_id"])
                    yield row["request_id"]
        for request_id in self._added:
            if request_id not in seen:
                yield request_id

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def all(self) -> list[DecisionEntry]:
        """Every decision entry in branch order."""
        entries = [e for request_id in self for e in self[request_id]]
        return sorted(entries, key=lambda e: e.position)


class TrustedBranch:
    """What is trusted so far on the approvals branch (see the module docstring)."""

    def __init__(self, branch: ApprovalsBranch, root: str, tip: str | None = None,
                 state: PolicyState | None = None, count: int = 0, witness: datetime | None = None):
        self.branch = branch
        # The server's clock, for the commits a push brings (docs/format.md, 7.1): a request or decision
        # signed or committed later than witness + clock_skew is refused. None: no witness.
        self.witness = witness
        self.root = root
        self.tip = tip
        self.state = state
        self.count = count
        self.refusals: list[Refusal] = []
        self.policy_changes: list[tuple[str, str]] = []  # (commit, signer)
        self.requests = RequestIndex(self)
        self.decisions = DecisionIndex(self)
        self._states: dict[str, PolicyState] = {}
        self._resumed: Head | None = None  # the snapshot this view continues, if any
        self._resumed_count = 0
        self._applied: dict[str, int] = {}  # commit -> position, for commits applied by this process
        self._snapshot: Snapshot | None = None  # read lazily: what the view resumed from
        self._policy_documents: dict[str, dict] = {}  # policy blob id -> TOML document parsed by this process
        self._failure: str | None = None  # why an `extend` failed: the view is then unusable
        self.partial = False  # built from chosen commits only (trust/targeted.py): never saved

    def __repr__(self) -> str:
        return f"TrustedBranch(root={self.root[:12]!r}, tip={(self.tip or '')[:12]!r}, count={self.count})"

    # -- building ------------------------------------------------------------

    @classmethod
    def load(cls, branch: ApprovalsBranch, tip: str | None = None, root: str | None = None,
             pin: bool = True, save: bool = True) -> TrustedBranch:
        """Authenticates the branch from its pinned root to `tip` (section 5.1).

        Where no root is pinned yet, the branch's own root is pinned on this
        first use (trust on first use), as docs/format.md, section 5.1 describes.
        The work is resumed from the snapshot of an earlier run where there is
        one for this root (trust/cache/snapshot.py), and saved for the next run.
        """
        tip = tip or branch.read_tip()
        if tip is None:
            raise BadInput(f"no approvals branch: neither {branch.ref} nor {branch.remote_ref} exists "
                           f"(run 'gitjit init' or fetch the branch)")
        pinned = root or branch.pinned_root()
        trusted = cls._resume(branch, tip, pinned) if pinned else None
        if trusted is None:
            chain = branch.first_parent_chain(tip)
            if pinned is not None and chain[0] != pinned:
                raise NotTrusted(f"the approvals branch starts at {chain[0][:12]}, "
                                 f"not at the pinned root {pinned[:12]}")
            trusted = cls(branch, chain[0])
            trusted.extend(chain)
            if pinned is None and pin:
                branch.set_config("gitjit.root", chain[0])
        if save:
            trusted.save()
        return trusted

    @classmethod
    def _resume(cls, branch: ApprovalsBranch, tip: str, root: str) -> TrustedBranch | None:
        """The view at `tip` continued from the stored snapshot, or None where none fits."""
        snapshot = Snapshot.in_directory(cache_dir(branch))
        head = snapshot.head(root)
        if head is None:
            return None
        if head.tip == tip:
            return cls._from_snapshot(branch, snapshot, head, head.count, tip)
        if branch.is_ancestor(head.tip, tip):  # tip descends from the snapshot
            newer = branch.chain_back_to(tip, head.tip)
            if newer is not None:
                trusted = cls._from_snapshot(branch, snapshot, head, head.count, head.tip)
                trusted.extend(newer)
                return trusted
        elif branch.is_ancestor(tip, head.tip):  # the snapshot went further than tip
            older = branch.chain_back_to(head.tip, tip)
            if older is not None:
                return cls._from_snapshot(branch, snapshot, head, head.count - len(older), tip)
        else:  # a sibling: the snapshot ends on a line that never landed (a push that lost a race)
            base = branch.merge_base(head.tip, tip)
            older = branch.chain_back_to(head.tip, base) if base else None
            newer = branch.chain_back_to(tip, base) if base else None
            if older is not None and newer is not None:
                trusted = cls._from_snapshot(branch, snapshot, head, head.count - len(older), base)
                trusted.extend(newer)
                return trusted
        return None

    @classmethod
    def _from_snapshot(cls, branch: ApprovalsBranch, snapshot: Snapshot, head: Head, count: int,
                       tip: str) -> TrustedBranch:
        trusted = cls(branch, head.root, tip=tip, count=count)
        trusted._snapshot = snapshot
        trusted.requests = RequestIndex(trusted, snapshot, count)
        trusted.decisions = DecisionIndex(trusted, snapshot, count)
        trusted.refusals = [Refusal(c, r, code) for c, r, code in snapshot.refusals(count)]
        trusted.policy_changes = [tuple(p) for p in snapshot.policy_changes(count)]
        if not trusted.policy_changes:
            raise NotTrusted("the snapshot of the approvals branch holds no policy")
        trusted.state = trusted.policy_state(trusted.policy_changes[-1][0])
        trusted._resumed, trusted._resumed_count = head, count
        return trusted

    def _usable(self) -> None:
        """A view that failed to extend holds commits half-applied: nothing may read or save it."""
        if self._failure is not None:
            raise NotTrusted(f"this view of the approvals branch failed while extending it ({self._failure}) "
                             f"and may not be used")

    def save(self) -> bool:
        """Stores what this view learned beyond the snapshot it resumed from."""
        self._usable()
        if self.partial or self.tip is None or (self._resumed is not None and self._resumed.tip == self.tip):
            return False
        keep = self._resumed_count if self._resumed is not None else 0
        positions = self._applied
        rows = {
            "requests": [(e.request.id, e.request.action, e.request.target, e.position,
                          json.dumps(_request_row(e))) for e in self.requests._added.values()],
            "decisions": [(e.commit, e.request_id, e.position, json.dumps(_decision_row(e)))
                          for entries in self.decisions._added.values() for e in entries],
            "refusals": [(r.commit, positions[r.commit], r.reason, r.code) for r in self.refusals if r.commit in positions],
            "policy_changes": [(c, positions[c], s) for c, s in self.policy_changes if c in positions],
            "policy_documents": _json_rows(self._policy_documents),
        }
        snapshot = Snapshot.in_directory(cache_dir(self.branch))
        try:
            return snapshot.save(self._resumed, keep, Head(self.root, self.tip, self.count), rows)
        finally:
            snapshot.close()

    def extend(self, commit_ids: list[str], placed: dict[str, tuple[str | None, int]] | None = None) -> list[Refusal]:
        """Applies commits in order; returns the refusals among them.

        The signed requests and decisions met on the way are judged once all
        are applied, but GnuPG starts checking each one as soon as it is met
        (`_PendingChecks`), on every core while the walk goes on.

        `placed` (trust/targeted.py): some commits of a chain whose linearity
        the caller checked, each with its (parent, position); the commits
        between them are not applied, and the view is `partial`.
        """
        self._usable()
        before = len(self.refusals)
        pending = _PendingChecks(self)
        self.partial = self.partial or placed is not None
        try:
            for commit_id, changes in self.branch.changes(commit_ids):
                if placed is not None:
                    self.tip, self.count = placed[commit_id]
                self._apply(commit_id, changes, pending)
            self._check_pending_signatures(pending)
        except BaseException as exc:
            self._failure = str(exc) or type(exc).__name__  # all or nothing: never used half-extended
            raise
        finally:
            pending.close()
        return self.refusals[before:]

    def _apply(self, commit_id: str, changes: list[Change], pending: list) -> None:
        commit = self.branch.commit(commit_id)
        parents = list(commit.parents)
        if self.tip is None:
            if commit_id != self.root or parents:
                raise NotTrusted(f"commit {commit_id[:12]} is not the pinned root", R.BAD_ROOT)
        elif parents != [self.tip]:
            raise NotTrusted(f"commit {commit_id[:12]} does not extend {self.tip[:12]} linearly", R.NOT_LINEAR)
        try:
            parts = split_commit(self.branch.raw_object(commit_id))
        except (MalformedCommit, ValueError) as exc:  # ValueError: a committer time beyond years 1970-9999
            parts = None
            malformed = Reason(exc.code if isinstance(exc, MalformedCommit) else R.MALFORMED_COMMIT, str(exc))
        position = self.count
        self.tip, self.count = commit_id, self.count + 1
        self._applied[commit_id] = position

        touches_policy = [c for c in changes if c.path == POLICY_FILE or c.path.startswith("keys/")]
        total = getattr(changes, "total", len(changes))
        # only the first MAX_CHANGES were kept: the trees tell whether it is a policy change
        if total > len(changes) and (self.state is None or touches_policy or self._moves_policy(commit)):
            raise NotTrusted(f"commit {commit_id[:12]} changes {total} files, more than a policy commit "
                             f"may ({MAX_CHANGES})")
        if self.state is None or touches_policy:
            if parts is None:
                raise NotTrusted(f"policy commit {commit_id[:12]}: {malformed}")
            self._apply_policy_change(commit, parts, changes)
            return
        if parts is None:
            self.refusals.append(Refusal.of(commit_id, malformed))
            return
        if len(changes) != 1 or changes[0].status != "A":
            what = list_some([f"{c.status} {c.path}" for c in changes[:SHOWN_CHANGES]], total) or "nothing"
            self.refusals.append(Refusal(commit_id, f"a commit must add exactly one file; this one changes {what}",
                                         R.LAYOUT))
            return
        change = changes[0]
        if not change.is_regular_file:
            self.refusals.append(Refusal(commit_id, f"{change.path} is not a regular file (mode {change.new_mode})",
                                         R.LAYOUT))
            return
        record = record_path(change.path, self.state.policy.layout)  # the layout in force (model/layout.py)
        if record is not None and record.person is None:
            self._apply_request(commit_id, position, parts, change, pending)
        elif record is not None:
            self._apply_decision(commit_id, position, parts, change, pending)
        else:
            self.refusals.append(Refusal(commit_id, f"{change.path} is outside the approvals branch layout", R.LAYOUT))

    def _moves_policy(self, commit: CommitObject) -> bool:
        """Whether `policy.toml` or `keys/` differ from the parent's, read from the two top-level trees."""
        parent = self.branch.tree(self.branch.commit(commit.parents[0]).tree)
        tree = self.branch.tree(commit.tree)
        return any(tree.get(name) != parent.get(name) for name in (POLICY_FILE, "keys"))

    def _apply_policy_change(self, commit: CommitObject, parts: CommitParts, changes: list[Change]) -> None:
        commit_id = str(commit.id)
        for change in changes:
            name = change.path[len("keys/"):] if change.path.startswith("keys/") else None
            if change.path != POLICY_FILE and not (name and name.endswith(".asc") and is_valid_name(name[:-4])):
                raise NotTrusted(f"policy commit {commit_id[:12]} also changes {change.path}")
            if change.status != "D" and not change.is_regular_file:
                raise NotTrusted(f"policy commit {commit_id[:12]}: {change.path} is not a regular file")
            if change.status != "D":  # before any file is read
                too_large = size_problem(change.path, self._blob_size(change.new_id), max_bytes_for(change.path))
                if too_large:
                    raise BadPolicy(f"policy commit {commit_id[:12]}: {too_large}", R.TOO_LARGE)
        tree = self.branch.tree(commit.tree)
        policy_blob = tree.get(POLICY_FILE)
        if policy_blob is None or policy_blob.is_tree:
            raise NotTrusted(f"commit {commit_id[:12]} removes {POLICY_FILE}")
        # A later change is authorized by the policy before it, so its signature is
        # checked before its policy is even read: an unauthorized change is "not
        # trusted" whatever it holds. The root authorizes itself, by its own policy.
        signer = None if self.state is None else self._authorize(commit_id, parts, self.state, "policy change")
        try:
            policy = self._read_policy(policy_blob.id, commit_id)
        except BadInput as exc:
            raise BadPolicy(str(exc)) from None
        new_state = PolicyState(policy, self.keyring_for(tree), commit_id)
        if signer is None:
            signer = self._authorize(commit_id, parts, new_state, "root commit")
        self.state = self._states[commit_id] = new_state
        self.policy_changes.append((commit_id, signer))

    def _authorize(self, commit_id: str, parts: CommitParts, authority: PolicyState, what: str) -> str:
        """The admin of `authority` who signed this policy commit, or NotTrusted (section 5.2)."""
        if parts.signature is None:
            raise NotTrusted(f"{what} {commit_id[:12]} is not signed", R.UNAUTHORIZED_POLICY_CHANGE)
        check = self.check_signature(commit_id, parts, authority.keyring)
        if not check.good and check.code == R.EXPIRED_KEY and check.reason.startswith(FATAL_STATUS["EXPKEYSIG"]):
            check = self._judged_when_made(commit_id, parts, authority) or check
        signer = authority.key_owner(check)
        if not check.good:
            raise NotTrusted(f"{what} {commit_id[:12]}: {check.reason}", R.UNAUTHORIZED_POLICY_CHANGE)
        if signer is None or signer not in authority.policy.admins:
            raise NotTrusted(f"{what} {commit_id[:12]} is signed by key {check.primary_key}, "
                             f"which is not an admin's key in the policy in force", R.UNAUTHORIZED_POLICY_CHANGE)
        key = authority.keyring.keys.get(check.primary_key)
        problem = key.problem_at(check.signing_key, check.created) if key else Reason(R.KEY_MISSING, "key material is missing")
        if problem:
            raise NotTrusted(f"{what} {commit_id[:12]}: {problem} when it signed", R.UNAUTHORIZED_POLICY_CHANGE)
        if abs(check.created - parts.committer_time) > authority.policy.clock_skew:
            raise NotTrusted(f"{what} {commit_id[:12]}: signature time and committer time disagree",
                             R.UNAUTHORIZED_POLICY_CHANGE)
        return signer

    def _judged_when_made(self, commit_id: str, parts: CommitParts, authority: PolicyState) -> SignatureCheck | None:
        """A policy commit whose key has expired since, as GnuPG judged it when it was made.

        Policy-chain signatures are judged when they were made (docs/decisions.md):
        an admin key expiring must not untrust every commit it ever signed. The
        signature's time is its signer's claim, so it may not be older than the
        policy in force (whose time its own admin signature vouched for): a key
        that has expired cannot make a new change by backdating its signature.
        """
        check = authority.keyring.verify_when_made(parts.payload, parts.signature)
        if not check.good:
            return None
        if authority.commit != commit_id:  # the root stands on its pin
            in_force_since = from_timestamp(self.branch.commit(authority.commit).commit_time)
            if check.created < in_force_since - authority.policy.clock_skew:
                return None
        return check

    def _blob_size(self, blob_id: str | None) -> int:
        if blob_id is None:
            raise NotTrusted("a change names no file")
        try:
            kind, size = self.branch.reader.info(blob_id)
        except MissingObject:
            kind, size = None, 0
        if kind != "blob":
            raise NotTrusted(f"{blob_id[:12]} is not a file in the repository")
        return size

    def _record_bytes(self, change: Change) -> bytes:
        """A request or decision file, read only when within MAX_RECORD_BYTES (BadInput otherwise)."""
        too_large = size_problem(change.path, self._blob_size(change.new_id), MAX_RECORD_BYTES)
        if too_large:
            raise BadInput(too_large, R.TOO_LARGE)
        return self.branch.blob(change.new_id)

    def _witness_problem(self, when: datetime | None, what: str, skew: timedelta) -> Reason | None:
        """A commit of this push dated ahead of the server's clock (docs/format.md, section 7.1)."""
        if self.witness is None or when is None or when <= self.witness + skew:
            return None
        ahead = describe_age(when - self.witness, nearest=True)
        return Reason(R.FUTURE, f"{what} {ahead} in the future ({format_time(when)}), by the server's clock")

    def _apply_request(self, commit_id: str, position: int, parts: CommitParts, change: Change,
                       pending: list) -> None:
        try:
            request = parse_request(self._record_bytes(change), change.path)
        except BadInput as exc:
            self.refusals.append(Refusal.of(commit_id, _record_problem(exc)))
            return
        policy = self.state.policy
        problem = None
        late = self._witness_problem(parts.committer_time, "committed", policy.clock_skew)
        if late:
            problem = late.prefixed(change.path)
        elif request.id in self.requests:
            problem = Reason(R.DUPLICATE_REQUEST, f"request {request.id} already exists")
        elif request.action not in policy.actions:
            problem = Reason(R.UNKNOWN_ACTION, f"{change.path}: action {request.action!r} is not in the policy")
        elif request.expires - request.created > policy.max_ttl:
            problem = Reason(R.TTL_TOO_LONG, f"{change.path}: asks to live longer than max_ttl")
        elif misplaced := shard_problem(record_path(change.path, policy.layout), request.target):
            problem = Reason(R.LAYOUT, f"{change.path}: {misplaced}")
        if problem:
            self.refusals.append(Refusal.of(commit_id, problem))
            return
        entry = RequestEntry(request, commit_id, change.new_id, position, parts.author_email,
                             parts.signature is not None, self.state.commit, self, _parts=parts, _state=self.state)
        action = policy.actions[request.action]
        if action.requesters is not None:
            signer = entry.signer(self)
            if not action.may_request(signer):
                who = signer or "an unsigned or unknown-key commit"
                self.refusals.append(Refusal(commit_id, f"{who} may not request {request.action}", R.NOT_A_REQUESTER))
                return
        self.requests.add(entry)
        if entry.signed and entry._signature is None:
            pending.append(entry)  # who signed it decides self-approval: checked with the decisions

    def _apply_decision(self, commit_id: str, position: int, parts: CommitParts, change: Change,
                        pending: list) -> None:
        request_id, file_name = change.path.split("/")[-2:]
        person = file_name[: -len(".toml")]
        if not (is_valid_name(request_id) and is_valid_name(person)):
            self.refusals.append(Refusal(commit_id, f"{change.path} is not a valid decision path", R.LAYOUT))
            return
        misplaced = self._misplaced_decision(change.path, request_id)
        if misplaced is not None:  # layout 2: refused before it can stand in any later decision's way
            self.refusals.append(Refusal.of(commit_id, misplaced))
            return
        entry = DecisionEntry(person, request_id, commit_id, position, self.state.commit, self,
                              _parts=parts, _state=self.state)
        earlier = [e.commit for e in self.decisions.get(request_id, []) if e.person == person]
        self.decisions.add(entry)
        request = self.requests.get(request_id)
        try:
            entry.decision = parse_decision(self._record_bytes(change), change.path)
        except BadInput as exc:
            entry.problem = _record_problem(exc)
        if entry.problem is None:
            entry.problem = self._witness_problem(parts.committer_time, "committed", entry.state.policy.clock_skew)
        if entry.problem is None and earlier:
            entry.problem = Reason(R.DUPLICATE_DECISION,
                                   f"{person} already decided on {request_id} in commit {earlier[0][:12]}")
        if entry.problem is None:
            entry.problem = self._binding_problem(entry, request)
        if entry.problem is None and parts.signature is None:
            entry.problem = Reason(R.NOT_SIGNED, "decision commit is not signed")
        if entry.problem is None:
            pending.append(entry)
        else:
            self.refusals.append(Refusal.of(commit_id, entry.problem.prefixed(person)))

    def _misplaced_decision(self, path: str, request_id: str) -> Reason | None:
        """In layout 2, a decision counts only in the shard of an existing request's target
        (docs/format.md, section 2.4); one that does not is refused as if never made."""
        record = record_path(path, self.state.policy.layout)
        if record is None or record.shard is None:
            return None
        request = self.requests.get(request_id)
        if request is None:
            return Reason(R.NO_SUCH_REQUEST, f"{path}: request {request_id} does not exist before this decision")
        misplaced = shard_problem(record, request.request.target)
        return Reason(R.LAYOUT, f"{path}: {misplaced}") if misplaced else None

    def _binding_problem(self, entry: DecisionEntry, request: RequestEntry | None) -> Reason | None:
        decision = entry.decision
        if request is None:
            return Reason(R.NO_SUCH_REQUEST, f"request {entry.request_id} does not exist before this decision")
        if decision.request != request.request.id:
            return Reason(R.WRONG_REQUEST, f"decision names request {decision.request!r}, its path {request.request.id!r}")
        if decision.request_blob != request.blob:
            return Reason(R.WRONG_BLOB, "decision is bound to another version of the request (request_blob differs)")
        if decision.target != request.request.target:
            return Reason(R.WRONG_TARGET, f"decision is for target {decision.target[:12]}, "
                                          f"the request for {request.request.target[:12]}")
        policy = entry.state.policy
        action = policy.actions.get(request.request.action)
        if action is None or entry.person not in action.approvers:
            return Reason(R.NOT_APPROVER, f"{entry.person} is not an approver of {request.request.action}")
        return None

    def _check_pending_signatures(self, pending: _PendingChecks) -> None:
        """The verdicts on the signed requests and decisions just applied, in branch order.

        Requests go first in branch order, so a decision's self-approval check
        already knows who signed its request.
        """
        checks = pending.checks()
        for entry, check in zip(pending.entries, checks, strict=True):
            if isinstance(entry, RequestEntry):
                entry._signature = check
                late = check.good and self._witness_problem(check.created, "signed", entry.state.policy.clock_skew)
                if late:
                    self.refusals.append(Refusal.of(entry.commit, late.prefixed(layout_request_path(
                        entry.request.id, entry.request.target, entry.state.policy.layout))))
        for entry, check in zip(pending.entries, checks, strict=True):
            if isinstance(entry, DecisionEntry):
                entry.signature = check
                entry.problem = self._signature_problem(entry, check)
                if entry.problem is not None:
                    self.refusals.append(Refusal.of(entry.commit, entry.problem.prefixed(entry.person)))

    def _signature_problem(self, entry: DecisionEntry, check: SignatureCheck) -> Reason | None:
        if not check.good:
            return Reason(check.code or R.NOT_CHECKED, check.reason)
        owner = entry.state.key_owner(check)
        if owner is None:
            return Reason(R.UNKNOWN_KEY,
                          f"signature by key {check.primary_key}, which is not in the policy with its keys/ file")
        if owner != entry.person:
            return Reason(R.WRONG_SIGNER, f"signed by {owner}'s key, not {entry.person}'s")
        request = self.requests[entry.request_id]
        skew = entry.state.policy.clock_skew
        late = self._witness_problem(check.created, "signed", skew)
        if late:
            return late
        if abs(check.created - entry.parts.committer_time) > skew:
            return Reason(R.CLOCK_SKEW, "signature time and committer time disagree by more than clock_skew")
        if check.created < request.request.created - skew:
            return Reason(R.SIGNED_BEFORE_REQUEST, "signed before the request was created")
        action = entry.state.policy.actions[request.request.action]
        if not action.self_approval:
            if entry.person in request.requesters(self):
                return Reason(R.SELF_APPROVAL, f"{entry.person} requested it: self-approval is not allowed for {action.name}")
            return request.unknown_requester(self)
        return None

    # -- signatures ----------------------------------------------------------

    def keyring_for(self, tree: dict[str, TreeEntry]) -> Keyring:
        """The keyring of a policy commit's `keys/` folder (built once per folder content)."""
        keys = tree.get("keys")
        if keys is None or not keys.is_tree:
            raise NotTrusted("the policy commit has no keys/ folder")
        keyrings = os.path.join(cache_dir(self.branch), "keyrings")
        cached = Keyring.load(keyrings, keys.id)
        if cached is not None:
            return cached  # built from this very tree (its id names it): no key file needs reading
        files = {}
        for entry in self.branch.tree(keys.id).values():
            if entry.mode == "100644" and entry.name.endswith(".asc") and is_valid_name(entry.name[:-4]):
                files[entry.name[:-4]] = self.branch.blob(entry.id)
        return Keyring.load_or_build(keyrings, keys.id, files)

    def check_signature(self, commit_id: str, parts: CommitParts, keyring: Keyring) -> SignatureCheck:
        return self.check_signatures([(commit_id, parts, keyring)])[0]

    def check_signatures(self, jobs: list[tuple[str, CommitParts, Keyring]]) -> list[SignatureCheck]:
        """GnuPG verdicts for many commits; good ones reached by an earlier run come from trust/cache/signatures.py."""
        from gitjit.trust.cache.signatures import SignatureCache  # only a run that checks signatures pays for it

        return SignatureCache.for_directory(cache_dir(self.branch)).check(jobs, self._verify_signatures)

    @staticmethod
    def _verify_signatures(jobs: list[tuple[str, CommitParts, Keyring]]) -> list[SignatureCheck]:
        """GnuPG verdicts for many commits, on every core when there are many."""
        one = TrustedBranch._verify_one
        if len(jobs) < _POOL_MIN_JOBS:
            return [one(job) for job in jobs]
        from concurrent.futures import ThreadPoolExecutor  # only a long batch pays for it

        with ThreadPoolExecutor(max_workers=_pool_workers()) as pool:
            return list(pool.map(one, jobs))

    @staticmethod
    def _verify_one(job: tuple[str, CommitParts, Keyring]) -> SignatureCheck:
        _, parts, keyring = job
        if parts.signature is None:
            return SignatureCheck.refused(Reason(R.NOT_SIGNED, "not signed"))
        return keyring.verify(parts.payload, parts.signature)

    # -- lookups -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        self._usable()
        return self.state.policy

    def requests_for(self, action: str, target: str) -> list[RequestEntry]:
        self._usable()
        return self.requests.for_target(action, target)

    def commit_parts(self, commit_id: str) -> CommitParts:
        try:
            return split_commit(self.branch.raw_object(commit_id))
        except (MalformedCommit, MissingObject, ValueError) as exc:
            raise NotTrusted(f"commit {commit_id[:12]} can no longer be read: {exc}", R.MISSING_OBJECT) from None

    def policy_state(self, commit_id: str) -> PolicyState:
        """The policy set by one of the branch's authorized policy commits, with its keyring."""
        state = self._states.get(commit_id)
        if state is None:
            if commit_id not in {c for c, _ in self.policy_changes}:
                raise NotTrusted(f"{commit_id[:12]} is not an authorized policy commit")
            tree = self.branch.tree(self.branch.commit(commit_id).tree)
            try:
                policy = self._read_policy(tree[POLICY_FILE].id, commit_id)
            except (KeyError, BadInput) as exc:  # KeyError: no policy.toml in the tree (a dict miss)
                raise NotTrusted(f"the policy at {commit_id[:12]} can no longer be read: {exc}") from None
            state = self._states[commit_id] = PolicyState(policy, self.keyring_for(tree), commit_id)
        return state

    def _read_policy(self, blob_id: str, commit_id: str) -> Policy:
        """The policy in a policy.toml blob, validated whole.

        The TOML document comes from the snapshot where an earlier run kept it
        (a push then needs no TOML parser), else from the blob; either way it
        is validated here. A kept copy that does not validate is damaged: the
        blob decides.
        """
        where = f"{POLICY_FILE} at {commit_id[:12]}"
        kept = self._snapshot.policy_document(blob_id) if self._snapshot is not None else None
        if kept is not None:
            try:
                return policy_from_document(kept, where)
            except BadInput:
                pass
        document = load_policy_document(self.branch.blob(blob_id), where)
        policy = policy_from_document(document, where)
        self._policy_documents[blob_id] = document  # kept with the snapshot: it validated
        return policy


# A batch shorter than this is checked one signature at a time, in this thread:
# a push of one decision never pays for a thread pool.
_POOL_MIN_JOBS = 4


def _pool_workers() -> int:
    """One pool thread per core: each keeps a gpg process busy. More threads fight the
    walk (and each other) for the GIL and measured slower on two cores, not faster."""
    return int(os.environ.get("GITJIT_WORKERS", "0")) or os.cpu_count() or 2


class _PendingChecks:
    """The signed requests and decisions one `extend` meets, in branch order,
    each one's GnuPG check started as soon as it is appended, so that gpg runs
    on the other cores while the walk reads and parses the next commits.

    The verdicts are exactly those `check_signatures` gives the same batch at
    the end of the walk: one trust/cache/signatures.py may reuse is taken from it, every
    other comes from GnuPG in this process, and the good ones are stored once
    all are in. Checks wait until `_POOL_MIN_JOBS` of them need GnuPG, and a
    batch shorter than that is checked one by one at the end. Fail closed: a
    check that raises, wherever it raises, is "not good".
    """

    def __init__(self, trusted: TrustedBranch):
        self.entries: list[RequestEntry | DecisionEntry] = []
        self._trusted = trusted
        self._jobs: list[tuple[str, CommitParts, Keyring]] = []
        self._found: list[SignatureCheck | None] = []  # from the cache, else None
        self._waiting: list[int] = []  # jobs for GnuPG before the pool starts
        self._futures: dict = {}  # job index -> its Future in the pool
        self._cache = None
        self._pool = None

    def append(self, entry: RequestEntry | DecisionEntry) -> None:
        if self._cache is None:
            from gitjit.trust.cache.signatures import SignatureCache  # only a run that checks signatures pays for it

            self._cache = SignatureCache.for_directory(cache_dir(self._trusted.branch))
        job = (entry.commit, entry.parts, entry.state.keyring)
        found = self._cache.lookup(job, datetime.now(UTC))
        self.entries.append(entry)
        self._jobs.append(job)
        self._found.append(found)
        if found is not None:
            return
        self._waiting.append(len(self._jobs) - 1)
        if self._pool is None and len(self._waiting) >= _POOL_MIN_JOBS:
            from concurrent.futures import ThreadPoolExecutor  # only a long batch pays for it

            self._pool = ThreadPoolExecutor(max_workers=_pool_workers())
        if self._pool is not None:
            for index in self._waiting:
                self._futures[index] = self._pool.submit(_verdict, self._jobs[index])
            self._waiting.clear()

    def checks(self) -> list[SignatureCheck]:
        """Every verdict, in the order appended; stores the good ones GnuPG just reached."""
        results = list(self._found)
        for index in self._waiting:  # a batch too short for the pool
            results[index] = _verdict(self._jobs[index])
        # The walk is over, so this thread checks too: it takes the checks the pool
        # has not started, from the back of the queue, while the pool works from the front.
        for index in reversed(list(self._futures)):
            if not self._futures[index].cancel():
                break
            results[index] = _verdict(self._jobs[index])
        for index, future in self._futures.items():
            if not future.cancelled():
                try:
                    results[index] = future.result()
                except Exception as exc:  # fail closed
                    results[index] = SignatureCheck.refused(
                        Reason(R.GPG_FAILED, f"signature could not be checked: {exc}"))
        computed = [i for i, found in enumerate(self._found) if found is None]
        if computed:
            self._cache.store([(self._jobs[i], results[i]) for i in computed])
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Stops the pool; the checks it has not started are dropped (the walk failed)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _verdict(job: tuple[str, CommitParts, Keyring]) -> SignatureCheck:
    """GnuPG's verdict on one pending check; fail closed: whatever raises makes it "not good"."""
    try:
        return TrustedBranch._verify_one(job)
    except Exception as exc:
        return SignatureCheck.refused(Reason(R.GPG_FAILED, f"signature could not be checked: {exc}"))


def _record_problem(exc: BadInput) -> Reason:
    """Why a request or decision file does not count: too large, or malformed."""
    return Reason(R.MALFORMED_RECORD if exc.code == R.BAD_INPUT else exc.code, str(exc))


def _json_rows(documents: dict[str, dict]) -> list[tuple[str, str]]:
    rows = []
    for blob_id, document in documents.items():
        try:
            rows.append((blob_id, json.dumps(document)))
        except (TypeError, ValueError):
            pass  # not kept: the blob is parsed again next time
    return rows


def _time(value: datetime) -> int:
    return int(value.timestamp())


def _request_row(entry: RequestEntry) -> dict:
    r = entry.request
    return {
        "id": r.id, "action": r.action, "target": r.target, "requested_by": r.requested_by, "reason": r.reason,
        "created": _time(r.created), "expires": _time(r.expires),
        "commit": entry.commit, "blob": entry.blob, "position": entry.position,
        "author_email": entry.author_email, "signed": entry.signed, "state_commit": entry.state_commit,
        "signature": entry._signature.to_json() if entry._signature else None,
    }


def _request_from_row(row: dict, owner: TrustedBranch) -> RequestEntry:
    request = Request(row["id"], row["action"], row["target"], row["requested_by"], row["reason"],
                      from_timestamp(row["created"]), from_timestamp(row["expires"]))
    return RequestEntry(request, row["commit"], row["blob"], row["position"], row["author_email"], row["signed"],
                        row["state_commit"], owner,
                        _signature=SignatureCheck.from_json(row["signature"]) if row["signature"] else None)


def _decision_row(entry: DecisionEntry) -> dict:
    d = entry.decision
    return {
        "person": entry.person, "request_id": entry.request_id, "commit": entry.commit, "position": entry.position,
        "state_commit": entry.state_commit, "problem": list(entry.problem) if entry.problem else None,
        "decision": [d.request, d.request_blob, d.target, d.decision, d.comment] if d else None,
        "signature": entry.signature.to_json() if entry.signature else None,
    }


def _decision_from_row(row: dict, owner: TrustedBranch) -> DecisionEntry:
    return DecisionEntry(row["person"], row["request_id"], row["commit"], row["position"], row["state_commit"], owner,
                         decision=Decision(*row["decision"]) if row["decision"] else None,
                         signature=SignatureCheck.from_json(row["signature"]) if row["signature"] else None,
                         problem=Reason(*row["problem"]) if row["problem"] else None)
