"""What the writing commands do, without a terminal in sight (docs/format.md, section 8.3).

Every write follows the same steps: fetch the remote's branch (unless
offline), authenticate the branch as it is, check the input, build the new
tree with pygit2, let `git commit-tree` make (and sign) the commit, check
that the new commit would count exactly as a verifier or the server hook will
judge it, and only then move the branch. With `push`, the commit is pushed
first and the local branch follows only once the remote has it; a push that
lost a race to another one is built, signed and pushed again on the new tip
(`_write`, git/sync.py). Bad input is refused before anything is written; a
commit that would not count is never put on the branch.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from gitjit import notices
from gitjit import reasons as R
from gitjit.commands import deciding, localstate
from gitjit.commands.nextstep import next_step
from gitjit.errors import BadInput, GitFailed, NotTrusted
from gitjit.git import sync, worktrees
from gitjit.git.branch import ApprovalsBranch
from gitjit.model import layout
from gitjit.model.grammar import FINGERPRINT_RE, check_name, parse_duration, utc_now
from gitjit.model.limits import MAX_KEY_FILE_BYTES
from gitjit.model.policy import POLICY_FILE, render_initial_policy, render_person
from gitjit.model.records import (
    Decision,
    Request,
    render_decision,
    render_request,
    text_size_problem,
)
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.trust.signatures import Keyring
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import judge_request

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from pygit2 import Repository

DEFAULT_TTL = timedelta(hours=24)


class Written(NamedTuple):
    commit: str
    message: str
    pushed: bool = False
    tries: int = 1  # pushes it took (more than one: other pushes won the race first)
    next_step: str = ""  # what happens next, for people (commands/nextstep.py)


# -- the user's own signing key (read from their keyring, on the writer's side only) --

def _user_gpg(branch: ApprovalsBranch) -> str:
    return branch.config("gpg.program") or "gpg"


def resolve_user_key(branch: ApprovalsBranch, key: str) -> str:
    """The primary fingerprint of `key` (an id, fingerprint or email) in the user's keyring."""
    try:
        result = subprocess.run(
            [_user_gpg(branch), "--batch", "--with-colons", "--fixed-list-mode", "--list-keys", "--", key],
            capture_output=True, text=True,
        )
    except OSError as exc:
        raise BadInput(f"cannot run gpg: {exc}") from None
    fingerprints = []
    after_pub = False
    for line in result.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "fpr" and after_pub:
            fingerprints.append(fields[9].upper())
        after_pub = fields[0] == "pub"
    if result.returncode != 0 or not fingerprints:
        raise BadInput(f"key {key!r} is not in your GnuPG keyring")
    if len(set(fingerprints)) > 1:
        raise BadInput(f"key {key!r} matches several keys: give a full fingerprint")
    return fingerprints[0]


def export_user_key(branch: ApprovalsBranch, fingerprint: str) -> bytes:
    try:
        result = subprocess.run(
            [_user_gpg(branch), "--batch", "--armor", "--export-options", "export-minimal", "--export", fingerprint],
            capture_output=True,
        )
    except OSError as exc:
        raise BadInput(f"cannot run gpg: {exc}") from None
    if result.returncode != 0 or b"BEGIN PGP PUBLIC KEY BLOCK" not in result.stdout:
        raise BadInput(f"cannot export key {fingerprint} from your GnuPG keyring")
    return result.stdout


def signing_key(branch: ApprovalsBranch) -> str:
    key = branch.config("user.signingkey")
    if not key:
        raise BadInput("git config user.signingkey is not set: gitjit needs to know which key signs for you")
    return resolve_user_key(branch, key.removesuffix("!"))


def fingerprints_in(armored: bytes) -> list[str]:
    """The primary keys an armored file holds, read in a throwaway keyring."""
    with tempfile.TemporaryDirectory(prefix="gitjit-key-") as home:
        return Keyring(home, {}, {}).import_public(armored)


# -- commits ---------------------------------------------------------------

def _identity(branch: ApprovalsBranch) -> str:
    name, email = branch.config("user.name"), branch.config("user.email")
    return f"{name} <{email}>" if name and email else (name or email or "")


class Draft(NamedTuple):
    """What one write puts on the branch: built again on each attempt (a lost race moves the base)."""

    files: Mapping[str, bytes | None]  # None: the commit deletes that file
    message: str
    sign: bool
    tree: Callable[[str | None], str] | None = None  # builds the tree from the base instead of `files`
    then: Callable[[str], Draft] | None = None  # a second commit, built on this one given its id
    prefix: str = ""  # the commit id must start with it (a layout-2 proposal: _commit_with_prefix)


