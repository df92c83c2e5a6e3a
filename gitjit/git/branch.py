"""Reading and writing the approvals branch (docs/format.md, sections 2, 8.3).

Reads go through git itself (`git/read.py`: cheap to start in a hook, and
quarantine-aware) and never trust a short ref name: the branch is always
`refs/heads/<name>` (or `refs/remotes/<remote>/<name>` for a clone that has
not made its own branch yet). Writes build trees with pygit2, leave the
user's working tree and index alone, and let `git commit-tree -S` sign so the
user's signing setup (signingkey, gpg.program, agent, smartcard) applies.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Mapping

from gitjit.errors import BadInput, GitFailed, GitjitError, NotTrusted
from gitjit.git.read import (
    CommitObject,
    GitReader,
    MissingObject,
    TreeEntry,
    git_failure,
    locate_git_dir,
)
from gitjit.model.grammar import FULL_COMMIT_RE, check_name
from gitjit.model.limits import MAX_CHANGES
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple
from gitjit.reasons import BRANCH_DIVERGED, MISSING_OBJECT, NOT_LINEAR

if TYPE_CHECKING:  # pragma: no cover
    from typing import IO, TypeAlias

    from pygit2 import Repository

    # What names a repository: its git directory, pygit2's repository, or the branch.
    Repo: TypeAlias = "str | os.PathLike[str] | Repository | ApprovalsBranch"

DEFAULT_BRANCH = "approvals"
DEFAULT_REMOTE = "origin"
ZERO = "0" * 40


class Change(NamedTuple):
    status: str  # "A" added, "M" modified, "D" deleted, "T" type change
    path: str
    old_id: str | None
    new_id: str | None
    new_mode: str = "100644"

    @property
    def is_regular_file(self) -> bool:
        return self.new_mode == "100644"


class ChangeList(list[Change]):
    """One commit's changes: the first `MAX_CHANGES` kept, all of them counted in `total`.

    A commit may change 200,000 files; holding them all would cost memory for nothing.
    """

    total = 0

    def add(self, change: Change | None) -> None:
        self.total += 1
        if change is not None and len(self) < MAX_CHANGES:
            self.append(change)


def _diff_tree_records(stream: IO[bytes]) -> Iterator[tuple[str | None, Change | None]]:
    """Parses `git diff-tree -z --raw --stdin` output: commit headers and their changes."""
    pending = b""
    fields: list[bytes] = []
    while True:
        chunk = stream.read(1 << 16)
        if chunk:
            parts = (pending + chunk).split(b"\0")
            pending = parts.pop()
            fields.extend(parts)
        elif pending:
            fields.append(pending)
            pending = b""
        i = 0
        while i < len(fields):
            text = fields[i].decode("utf-8", "surrogateescape")
            if text.startswith(":"):
                if i + 1 >= len(fields):
                    break  # the path has not arrived yet
                old_mode, new_mode, old_id, new_id, status = text[1:].split(" ")
                path = fields[i + 1].decode("utf-8", "surrogateescape")
                kind = status[0]
                yield None, Change(kind, path, None if kind == "A" else old_id, None if kind == "D" else new_id, new_mode)
                i += 2
            else:
                if text.strip():
                    yield text.strip(), None
                i += 1
        fields = fields[i:]
        if not chunk:
            if fields:
                raise NotTrusted("git diff-tree output ended in the middle of a record")
            return


def open_repository(path: str | os.PathLike[str] | None = None) -> str:
    """The git directory of the repository at or above `path` (default: here).

    Where git refuses to open it for another reason than "none there" (a
    repository owned by another user, a broken config), git's own words say
    why and what to do, so they are what the user reads.
    """
    start = str(path or os.getcwd())
    if not os.path.isdir(start):
        raise BadInput(f"not a git repository: {start}")
    found, refusal = locate_git_dir(start)
    if found is None:
        if refusal.startswith("not a git repository"):
            raise BadInput(f"not a git repository: {start}")
        raise BadInput(refusal)
    return found


def git_dir(repo: Repo) -> str:
    """A git directory from a path, a pygit2 repository or an ApprovalsBranch."""
    if isinstance(repo, ApprovalsBranch):
        return repo.git_dir
    return os.fspath(repo.path if hasattr(repo, "path") else repo)


# Each cache directory handed out, with the reader of its repository: what is
# created in it later is shared as that repository's core.sharedRepository says
# (trust/cache/files.py), from the config already read, without starting git again.
_cache_readers: dict[str, GitReader] = {}


def cache_dir(repo: Repo) -> str:
    """gitjit's own state inside the git directory (keyrings, snapshots, signature cache).

    Everything written there goes through trust/cache/files.py (shared permissions,
    published whole, uncached when it cannot be written).
    """
    path = os.path.join(git_dir(repo), "gitjit")
    if isinstance(repo, ApprovalsBranch) and path not in _cache_readers:
        _cache_readers[path] = repo.reader
    return path


def cache_setting(path: str, key: str) -> str | None:
    """A git config value of the repository whose cache directory holds `path` (None: not known)."""
    path = os.path.abspath(path)
    for root, reader in list(_cache_readers.items()):
        root = os.path.abspath(root)
        if path == root or path.startswith(root + os.sep):
            return reader.config_value(key)
    return None


def run_git(repo: Repo, *args: str, input: bytes | None = None, check: bool = True,
            failure: type[GitjitError] = GitFailed) -> subprocess.CompletedProcess[bytes]:
    """git's result; where it fails (and `check`), `failure`: GitFailed unless the caller knows
    the cause is its user's input (BadInput)."""
    try:
        result = subprocess.run(
            ["git", "--git-dir", git_dir(repo), *args],
            input=input,
            capture_output=True,
        )
    except OSError as exc:
        raise GitFailed(f"cannot run git: {exc}") from None
    if check and result.returncode != 0:
        raise failure(f"git {args[0]} failed: {git_failure(result.stderr, result.returncode)}")
    return result


