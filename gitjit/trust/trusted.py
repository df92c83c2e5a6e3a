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
   with a key from the parent's `keys/`, at a time that agrees with its
   committer time (sections 5.2, 4.5); a key that has expired since is judged
   as when it signed (section 5.3). Anything less makes the whole branch
   untrusted (`NotTrusted`): it never silently falls back.
4. Any other commit adds exactly one file and changes nothing else (section 2.2);
   one that does not is recorded as a `Refusal` and does not count.
5. An added request parses, names an action of the policy in force, asks for
   no more than `max_ttl`, and was made by an allowed requester (section 6.1).
6. An added decision parses, is signed by the person its path names with a
   key the policy in force lists for them, was made by an approver of the
   action who is not its requester where self-approval is off, and is bound
   to the request's id, blob and target (sections 6.2, 6.3).
7. On a push, a request or decision committed or signed later than the
   server's clock plus `clock_skew` does not count (section 7.1).
8. A break-glass request is signed by a person its action's `break_glass`
   names, with a signature time within clock_skew of its `created` (section 6.5).
9. An added use record takes the next number of a request of a single-use
   action, within `uses`; it is bound to the request and signed by a person
   who may request the action (section 6.6). A use is consumed by its file
   even where the record does not count: uses only ever go down.
   What depends on the time of verification (freshness, expiry of keys and
   requests) is judged later, by `trust/verdicts.py`.

This module holds the rules only. What it trusts is kept as the values of
`trust/entries.py`; GnuPG is asked through a `SignatureChecker`
(`trust/signature_checks.py`: batches, a thread pool, the verdict cache),
given to the view or the default one; the snapshot an earlier run saved is
resumed and saved through `trust/cache/view_store.py`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from gitjit import reasons as R
from gitjit.errors import BadInput, BadPolicy, NotTrusted
from gitjit.git.branch import ApprovalsBranch, Change, cache_dir
from gitjit.git.read import CommitObject, MissingObject, TreeEntry
from gitjit.model.grammar import describe_age, format_time, from_timestamp, is_valid_name
from gitjit.model.layout import record_path, shard_problem
from gitjit.model.layout import request_path as layout_request_path
from gitjit.model.limits import MAX_CHANGES, MAX_RECORD_BYTES, SHOWN_CHANGES, list_some, max_bytes_for, size_problem
from gitjit.model.policy import POLICY_FILE, Policy, load_policy_document, policy_from_document
from gitjit.model.records import parse_decision, parse_request
from gitjit.namedtuple import TYPE_CHECKING
from gitjit.reasons import Reason
from gitjit.trust.cache import view_store
from gitjit.trust.cache.snapshot import Head
from gitjit.trust.cache.view_store import StoredView
from gitjit.trust.entries import DecisionEntry, DecisionIndex, PolicyState, Refusal, RequestEntry, RequestIndex
from gitjit.trust.quorum import is_proposal_commit, proposal_problem, require_quorum
from gitjit.trust.signature_checks import Job, PendingChecks, SignatureChecker
from gitjit.trust.signatures import FATAL_STATUS, CommitParts, Keyring, MalformedCommit, SignatureCheck, split_commit

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from gitjit.trust.uses import UseEntry

__all__ = ["DecisionEntry", "DecisionIndex", "PolicyState", "Refusal", "RequestEntry", "RequestIndex",
           "SignatureChecker", "TrustedBranch"]


