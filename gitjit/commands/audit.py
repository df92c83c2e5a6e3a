"""`gitjit audit`: the whole approvals branch, authenticated, as one report (docs/format.md, sections 5, 6, 8).

The report is built in this order:

1. The branch is walked from its pinned root (`gitjit.root`, or `--root`;
   trust on first use where none is pinned, as `verify` does) to its tip
   through `TrustedBranch`, which checks every commit (sections 2, 4, 5, 6.1-6.2).
2. If that fails (`NotTrusted`: an unauthorized policy or key change, a
   merge, another root), the report says so first and loudly, and still
   shows what was authenticated before the failing commit; the commits after
   it are counted as not checked.
3. Every policy and key change is listed with its signer, key and time.
4. Every request is judged at `at` (now unless `--at`) by
   `verdicts.judge_request`; each decision on it carries its signer, key
   fingerprint, signature time and whether it counts, and why not.
5. Every commit that does not count (`TrustedBranch.refusals`) is listed
   with the reason.

`ok` is false, and the CLI exits 1, when the branch is not trusted or a
commit does not count. `--since` narrows the listed items to commits made
at or after that time (by committer time, which is only a filter) and the
`ok` verdict to them; the branch is always authenticated whole.

The report is a value: `render_audit` in the CLI draws it with rich, and
`render_json` turns it into the JSON of docs/json.md.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime

from gitjit import reasons as R
from gitjit.errors import BadInput, NotTrusted
from gitjit.git.branch import ApprovalsBranch
from gitjit.git.read import HEX40
from gitjit.trust.signature_checks import SignatureChecker
from gitjit.trust.signatures import MalformedCommit, SignatureCheck, split_commit
from gitjit.trust.trusted import DecisionEntry, RequestEntry, TrustedBranch
from gitjit.trust.verdicts import DecisionVerdict, RequestVerdict, judge_request

SCHEMA = "gitjit-audit/1"


@dataclass(frozen=True)
class PolicyChange:
    commit: str
    kind: str  # "root" or "policy"
    signer: str
    key: str | None  # primary-key fingerprint
    signing_key: str | None  # the (sub)key that made the signature
    signed_at: datetime | None
    committed_at: datetime
    changes: tuple[str, ...]  # "A keys/bob.asc", "M policy.toml"


@dataclass(frozen=True)
class DecisionAudit:
    verdict: DecisionVerdict
    signer: str | None  # whose key made the signature, by the policy in force then
    key: str | None  # primary key of the signature, also where it was refused before its signature counted
    signing_key: str | None
    signed_at: datetime | None
    committed_at: datetime


@dataclass(frozen=True)
class RequestAudit:
    verdict: RequestVerdict
    signer: str | None  # whose key signed the request commit, if anyone's in the policy
    key: str | None  # the primary key of that signature, even an unknown one
    signed: bool
    committed_at: datetime
    decisions: tuple[DecisionAudit, ...]


@dataclass(frozen=True)
class RefusedCommit:
    commit: str
    reason: str
    committed_at: datetime | None
    code: str = R.LAYOUT


@dataclass(frozen=True)
class NotTrustedAt:
    commit: str | None  # the first commit that failed authentication, when known
    reason: str
    unchecked: int  # commits after the authenticated part, not checked
    code: str = R.NOT_TRUSTED


@dataclass(frozen=True)
class AuditReport:
    at: datetime
    since: datetime | None
    ref: str
    tip: str
    root: str | None
    root_pinned: bool  # the root was pinned before this audit (not trusted on first use now)
    commits: int  # on the branch, root to tip
    not_trusted: NotTrustedAt | None
    policy_changes: tuple[PolicyChange, ...]
    requests: tuple[RequestAudit, ...]
    refusals: tuple[RefusedCommit, ...]

    @property
    def trusted(self) -> bool:
        return self.not_trusted is None

    @property
    def ok(self) -> bool:
        return self.trusted and not self.refusals


# -- building the report ---------------------------------------------------------

def audit(branch: ApprovalsBranch, at: datetime, since: datetime | None = None, root: str | None = None,
          checker: SignatureChecker | None = None) -> AuditReport:
    """`checker`: GnuPG's verdicts (default: batched on every core, cached as trust/signature_checks.py says)."""
    tip = branch.read_tip()
    if tip is None:
        raise BadInput(f"no approvals branch: neither {branch.ref} nor {branch.remote_ref} exists "
                       f"(run 'gitjit init' or fetch the branch)")
    ref = branch.ref if branch.ref_target(branch.ref) == tip else branch.remote_ref
    pinned = root or branch.pinned_root()
    try:
        chain = branch.first_parent_chain(tip)
    except NotTrusted as exc:  # a merge, or a missing commit: nothing can be authenticated
        return AuditReport(at, since, ref, tip, pinned, pinned is not None, 0,
                           NotTrustedAt(None, str(exc), 0, exc.code), (), (), ())
    if pinned is not None and chain[0] != pinned:
        reason = f"the approvals branch starts at {chain[0][:12]}, not at the pinned root {pinned[:12]}"
        return AuditReport(at, since, ref, tip, pinned, True, len(chain),
                           NotTrustedAt(chain[0], reason, len(chain), R.BAD_ROOT), (), (), ())

    trusted, failure = _authenticate(branch, chain, checker)
    if failure is None and pinned is None and root is None:
        branch.set_config("gitjit.root", chain[0])  # trust on first use, as TrustedBranch.load does
    request_entries = sorted(trusted.requests.values(), key=lambda e: e.position)
    decision_entries = trusted.decisions.all()  # each a snapshot's index reads whole: once
    times = _Times(trusted, request_entries + decision_entries)

    def in_window(commit: str) -> bool:  # a commit without a readable time is always listed
        when = times[commit]
        return since is None or when is None or when >= since

    policy_changes = tuple(p for p in _policy_changes(trusted, times) if in_window(p.commit))
    signatures = _refused_decision_signatures(trusted, decision_entries)
    requests = []
    for entry in request_entries:
        decisions = trusted.decisions.get(entry.request.id, [])
        if not (in_window(entry.commit) or any(in_window(d.commit) for d in decisions)):
            continue
        requests.append(_request_audit(trusted, entry, at, times, signatures))
    order = {c: i for i, c in enumerate(chain)}
    refusals = tuple(RefusedCommit(r.commit, r.reason, times[r.commit], r.code)
                     for r in sorted(trusted.refusals, key=lambda r: order[r.commit]) if in_window(r.commit))
    return AuditReport(at, since, ref, tip, chain[0], pinned is not None, len(chain), failure,
                       policy_changes, tuple(requests), refusals)