class ApprovalsBranch:
    def __init__(self, repo: str | os.PathLike[str] | Repository, name: str | None = None,
                 remote: str = DEFAULT_REMOTE):
        """`repo`: a git directory, or a pygit2 repository."""
        self.git_dir = git_dir(repo)
        self.reader = GitReader(self.git_dir)
        self._repo: Repository | None = None if isinstance(repo, (str, os.PathLike)) else repo
        self.name = check_name(name or self.config("gitjit.branch") or DEFAULT_BRANCH, "approvals branch")
        self.remote = remote
        self.ref = f"refs/heads/{self.name}"
        self.remote_ref = f"refs/remotes/{remote}/{self.name}"

    @property
    def repo(self) -> Repository:
        """pygit2's view of the repository, for writing (imported only when a command writes)."""
        if self._repo is None:
            import pygit2

            self._repo = pygit2.Repository(self.git_dir)
        return self._repo

    @property
    def path(self) -> str:
        return self.git_dir

    # -- configuration -------------------------------------------------------

    def config(self, key: str) -> str | None:
        return self.reader.config_value(key)

    def set_config(self, key: str, value: str) -> None:
        first_pin = key == "gitjit.root" and self.config(key) is None
        self.reader.set_config(key, value)
        if first_pin:  # trust on first use: say so, with the full id to compare (docs/format.md, section 5.1)
            from gitjit import notices

            notices.say_at_end(f"pinned gitjit.root to {value}, the root of the {self.name} branch as first seen "
                               f"here: compare it with the root id your admin published",
                               undo=lambda: self._unpin(value))

    def _unpin(self, value: str) -> None:
        """Takes back a first pin made by a command that ended in bad input (it writes nothing)."""
        if self.config("gitjit.root") == value:
            self.reader.git("config", "--unset", "gitjit.root", check=False)

    def pinned_root(self) -> str | None:
        value = self.config("gitjit.root")
        if value is not None and not FULL_COMMIT_RE.match(value):
            raise BadInput(f"git config gitjit.root: {value!r} is not a full commit id")
        return value

    # -- reading -------------------------------------------------------------

    def ref_target(self, refname: str) -> str | None:
        return self.reader.ref(refname)

    def read_tip(self) -> str | None:
        """The newest known tip: the local branch, or the remote one when it is ahead."""
        local, remote = self.ref_target(self.ref), self.ref_target(self.remote_ref)
        if local and remote and local != remote and self.is_ancestor(local, remote):
            return remote
        return local or remote

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.reader.is_ancestor(ancestor, descendant)

    def merge_base(self, one: str, other: str) -> str | None:
        """The best common ancestor of two commits, or None where there is none (or it cannot be read)."""
        result = self.reader.git("merge-base", one, other, check=False)
        found = result.stdout.decode().strip()
        return found if result.returncode == 0 and FULL_COMMIT_RE.match(found) else None

    def commit(self, commit_id: str) -> CommitObject:
        try:
            return self.reader.commit(commit_id)
        except MissingObject:
            raise NotTrusted(f"commit {str(commit_id)[:12]} is missing from the repository", MISSING_OBJECT) from None

    def raw_object(self, object_id: str) -> bytes:
        try:
            return self.reader.object(object_id)[1]
        except MissingObject:
            raise NotTrusted(f"object {str(object_id)[:12]} is missing from the repository", MISSING_OBJECT) from None

    def blob(self, object_id: str) -> bytes:
        try:
            return self.reader.blob(object_id)
        except MissingObject:
            raise NotTrusted(f"{str(object_id)[:12]} is not a file in the repository", MISSING_OBJECT) from None

    def tree(self, tree_id: str) -> dict[str, TreeEntry]:
        try:
            return {entry.name: entry for entry in self.reader.tree(tree_id)}
        except MissingObject:
            raise NotTrusted(f"tree {str(tree_id)[:12]} is missing from the repository", MISSING_OBJECT) from None

    def first_parent_chain(self, tip: str, stop: str | None = None) -> list[str]:
        """Commit ids from the root (or just after `stop`) to `tip`, oldest first.

        The branch is linear: a merge commit anywhere makes the history untrusted.
        """
        if tip == stop:
            return []
        chain = self.chain_back_to(tip, stop, strict=True)
        if chain is None:  # strict: every failure raised already
            raise NotTrusted(f"cannot walk the history of {tip[:12]}", MISSING_OBJECT)
        return chain

    def chain_back_to(self, tip: str, stop: str | None, strict: bool = False) -> list[str] | None:
        """The commits after `stop` (or from the root) up to `tip`, oldest first.

        None when `stop` is not on `tip`'s first-parent chain or a merge is in
        the way; with `strict`, NotTrusted saying which.
        """
        def fail(reason: str, code: str = MISSING_OBJECT) -> list[str] | None:  # what chain_back_to returns
            if strict:
                raise NotTrusted(reason, code)
            return None

        try:
            walk = self.reader.first_parent_walk(tip, stop)
        except MissingObject:
            return fail(f"commit {str(tip)[:12]} is missing from the repository")
        if not walk:
            return fail(f"{tip[:12]} does not descend from {str(stop)[:12]}", NOT_LINEAR)
        merge = next((line for line in walk if line.count(" ") > 1), None)  # a commit and two parents or more
        if merge is not None:
            return fail(f"commit {merge[:12]} is a merge: the approvals branch must be linear", NOT_LINEAR)
        oldest_parents = walk[-1].split()[1:]
        if stop is None and oldest_parents:
            return fail(f"cannot walk the history of {tip[:12]} to its root")
        if stop is not None and oldest_parents != [stop]:
            return fail(f"{tip[:12]} does not descend from {stop[:12]}", NOT_LINEAR)
        return [line.partition(" ")[0] for line in reversed(walk)]

    def changes(self, commit_ids: list[str]) -> Iterator[tuple[str, list[Change]]]:
        """What each commit changes against its first parent, streamed in order.

        One `git diff-tree --stdin` serves the whole batch: git walks two trees
        of thousands of entries several times faster than a diff through
        pygit2, a long push pays one process rather than one per commit, and
        the caller checks commit n while git diffs commit n+1 (both cores).
        It runs with the caller's environment, so a pre-receive hook sees the
        quarantined objects.
        """
        if not commit_ids:
            return
        process = subprocess.Popen(
            self.reader.command("diff-tree", "--stdin", "-r", "-z", "--raw",
                               "--no-renames", "--root", "--always"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        stdin, stdout = process.stdin, process.stdout
        if stdin is None or stdout is None:  # started with pipes: never, but not "no changes" either
            process.kill()
            process.wait()
            raise NotTrusted("cannot read the changes: no pipe to git diff-tree")

        def feed() -> None:
            try:
                stdin.write("".join(f"{c}\n" for c in commit_ids).encode())
                stdin.close()
            except OSError:
                pass  # git died: the missing output is reported below

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        expected = iter(commit_ids)
        try:
            current: str | None = None
            found = ChangeList()
            for header, entry in _diff_tree_records(stdout):
                if header is not None:
                    if current is not None:
                        yield current, found
                    wanted = next(expected, None)
                    if header != wanted:
                        raise NotTrusted(f"git diff-tree answered for {header[:12]}, expected {str(wanted)[:12]}")
                    current, found = header, ChangeList()
                else:
                    found.add(entry)
            if current is not None:
                yield current, found
            missing = next(expected, None)
            if missing is not None:
                raise NotTrusted(f"cannot read the changes of commit {missing[:12]}")
        finally:
            stdout.close()
            if process.poll() is None:
                process.kill()
            process.wait()
            writer.join()

    # -- writing -------------------------------------------------------------

    def write_base(self) -> str | None:
        """The commit a new commit goes on: the local tip, fast-forwarded to the remote's when behind."""
        local, remote = self.ref_target(self.ref), self.ref_target(self.remote_ref)
        if local and remote and local != remote:
            if self.is_ancestor(local, remote):
                return remote
            if not self.is_ancestor(remote, local):
                from gitjit.git.worktrees import move_branch_command

                raise BadInput(
                    f"branch {self.name} has diverged from {self.remote}/{self.name}: "
                    f"keep theirs with '{move_branch_command(self, f'{self.remote}/{self.name}')}' "
                    f"(your own unpushed approvals commits are then dropped)", BRANCH_DIVERGED
                )
        return local or remote

    def build_tree(self, base: str | None, files: Mapping[str, bytes | None]) -> str:
        from gitjit.git.trees import tree_with_files  # only the folders on each path are rewritten; None deletes

        return tree_with_files(self.repo, self.repo[base].tree if base is not None else None, files)

    def commit_tree(self, tree: str, parent: str | None, message: str, sign: bool) -> str:
        args = ["commit-tree", tree, "-m", message]
        if parent:
            args += ["-p", parent]
        if sign:
            args.insert(1, "-S")
        result = run_git(self.repo, *args, check=False)
        if result.returncode != 0:
            if sign:  # git says only "gpg failed to sign the data": ask gpg why (git/signing.py)
                from gitjit.git.signing import explain

                raise explain(self.config("gpg.program") or "gpg", self.config("user.signingkey"))
            raise BadInput(f"git commit-tree failed: {git_failure(result.stderr, result.returncode)}")
        return result.stdout.decode().strip()

    def advance(self, new: str, local_before: str | None) -> None:
        """Moves the local branch to `new`, refusing if it moved since `local_before` was read."""
        run_git(self.repo, "update-ref", "-m", "gitjit", self.ref, new, local_before or ZERO, failure=BadInput)
