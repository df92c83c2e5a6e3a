"""Reading and writing the approvals branch with pygit2 (SPEC s.1, s.9).

Reads never trust a short ref name: the branch is always
`refs/heads/<name>` (or `refs/remotes/<remote>/<name>` for a clone that has
not made its own branch yet). Writes build trees with pygit2, leave the
user's working tree and index alone, and let `git commit-tree -S` sign so the
user's signing setup (signingkey, gpg.program, agent, smartcard) applies.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .errors import BadInput, NotTrusted
from .names import FULL_COMMIT_RE, check_name

DEFAULT_BRANCH = "approvals"
DEFAULT_REMOTE = "origin"
ZERO = "0" * 40


@dataclass(frozen=True)
class Change:
    status: str  # "A" added, "M" modified, "D" deleted, "T" type change
    path: str
    old_id: str | None
    new_id: str | None
    new_mode: str = "100644"

    @property
    def is_regular_file(self) -> bool:
        return self.new_mode == "100644"


def _diff_tree_records(stream) -> Iterator[tuple[str | None, Change | None]]:
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


def open_repository(path: str | os.PathLike | None = None) -> pygit2.Repository:
    start = str(path or os.getcwd())
    try:
        found = pygit2.discover_repository(start)
    except (pygit2.GitError, OSError):
        found = None
    if not found:
        raise BadInput(f"not a git repository: {start}")
    return pygit2.Repository(found)


def git_dir(repo: pygit2.Repository) -> Path:
    return Path(repo.path)


def cache_dir(repo: pygit2.Repository) -> Path:
    """gitjit's own state inside the git directory (keyrings, verified-commit cache)."""
    return git_dir(repo) / "gitjit"


