"""The server hook: pre-receive (docs/format.md, section 7).

git runs it with one line per ref update on stdin, `<old> <new> <ref>`,
before any ref moves. It refuses the whole push (git updates no ref at all
when pre-receive exits non-zero) when any update breaks one of these rules,
judged in this order:

0. A pushed ref that is a symbolic ref is judged as the ref it points at:
   a push through `refs/heads/alias -> refs/heads/approvals` is a push of
   the approvals branch.
1. The approvals branch (`refs/heads/<gitjit.branch>`, by full name only):
   - may not be deleted, rewound or rewritten: its old tip must be an
     ancestor of the new one;
   - gains no merge commit, and every commit it gains must count: the
     branch as the server has it is authenticated from the pinned root
     (`TrustedBranch`), then extended with the new commits one by one; a
     `NotTrusted` or any `Refusal` refuses the push (sections 2, 5, 6);
   - when it is created, its root must be signed by an admin of its own
     policy with a key from its own `keys/`, and must equal `gitjit.root`
     where the server pins one. The root is pinned once the branch has
     landed (see `_pin_root`).
2. A tag (`refs/tags/<name>`) whose name matches some action's `tags`:
   - may not be deleted or moved (protected under the policy before or
     after the push);
   - when created, its commit (an annotated tag is peeled) needs an
     approved request for every matching action at the server's current
     time, judged against the approvals branch as it will be after this
     push: decisions pushed alongside the tag count when their commits do,
     and land first: a tag approved only by them is handed to the
     reference-transaction guard (`server/tickets.py`), which refuses the
     tag's ref update unless the approvals branch holds them by then.
     Without the guard (not installed, or a git older than 2.28), such a
     tag is refused: push the approvals first, then the tag.
3. Every other ref passes.

Objects of the push sit in git's quarantine directory until the hook
accepts: they are read by git subprocesses that inherit git's environment
(`GIT_OBJECT_DIRECTORY`, `GIT_ALTERNATE_OBJECT_DIRECTORIES`), so they are
visible. A lookup that finds nothing refuses; any unexpected error refuses.
The hook writes no object and no ref; it writes only gitjit's cache in
`$GIT_DIR/gitjit` (keyrings, the snapshot of the trusted view, the tickets)
and, where there is no guard, the `gitjit.root` pin. The snapshot of an
accepted push may describe commits that then fail to land: it is keyed by
commit id, and read only for the commits being verified (cut back to where
the server's branch and the snapshot's line meet), so it never makes
commits the server does not have count (trust/cache/snapshot.py).

Imports are lazy and never reach pygit2, Typer or Rich, nor on a tag push
typing, pathlib or a TOML parser (docs/decisions.md, "The hook's cost"): a
push that touches neither the approvals branch nor a tag pays for one config
read only.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from datetime import datetime

from gitjit import reasons as R
from gitjit.errors import GitjitError, SnapshotDamaged
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.reasons import Reason

if TYPE_CHECKING:  # pragma: no cover
    from gitjit.git.branch import ApprovalsBranch
    from gitjit.model.policy import Policy
    from gitjit.trust.trusted import TrustedBranch
    from gitjit.trust.verdicts import Verdict

ZERO = "0" * 40
TAGS = "refs/tags/"
REPLACE = "refs/replace/"
# What one push may bring, so that any push is judged in bounded time and memory
# (about 0.5 ms and 24 KiB a commit); an operator raises them for a one-off migration.
MAX_PUSH_COMMITS = 2000
MAX_PUSH_TAGS = 1000
_LINE_RE = re.compile(r"^([0-9a-f]{40}) ([0-9a-f]{40}) (refs/\S+)\Z")
_MAX_REASONS = 3  # commit refusals shown per ref; the rest are counted


class RefUpdate(NamedTuple):
    old: str | None  # None: the ref is created
    new: str | None  # None: the ref is deleted
    ref: str  # the ref that moves: a symbolic ref pushed to is resolved to its target
    via: str | None = None  # the symbolic ref the push named, where it named one


class RefRefusal(NamedTuple):
    """One refused ref update and why, as the pusher will read it."""

    ref: str
    reason: str
    code: str = R.INTERNAL  # the reason's code (gitjit.reasons)

    @classmethod
    def of(cls, ref: str, reason: Reason) -> RefRefusal:
        return cls(ref, reason.text, reason.code)

    def line(self) -> str:
        return f"gitjit: {self.ref} refused: {_one_line(self.reason)}"


class BadPushLine(GitjitError):
    """A ref update line, or a symbolic ref it names, that the hook cannot take as it is."""

    code = R.BAD_PUSH_LINE


def parse_lines(lines: Iterable[str]) -> list[RefUpdate]:
    updates = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            continue
        match = _LINE_RE.match(line)
        if not match:
            raise BadPushLine(f"unreadable ref update line {line[:120]!r}")
        old, new, ref = match.groups()
        updates.append(RefUpdate(None if old == ZERO else old, None if new == ZERO else new, ref))
    return updates


def open_server_repository(repo_path_or_env: str | os.PathLike | None) -> str:
    """The git directory the push goes to.

    `None` means "from git's environment" (`GIT_DIR`, else the current
    directory, which is where git runs a pre-receive hook). Objects are read
    by git subprocesses (`git/read.py`) that inherit the hook's environment,
    `GIT_OBJECT_DIRECTORY` (the quarantine) and
    `GIT_ALTERNATE_OBJECT_DIRECTORIES` (the repository's own objects)
    included, so the pushed objects are visible exactly as git sees them.
    """
    if repo_path_or_env is not None and hasattr(repo_path_or_env, "path"):
        return os.path.realpath(repo_path_or_env.path)  # a pygit2 repository, from tests
    path = os.fspath(repo_path_or_env) if repo_path_or_env is not None else os.environ.get("GIT_DIR", ".")
    return os.path.realpath(path)


def pre_receive(repo_path_or_env, lines: Iterable[str], now: datetime,
                notes: list[str] | None = None, push_id: str | None = None,
                guarded: bool | None = None) -> list[RefRefusal]:
    """Judges one push; returns the refused ref updates (empty: accept it all).

    `notes` collects informational lines (the approval behind each accepted
    protected tag). `push_id` names the receive-pack process whose ref
    transactions the reference-transaction guard will see (default: this
    process's parent); `guarded` says whether that guard is installed
    (default: look beside this hook, see `guard_installed`). On acceptance
    the approvals branch's root is pinned in the server's `gitjit.root`
    where none is pinned yet: by the guard once the branch has landed, or
    here where there is no guard.
    """
    try:
        updates = parse_lines(lines)
    except BadPushLine as exc:
        return [RefRefusal.of("(push)", exc.reason)]
    if not updates:
        return []
    try:
        repo = open_server_repository(repo_path_or_env)
        if guarded is None:
            guarded = guard_installed(os.environ.get("GITJIT_HOOKS_DIR") or os.path.join(repo, "hooks"))
        push_id = push_id or os.environ.get("GITJIT_PUSH_ID") or str(os.getppid())
        check = PushCheck(repo, now, push_id if guarded else None)
    except Exception as exc:  # fail closed: no ref passes unjudged
        return [RefRefusal.of(u.ref, _unexpected(exc)) for u in updates]
    try:
        refusals = check.run(updates)
    except SnapshotDamaged:  # judged once more, from the branch's root (the snapshot is set aside, or not read)
        try:
            check = PushCheck(repo, now, check.push_id, use_snapshot=False)
            refusals = check.run(updates)
        except Exception as exc:  # fail closed: no ref passes unjudged
            return [RefRefusal.of(u.ref, _unexpected(exc)) for u in updates]
    if notes is not None:
        notes.extend(check.notes)
    return refusals


GUARD_HOOK = "reference-transaction"
GUARD_MARKER = b"gitjit-hook: reference-transaction"


def guard_installed(hooks_dir: str) -> bool:
    """Whether gitjit's reference-transaction guard sits in `hooks_dir`, executable.

    Without it, approvals pushed alongside a protected tag cannot be made to
    land before the tag, so the tag is judged only on what the server
    already has (the strict mode, see `PushCheck`).
    """
    path = os.path.join(hooks_dir, GUARD_HOOK)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return GUARD_MARKER in head and os.access(path, os.X_OK)


def resolve_symbolic(git_dir: str, ref: str, depth: int = 5) -> str:
    """The ref a push to `ref` really moves: symbolic refs (always loose files) are followed."""
    for _ in range(depth):
        try:
            with open(os.path.join(git_dir, ref), "rb") as handle:
                head = handle.read(1024)
        except OSError:  # no loose file (packed, absent, or not a plain name): not symbolic
            return ref
        if not head.startswith(b"ref: "):
            return ref
        target = head[5:].strip().decode("utf-8", "surrogateescape")
        if not target.startswith("refs/"):
            raise BadPushLine(f"{ref} is a symbolic ref to {target!r}, outside refs/")
        ref = target
    raise BadPushLine(f"{ref}: symbolic refs nested more than {depth} deep")


class PushCheck:
    """One push, judged ref by ref against the approvals branch before and after it.

    With the guard (`push_id` set), a protected tag may be approved by
    decisions arriving in the same push: its ticket then tells the guard which
    approvals-branch commit must have landed before the tag may. Without it
    (strict mode), a tag counts only approvals the server already has.
    """

    def __init__(self, repo: str, now: datetime, push_id: str | None = None, use_snapshot: bool = True):
        from gitjit.git.branch import ApprovalsBranch

        self.repo = repo  # the git directory
        self.now = now
        self.push_id = push_id
        self.use_snapshot = use_snapshot  # False: the branch is walked from its root (pre_receive's second look)
        self.notes: list[str] = []
        self.early: dict[str, set[str]] = {}  # tag ref -> actions approved before this push's commits
        self.needs: dict[str, str] = {}  # tag ref -> the approvals-branch commit it was judged on
        self.moves_branch = False
        self.branch: ApprovalsBranch = ApprovalsBranch(self.repo)
        self.pin: str | None = self.branch.pinned_root()
        self.current: str | None = self.branch.ref_target(self.branch.ref)
        self.before: TrustedBranch | None = None
        self.before_policy: Policy | None = None
        self.before_error: str | None = None  # why the server's own branch is unusable
        self.after: TrustedBranch | None = None
        self.after_error: str | None = None  # why the branch after this push is unusable

    # -- the push as a whole -------------------------------------------------

    def run(self, updates: list[RefUpdate]) -> list[RefRefusal]:
        try:
            updates = self._resolve(updates)
        except BadPushLine as exc:
            return [RefRefusal.of(u.ref, exc.reason) for u in updates]
        mine = [u for u in updates if u.ref == self.branch.ref]
        tags = [u for u in updates if u.ref.startswith(TAGS)]
        refusals = self._refused_unread(updates, tags)
        if refusals:
            return refusals
        if not mine and not tags:
            return self._issue_tickets(updates)  # other refs pass, without authenticating anything
        self.moves_branch = bool(mine)
        if len(mine) > 1:
            return [RefRefusal(u.via or u.ref, "the push moves the approvals branch twice (through a symbolic ref)",
                               R.BAD_PUSH_LINE) for u in mine]
        try:
            self._load_before()
        except Exception as exc:
            return [RefRefusal.of(u.via or u.ref, _unexpected(exc)) for u in mine + tags]
        refusals = self._judged(mine, tags)
        if not refusals:
            reason = self._guarded(self._pin_root)
            if reason:
                refusals.append(RefRefusal.of(mine[0].ref if mine else tags[0].ref, reason))
        if not refusals:
            refusals = self._issue_tickets(updates)
        if not refusals and mine and self.after is not None:
            self._save_snapshot()
        return refusals

    def _refused_unread(self, updates: list[RefUpdate], tags: list[RefUpdate]) -> list[RefRefusal]:
        """What is refused before anything is read: replace refs, and more tags than the server takes."""
        refusals = [RefRefusal(u.via or u.ref, "refs/replace/ refs make git show other content under an approved "
                               "tag's name: this server does not take them", R.REPLACE_REF)
                    for u in updates if u.ref.startswith(REPLACE)]
        limit = self._limit("gitjit.maxpushtags", MAX_PUSH_TAGS)
        if len(tags) > limit:
            refusals += [RefRefusal(u.via or u.ref, f"this push updates {len(tags)} tags, more than this server "
                                    f"takes at once ({limit}, git config gitjit.maxPushTags): push them in "
                                    f"smaller batches", R.PUSH_TOO_LARGE) for u in tags]
        return refusals

    def _judged(self, mine: list[RefUpdate], tags: list[RefUpdate]) -> list[RefRefusal]:
        """The approvals branch's update, then each tag, judged; the refusals among them."""
        if mine and self.before is not None:
            for update in tags:  # judged before the push's own commits extend the view
                self._guarded(self._note_early_approval, update)
        self.after, self.after_error = self.before, self.before_error
        refusals = []
        for update, judge in [(u, self._judge_branch) for u in mine] + [(u, self._judge_tag) for u in tags]:
            reason = self._guarded(judge, update)
            if reason:
                refusals.append(RefRefusal.of(update.via or update.ref, reason))
        return refusals

    def _limit(self, key: str, default: int) -> int:
        """A per-push limit from the server's git config (a value that is not a positive number: the default)."""
        value = self.branch.config(key)
        return int(value) if value and value.isdigit() and int(value) > 0 else default

    def _resolve(self, updates: list[RefUpdate]) -> list[RefUpdate]:
        """The refs that will move: a push to a symbolic ref moves its target (section 7.1)."""
        resolved = []
        for update in updates:
            target = resolve_symbolic(self.repo, update.ref)
            resolved.append(update if target == update.ref else update._replace(ref=target, via=update.ref))
        return resolved

    def _issue_tickets(self, updates: list[RefUpdate]) -> list[RefRefusal]:
        """Tells the guard what was accepted; refuses what must not pass without it."""
        from gitjit.server import tickets as hook_tickets
        from gitjit.server.tickets import Ticket

        if self.push_id is None:
            return []  # no guard: nothing reads tickets
        tickets = []
        for update in updates:
            old, new = update.old or ZERO, update.new or ZERO
            if update.ref in self.needs:
                verdict, detail = "need", f"{self.needs[update.ref]} {self.branch.ref}"
            elif update.ref == self.branch.ref and update.new is not None:
                unpinned = self.pin is None and self.after is not None
                verdict, detail = ("pin", self.after.root) if unpinned and self.after is not None else ("branch", "")
            else:
                verdict, detail = "pass", ""
            for ref in (update.ref, update.via):
                if ref:
                    tickets.append(Ticket(ref, old, new, verdict, detail))
        try:
            hook_tickets.write(self.repo, self.push_id, tickets)
        except OSError as exc:
            # Without its ticket the guard lets the push's updates through unjudged,
            # which is safe only where nothing waits on the push's own approvals.
            hook_tickets.discard(self.repo, self.push_id)
            waiting = [t for t in tickets if t.verdict in ("need", "pin")]
            if waiting:
                return [RefRefusal(t.ref, f"cannot record what this push needs to land ({exc}); "
                                   f"push the approvals branch first, then the tag", R.APPROVALS_NOT_LANDED)
                        for t in waiting]
        return []

    def _save_snapshot(self) -> None:
        """Keeps what this push taught the trusted view, so the next push starts from it.

        Only an accepted push is saved: the commits of a refused one never
        land, and the next push would have to cut the snapshot back.
        """
        try:
            if self.after is not None:
                self.after.save()
        except Exception:
            pass  # a snapshot that cannot be written only costs the next push time

    @staticmethod
    def _guarded(judge, *args) -> Reason | None:
        try:
            return judge(*args)
        except SnapshotDamaged:
            raise  # the whole push is judged again (pre_receive)
        except Exception as exc:  # fail closed, on one line
            return _unexpected(exc)

    def _load_before(self) -> None:
        """The approvals branch as the server has it now, authenticated from the pin."""
        from gitjit.trust.trusted import TrustedBranch

        if self.current is None:
            if self.pin is not None:
                self.before_error = (f"gitjit.root is pinned to {self.pin[:12]} but {self.branch.ref} "
                                     f"does not exist on the server")
            return
        try:
            self.before = TrustedBranch.load(self.branch, tip=self.current, root=self.pin, pin=False,
                                             resume=self.use_snapshot)
        except GitjitError as exc:
            self.before_error = f"the server's approvals branch is not trusted: {exc}"
            return
        self.before_policy = self.before.policy

    # -- rule 1: the approvals branch ----------------------------------------

    def _judge_branch(self, update: RefUpdate) -> Reason | None:

        branch = self.branch
        if update.new is None:
            self.after, self.after_error = None, "the approvals branch update is refused"
            return Reason(R.BRANCH_DELETED, "the approvals branch may not be deleted")
        if update.old != self.current:
            self.after, self.after_error = None, "the approvals branch update is refused"
            return Reason(R.BRANCH_MOVED, f"the push expects {branch.ref} at {_short(update.old)}, the server has it at "
                                          f"{_short(self.current)}: fetch and push again")
        if update.old == update.new:
            return None
        try:
            if update.old is None:
                trusted, chain = self._root_view(update.new)
            else:
                if not branch.is_ancestor(update.old, update.new):
                    branch.commit(update.new)  # a missing object refuses as such
                    how = "rewind" if branch.is_ancestor(update.new, update.old) else "rewrite"
                    return Reason(R.BRANCH_REWOUND,
                                  f"the approvals branch may not be rewound or rewritten: this push would {how} it "
                                  f"({update.old[:12]} is not an ancestor of {update.new[:12]})")
                if self.before is None:
                    return Reason(R.NOT_TRUSTED, self.before_error or "the server's approvals branch cannot be read")
                chain = branch.first_parent_chain(update.new, stop=update.old)
                trusted = self.before
            limit = self._limit("gitjit.maxpushcommits", MAX_PUSH_COMMITS)
            if len(chain) > limit:  # judged before any of them is read: every commit costs time and memory
                self.after, self.after_error = None, "the approvals branch update is refused"
                return Reason(R.PUSH_TOO_LARGE,
                              f"this push adds {len(chain)} commits to the approvals branch, more than this server "
                              f"judges in one push ({limit}, git config gitjit.maxPushCommits): push them in "
                              f"smaller batches")
            trusted.witness = self.now  # the pushed commits are judged against the server's clock (docs/format.md, 7.1)
            refusals = trusted.extend(chain)
        except SnapshotDamaged:
            raise  # the whole push is judged again (pre_receive)
        except GitjitError as exc:
            self.after, self.after_error = None, "the approvals branch update is refused"
            return exc.reason
        self.after, self.after_error = trusted, None
        if refusals:
            shown = [f"commit {r.commit[:12]}: {r.reason}" for r in refusals[:_MAX_REASONS]]
            if len(refusals) > _MAX_REASONS:
                shown.append(f"and {len(refusals) - _MAX_REASONS} more commits that do not count")
            return Reason(refusals[0].code, "; ".join(shown))  # the first commit's code: the one shown first
        return None

    def _root_view(self, new: str) -> tuple[TrustedBranch, list[str]]:
        """A branch created by this push: its root authorizes itself (section 5.1) and must match the pin."""
        from gitjit.errors import NotTrusted
        from gitjit.trust.trusted import TrustedBranch

        chain = self.branch.first_parent_chain(new)
        if self.pin is not None and chain[0] != self.pin:
            raise NotTrusted(f"the approvals branch starts at {chain[0][:12]}, not at the pinned root "
                             f"{self.pin[:12]} (server's gitjit.root)")
        return TrustedBranch(self.branch, chain[0]), chain

    # -- rule 2: protected tags ----------------------------------------------

    def _judge_tag(self, update: RefUpdate) -> Reason | None:
        name = update.ref[len(TAGS):]
        if self.after_error:
            return Reason(R.NOT_TRUSTED, f"cannot tell whether tag {name} is protected: {self.after_error}")
        if self.after is None:
            return None  # no approvals branch and no pinned root: no policy protects any tag yet
        policies = [p for p in (self.before_policy, self.after.policy) if p]
        protected = sorted({a.name for p in policies for a in p.actions_for_tag(name)})
        if not protected or update.old == update.new:
            return None
        if update.old is not None or update.new is None:  # new is None: deleted (old == new returned above)
            what = "deleted" if update.new is None else "moved"
            return Reason(R.TAG_PROTECTED, f"tag {name} is protected by action {', '.join(protected)} and may not be {what}")
        return self._judge_new_tag(name, update.new)

    def _note_early_approval(self, update: RefUpdate) -> None:
        """Which actions a new tag is approved for by what the server already has.

        A tag approved this way needs nothing of the push to land; one approved
        only once the push's own decisions count needs the guard (`needs`).
        """
        from gitjit.trust.uses import tag_verdict

        if update.old is not None or update.new is None or self.before is None:
            return
        name = update.ref[len(TAGS):]
        actions = [a.name for a in self.before.policy.actions_for_tag(name)]
        commit = self._peel(update.new) if actions else None
        if commit is not None:
            self.early[update.ref] = {a for a in actions
                                      if tag_verdict(self.before, a, commit, name, self.now).approved}

    def _judge_new_tag(self, name: str, new: str) -> Reason | None:
        from gitjit.trust.uses import tag_verdict  # verify, and a single-use action's recorded use of the tag

        trusted = self.after
        if trusted is None or trusted.tip is None:  # _judge_tag: never without the branch after the push
            return Reason(R.NOT_TRUSTED, f"cannot tell whether tag {name} is approved: no approvals branch")
        actions = [a.name for a in trusted.policy.actions_for_tag(name)]
        if not actions:  # protected only by the policy this push replaces
            return None
        commit = self._peel(new)
        if commit is None:
            return Reason(R.TAG_NOT_APPROVED, f"tag {name} does not point at a commit")
        failed: list[str] = []
        codes: list[str] = []
        notes: list[str] = []
        for action in actions:
            verdict = tag_verdict(trusted, action, commit, name, self.now)
            if verdict.approved:
                request = next(r for r in verdict.requests if r.id == verdict.approved_by)
                how = (f"break-glass request {request.id} ({request.state})" if request.break_glass
                       else f"request {request.id} ({', '.join(request.approvals)})")
                notes.append(f"gitjit: {TAGS}{name} accepted: {action} on {commit[:12]} approved by {how}")
            else:
                failed.append(describe_verdict(verdict, len(actions) > 1))
                codes.append(R.USE_NOT_RECORDED if verdict.codes == (R.USE_NOT_RECORDED,) else R.TAG_NOT_APPROVED)
        if failed:
            return Reason(codes[0] if len(set(codes)) == 1 else R.TAG_NOT_APPROVED, "; ".join(failed))
        ref = TAGS + name
        if self.moves_branch and not set(actions) <= self.early.get(ref, set()):
            # Approved only by decisions arriving in this push: they must land first.
            if self.push_id is None:
                return Reason(R.APPROVALS_NOT_LANDED,
                              f"tag {name} is approved only by decisions in this same push, and this server has no "
                              f"gitjit reference-transaction hook to make sure they land before the tag: push the "
                              f"approvals branch first, then the tag (or run 'gitjit hook install' on the server)")
            self.needs[ref] = trusted.tip
            notes = [f"{note}, provided {self.branch.ref} lands at {trusted.tip[:12]} first" for note in notes]
        self.notes.extend(notes)
        return None

    def _peel(self, object_id: str) -> str | None:
        from gitjit.errors import NotTrusted
        from gitjit.git.read import MissingObject

        try:
            return self.branch.reader.peel_to_commit(object_id)
        except MissingObject:
            raise NotTrusted(f"object {object_id[:12]} is missing from the repository", R.MISSING_OBJECT) from None

    # -- pinning -------------------------------------------------------------

    def _pin_root(self) -> Reason | None:
        """Pins the accepted branch's root in `gitjit.root`, where no root is pinned yet.

        Where this push moves the branch and the guard is installed, the
        guard pins it once the branch has landed (a "pin" ticket): a push
        whose ref update then fails pins nothing. Otherwise the branch the
        root belongs to is already on the server (a tag push), or there is no
        guard and it is pinned here, before git moves any ref: a pin that then
        fails to land passed every check of section 5, so it never trusts more than
        the hook would; it only makes a *different* root refused until a
        server admin runs `git config --unset gitjit.root`. The check and the
        write happen under a lock, so of two concurrent pushes creating
        different roots only the first to pin is accepted.
        """
        if self.pin is not None or self.after is None:
            return None
        if self.push_id is not None and self.moves_branch:
            return None  # the guard pins it once the branch has landed (its "pin" ticket)
        root = self.after.root
        with _Lock(self.branch.git_dir, "pin"):
            pinned = _fresh_config(self.repo, "gitjit.root")
            if pinned is None:
                from gitjit.git.branch import run_git

                run_git(self.repo, "config", "gitjit.root", root)
            elif pinned != root:
                return Reason(R.BAD_ROOT, f"another push pinned gitjit.root to {pinned[:12]} meanwhile; "
                                          f"this branch starts at {root[:12]}")
        self.pin = root
        return None


def describe_verdict(verdict: Verdict, with_action: bool = False) -> str:
    """A not-approved verdict as one actionable clause for the pusher."""
    action, target = verdict.action, verdict.target
    if verdict.codes == (R.USE_NOT_RECORDED,):
        text = verdict.reasons[0]
    elif not verdict.requests:
        text = (f"no request for {action} on {target[:12]}: ask for one with "
                f"'gitjit request {action} --target {target} --push', get it approved, then push the tag again")
    else:
        parts = []
        for request in verdict.requests:
            head, *rest = request.reasons or ("not approved",)
            lead = f"request {request.id} has {head}" if request.state == "pending" else f"request {request.id}: {head}"
            parts.append("; ".join([lead, *rest]))
        text = " | ".join(parts)
    return f"{action}: {text}" if with_action else text


class _Lock:
    """An exclusive lock file in gitjit's cache dir (O_EXCL), waited for a few seconds."""

    def __init__(self, git_dir: str, name: str, timeout: float = 10.0):
        self.path = os.path.join(git_dir, "gitjit", f"{name}.lock")
        self.timeout = timeout

    def __enter__(self) -> _Lock:
        import time

        from gitjit.trust.cache import files as cachefiles  # the folder shared as core.sharedRepository says

        cachefiles.make_dirs(os.path.dirname(self.path))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                return self
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.path} is held by another push (remove it if stale)") from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        os.unlink(self.path)


def _fresh_config(repo: str, key: str) -> str | None:
    """A config value read from disk now, not from a snapshot taken earlier."""
    from gitjit.git.branch import run_git

    result = run_git(repo, "config", "--get", key, check=False)
    value = result.stdout.decode().strip()
    return value or None


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "nothing (it does not exist)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _unexpected(exc: BaseException) -> Reason:
    if isinstance(exc, GitjitError):
        return exc.reason
    return Reason(R.INTERNAL, f"unexpected error: {type(exc).__name__}: {exc}")


def main(repo: str | None = None) -> int:
    """`python -m gitjit.hook`: the pre-receive hook itself. Returns the exit code."""
    try:
        from gitjit.model.grammar import utc_now

        data = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        notes: list[str] = []
        refusals = pre_receive(repo, data.split("\n"), utc_now(), notes)  # git's lines end in \n only
    except Exception as exc:  # fail closed
        if os.environ.get("GITJIT_DEBUG"):
            raise
        refusals, notes = [RefRefusal.of("(push)", _unexpected(exc))], []
    out = sys.stderr
    for note in notes if not refusals else ():
        out.write(_printable(note) + "\n")
    for refusal in refusals:
        out.write(_printable(refusal.line()) + "\n")
    if refusals:
        out.write("gitjit: push refused: no ref was updated\n")
    out.flush()
    return 1 if refusals else 0


def _printable(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


if __name__ == "__main__":
    sys.exit(main())