def _authenticate(branch: ApprovalsBranch, chain: list[str],
                  checker: SignatureChecker | None) -> tuple[TrustedBranch, NotTrustedAt | None]:
    """The whole chain at once (signatures checked in parallel), or the part before the failure.

    A trusted view is saved as the snapshot the other commands and the hook
    resume from (trust/cache/snapshot.py), and the next audit resumes from it where it
    reaches exactly what a walk from the root would (`_resume`): only the
    commits after it are checked. Anything else is walked from the root,
    which also says where and why the branch is not trusted.
    """
    resumed = _resume(branch, chain, checker)
    if resumed is not None:
        return resumed, None
    whole = TrustedBranch(branch, chain[0], checker=checker)
    try:
        whole.extend(chain)
        whole.save()
        return whole, None
    except NotTrusted as exc:
        reason, code = str(exc), exc.code
        reached = whole.count  # the failing commit is the last applied one or the next
    # Again, up to the failure: first everything surely before it, then one commit at a time.
    partial = TrustedBranch(branch, chain[0], checker=checker)
    done = max(0, reached - 1)
    if done:
        try:
            partial.extend(chain[:done])
        except NotTrusted:  # not the same outcome twice: trust nothing (fail closed)
            return TrustedBranch(branch, chain[0], checker=checker), NotTrustedAt(chain[0], reason, len(chain), code)
    for index in range(done, len(chain)):
        try:
            partial.extend([chain[index]])
        except NotTrusted as exc:
            trusted = TrustedBranch(branch, chain[0], checker=checker)
            if index:
                trusted.extend(chain[:index])  # a clean copy: `partial` holds the failing commit half-applied
            return trusted, NotTrustedAt(chain[index], str(exc), len(chain) - index, exc.code)
    return TrustedBranch(branch, chain[0], checker=checker), NotTrustedAt(chain[0], reason, len(chain), code)