def run_git(repo: pygit2.Repository, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(
            ["git", "--git-dir", str(git_dir(repo)), *args],
            input=input,
            capture_output=True,
        )
    except OSError as exc:
        raise BadInput(f"cannot run git: {exc}") from None
    if check and result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BadInput(f"git {args[0]} failed: {message[-1] if message else 'exit ' + str(result.returncode)}")
    return result


class ApprovalsBranch:
    def __init__(self, repo: pygit2.Repository, name: str | None = None, remote: str = DEFAULT_REMOTE):
        self.repo = repo
        self.name = check_name(name or self.config("gitjit.branch") or DEFAULT_BRANCH, "approvals branch")
        self.remote = remote
        self.ref = f"refs/heads/{self.name}"
        self.remote_ref = f"refs/remotes/{remote}/{self.name}"

    # -- configuration -------------------------------------------------------

    def config(self, key: str) -> str | None:
        try:
            return self.repo.config[key]
        except (KeyError, pygit2.GitError):
            return None

    def set_config(self, key: str, value: str) -> None:
        self.repo.config[key] = value

    def pinned_root(self) -> str | None:
        value = self.config("gitjit.root")
        if value is not None and not FULL_COMMIT_RE.match(value):
            raise BadInput(f"git config gitjit.root: {value!r} is not a full commit id")
        return value

    # -- reading -------------------------------------------------------------

    def ref_target(self, refname: str) -> str | None:
        ref = self.repo.references.get(refname)
        if ref is None:
            return None
        try:
            return str(ref.resolve().target)
        except (pygit2.GitError, KeyError):
            return None

    def read_tip(self) -> str | None:
        """The newest known tip: the local branch, or the remote one when it is ahead."""
        local, remote = self.ref_target(self.ref), self.ref_target(self.remote_ref)
        if local and remote and local != remote and self.is_ancestor(local, remote):
            return remote
        return local or remote

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            return ancestor == descendant or self.repo.descendant_of(descendant, ancestor)
        except (pygit2.GitError, KeyError, ValueError):
            return False

    def commit(self, commit_id: str) -> pygit2.Commit:
        try:
            obj = self.repo[commit_id]
        except (KeyError, ValueError):
            raise NotTrusted(f"commit {commit_id[:12]} is missing from the repository") from None
        if not isinstance(obj, pygit2.Commit):
            raise NotTrusted(f"{commit_id[:12]} is not a commit")
        return obj

    def raw_object(self, object_id: str) -> bytes:
        return self.repo.odb.read(object_id)[1]

    def blob(self, object_id: str) -> bytes:
        obj = self.repo[object_id]
        if not isinstance(obj, pygit2.Blob):
            raise NotTrusted(f"{object_id[:12]} is not a file")
        return obj.data

    def first_parent_chain(self, tip: str, stop: str | None = None) -> list[str]:
        """Commit ids from the root (or just after `stop`) to `tip`, oldest first.

        The branch is linear: a merge commit anywhere makes the history untrusted.
        """
        chain: list[str] = []
        current: str | None = tip
        while current is not None and current != stop:
            commit = self.commit(current)
            parents = commit.parent_ids
            if len(parents) > 1:
                raise NotTrusted(f"commit {current[:12]} is a merge: the approvals branch must be linear")
            chain.append(current)
            current = str(parents[0]) if parents else None
        if stop is not None and current != stop:
            raise NotTrusted(f"{tip[:12]} does not descend from {stop[:12]}")
        chain.reverse()
        return chain

    def chain_back_to(self, tip: str, stop: str) -> list[str] | None:
        """The commits after `stop` up to `tip`, oldest first; None when `stop` is not
        on `tip`'s first-parent chain or a merge is in the way."""
        chain: list[str] = []
        current = tip
        while current != stop:
            try:
                commit = self.commit(current)
            except NotTrusted:
                return None
            if len(commit.parent_ids) != 1:
                return None
            chain.append(current)
            current = str(commit.parent_ids[0])
        chain.reverse()
        return chain

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
            ["git", "--git-dir", str(git_dir(self.repo)), "diff-tree", "--stdin", "-r", "-z", "--raw",
             "--no-renames", "--root", "--always"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

        def feed() -> None:
            try:
                process.stdin.write("".join(f"{c}\n" for c in commit_ids).encode())
                process.stdin.close()
            except OSError:
                pass  # git died: the missing output is reported below

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        expected = iter(commit_ids)
        try:
            current: str | None = None
            found: list[Change] = []
            for header, entry in _diff_tree_records(process.stdout):
                if header is not None:
                    if current is not None:
                        yield current, found
                    wanted = next(expected, None)
                    if header != wanted:
                        raise NotTrusted(f"git diff-tree answered for {header[:12]}, expected {str(wanted)[:12]}")
                    current, found = header, []
                else:
                    found.append(entry)
            if current is not None:
                yield current, found
            missing = next(expected, None)
            if missing is not None:
                raise NotTrusted(f"cannot read the changes of commit {missing[:12]}")
        finally:
            process.stdout.close()
            if process.poll() is None:
                process.kill()
            process.wait()
            writer.join()

    def files_in(self, tree: pygit2.Tree, folder: str) -> dict[str, str]:
        """name -> blob id of the files directly in `folder` of `tree`."""
        try:
            sub = tree[folder]
        except KeyError:
            return {}
        if not isinstance(sub, pygit2.Tree):
            return {}
        return {entry.name: str(entry.id) for entry in sub if entry.type_str == "blob"}

    # -- writing -------------------------------------------------------------

    def write_base(self) -> str | None:
        """The commit a new commit goes on: the local tip, fast-forwarded to the remote's when behind."""
        local, remote = self.ref_target(self.ref), self.ref_target(self.remote_ref)
        if local and remote and local != remote:
            if self.is_ancestor(local, remote):
                return remote
            if not self.is_ancestor(remote, local):
                raise BadInput(
                    f"branch {self.name} has diverged from {self.remote}/{self.name}: "
                    f"keep theirs with 'git branch -f {self.name} {self.remote}/{self.name}' "
                    f"(your own unpushed approvals commits are then dropped)"
                )
        return local or remote

    def build_tree(self, base: str | None, files: dict[str, bytes]) -> str:
        index = pygit2.Index()
        if base is not None:
            index.read_tree(self.commit(base).tree)
        for path, data in files.items():
            blob_id = self.repo.create_blob(data)
            index.add(pygit2.IndexEntry(path, blob_id, pygit2.enums.FileMode.BLOB))
        return str(index.write_tree(self.repo))

    def commit_tree(self, tree: str, parent: str | None, message: str, sign: bool) -> str:
        args = ["commit-tree", tree, "-m", message]
        if parent:
            args += ["-p", parent]
        if sign:
            args.insert(1, "-S")
        result = run_git(self.repo, *args)
        return result.stdout.decode().strip()

    def advance(self, new: str, local_before: str | None) -> None:
        """Moves the local branch to `new`, refusing if it moved since `local_before` was read."""
        run_git(self.repo, "update-ref", "-m", "gitjit", self.ref, new, local_before or ZERO)

    def push(self, commit_id: str) -> None:
        run_git(self.repo, "push", "--quiet", self.remote, f"{commit_id}:{self.ref}")