def _build_all(trusted: TrustedBranch | None, branch: ApprovalsBranch, base: str | None,
               draft: Draft) -> tuple[str, TrustedBranch, Draft]:
    """The draft's commit and those it chains (`then`), each on the one before; (last, view, last draft)."""
    commit, trusted = _build(trusted, branch, base, draft)
    while draft.then is not None:
        draft = draft.then(commit)
        commit, trusted = _build(trusted, branch, commit, draft)
    return commit, trusted, draft


def _build(trusted: TrustedBranch | None, branch: ApprovalsBranch, base: str | None,
           draft: Draft) -> tuple[str, TrustedBranch]:
    """The new commit, made and judged as a verifier would; nothing moves yet."""
    tree = draft.tree(base) if draft.tree is not None else branch.build_tree(base, draft.files)
    commit = branch.commit_tree(tree, base, draft.message, draft.sign)
    if draft.prefix and not commit.startswith(draft.prefix):
        commit = _commit_with_prefix(branch, commit, tree, base, draft.message, draft.sign, draft.prefix)
    if trusted is None:
        trusted = TrustedBranch(branch, commit)
    try:
        refusals = trusted.extend([commit])
    except NotTrusted as exc:
        raise BadInput(f"the new commit would not count: {exc}", exc.code) from None
    if refusals:
        raise BadInput(f"the new commit would not count: {refusals[0].reason}", refusals[0].code)
    return commit, trusted


def _advance(branch: ApprovalsBranch, commit: str, local_before: str | None) -> None:
    """Moves the local branch, and the worktrees that have it checked out with it."""
    branch.advance(commit, local_before)
    for problem in worktrees.follow(branch, local_before, commit):
        notices.say(f"warning: {problem}")


def _write(branch: ApprovalsBranch, compose: Callable[[TrustedBranch, str], Draft], push: bool,
           offline: bool = False) -> tuple[Written, TrustedBranch]:
    """Fetch, build on the newest tip, sign, check, push; on a lost race, all of it again (bounded).

    Without `push` the commit stays local (the branch moves). With `push` the
    local branch moves only once the remote has the commit, or where the
    remote cannot be reached at all (then it is there to push later); a push
    the server refuses leaves nothing behind.
    """
    if push and not sync.has_remote(branch):
        raise BadInput(f"--push: no remote named {branch.remote!r} (see 'git remote -v', or give --remote NAME)")
    problem = None if offline else sync.try_fetch(branch)
    if problem is not None and not push:
        notices.say(f"warning: {sync.Freshness(False, problem).stale_warning()}")
    detail = ""
    for attempt in sync.attempts():
        trusted, base, local_before = load_for_writing(branch)
        draft = compose(trusted, base)
        worktrees.check_clean(branch)
        remote_before = branch.ref_target(branch.remote_ref)
        commit, trusted, draft = _build_all(trusted, branch, base, draft)
        if not push:
            _advance(branch, commit, local_before)
            return Written(commit, draft.message, False), trusted
        outcome = sync.push(branch, commit, remote_before)
        if outcome.ok:
            _advance(branch, commit, local_before)
            return Written(commit, draft.message, True, attempt + 1), trusted
        detail = outcome.detail
        if outcome.unreachable:  # the commit is made: keep it, say so, and how to push it
            _advance(branch, commit, local_before)
            raise GitFailed(f"committed {commit[:12]} on {branch.ref}, but {detail}; "
                            f"push it later with 'git push {branch.remote} {branch.name}'")
        if not outcome.lost_race:
            raise GitFailed(f"nothing was written: {detail}", R.PUSH_REFUSED)
        if attempt + 1 < sync.TRIES:
            notices.say(f"{branch.remote} moved on while pushing (another push won): building on its new tip")
    raise GitFailed(f"nothing was written: {sync.TRIES} pushes in a row lost the race to other pushes "
                    f"({detail}); run the command again", R.PUSH_REFUSED)