def _resume(branch: ApprovalsBranch, chain: list[str], checker: SignatureChecker | None) -> TrustedBranch | None:
    """The trusted view at the chain's tip continued from a snapshot, or None where none fits
    or a verdict it holds would not stand today."""
    try:
        trusted = TrustedBranch.resume(branch, chain[-1], chain[0], checker)
    except NotTrusted:  # a commit after the snapshot fails: the walk from the root reports it
        return None
    if trusted is None or not _verdicts_stand(trusted):
        return None
    trusted.save()
    return trusted


def _verdicts_stand(trusted: TrustedBranch) -> bool:
    """Would a walk from the root now reach every GnuPG verdict the snapshot holds?

    A walk asks GnuPG (or trust/cache/signatures.py) again, and GnuPG's verdicts move with
    the clock: keys and signatures expire, and a failure to run gpg passes.
    So a good verdict must still be good now (trust/cache/signatures.py's rule 3), one that
    was not good is reached again and must be the same, and every policy
    change must still verify as the report shows it. The audit then says
    exactly what a walk from the root says; otherwise it walks from the root.
    """
    from gitjit.trust.cache.signatures import SignatureCache

    now = datetime.now(UTC)
    stored = [(e, e.known_signature) for e in trusted.requests.values() if e.known_signature is not None]
    stored += [(d, d.signature) for d in trusted.decisions.all() if d.signature is not None]
    again = []
    for entry, check in stored:
        if not check.good:
            again.append((entry, check))
        elif not SignatureCache.still_good(check, entry.state.keyring, now):
            return False
    checks = trusted.check_signatures([(e.commit, e.parts, e.state.keyring) for e, _ in again])
    if any(check != old for (_, old), check in zip(again, checks, strict=True)):
        return False
    return all(check.good for check in _policy_signatures(trusted))


class _Times(dict):
    """Committer times by commit id: those of `entries` at once, any other when first asked for."""

    def __init__(self, trusted: TrustedBranch, entries: list[RequestEntry | DecisionEntry]):
        super().__init__()
        self.trusted = trusted
        # Entries read back from a snapshot have not read their commits yet: all in one go.
        raw = _read_commits(trusted.branch, [e.commit for e in entries if not e.parts_read])
        for entry in entries:
            if entry.commit in raw:
                try:
                    entry.use_parts(split_commit(raw[entry.commit]))
                except MalformedCommit:
                    pass  # read again below, and reported as it always is
            self[entry.commit] = entry.parts.committer_time

    def __missing__(self, commit_id: str) -> datetime | None:
        try:
            when = self.trusted.commit_parts(commit_id).committer_time
        except NotTrusted:  # a malformed commit object: it is among the refusals, with no time
            when = None
        self[commit_id] = when
        return when


