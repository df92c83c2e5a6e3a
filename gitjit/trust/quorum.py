"""Admin quorum for policy changes (docs/format.md, section 14).

Where the policy in force has `[admins] threshold = N` with N > 1, a commit
that changes `policy.toml` or `keys/` counts only as the last step of an
approved proposal:

1. a commit adds the proposed bytes, only files under `proposals/<id>/`
   (`policy.toml`, and `keys/<person>.asc` for the whole proposed keys
   folder): it grants nothing, it only stores what is proposed;
2. the next commit adds `requests/<id>.toml` for the reserved action
   `policy`, signed by an admin, whose `target` is commit 1: a decision binds
   `target`, so an admin's approval is a signature over exactly those bytes;
3. admins decide with ordinary decision files (section 6.2);
4. the apply commit changes `policy.toml` and `keys/` to exactly the
   proposed bytes (same blob, same keys tree), names the proposal in a
   `Gitjit-Proposal: <id>` line of its message, and is signed by an admin.
   It counts when N distinct admins of the policy in force at its parent
   signed for it, its own signer included, and no admin's rejection counts,
   and when the proposal was made under that same policy: a proposal applies
   once, and never over a change made after it (no replay, no reverting).

Anything short of that is "not trusted", as any unauthorized policy change.
"""

from __future__ import annotations

from gitjit import reasons as R
from gitjit.errors import NotTrusted
from gitjit.model.grammar import is_valid_name
from gitjit.model.policy import POLICY_ACTION, POLICY_FILE
from gitjit.reasons import Reason

TYPE_CHECKING = False  # typing's own constant, without importing typing on the hook's path
if TYPE_CHECKING:  # pragma: no cover
    from gitjit.git.branch import Change
    from gitjit.git.read import CommitObject, TreeEntry
    from gitjit.trust.signatures import CommitParts
    from gitjit.trust.trusted import PolicyState, TrustedBranch

PROPOSALS = "proposals"
TRAILER = "Gitjit-Proposal"


def is_proposal_commit(paths: list[str]) -> bool:
    """Whether every path a commit changes is under `proposals/` (then it is judged here)."""
    return bool(paths) and all(p.startswith(PROPOSALS + "/") for p in paths)


def proposal_problem(policy_quorum: bool, changes: list[Change]) -> Reason | None:
    """Why a commit adding files under `proposals/` does not count, or None (step 1 above)."""
    if not policy_quorum:
        return Reason(R.LAYOUT, "proposals/ is used only where admins.threshold > 1")
    ids = {c.path.split("/")[1] for c in changes if c.path.count("/") >= 2}
    if len(ids) != 1:
        return Reason(R.LAYOUT, "a proposal commit adds files under exactly one proposals/<id>/")
    proposal = ids.pop()
    if not is_valid_name(proposal):
        return Reason(R.LAYOUT, f"proposals/{proposal[:64]} is not a valid proposal id")
    prefix = f"{PROPOSALS}/{proposal}/"
    seen_policy = False
    for change in changes:
        rest = change.path[len(prefix):] if change.path.startswith(prefix) else None
        if change.status != "A" or not change.is_regular_file:
            return Reason(R.LAYOUT, f"a proposal commit only adds files ({change.status} {change.path})")
        if rest == POLICY_FILE:
            seen_policy = True
        elif not (rest and rest.startswith("keys/") and rest.endswith(".asc") and is_valid_name(rest[5:-4])
                  and rest.count("/") == 1):
            return Reason(R.LAYOUT, f"{change.path} is outside a proposal's layout")
    if not seen_policy:
        return Reason(R.LAYOUT, f"proposal {proposal} has no {POLICY_FILE}")
    return None


def proposal_id(payload: bytes) -> str | None:
    """The id named by the one `Gitjit-Proposal: <id>` line of a commit's message, or None."""
    head, _, message = payload.partition(b"\n\n")
    found = [line[len(TRAILER) + 1:].strip() for line in message.decode("utf-8", "replace").splitlines()
             if line.startswith(TRAILER + ":")]
    return found[0] if len(found) == 1 and is_valid_name(found[0]) else None


