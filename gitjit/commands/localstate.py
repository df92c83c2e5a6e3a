"""Local commits that do not count must never wedge later commands (docs/format.md, section 8.3).

A by-hand commit the server refused, or a write whose push failed, stays on
the local approvals branch. Left there, every later push of the branch would
carry it and be refused, and a commit that breaks the branch's trust would
make every command fail. Here such commits are found (those the local branch
has and the remote's does not) and named, with the one command that drops
them: the local branch moved to the remote's tip, in a form that works
whether or not the branch is checked out.
"""

from __future__ import annotations

from gitjit import reasons as R
from gitjit.errors import BadInput, NotTrusted
from gitjit.git.branch import ApprovalsBranch, run_git
from gitjit.git.worktrees import move_branch_command
from gitjit.trust.trusted import TrustedBranch


def unpushed(branch: ApprovalsBranch, tip: str | None = None) -> list[tuple[str, str]]:
    """(commit, subject) of the commits on the local branch (or `tip`) that the remote's does not have,
    oldest first; none where either is missing."""
    local, remote = tip or branch.ref_target(branch.ref), branch.ref_target(branch.remote_ref)
    if not local or not remote or local == remote:
        return []
    result = run_git(branch.repo, "log", "--reverse", "--format=%H %s", f"{remote}..{local}", check=False)
    found = []
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        commit, _, subject = line.partition(" ")
        found.append((commit, subject))
    return found


def repair(branch: ApprovalsBranch, count: int) -> str:
    command = move_branch_command(branch, f"{branch.remote}/{branch.name}")
    what = "it" if count == 1 else f"those {count} commits"
    return f"repair with '{command}' (it drops {what} from your local {branch.name} branch)"


def check_counts(branch: ApprovalsBranch, trusted: TrustedBranch) -> None:
    """Refuses to build on a local branch whose unpushed commits include one that does not count."""
    local_only = unpushed(branch, trusted.tip)
    if not local_only:
        return
    refused = {refusal.commit: refusal for refusal in trusted.refusals}
    for position, (commit, subject) in enumerate(local_only):
        if commit in refused:
            raise BadInput(f"your {branch.name} branch has a commit {branch.remote} does not have that does not "
                           f"count, so every push of the branch would be refused: {commit[:12]} {subject!r}: "
                           f"{refused[commit].reason}; {repair(branch, len(local_only) - position)}",
                           R.LOCAL_COMMIT_REFUSED)


def load(branch: ApprovalsBranch, tip: str | None = None, root: str | None = None,
         target: str | None = None) -> TrustedBranch:
    """`TrustedBranch.load`, where a failure caused by unpushed local commits names them and the repair.

    With `target`: the view one question about that commit needs (trust/targeted.py).
    """
    try:
        if target is not None:
            from gitjit.trust.targeted import load_for_target

            return load_for_target(branch, target, tip=tip, root=root)
        return TrustedBranch.load(branch, tip=tip, root=root)
    except NotTrusted as exc:
        local_only = unpushed(branch, tip or branch.read_tip())
        if not local_only:
            raise
        commit, subject = local_only[0]
        first = (f"your {branch.name} branch has {len(local_only)} commit(s) {branch.remote} does not have, "
                 f"from {commit[:12]} {subject!r}")
        raise type(exc)(f"{exc}; {first}: {repair(branch, len(local_only))}", exc.code) from None
