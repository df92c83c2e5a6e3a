"""`gitjit run`: a gate that waits for approval, then runs a command (docs/format.md, sections 6, 8).

The steps, in order:

1. `prepare`: check the input (nothing is written on bad input), fetch the
   approvals branch from the remote, authenticate it from the pinned root,
   and find a request for this action and target that is still pending (not
   expired, not rejected) or already approved; only when there is none,
   make one (`operations.request`) and push it.
2. `Gate.wait`: fetch at an interval and judge `verify(action, target, now)`
   on the remote's branch until it holds, until the request is vetoed or
   expires, until it can never be approved (a rule with too few people
   left who can approve: it ends at once), or until the wait is over. A failed fetch is retried at the
   next interval; any error while verifying ends the wait as "not
   approved" (fail closed).
   With `--break-glass` (section 6.5) there is no wait: a signed
   break-glass request is made and pushed, and once the remote's branch
   counts it the command runs at once.
3. For a single-use action (section 6.6), `Gate.record_use` pushes a signed
   use record; only once the push is accepted may the command run. A
   runner that finds every use recorded ends "used up" without running it.
4. `exec_command`: only after an approving verdict, replace this process
   with the command (no shell), so its exit code and its signals are its
   own. It sees GITJIT_REQUEST, GITJIT_APPROVERS (comma-separated),
   GITJIT_ACTION and GITJIT_TARGET.

What the branch says is read from `refs/remotes/<remote>/<branch>` after a
fetch: the remote is where approvers push, and a local branch that has
diverged from it cannot hold their approvals. The gate knows nothing of
terminals: it reports each step as a `Progress` value to a callback.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from gitjit import reasons as R
from gitjit.commands import write as operations
from gitjit.errors import BadInput, GitFailed, GitjitError, NotTrusted
from gitjit.git import sync
from gitjit.git.branch import ApprovalsBranch
from gitjit.model.grammar import FULL_COMMIT_RE, format_time, parse_duration, utc_now
from gitjit.model.layout import decision_path as layout_decision_path
from gitjit.model.records import Decision, is_tag_name, render_decision
from gitjit.trust.targeted import load_for_target
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import EXPIRED, PENDING, REJECTED, USED, RequestVerdict, Verdict, verify

DEFAULT_WAIT = "30m"
DEFAULT_INTERVAL = 5.0  # seconds between fetches
INTERVAL_ENV = "GITJIT_RUN_INTERVAL"

# How a wait ends.
RUN, TIMEOUT, VETOED, EXPIRED_END, FAILED = "approved", "timeout", "rejected", "expired", "failed"
UNAPPROVABLE_END = "unapprovable"  # a rule can never hold: waiting would only time out
USED_UP = "used-up"  # approved, but every use of the request is recorded (section 6.6)


class UsedUp(GitjitError):
    """A single-use approval with no use left: not approved, exit 1 (docs/format.md, section 6.6)."""

    code = R.USED


def parse_interval(text: str | None) -> float:
    """Seconds between fetches: a duration (`5s`, `1m`) or a plain number of seconds (`0.5`)."""
    if text is None or text == "":
        text = os.environ.get(INTERVAL_ENV) or str(DEFAULT_INTERVAL)
    try:
        seconds = float(text)
    except ValueError:
        seconds = parse_duration(text, "--interval").total_seconds()
    if not (0.05 <= seconds <= 3600):
        raise BadInput(f"--interval {text!r} must be between 0.05s and 1h")
    return seconds


@dataclass(frozen=True)
class Instructions:
    """What an approver runs, with gitjit or by hand (docs/format.md, section 3.5)."""

    request_id: str
    action: str
    target: str
    approvers: tuple[str, ...]  # who may approve, the requester aside when self-approval is off
    threshold: int
    remote: str
    branch: str
    decision_file: str  # the TOML an approver commits by hand, with <person> as the file name
    rules: tuple[str, ...] = ()  # one line per rule and for the escalation ("sre: 2 of alice, bob"); empty: one rule
    layout: int = 1  # the branch's layout (docs/format.md, section 2.4): where the file goes

    def by_hand(self) -> tuple[str, str, str]:
        """(before, the file's path, after): the git commands around writing the decision file."""
        path = layout_decision_path(self.request_id, "<person>", self.target, self.layout)
        before = f"git fetch {self.remote} && git switch {self.branch} && git merge --ff-only {self.remote}/{self.branch}"
        after = f"git add {path} && git commit -S -m 'gitjit: approve {self.request_id}' && git push {self.remote} {self.branch}"
        return before, path, after


@dataclass(frozen=True)
class Progress:
    """One look at the branch while waiting."""

    request_id: str
    threshold: int
    approvals: tuple[str, ...]  # people whose approval counts on our request
    rejections: tuple[str, ...]
    deadline: float  # time.monotonic() at which the wait ends
    reasons: tuple[str, ...]  # why it is not approved yet
    fetch_error: str | None = None  # the last fetch failed; the branch as last fetched was judged
    end: str | None = None  # None while waiting, else RUN, TIMEOUT, VETOED, EXPIRED_END or FAILED
    approved_by: str | None = None  # the approved request's id (ours, or another for the same action and target)
    approved_with: tuple[str, ...] = ()  # who approved that request
    summary: str = ""  # the rules' state ("sre 2 of 2, security 0 of 1: needs one of dave, erin"); empty: one rule
    break_glass: str | None = None  # the break-glass request's review state, when that request is the approval
    use: int | None = None  # the use this run recorded (single-use actions)
    uses: int | None = None  # the action's `uses`

    def left(self, now: float | None = None) -> float:
        return max(0.0, self.deadline - (time.monotonic() if now is None else now))


@dataclass
class Gate:
    branch: ApprovalsBranch
    action: str
    target: str  # full commit id
    request_id: str
    created: bool  # the gate made the request (rather than reusing one)
    instructions: Instructions
    trusted: TrustedBranch = field(repr=False)
    root: str | None = None  # --root: the pinned root for this run
    verified_tip: str | None = field(default=None, repr=False)  # the remote tip `trusted` was authenticated at

    # -- waiting ---------------------------------------------------------------

    def wait(self, wait: timedelta, interval: float, report: Callable[[Progress], None],
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> Progress:
        """Waits for approval; returns the last Progress, whose `end` says how it ended."""
        deadline = clock() + wait.total_seconds()
        fetch_error: str | None = None
        while True:
            progress = self.look(deadline, fetch_error)
            if progress.end is None and clock() >= deadline:
                progress = _ended(progress, TIMEOUT)
            report(progress)
            if progress.end is not None:
                return progress
            sleep(max(0.0, min(interval, deadline - clock())))
            try:
                sync.fetch(self.branch)
                fetch_error = None
            except GitjitError as exc:  # the network may come back before the deadline
                fetch_error = str(exc)

    def look(self, deadline: float, fetch_error: str | None = None) -> Progress:
        """Judges the branch as last fetched, at now. Any error is "not approved" (fail closed)."""
        try:
            verdict = self.verdict()
        except Exception as exc:  # noqa: BLE001 - fail closed, whatever went wrong
            reason = f"the approvals branch is not trusted: {exc}" if isinstance(exc, NotTrusted) else \
                f"verification failed: {exc if isinstance(exc, GitjitError) else type(exc).__name__ + ': ' + str(exc)}"
            return Progress(self.request_id, self.instructions.threshold, (), (), deadline, (reason,), fetch_error, FAILED)
        ours = next((r for r in verdict.requests if r.id == self.request_id), None)
        if verdict.approved:
            approved = next(r for r in verdict.requests if r.id == verdict.approved_by)
            return Progress(self.request_id, approved.threshold, approved.approvals, approved.rejections, deadline,
                            (), fetch_error, RUN, approved.id, approved.approvals)
        if ours is None:
            return Progress(self.request_id, self.instructions.threshold, (), (), deadline,
                            (f"request {self.request_id} is no longer on the approvals branch",), fetch_error, FAILED)
        end = {REJECTED: VETOED, EXPIRED: EXPIRED_END, USED: USED_UP}.get(ours.state)
        if end is None and ours.state == PENDING and not ours.approvable:
            end = UNAPPROVABLE_END
        summary = ours.reasons[0] if ours.state == PENDING and len(ours.rules) > 1 and ours.reasons else ""
        reasons = ours.reasons + ((ours.unapprovable,) if end == UNAPPROVABLE_END else ())
        return Progress(self.request_id, ours.threshold, ours.approvals, ours.rejections, deadline,
                        reasons, fetch_error, end, summary=summary, uses=ours.uses)

    def verdict(self, now: datetime | None = None) -> Verdict:
        tip = self.branch.ref_target(self.branch.remote_ref)
        if tip is None:
            raise NotTrusted(f"{self.branch.remote_ref} is gone")
        if tip != self.verified_tip:  # authenticate again only when the remote moved
            self.trusted = load_for_target(self.branch, self.target, tip=tip, root=self.root)
            self.verified_tip = tip
        return verify(self.trusted, self.action, self.target, now or utc_now())

    # -- break-glass and single use (sections 6.5, 6.6) -------------------------

    def break_glass_progress(self) -> Progress:
        """The break-glass request as the remote's branch has it: live, so the command runs now."""
        try:
            verdict = self.verdict()
        except Exception as exc:  # noqa: BLE001 - fail closed
            return Progress(self.request_id, 0, (), (), time.monotonic(), (f"verification failed: {exc}",), None,
                            FAILED)
        ours = next((r for r in verdict.requests if r.id == self.request_id), None)
        if ours is None or not ours.approved or ours.break_glass is None:
            reasons = ours.reasons if ours else (f"request {self.request_id} is not counted on the remote's branch",)
            return Progress(self.request_id, 0, (), (), time.monotonic(), reasons or ("not live",), None, FAILED)
        return Progress(self.request_id, ours.threshold, (), (), time.monotonic(), (), None, RUN, ours.id, (),
                        break_glass=ours.state)

    def record_use(self, progress: Progress, tag: str = "") -> Progress:
        """For a single-use action, records this run's use (pushed) before it happens; else `progress` as it is."""
        from gitjit.commands.uses import record_use

        try:
            judged = self.trusted if self.verified_tip == self.branch.ref_target(self.branch.remote_ref) else None
            self.verified_tip = None  # record_use extends the view it is given: authenticate again if asked
            outcome = record_use(self.branch, progress.approved_by or self.request_id, self.target, tag, self.root,
                                 judged)
        except GitjitError as exc:
            return replace(progress, end=FAILED, reasons=(f"could not record this use: {exc}",))
        if not outcome.needed:
            return progress
        verdict = outcome.verdict
        if outcome.number is None:
            end = USED_UP if verdict.state == USED else FAILED
            return replace(progress, end=end, reasons=verdict.reasons, uses=verdict.uses)
        return replace(progress, use=outcome.number, uses=verdict.uses)


def _ended(progress: Progress, end: str) -> Progress:
    return Progress(progress.request_id, progress.threshold, progress.approvals, progress.rejections,
                    progress.deadline, progress.reasons, progress.fetch_error, end, summary=progress.summary)


def _pick(verdicts: tuple[RequestVerdict, ...]) -> RequestVerdict | None:
    """An approved request first (a live break-glass one included); else the pending one closest to
    approval, then the longest-lived."""
    usable = [v for v in verdicts if v.approved or v.state == PENDING]
    if not usable:
        return None
    return max(usable, key=lambda v: (v.approved, len(v.approvals), v.expires, v.created))


def prepare(branch: ApprovalsBranch, action: str, target_rev: str, reason: str, ttl: str | None,
            command: list[str], root: str | None = None, break_glass: bool = False, tag: str = "") -> Gate:
    """Step 1: check the input, fetch, then find or make (and push) the request.

    With `break_glass`, always makes a new break-glass request, signed; refused (bad input, nothing
    written) for an action without `break_glass` and for a signer it does not name.
    """
    if break_glass and not reason.strip():
        raise BadInput("--break-glass needs --reason TEXT: say why the glass is broken, for the review")
    if tag and not is_tag_name(tag):
        raise BadInput(f"--tag {tag!r} is not a tag name")
    if not command:
        raise BadInput("give the command to run after '--', e.g. gitjit run deploy -- ./deploy.sh")
    if shutil.which(command[0]) is None:
        raise BadInput(f"command {command[0]!r} is not found or not executable")
    if ttl is not None:
        parse_duration(ttl, "--ttl")
    if root is not None and not FULL_COMMIT_RE.match(root):
        raise BadInput(f"--root {root!r} is not a full commit id")
    target = operations.resolve_target(branch.repo, target_rev)
    if not sync.has_remote(branch):
        raise BadInput(f"no remote named {branch.remote!r} (see 'git remote -v', or give --remote NAME)")
    sync.fetch(branch)  # unreachable, or no approvals branch there: not approved, nothing written
    tip = branch.ref_target(branch.remote_ref)
    trusted = load_for_target(branch, target, tip=tip, root=root)
    now = utc_now()
    verdict = verify(trusted, action, target, now)  # an unknown action is bad input, before any write
    found = None if break_glass else _pick(verdict.requests)
    used = [v for v in verdict.requests if v.state == USED]
    if found is None and used and not break_glass:
        # The approval was for a number of runs and they are gone: another run needs a new, explicit request.
        raise UsedUp(f"used up: request {used[0].id} has used all {used[0].uses} of its uses for {action} on "
                     f"{target[:12]}; ask again with 'gitjit request {action} --target {target} --push'")
    if break_glass:
        _check_breaker(branch, trusted, action)
    created = found is None
    if found is None:
        written, record = operations.request(branch, action, target, reason, ttl, now, push=True,
                                             break_glass=break_glass)
        request_id = record.id
        try:
            sync.fetch(branch)  # the pushed request, as the remote has it
        except GitFailed as exc:  # something was written: say what
            raise GitFailed(f"pushed request {request_id}, then could not fetch it back: {exc}") from None
        trusted = load_for_target(branch, target, tip=branch.ref_target(branch.remote_ref), root=root)
        if request_id not in trusted.requests:
            raise NotTrusted(f"request {request_id} was pushed but is not on {branch.remote_ref}")
    else:
        request_id = found.id
    return Gate(branch, action, target, request_id, created, _instructions(branch, trusted, request_id), trusted, root,
                verified_tip=trusted.tip)


def _check_breaker(branch: ApprovalsBranch, trusted: TrustedBranch, action: str) -> None:
    """The action has break_glass and it names the person whose key signs for this user."""
    found = trusted.policy.action(action)
    rule = found.break_glass if found is not None else None
    if rule is None:
        raise BadInput(f"action {action} has no break_glass in the policy: --break-glass is refused")
    fingerprint = operations.signing_key(branch)
    person = trusted.policy.person_with_key(fingerprint)
    if person is None or person not in rule.people:
        who = person or f"your signing key {fingerprint}"
        raise BadInput(f"{who} may not break the glass for {action} (break_glass.people: "
                       f"{', '.join(sorted(rule.people))})")


def _instructions(branch: ApprovalsBranch, trusted: TrustedBranch, request_id: str) -> Instructions:
    entry = trusted.requests[request_id]
    action = trusted.policy.action(entry.request.action)
    if action is None:  # verify checked it, but the policy fetched since may have dropped it: not approved
        raise GitjitError(f"action {entry.request.action!r} is no longer in the policy on {branch.remote_ref}: "
                          f"request {request_id} cannot be approved", R.UNKNOWN_ACTION)
    approvers = set(action.approvers)
    if not action.self_approval:
        approvers -= entry.requesters(trusted)
    if entry.request.break_glass:
        approvers.discard(entry.signer(trusted))  # the breaker never reviews their own
    example = render_decision(Decision(request_id, entry.blob, entry.request.target, "approve", "")).decode()
    excluded = set() if action.self_approval else entry.requesters(trusted)
    rules: list[str] = []
    if not action.simple:
        rules = [f"{rule.name}: {rule.threshold} of {', '.join(sorted(rule.approvers - excluded)) or 'nobody'}"
                 for rule in action.rules]
        if action.escalation is not None:
            escalation = action.escalation
            opens = format_time(entry.request.created + escalation.after)
            rules.append(f"or, from {opens} (escalation): {escalation.threshold} of "
                         f"{', '.join(sorted(escalation.approvers - excluded)) or 'nobody'}")
    return Instructions(request_id, action.name, entry.request.target, tuple(sorted(approvers)), action.threshold,
                        branch.remote, branch.name, example, tuple(rules), trusted.policy.layout)


def command_environment(gate: Gate, progress: Progress, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(
        GITJIT_REQUEST=progress.approved_by or "",
        GITJIT_APPROVERS=",".join(progress.approved_with),
        GITJIT_ACTION=gate.action,
        GITJIT_TARGET=gate.target,
    )
    if progress.break_glass:
        env["GITJIT_BREAK_GLASS"] = "1"
    if progress.use is not None:
        env["GITJIT_USE"] = str(progress.use)
    return env


def exec_command(command: list[str], env: dict[str, str]) -> int:
    """Step 3: becomes the command; returns only when it cannot start (126/127, like a shell)."""
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        return 127
    except OSError:
        return 126
    return 126  # not reached