def proposed_tree(trusted: TrustedBranch, target: str, proposal: str) -> dict[str, TreeEntry] | None:
    """The `proposals/<id>/` folder of the proposal's target commit, or None."""
    try:
        top = trusted.branch.tree(trusted.branch.commit(target).tree)
        folder = top.get(PROPOSALS)
        entry = trusted.branch.tree(folder.id).get(proposal) if folder is not None and folder.is_tree else None
        return trusted.branch.tree(entry.id) if entry is not None and entry.is_tree else None
    except Exception:  # noqa: BLE001 - a target that cannot be read is no proposal (fails closed)
        return None


def require_quorum(trusted: TrustedBranch, commit: CommitObject, parts: CommitParts, applier: str,
                   authority: PolicyState) -> tuple[str, ...]:
    """The admins who signed for this policy change (applier included), or NotTrusted."""
    commit_id = str(commit.id)
    need = authority.policy.admin_threshold
    where = f"policy change {commit_id[:12]}"

    def refuse(text: str) -> NotTrusted:
        return NotTrusted(f"{where}: {text}", R.NO_QUORUM)

    proposal = proposal_id(parts.payload)
    if proposal is None:
        raise refuse(f"signed by {applier} alone, the policy needs {need} admins: it must apply an approved "
                     f"proposal ('gitjit policy propose', then 'gitjit policy apply ID')")
    entry = trusted.requests.get(proposal)
    if entry is None or entry.request.action != POLICY_ACTION:
        raise refuse(f"names proposal {proposal}, which is not a policy proposal on the branch")
    request = entry.request
    if entry.state_commit != authority.commit:
        # made under another policy: applied since (a replay), or overtaken by a later change
        raise refuse(f"proposal {proposal} was made under the policy of {entry.state_commit[:12]}, not the one in "
                     f"force ({authority.commit[:12]}): it was applied already or the policy changed since; propose again")
    request_commit = trusted.branch.commit(entry.commit)
    if list(request_commit.parents) != [request.target]:
        raise refuse(f"proposal {proposal}'s target is not the commit just before it")
    proposed = proposed_tree(trusted, request.target, proposal)
    tree = trusted.branch.tree(commit.tree)
    if proposed is None or POLICY_FILE not in proposed:
        raise refuse(f"proposal {proposal} holds no {POLICY_FILE}")
    keys_now = tree.get("keys")
    keys_proposed = proposed.get("keys")
    if tree[POLICY_FILE].id != proposed[POLICY_FILE].id or \
            (keys_now.id if keys_now else None) != (keys_proposed.id if keys_proposed else None):
        raise refuse(f"its {POLICY_FILE} and keys/ are not the bytes of proposal {proposal} that admins signed for")
    skew = authority.policy.clock_skew
    if not request.created - skew <= parts.committer_time < request.expires:
        raise refuse(f"proposal {proposal} is not open at the change's time (it expires {request.expires:%Y-%m-%dT%H:%M:%SZ})")
    approvers, rejecters = _admin_decisions(trusted, proposal, parts, authority)
    if rejecters:
        raise refuse(f"proposal {proposal} is rejected by {', '.join(sorted(rejecters))}")
    signed = approvers | {applier}
    if len(signed) < need:
        raise refuse(f"proposal {proposal} has {len(signed)} of {need} admin signatures ({', '.join(sorted(signed))})")
    return tuple(sorted(signed))


def _admin_decisions(trusted: TrustedBranch, proposal: str, parts: CommitParts,
                     authority: PolicyState) -> tuple[set[str], set[str]]:
    """Admins (of the policy in force) whose decision on the proposal counts: (approvers, rejecters)."""
    request = trusted.requests[proposal].request
    skew = authority.policy.clock_skew
    approvers: set[str] = set()
    rejecters: set[str] = set()
    for entry in trusted.decisions.get(proposal, []):
        if entry.problem is not None or entry.decision is None or entry.person not in authority.policy.admins:
            continue
        check = entry.signature or trusted.check_signature(entry.commit, entry.parts, authority.keyring)
        if not check.good or authority.key_owner(check) != entry.person:
            continue
        if check.primary_key is None or check.signing_key is None or check.created is None:  # a good check names them
            continue
        key = authority.keyring.keys.get(check.primary_key)
        if key is None or key.problem_at(check.signing_key, check.created) is not None:
            continue
        if not request.created - skew <= check.created <= parts.committer_time + skew:
            continue
        if abs(check.created - entry.parts.committer_time) > skew:
            continue
        (approvers if entry.decision.decision == "approve" else rejecters).add(entry.person)
    return approvers, rejecters