def _commit_with_prefix(branch: ApprovalsBranch, first: str, tree: str, base: str | None, message: str, sign: bool,
                        prefix: str) -> str:
    """A commit like `first` whose id starts with `prefix`, found by a counter line in its message.

    Used where the commit's own id decides a layout-2 shard its files name
    (a quorum proposal: its folder is its request's id, which ends with the
    shard of this commit). An unsigned commit's id is computed here (about
    16**len(prefix) sha1s); a signed one is made by git each time.
    """
    import hashlib

    raw = branch.raw_object(first)
    head, sep, body = raw.partition(b"\n\n")
    unsigned = not sign and b"\ngpgsig" not in head
    for counter in range(1, 1 << 20):
        text = f"{message.rstrip()}\n\nshard: {counter}\n"
        if not unsigned:
            commit = branch.commit_tree(tree, base, text, sign)
            if commit.startswith(prefix):
                return commit
            continue
        data = head + sep + text.encode()
        if hashlib.sha1(b"commit %d\0" % len(data) + data).hexdigest().startswith(prefix):
            import pygit2

            commit = str(branch.repo.odb.write(pygit2.enums.ObjectType.COMMIT, data))
            if commit.startswith(prefix):
                return commit
    raise BadInput(f"no commit id starting with {prefix} was found")


def load_for_writing(branch: ApprovalsBranch) -> tuple[TrustedBranch, str, str | None]:
    local_before = branch.ref_target(branch.ref)
    base = branch.write_base()
    if base is None:
        raise BadInput(f"no approvals branch: neither {branch.ref} nor {branch.remote_ref} exists (run 'gitjit init')")
    trusted = localstate.load(branch, tip=base)
    localstate.check_counts(branch, trusted)
    return trusted, base, local_before


def init(branch: ApprovalsBranch, admin: str, key: str | None, layout_revision: int = layout.SHARDED) -> Written:
    check_name(admin, "admin")
    if branch.ref_target(branch.ref) or branch.ref_target(branch.remote_ref):
        raise BadInput(f"branch {branch.name} already exists")
    fingerprint = resolve_user_key(branch, key) if key else signing_key(branch)
    armored = export_user_key(branch, fingerprint)
    policy = render_initial_policy(admin, fingerprint, branch.config("user.email"), layout_revision)
    files = {POLICY_FILE: policy.encode(), f"keys/{admin}.asc": armored}
    draft = Draft(files, f"gitjit: init (admin {admin})", True)
    worktrees.check_clean(branch)
    commit, trusted = _build(None, branch, None, draft)
    branch.advance(commit, None)
    branch.reader.set_config("gitjit.root", trusted.root)  # init says so itself, with the full id
    return Written(commit, draft.message)


def add_person(branch: ApprovalsBranch, name: str, key: str | None, key_file: str | None,
               email: str | None, push: bool = False, offline: bool = False) -> Written:
    check_name(name, "person")
    if (key is None) == (key_file is None):
        raise BadInput("give exactly one of --key FPR or --key-file FILE")
    read: list[tuple[str, bytes]] = []

    def compose(trusted: TrustedBranch, base: str) -> Draft:
        if name in trusted.policy.people:
            raise BadInput(f"person {name!r} is already in the policy")
        if not read:
            read.append(_person_key(branch, key, key_file))
        fingerprint, armored = read[0]
        policy_text = branch.blob(branch.tree(branch.commit(base).tree)[POLICY_FILE].id).decode()
        new_policy = policy_text.rstrip("\n") + "\n\n" + render_person(name, fingerprint, email)
        files = {POLICY_FILE: new_policy.encode(), f"keys/{name}.asc": armored}
        return Draft(files, f"gitjit: add person {name}", True)

    written, _ = _write(branch, compose, push, offline)
    return written


def read_key_file(path: str) -> tuple[str, bytes]:
    """(fingerprint, armored public key) of a key file that holds exactly one key, within the size limit."""
    try:
        armored = Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read key file {path}: {exc.strerror}") from None
    if len(armored) > MAX_KEY_FILE_BYTES:
        raise BadInput(f"key file {path} is {len(armored)} bytes, the limit is {MAX_KEY_FILE_BYTES}")
    found = fingerprints_in(armored)
    if len(found) != 1:
        raise BadInput(f"key file {path} holds {len(found)} public keys, expected exactly one")
    return found[0], armored


def _person_key(branch: ApprovalsBranch, key: str | None, key_file: str | None) -> tuple[str, bytes]:
    """(fingerprint, armored public key) from a key file or the user's keyring."""
    if key_file is not None:
        return read_key_file(key_file)
    if key is None:  # the caller's check: exactly one of them
        raise BadInput("give exactly one of --key FPR or --key-file FILE")
    wanted = key.replace(" ", "").upper()
    fingerprint = wanted if FINGERPRINT_RE.match(wanted) else resolve_user_key(branch, key)
    armored = export_user_key(branch, fingerprint)
    if fingerprint not in fingerprints_in(armored):
        raise BadInput(f"the exported key does not have fingerprint {fingerprint}")
    return fingerprint, armored