class TrustedBranch:
    """What is trusted so far on the approvals branch (see the module docstring)."""

    def __init__(self, branch: ApprovalsBranch, root: str, tip: str | None = None,
                 state: PolicyState | None = None, count: int = 0, witness: datetime | None = None,
                 checker: SignatureChecker | None = None):
        self.branch = branch
        self.checker = checker or SignatureChecker()  # GnuPG's verdicts, batched and cached
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
        self._stored: StoredView | None = None  # the snapshot this view continues, if any (read lazily)
        self._applied: dict[str, int] = {}  # commit -> position, for commits applied by this process
        self._policy_documents: dict[str, dict[str, Any]] = {}  # policy blob id -> TOML document parsed by this process
        self._failure: str | None = None  # why an `extend` failed: the view is then unusable
        self.uses: dict[str, list[UseEntry]] = {}  # request id -> its UseEntry list (trust/uses.py), in branch order
        self.partial = False  # built from chosen commits only (trust/targeted.py): never saved

    def __repr__(self) -> str:
        return f"TrustedBranch(root={self.root[:12]!r}, tip={(self.tip or '')[:12]!r}, count={self.count})"

    # -- building ------------------------------------------------------------

    @classmethod
    def load(cls, branch: ApprovalsBranch, tip: str | None = None, root: str | None = None,
             pin: bool = True, save: bool = True, checker: SignatureChecker | None = None,
             resume: bool = True) -> TrustedBranch:
        """Authenticates the branch from its pinned root to `tip` (section 5.1).

        Where no root is pinned yet, the branch's own root is pinned on this
        first use (trust on first use), as docs/format.md, section 5.1 describes.
        The work is resumed from the snapshot of an earlier run where there is
        one for this root (trust/cache/view_store.py; not with `resume` False),
        and saved for the next run.
        """
        tip = tip or branch.read_tip()
        if tip is None:
            raise BadInput(f"no approvals branch: neither {branch.ref} nor {branch.remote_ref} exists "
                           f"(run 'gitjit init' or fetch the branch)")
        pinned = root or branch.pinned_root()
        trusted = cls.resume(branch, tip, pinned, checker) if pinned and resume else None
        if trusted is None:
            chain = branch.first_parent_chain(tip)
            if pinned is not None and chain[0] != pinned:
                raise NotTrusted(f"the approvals branch starts at {chain[0][:12]}, "
                                 f"not at the pinned root {pinned[:12]}")
            trusted = cls(branch, chain[0], checker=checker)
            trusted.extend(chain)
            if pinned is None and pin:
                branch.set_config("gitjit.root", chain[0])
        if save:
            trusted.save()
        return trusted

    @classmethod
    def resume(cls, branch: ApprovalsBranch, tip: str, root: str,
               checker: SignatureChecker | None = None) -> TrustedBranch | None:
        """The view at `tip` continued from the stored snapshot, or None where none fits."""
        return view_store.resume(branch, tip, root, lambda stored, at: cls.from_stored(branch, stored, at, checker))

    @classmethod
    def from_stored(cls, branch: ApprovalsBranch, stored: StoredView, tip: str,
                    checker: SignatureChecker | None = None) -> TrustedBranch:
        """The view the snapshot holds, ending at `tip`; its entries are read when asked for."""
        trusted = cls(branch, stored.head.root, tip=tip, count=stored.count, checker=checker)
        trusted._stored = stored
        trusted.requests = RequestIndex(trusted, stored)
        trusted.decisions = DecisionIndex(trusted, stored)
        trusted.refusals = stored.refusals()
        trusted.policy_changes = stored.policy_changes()
        for use in stored.use_entries():
            trusted.uses.setdefault(use.request_id, []).append(use)
        if not trusted.policy_changes:
            raise NotTrusted("the snapshot of the approvals branch holds no policy")
        trusted.state = trusted.policy_state(trusted.policy_changes[-1][0])
        return trusted

    @property
    def resumed_from(self) -> Head | None:
        """Where the snapshot this view continues ends; None for a view walked from its root."""
        return self._stored.head if self._stored is not None else None

    @property
    def applied(self) -> list[str]:
        """The commits this process applied itself, in branch order (not those read from a snapshot)."""
        return list(self._applied)

    @property
    def policies_parsed(self) -> list[str]:
        """The policy.toml blobs this process parsed as TOML (not read back from a snapshot)."""
        return list(self._policy_documents)

    def _usable(self) -> None:
        """A view that failed to extend holds commits half-applied: nothing may read or save it."""
        if self._failure is not None:
            raise NotTrusted(f"this view of the approvals branch failed while extending it ({self._failure}) "
                             f"and may not be used")

    def save(self) -> bool:
        """Stores what this view learned beyond the snapshot it resumed from."""
        self._usable()
        if self.partial or self.tip is None or (self._stored is not None and self._stored.head.tip == self.tip):
            return False
        positions = self._applied
        return view_store.save(
            self.branch, self._stored, Head(self.root, self.tip, self.count),
            requests=self.requests.added(), decisions=self.decisions.added(),
            refusals=[(r, positions[r.commit]) for r in self.refusals if r.commit in positions],
            policy_changes=[(c, positions[c], s) for c, s in self.policy_changes if c in positions],
            policy_documents=self._policy_documents,
            uses=[e for entries in self.uses.values() for e in entries if e.commit in positions])

    def extend(self, commit_ids: list[str], placed: dict[str, tuple[str | None, int]] | None = None) -> list[Refusal]:
        """Applies commits in order; returns the refusals among them.

        The signed requests and decisions met on the way are judged once all
        are applied, but GnuPG starts checking each one as soon as it is met
        (the checker's `PendingChecks`), on every core while the walk goes on.

        `placed` (trust/targeted.py): some commits of a chain whose linearity
        the caller checked, each with its (parent, position); the commits
        between them are not applied, and the view is `partial`.
        """
        self._usable()
        before = len(self.refusals)
        pending = self.checker.pending(cache_dir(self.branch))
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

    def _apply(self, commit_id: str, changes: list[Change], pending: PendingChecks) -> None:
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
        if is_proposal_commit([c.path for c in changes]):  # a policy proposal's bytes (quorum.py)
            problem = proposal_problem(self.state.policy.quorum and total == len(changes), changes)
            if problem is not None:
                self.refusals.append(Refusal.of(commit_id, problem))
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
        segments = change.path.split("/")
        if record is not None and record.person is None:
            self._apply_request(commit_id, position, parts, change, pending)
        elif record is not None:
            self._apply_decision(commit_id, position, parts, change, pending)
        elif len(segments) == 3 and segments[0] == "uses":
            from gitjit.trust.uses import apply_use_record  # only a branch with use records pays for it

            apply_use_record(self, commit_id, position, parts, change)
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
        if signer is not None and self.state is not None and self.state.policy.quorum:  # section 14: N admins signed for exactly these bytes
            require_quorum(self, commit, parts, signer, self.state)
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
        if check.primary_key is None or check.signing_key is None or check.created is None:
            raise NotTrusted(f"{what} {commit_id[:12]}: GnuPG named no key or time for the signature",
                             R.UNAUTHORIZED_POLICY_CHANGE)
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
        if parts.signature is None:
            return None
        check = authority.keyring.verify_when_made(parts.payload, parts.signature)
        if not check.good or check.created is None:
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

    def record_bytes(self, change: Change) -> bytes:
        """A request or decision file, read only when within MAX_RECORD_BYTES (BadInput otherwise)."""
        too_large = size_problem(change.path, self._blob_size(change.new_id), MAX_RECORD_BYTES)
        if too_large:
            raise BadInput(too_large, R.TOO_LARGE)
        if change.new_id is None:  # _blob_size refused it already
            raise NotTrusted("a change names no file")
        return self.branch.blob(change.new_id)

    def witness_problem(self, when: datetime | None, what: str, skew: timedelta) -> Reason | None:
        """A commit of this push dated ahead of the server's clock (docs/format.md, section 7.1)."""
        if self.witness is None or when is None or when <= self.witness + skew:
            return None
        ahead = describe_age(when - self.witness, nearest=True)
        return Reason(R.FUTURE, f"{what} {ahead} in the future ({format_time(when)}), by the server's clock")

    def _apply_request(self, commit_id: str, position: int, parts: CommitParts, change: Change,
                       pending: PendingChecks) -> None:
        if self.state is None or change.new_id is None:  # _apply: never before a policy; an added file has an id
            raise NotTrusted(f"commit {commit_id[:12]}: {change.path} cannot be read as a request")
        try:
            request = parse_request(self.record_bytes(change), change.path)
        except BadInput as exc:
            self.refusals.append(Refusal.of(commit_id, record_problem(exc)))
            return
        policy = self.state.policy
        problem = None
        late = self.witness_problem(parts.committer_time, "committed", policy.clock_skew)
        if late:
            problem = late.prefixed(change.path)
        elif request.id in self.requests:
            problem = Reason(R.DUPLICATE_REQUEST, f"request {request.id} already exists")
        elif policy.action(request.action) is None:
            problem = Reason(R.UNKNOWN_ACTION, f"{change.path}: action {request.action!r} is not in the policy")
        elif request.expires - request.created > policy.max_ttl:
            problem = Reason(R.TTL_TOO_LONG, f"{change.path}: asks to live longer than max_ttl")
        elif (record := record_path(change.path, policy.layout)) is None:  # _apply found it a request path
            problem = Reason(R.LAYOUT, f"{change.path} is not a request path of layout {policy.layout}")
        elif misplaced := shard_problem(record, request.target):
            problem = Reason(R.LAYOUT, f"{change.path}: {misplaced}")
        if problem:
            self.refusals.append(Refusal.of(commit_id, problem))
            return
        entry = RequestEntry(request, commit_id, change.new_id, position, parts.author_email,
                             parts.signature is not None, self.state.commit, self, _parts=parts, _state=self.state)
        action = policy.action(request.action)
        if action is None:  # refused above already
            self.refusals.append(Refusal(commit_id, f"action {request.action!r} is not in the policy", R.UNKNOWN_ACTION))
            return
        if request.break_glass:  # its people may break the glass whoever may request (section 6.5)
            from gitjit.trust.breakglass import signer_problem  # only break-glass requests pay for it

            problem = signer_problem(self, entry, action, parts)
            if problem:
                self.refusals.append(Refusal.of(commit_id, problem.prefixed(change.path)))
                return
        elif action.requesters is not None:
            signer = entry.signer(self)
            if not action.may_request(signer):
                who = signer or "an unsigned or unknown-key commit"
                self.refusals.append(Refusal(commit_id, f"{who} may not request {request.action}", R.NOT_A_REQUESTER))
                return
        self.requests.add(entry)
        if entry.signed and entry.known_signature is None:
            pending.append(entry)  # who signed it decides self-approval: checked with the decisions

    def _apply_decision(self, commit_id: str, position: int, parts: CommitParts, change: Change,
                        pending: PendingChecks) -> None:
        if self.state is None:  # _apply: never before a policy
            raise NotTrusted(f"commit {commit_id[:12]}: {change.path} cannot be read as a decision")
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
            entry.decision = parse_decision(self.record_bytes(change), change.path)
        except BadInput as exc:
            entry.problem = record_problem(exc)
        if entry.problem is None:
            entry.problem = self.witness_problem(parts.committer_time, "committed", entry.state.policy.clock_skew)
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
        if self.state is None:  # _apply: never before a policy
            raise NotTrusted(f"{path}: a decision before any policy")
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
        if decision is None:  # a decision that did not parse has its problem already
            return Reason(R.MALFORMED_RECORD, "decision file could not be read")
        if decision.request != request.request.id:
            return Reason(R.WRONG_REQUEST, f"decision names request {decision.request!r}, its path {request.request.id!r}")
        if decision.request_blob != request.blob:
            return Reason(R.WRONG_BLOB, "decision is bound to another version of the request (request_blob differs)")
        if decision.target != request.request.target:
            return Reason(R.WRONG_TARGET, f"decision is for target {decision.target[:12]}, "
                                          f"the request for {request.request.target[:12]}")
        policy = entry.state.policy
        action = policy.action(request.request.action)
        if action is None or entry.person not in action.approvers:
            return Reason(R.NOT_APPROVER, f"{entry.person} is not an approver of {request.request.action}")
        return None

    def _check_pending_signatures(self, pending: PendingChecks) -> None:
        """The verdicts on the signed requests and decisions just applied, in branch order.

        Requests go first in branch order, so a decision's self-approval check
        already knows who signed its request.
        """
        checks = pending.checks()
        for entry, check in zip(pending.entries, checks, strict=True):
            if isinstance(entry, RequestEntry):
                entry.set_signature(check)
                late = check.good and self.witness_problem(check.created, "signed", entry.state.policy.clock_skew)
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
        signer = entry.state.signer(check)
        if isinstance(signer, Reason):
            return signer
        if signer.person != entry.person:
            return Reason(R.WRONG_SIGNER, f"signed by {signer.person}'s key, not {entry.person}'s")
        request = self.requests[entry.request_id]
        skew = entry.state.policy.clock_skew
        late = self.witness_problem(signer.at, "signed", skew)
        if late:
            return late
        if abs(signer.at - entry.parts.committer_time) > skew:
            return Reason(R.CLOCK_SKEW, "signature time and committer time disagree by more than clock_skew")
        if signer.at < request.request.created - skew:
            return Reason(R.SIGNED_BEFORE_REQUEST, "signed before the request was created")
        action = entry.state.policy.action(request.request.action)
        if action is None:  # its request was refused
            return Reason(R.UNKNOWN_ACTION, f"action {request.request.action} is not in the policy")
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

    def check_signatures(self, jobs: list[Job]) -> list[SignatureCheck]:
        """GnuPG verdicts for many commits; good ones reached by an earlier run come from trust/cache/signatures.py."""
        return self.checker.check(cache_dir(self.branch), jobs)

    # -- lookups -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        self._usable()
        if self.state is None:
            raise NotTrusted("the approvals branch has no policy in force")
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
        kept = self._stored.policy_document(blob_id) if self._stored is not None else None
        if kept is not None:
            try:
                return policy_from_document(kept, where)
            except BadInput:
                pass
        document = load_policy_document(self.branch.blob(blob_id), where)
        policy = policy_from_document(document, where)
        self._policy_documents[blob_id] = document  # kept with the snapshot: it validated
        return policy


def record_problem(exc: BadInput) -> Reason:
    """Why a request or decision file does not count: too large, or malformed."""
    return Reason(R.MALFORMED_RECORD if exc.code == R.BAD_INPUT else exc.code, str(exc))
