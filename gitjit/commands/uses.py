"""Recording one use of a single-use request before it happens (docs/format.md, section 6.6).

`gitjit run` calls `record_use` once the action is approved and before the
command starts. The use record is built on the remote's tip as last
fetched, signed, judged as the hook will judge it, and pushed; the command
may run only once the push is accepted. The approvals branch only moves
forward, so of two runners racing for the last use exactly one push lands:
the other fetches, finds every use recorded, and reports "used up". A push
that lost a race (the branch moved, for another request) is retried on the
new tip, with the pauses and the bound every writer uses (git/sync.py); one
the server refused, or that could not reach it, is not.

The record goes straight to the remote: the local branch is moved to it
only where it was at the base already (a fast-forward), so unpushed local
commits are never dropped.
"""

from __future__ import annotations

from gitjit.errors import BadInput, GitFailed, NotTrusted
from gitjit.git import sync
from gitjit.git.branch import ApprovalsBranch, run_git
from gitjit.model.grammar import utc_now
from gitjit.model.records import Use, render_use, use_path
from gitjit.namedtuple import NamedTuple
from gitjit.trust.targeted import load_for_target
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import RequestVerdict, judge_request


class UseOutcome(NamedTuple):
    number: int | None  # the use recorded for this run; None: none was (see verdict)
    verdict: RequestVerdict  # the request as judged before recording
    needed: bool = True  # False: the action has no `uses`, nothing had to be recorded


def record_use(branch: ApprovalsBranch, request_id: str, target: str, tag: str = "", root: str | None = None,
               judged: TrustedBranch | None = None) -> UseOutcome:
    """Records the next use of `request_id` (a request for `target`), or says why it may not (used up,
    no longer approved). The branch is authenticated for `target` only (trust/targeted.py), as `run`'s
    check before it: a fresh CI clone does not replay the whole history to learn the action has no `uses`.
    `judged`: the caller's view of the remote's tip, used (and extended) where the tip has not moved."""
    detail = ""
    for _ in sync.attempts():
        tip = branch.ref_target(branch.remote_ref)
        if tip is None:
            raise NotTrusted(f"{branch.remote_ref} is gone")
        trusted = judged if judged is not None and judged.tip == tip else load_for_target(branch, target, tip, root)
        judged = None  # extended below: never reused
        entry = trusted.requests.get(request_id)
        if entry is None:
            raise NotTrusted(f"request {request_id} is no longer on {branch.remote_ref}")
        verdict = judge_request(trusted, entry, utc_now())
        if verdict.uses is None:
            return UseOutcome(None, verdict, needed=False)
        if not verdict.approved:
            return UseOutcome(None, verdict)
        number = len(trusted.uses.get(request_id, [])) + 1
        record = Use(request_id, entry.blob, entry.request.target, number, tag)
        tree = branch.build_tree(tip, {use_path(request_id, number): render_use(record)})
        commit = branch.commit_tree(tree, tip, f"gitjit: use {number} of {request_id}\n", sign=True)
        refusals = trusted.extend([commit])  # judged as the hook will, before anything is pushed
        if refusals:
            raise BadInput(f"the use record would not count: {refusals[0].reason}", refusals[0].code)
        pushed = sync.push(branch, commit, tip)  # fetches again when it fails
        if pushed.ok:
            local = branch.ref_target(branch.ref)
            if local in (None, tip):
                run_git(branch.repo, "update-ref", "-m", "gitjit: use", branch.ref, commit, local or "0" * 40,
                        check=False)
            return UseOutcome(number, verdict)
        detail = pushed.detail
        if not pushed.lost_race:  # refused, or unreachable: another try would fare no better
            raise GitFailed(f"could not record a use of {request_id}: {detail}")
    raise GitFailed(f"could not record a use of {request_id} after {sync.TRIES} attempts: {detail}")