def new_request_id(action: str, now: datetime, target: str = "", layout_revision: int = layout.FLAT) -> str:
    # 47 + 16 characters: an id stays a valid name (at most 64) for the longest action names;
    # in layout 2 the last two hex digits are the target's shard (docs/format.md, section 2.4)
    suffix = layout.new_id_suffix(target, layout_revision)
    return f"{action[:47]}-{now:%Y%m%d}-{secrets.token_hex(3)[:6 - len(suffix)]}{suffix}"


def resolve_target(repo: Repository, rev: str) -> str:
    import pygit2

    try:
        obj = repo.revparse_single(rev)
        return str(obj.peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise BadInput(f"revision {rev!r} does not resolve to a commit") from None


def _check_text(text: str, what: str) -> None:
    """Free text goes into UTF-8 TOML: bytes that were not UTF-8 on the command line
    reach Python as lone surrogates and are bad input, not an unexpected error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} is not valid UTF-8 text") from None
    too_long = text_size_problem(text, what)
    if too_long:
        raise BadInput(too_long)


def request(branch: ApprovalsBranch, action: str, target_rev: str, reason: str, ttl: str | None,
            now: datetime, sign: bool | None = None, push: bool = False, *, offline: bool = False,
            on_id: Callable[[str], None] | None = None, break_glass: bool = False) -> tuple[Written, Request]:
    """Commits a request; `on_id` hears its id as soon as the input is checked, before signing or pushing."""
    target = resolve_target(branch.repo, target_rev)
    _check_text(reason, "--reason")
    made: list[Request] = []  # the same id on every attempt

    def compose(trusted: TrustedBranch, base: str) -> Draft:
        policy = trusted.policy
        if action not in policy.actions:
            raise BadInput(f"unknown action {action!r}: the policy has {', '.join(sorted(policy.actions)) or 'none'}")
        lifetime = parse_duration(ttl, "--ttl") if ttl else min(DEFAULT_TTL, policy.max_ttl)
        if lifetime > policy.max_ttl or lifetime.total_seconds() <= 0:
            raise BadInput(f"--ttl {ttl} is above max_ttl of the policy or not positive")
        request_id = made[0].id if made else new_request_id(action, now, target, policy.layout)
        record = Request(id=request_id, action=action, target=target, requested_by=_identity(branch),
                         reason=reason, created=now, expires=now + lifetime, break_glass=break_glass)
        if not made and on_id is not None:
            on_id(request_id)
        made[:] = [record]
        files: dict[str, bytes | None] = {layout.request_path(record.id, target, policy.layout): render_request(record)}
        message = f"gitjit: request {record.id}\n\n{action} on {target}\n"
        # a break-glass request counts only signed by the person breaking the glass
        signed = True if break_glass else bool(branch.config("user.signingkey")) if sign is None else sign
        return Draft(files, message, signed)

    written, trusted = _write(branch, compose, push, offline)
    return _with_next_step(written, trusted, made[0].id, branch), made[0]


def decide(branch: ApprovalsBranch, request_id: str, decision: str, comment: str, push: bool = False,
           offline: bool = False) -> Written:
    _check_text(comment, "--comment")
    fingerprint = signing_key(branch)
    shown: list[str] = []

    def compose(trusted: TrustedBranch, base: str) -> Draft:
        person = trusted.policy.person_with_key(fingerprint)
        if person is None:
            raise BadInput(f"your signing key {fingerprint} belongs to nobody in the policy")
        entry = deciding.decidable(branch, trusted, request_id, person, decision, utc_now(), fetched=not offline)
        if not shown:  # what is about to be signed, before a passphrase prompt
            deciding.say_description(branch, entry, decision)
            shown.append(request_id)
        record = Decision(request_id, entry.blob, entry.request.target, decision, comment)
        files: dict[str, bytes | None] = {
            layout.decision_path(request_id, person, entry.request.target, trusted.policy.layout):
            render_decision(record)}
        return Draft(files, f"gitjit: {decision} {request_id}\n", True)

    written, trusted = _write(branch, compose, push, offline)
    return _with_next_step(written, trusted, request_id, branch)


def _with_next_step(written: Written, trusted: TrustedBranch, request_id: str, branch: ApprovalsBranch) -> Written:
    entry = trusted.requests.get(request_id)
    if entry is None:
        return written
    verdict = judge_request(trusted, entry, utc_now())
    text = next_step(trusted, verdict, written.pushed, branch.remote, branch.name)
    return written._replace(next_step=text)