def _read_commits(branch: ApprovalsBranch, commit_ids: list[str]) -> dict[str, bytes]:
    """Raw commit objects by id, from one `git cat-file --batch --buffer` given every id at once
    (reading them one at a time costs a round trip each). Whatever it does not answer whole is
    left out, to be read the usual way."""
    ids = [c for c in commit_ids if HEX40.match(c)]
    if not ids:
        return {}
    try:
        out = subprocess.run(branch.reader.command("cat-file", "--batch", "--buffer"),
                             input="".join(f"{c}\n" for c in ids).encode(),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    except OSError:
        return {}
    found: dict[str, bytes] = {}
    position = 0
    for commit_id in ids:
        end = out.find(b"\n", position)
        header = out[position:end].split() if end >= 0 else []
        if len(header) == 2 and header[0] == commit_id.encode() and header[1] == b"missing":
            position = end + 1
            continue
        if len(header) != 3 or header[0] != commit_id.encode() or not header[2].isdigit():
            break  # not what was asked: nothing more is taken from this answer
        start, size = end + 1, int(header[2])
        if out[start + size:start + size + 1] != b"\n":
            break
        if header[1] == b"commit":
            found[commit_id] = out[start:start + size]
        position = start + size + 1
    return found


def _policy_signatures(trusted: TrustedBranch) -> list[SignatureCheck]:
    """GnuPG's verdict on each policy change, by the keyring of the policy in force before it
    (the root's by its own)."""
    out = []
    authority = None
    for commit_id, _ in trusted.policy_changes:
        own = trusted.policy_state(commit_id).keyring
        out.append(_signature(trusted, commit_id, authority or own))
        authority = own
    return out


def _policy_changes(trusted: TrustedBranch, times: _Times) -> list[PolicyChange]:
    out = []
    for (commit_id, signer), check in zip(trusted.policy_changes, _policy_signatures(trusted), strict=True):
        changes = tuple(f"{c.status} {c.path}" for _, found in trusted.branch.changes([commit_id]) for c in found)
        out.append(PolicyChange(commit_id, "root" if not out else "policy", signer, check.primary_key,
                                check.signing_key, check.created, times[commit_id], changes))
    return out


def _signature(trusted: TrustedBranch, commit_id: str, keyring) -> SignatureCheck:
    try:
        parts = split_commit(trusted.branch.raw_object(commit_id))
    except MalformedCommit as exc:
        return SignatureCheck.refused(exc.reason)
    return trusted.check_signature(commit_id, parts, keyring)


def _refused_decision_signatures(trusted: TrustedBranch, decisions: list[DecisionEntry]) -> dict[str, SignatureCheck]:
    """Who signed the decisions refused before their signature was looked at (a non-approver, a
    wrong binding): the audit names them too. This only informs; it never makes anything count."""
    unchecked = [d for d in decisions if d.signature is None and d.parts.signature is not None]
    checks = trusted.check_signatures([(d.commit, d.parts, d.state.keyring) for d in unchecked])
    return {d.commit: check for d, check in zip(unchecked, checks, strict=True)}


def _request_audit(trusted: TrustedBranch, entry: RequestEntry, at: datetime, times: _Times,
                   signatures: dict[str, SignatureCheck]) -> RequestAudit:
    verdict = judge_request(trusted, entry, at)
    by_commit: dict[str, DecisionEntry] = {d.commit: d for d in trusted.decisions.get(entry.request.id, [])}
    decisions = tuple(_decision_audit(d, by_commit[d.commit], times, signatures) for d in verdict.decisions)
    check = entry.signature(trusted)
    return RequestAudit(verdict, entry.signer(trusted), check.primary_key if check else None,
                        entry.parts.signature is not None, times[entry.commit], decisions)


def _decision_audit(verdict: DecisionVerdict, entry: DecisionEntry, times: _Times,
                    signatures: dict[str, SignatureCheck]) -> DecisionAudit:
    check = entry.signature or signatures.get(entry.commit)
    if check is None or not check.good:
        return DecisionAudit(verdict, None, None, None, None, times[entry.commit])
    return DecisionAudit(verdict, entry.state.key_owner(check), check.primary_key, check.signing_key,
                         check.created, times[entry.commit])
