"""What the trusted view holds: the policy in force, refusals, and the requests and decisions that were added.

`TrustedBranch` (trust/trusted.py) decides what goes in; these are the values
it keeps. An entry keeps the commit's parts and the policy in force by commit
id and resolves them through the view that owns it, so an entry read back from
a snapshot (trust/cache/view_store.py) costs nothing until it is used. The
indexes answer from that snapshot lazily and from what was added since.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from gitjit import reasons as R
from gitjit.model.policy import Policy
from gitjit.model.records import Decision, Request
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.reasons import Reason
from gitjit.trust.signatures import CommitParts, Keyring, SignatureCheck

if TYPE_CHECKING:  # pragma: no cover
    from gitjit.trust.cache.view_store import StoredView
    from gitjit.trust.trusted import TrustedBranch


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

    def signer(self, check: SignatureCheck) -> Signer | Reason:
        """Who a signature counts for, and when they signed; or why it counts for nobody."""
        if not check.good:
            return Reason(check.code or R.NOT_CHECKED, check.reason)
        if check.created is None:
            return Reason(R.MALFORMED_SIGNATURE, "GnuPG gave no time for the signature")
        owner = self.key_owner(check)
        if owner is None:
            return Reason(R.UNKNOWN_KEY,
                          f"signature by key {check.primary_key}, which is not in the policy with its keys/ file")
        return Signer(owner, check.created)


class Signer(NamedTuple):
    """A good signature's person (in the policy, with their keys/ file) and its time."""

    person: str
    at: datetime


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
    # Slots of each subclass (mypy checks assignments against this class's empty
    # __slots__, hence the ignores below); what these properties use of them:
    owner: TrustedBranch
    commit: str
    state_commit: str
    _parts: CommitParts | None
    _state: PolicyState | None

    @property
    def parts(self) -> CommitParts:
        if self._parts is None:
            self._parts = self.owner.commit_parts(self.commit)  # type: ignore[misc]  # a slot of each subclass
        return self._parts

    @property
    def state(self) -> PolicyState:
        if self._state is None:
            self._state = self.owner.policy_state(self.state_commit)  # type: ignore[misc]  # a slot of each subclass
        return self._state

    @property
    def parts_read(self) -> bool:
        """Whether the commit has been read already (an entry from a snapshot has not)."""
        return self._parts is not None

    def use_parts(self, parts: CommitParts) -> None:
        """The commit's parts, read by the caller (several commits at once, say) rather than one by one."""
        self._parts = parts  # type: ignore[misc]  # a slot of each subclass


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

    @property
    def known_signature(self) -> SignatureCheck | None:
        """GnuPG's verdict on the request's signature where it was reached already; never runs GnuPG."""
        return self._signature

    def set_signature(self, check: SignatureCheck) -> None:
        """The verdict reached for this request's signature (by a batch of checks)."""
        self._signature = check

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

    def __init__(self, owner: TrustedBranch, stored: StoredView | None = None):
        self._owner, self._stored = owner, stored
        self._loaded: dict[str, RequestEntry] = {}
        self._added: dict[str, RequestEntry] = {}

    def add(self, entry: RequestEntry) -> None:
        self._added[entry.request.id] = entry

    def added(self) -> list[RequestEntry]:
        """The entries added since the snapshot, in branch order: what a save stores."""
        return list(self._added.values())

    def __getitem__(self, request_id: str) -> RequestEntry:
        entry = self._added.get(request_id) or self._loaded.get(request_id)
        if entry is None and self._stored is not None:
            row = self._stored.request_row(request_id)
            if row is not None:
                entry = self._loaded[request_id] = self._stored.request_entry(row, self._owner)
        if entry is None:
            raise KeyError(request_id)
        return entry

    def __iter__(self) -> Iterator[str]:
        if self._stored is not None:
            yield from self._stored.request_ids()
        yield from self._added

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def values(self) -> list[RequestEntry]:  # type: ignore[override]  # a list, not Mapping's view
        if self._stored is not None:
            for row in self._stored.request_rows():
                if row["id"] not in self._loaded:
                    self._loaded[row["id"]] = self._stored.request_entry(row, self._owner)
        stored = [self._loaded[i] for i in self._stored.request_ids()] if self._stored else []
        return stored + list(self._added.values())

    def for_target(self, action: str, target: str) -> list[RequestEntry]:
        found = []
        if self._stored is not None:
            for row in self._stored.request_rows_for(action, target):
                found.append(self._loaded.get(row["id"]) or self._loaded.setdefault(
                    row["id"], self._stored.request_entry(row, self._owner)))
        found += [e for e in self._added.values() if e.request.action == action and e.request.target == target]
        return found


class DecisionIndex(Mapping[str, list[DecisionEntry]]):
    """Decisions by request id, in branch order: read back lazily, plus those added since."""

    def __init__(self, owner: TrustedBranch, stored: StoredView | None = None):
        self._owner, self._stored = owner, stored
        self._loaded: dict[str, list[DecisionEntry]] = {}
        self._added: dict[str, list[DecisionEntry]] = {}

    def add(self, entry: DecisionEntry) -> None:
        self._added.setdefault(entry.request_id, []).append(entry)

    def added(self) -> list[DecisionEntry]:
        """The entries added since the snapshot: what a save stores."""
        return [e for entries in self._added.values() for e in entries]

    def _from_store(self, request_id: str) -> list[DecisionEntry]:
        if self._stored is None:
            return []
        if request_id not in self._loaded:
            rows = self._stored.decision_rows_for(request_id)
            self._loaded[request_id] = [self._stored.decision_entry(r, self._owner) for r in rows]
        return self._loaded[request_id]

    def __getitem__(self, request_id: str) -> list[DecisionEntry]:
        found = self._from_store(request_id) + self._added.get(request_id, [])
        if not found:
            raise KeyError(request_id)
        return found

    def __iter__(self) -> Iterator[str]:
        seen = set()
        if self._stored is not None:
            for row in self._stored.decision_rows():
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
