"""What the writing commands do, without a terminal in sight (docs/format.md, section 8.3).

Every write follows the same steps: authenticate the branch as it is, check
the input, build the new tree with pygit2, let `git commit-tree` make (and
sign) the commit, check that the new commit would count exactly as a
verifier or the server hook will judge it, and only then move the branch.
Bad input is refused before anything is written; a commit that would not
count is never put on the branch.
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gitjit.errors import BadInput, GitFailed, NotTrusted
from gitjit.git.branch import ApprovalsBranch
from gitjit.model import layout
from gitjit.model.grammar import FINGERPRINT_RE, check_name, parse_duration
from gitjit.model.limits import MAX_KEY_FILE_BYTES
from gitjit.model.policy import POLICY_FILE, render_initial_policy, render_person
from gitjit.model.records import (
    Decision,
    Request,
    render_decision,
    render_request,
    text_size_problem,
)
from gitjit.trust.signatures import Keyring
from gitjit.trust.trusted import TrustedBranch

DEFAULT_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Written:
    commit: str
    message: str
    pushed: bool = False


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
        return Keyring(Path(home), {}, {}).import_public(armored)


# -- commits ---------------------------------------------------------------

def _identity(branch: ApprovalsBranch) -> str:
    name, email = branch.config("user.name"), branch.config("user.email")
    return f"{name} <{email}>" if name and email else (name or email or "")


def _commit(trusted: TrustedBranch | None, branch: ApprovalsBranch, base: str | None, local_before: str | None,
            files: dict[str, bytes], message: str, sign: bool, push: bool,
            prefix: str = "") -> tuple[Written, TrustedBranch]:
    tree = branch.build_tree(base, files)
    commit = branch.commit_tree(tree, base, message, sign)
    if prefix and not commit.startswith(prefix):
        commit = _commit_with_prefix(branch, commit, tree, base, message, sign, prefix)
    # Judge the new commit as a verifier would before the branch moves.
    if trusted is None:
        trusted = TrustedBranch(branch, commit)
    try:
        refusals = trusted.extend([commit])
    except NotTrusted as exc:
        raise BadInput(f"the new commit would not count: {exc}", exc.code) from None
    if refusals:
        raise BadInput(f"the new commit would not count: {refusals[0].reason}", refusals[0].code)
    branch.advance(commit, local_before)
    if push:
        try:
            branch.push(commit)
        except GitFailed as exc:  # the commit is made: say so, and how to push it
            raise GitFailed(f"committed {commit[:12]} on {branch.ref}, but {exc}; "
                              f"push it later with 'git push {branch.remote} {branch.name}'") from None
    return Written(commit, message, push), trusted


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
    return TrustedBranch.load(branch, tip=base), base, local_before


def init(branch: ApprovalsBranch, admin: str, key: str | None, layout_revision: int = layout.SHARDED) -> Written:
    check_name(admin, "admin")
    if branch.ref_target(branch.ref) or branch.ref_target(branch.remote_ref):
        raise BadInput(f"branch {branch.name} already exists")
    fingerprint = resolve_user_key(branch, key) if key else signing_key(branch)
    armored = export_user_key(branch, fingerprint)
    policy = render_initial_policy(admin, fingerprint, branch.config("user.email"), layout_revision)
    files = {POLICY_FILE: policy.encode(), f"keys/{admin}.asc": armored}
    written, trusted = _commit(None, branch, None, None, files, f"gitjit: init (admin {admin})", sign=True, push=False)
    branch.set_config("gitjit.root", trusted.root)
    return written


def add_person(branch: ApprovalsBranch, name: str, key: str | None, key_file: str | None,
               email: str | None, push: bool = False) -> Written:
    check_name(name, "person")
    if (key is None) == (key_file is None):
        raise BadInput("give exactly one of --key FPR or --key-file FILE")
    trusted, base, local_before = load_for_writing(branch)
    if name in trusted.policy.people:
        raise BadInput(f"person {name!r} is already in the policy")
    if key_file is not None:
        try:
            armored = Path(key_file).read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read key file {key_file}: {exc.strerror}") from None
        if len(armored) > MAX_KEY_FILE_BYTES:
            raise BadInput(f"key file {key_file} is {len(armored)} bytes, the limit is {MAX_KEY_FILE_BYTES}")
        found = fingerprints_in(armored)
        if len(found) != 1:
            raise BadInput(f"key file {key_file} holds {len(found)} public keys, expected exactly one")
        fingerprint = found[0]
    else:
        wanted = key.replace(" ", "").upper()
        fingerprint = wanted if FINGERPRINT_RE.match(wanted) else resolve_user_key(branch, key)
        armored = export_user_key(branch, fingerprint)
        if fingerprint not in fingerprints_in(armored):
            raise BadInput(f"the exported key does not have fingerprint {fingerprint}")
    policy_text = branch.blob(branch.tree(branch.commit(base).tree)[POLICY_FILE].id).decode()
    new_policy = policy_text.rstrip("\n") + "\n\n" + render_person(name, fingerprint, email)
    files = {POLICY_FILE: new_policy.encode(), f"keys/{name}.asc": armored}
    written, _ = _commit(trusted, branch, base, local_before, files, f"gitjit: add person {name}", True, push)
    return written


def new_request_id(action: str, now: datetime, target: str = "", layout_revision: int = layout.FLAT) -> str:
    # 47 + 16 characters: an id stays a valid name (at most 64) for the longest action names;
    # in layout 2 the last two hex digits are the target's shard (docs/format.md, section 2.4)
    suffix = layout.new_id_suffix(target, layout_revision)
    return f"{action[:47]}-{now:%Y%m%d}-{secrets.token_hex(3)[:6 - len(suffix)]}{suffix}"


def resolve_target(repo, rev: str) -> str:
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
            now: datetime, sign: bool | None = None, push: bool = False) -> tuple[Written, Request]:
    trusted, base, local_before = load_for_writing(branch)
    policy = trusted.policy
    if action not in policy.actions:
        raise BadInput(f"unknown action {action!r}: the policy has {', '.join(sorted(policy.actions)) or 'none'}")
    lifetime = parse_duration(ttl, "--ttl") if ttl else min(DEFAULT_TTL, policy.max_ttl)
    if lifetime > policy.max_ttl or lifetime.total_seconds() <= 0:
        raise BadInput(f"--ttl {ttl} is above max_ttl of the policy or not positive")
    target = resolve_target(branch.repo, target_rev)
    _check_text(reason, "--reason")
    record = Request(
        id=new_request_id(action, now, target, policy.layout),
        action=action,
        target=target,
        requested_by=_identity(branch),
        reason=reason,
        created=now,
        expires=now + lifetime,
    )
    if sign is None:
        sign = bool(branch.config("user.signingkey"))
    files = {layout.request_path(record.id, target, policy.layout): render_request(record)}
    message = f"gitjit: request {record.id}\n\n{action} on {target}\n"
    written, _ = _commit(trusted, branch, base, local_before, files, message, sign, push)
    return written, record


def decide(branch: ApprovalsBranch, request_id: str, decision: str, comment: str, push: bool = False) -> Written:
    trusted, base, local_before = load_for_writing(branch)
    entry = trusted.requests.get(request_id)
    if entry is None:
        raise BadInput(f"unknown request {request_id!r}")
    fingerprint = signing_key(branch)
    person = trusted.policy.person_with_key(fingerprint)
    if person is None:
        raise BadInput(f"your signing key {fingerprint} belongs to nobody in the policy")
    _check_text(comment, "--comment")
    record = Decision(request_id, entry.blob, entry.request.target, decision, comment)
    files = {layout.decision_path(request_id, person, entry.request.target, trusted.policy.layout):
             render_decision(record)}
    message = f"gitjit: {decision} {request_id}\n"
    written, _ = _commit(trusted, branch, base, local_before, files, message, True, push)
    return written
