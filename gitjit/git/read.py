"""Reading the repository through git itself.

Verification reads objects through one long-lived `git cat-file --batch`
process and asks git for refs, config and ancestry. Two reasons:

- A server hook runs on every push. Importing pygit2 alone costs about
  65 ms, twice a whole push through a hook that only runs `git
  verify-commit`; a `git cat-file` process starts in about 3 ms.
- In a pre-receive hook the pushed objects sit in git's quarantine
  directory. git subprocesses find them through the environment git gave
  the hook, exactly as git itself does, with no special casing.

pygit2 remains what builds trees and commits on the writing side
(`git/branch.py`). Every object id given to git here is checked to be a full
hex id first: `cat-file --batch` would also accept revision expressions.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading

from gitjit.errors import GitjitError
from gitjit.namedtuple import NamedTuple
from gitjit.reasons import MISSING_OBJECT

HEX40 = re.compile(r"^[0-9a-f]{40}\Z")


class MissingObject(GitjitError):
    """An object the repository does not have (or not of the expected type).

    Not a `KeyError`: a missing git object is never confused with a plain dict miss.
    """

    code = MISSING_OBJECT


class CommitObject(NamedTuple):
    id: str
    tree: str
    parents: tuple[str, ...]
    committer_time: int
    raw: bytes

    @property
    def commit_time(self) -> int:  # pygit2's name for it
        return self.committer_time


class TreeEntry(NamedTuple):
    mode: str
    name: str
    id: str

    @property
    def is_tree(self) -> bool:
        return self.mode == "40000"

    @property
    def is_blob(self) -> bool:
        return self.mode in ("100644", "100755", "120000")


def parse_tree(data: bytes) -> list[TreeEntry]:
    entries = []
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        mode = data[i:space].decode("ascii")
        name = data[space + 1:nul].decode("utf-8", "surrogateescape")
        entries.append(TreeEntry(mode, name, data[nul + 1:nul + 21].hex()))
        i = nul + 21
    if i != len(data):
        raise ValueError("truncated tree object")
    return entries


def parse_commit(commit_id: str, raw: bytes) -> CommitObject:
    head = raw.split(b"\n\n", 1)[0]
    tree, parents, committed = None, [], None
    for line in head.split(b"\n"):
        if line.startswith(b"tree "):
            tree = tree or line[5:].decode("ascii")
        elif line.startswith(b"parent "):
            parents.append(line[7:].decode("ascii"))
        elif line.startswith(b"committer ") and committed is None:
            fields = line.rsplit(b" ", 2)
            committed = int(fields[1]) if len(fields) == 3 and fields[1].lstrip(b"-").isdigit() else 0
    if tree is None or not HEX40.match(tree) or not all(HEX40.match(p) for p in parents):
        raise MissingObject(f"{commit_id} is not a readable commit")
    return CommitObject(commit_id, tree, tuple(parents), committed or 0, raw)


class GitReader:
    """Objects, refs, config and ancestry of one repository, read by git."""

    def __init__(self, git_dir: str | os.PathLike[str]):
        self.git_dir = os.fspath(git_dir)
        self._batch: subprocess.Popen[bytes] | None = None
        self._check: subprocess.Popen[bytes] | None = None  # cat-file --batch-check: sizes, started on first use
        self._lock = threading.Lock()
        self._config: dict[str, str] | None = None

    def command(self, *args: str) -> list[str]:
        # Replace refs (refs/replace/*) are ordinary refs a push may create; honouring
        # them would let a pusher swap the content behind an object id.
        return ["git", "--no-replace-objects", "--git-dir", self.git_dir, *args]

    def git(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(self.command(*args), input=input, capture_output=True)
        if check and result.returncode != 0:
            raise OSError(f"git {args[0]} failed: {git_failure(result.stderr, result.returncode)}")
        return result

    # -- objects -------------------------------------------------------------

    def object(self, object_id: str) -> tuple[str, bytes]:
        """(type, data) of one object; MissingObject when git does not have it."""
        if not isinstance(object_id, str) or not HEX40.match(object_id):
            raise MissingObject(f"{object_id!r} is not a full object id")
        with self._lock:
            batch = self._start_batch()
            stdin, stdout = batch.stdin, batch.stdout
            if stdin is None or stdout is None:  # started with pipes: never, but not "found" either
                raise MissingObject(f"object {object_id} could not be read: no pipe to git cat-file")
            try:
                stdin.write(object_id.encode() + b"\n")
                stdin.flush()
                header = stdout.readline().split()
                if len(header) != 3:
                    raise MissingObject(f"object {object_id} is missing")
                size = int(header[2])
                data = stdout.read(size)
                if len(data) != size or stdout.read(1) != b"\n":
                    raise MissingObject(f"object {object_id} could not be read whole")
            except (OSError, ValueError) as exc:
                self.close()
                raise MissingObject(f"object {object_id} could not be read: {exc}") from None
        if header[0].decode() != object_id:
            raise MissingObject(f"git answered for {header[0].decode()!r}, not {object_id}")
        return header[1].decode(), data

    def _start_batch(self) -> subprocess.Popen[bytes]:
        if self._batch is None or self._batch.poll() is not None:
            self._batch = subprocess.Popen(
                self.command("cat-file", "--batch"),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        return self._batch

    def info(self, object_id: str) -> tuple[str, int]:
        """(type, size) of one object from its header alone: the object is not read.

        The size of a file on the branch is checked this way before it is
        read, so a 100 MB file costs a header, not 100 MB of memory.
        """
        if not isinstance(object_id, str) or not HEX40.match(object_id):
            raise MissingObject(f"{object_id!r} is not a full object id")
        with self._lock:
            if self._check is None or self._check.poll() is not None:
                self._check = subprocess.Popen(
                    self.command("cat-file", "--batch-check"),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                )
            stdin, stdout = self._check.stdin, self._check.stdout
            try:
                if stdin is None or stdout is None:
                    raise OSError("no pipe to git cat-file --batch-check")
                stdin.write(object_id.encode() + b"\n")
                stdin.flush()
                header = stdout.readline().split()
            except OSError as exc:
                raise MissingObject(f"object {object_id} could not be looked up: {exc}") from None
        if len(header) != 3 or header[0].decode() != object_id or not header[2].isdigit():
            raise MissingObject(f"object {object_id} is missing")
        return header[1].decode(), int(header[2])

    def typed(self, object_id: str, kind: str) -> bytes:
        found, data = self.object(object_id)
        if found != kind:
            raise MissingObject(f"{object_id[:12]} is a {found}, not a {kind}")
        return data

    def commit(self, commit_id: str) -> CommitObject:
        return parse_commit(commit_id, self.typed(commit_id, "commit"))

    def tree(self, tree_id: str) -> list[TreeEntry]:
        try:
            return parse_tree(self.typed(tree_id, "tree"))
        except ValueError as exc:
            raise MissingObject(f"tree {tree_id[:12]} is unreadable: {exc}") from None

    def tree_entry(self, tree_id: str, name: str) -> TreeEntry | None:
        return next((e for e in self.tree(tree_id) if e.name == name), None)

    def blob(self, blob_id: str) -> bytes:
        return self.typed(blob_id, "blob")

    def peel_to_commit(self, object_id: str) -> str | None:
        """The commit an object is or (through annotated tags) points at; None otherwise."""
        for _ in range(16):  # tags of tags, but not forever
            kind, data = self.object(object_id)
            if kind == "commit":
                return object_id
            if kind != "tag":
                return None
            first = data.split(b"\n", 1)[0]
            if not first.startswith(b"object "):
                return None
            object_id = first[7:].decode("ascii", "replace")
        return None

    def close(self) -> None:
        check, self._check = self._check, None
        for batch in (self._batch, check):
            self._close(batch)
        self._batch = None

    @staticmethod
    def _close(batch: subprocess.Popen[bytes] | None) -> None:
        if batch is not None:
            for stream in (batch.stdin, batch.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            batch.wait()

    # -- refs, ancestry, config ------------------------------------------------

    def ref(self, refname: str) -> str | None:
        """The object a ref names, by its exact full name; None when there is no such ref.

        for-each-ref, not show-ref: it exits 0 when nothing matches, so a git
        that cannot read the refs raises here instead of reading as "no ref".
        It also lists refs below the name (`<name>/...`): only the exact one counts.
        """
        result = self.git("for-each-ref", "--format=%(refname) %(objectname)", "--", refname)
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition(" ")
            if name == refname and HEX40.match(value):
                return value
        return None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        if not (HEX40.match(ancestor) and HEX40.match(descendant)):
            return False
        if ancestor == descendant:
            return True
        return self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    def first_parent_walk(self, tip: str, stop: str | None = None) -> list[str]:
        """Lines "COMMIT PARENT..." from `tip` back along first parents, newest
        first, ending before `stop` (or at the root).

        Lines, not tuples: a cold check reads every commit of a long branch
        here, and splitting 20,000 lines into tuples took 25 ms of it.
        """
        if not HEX40.match(tip) or (stop is not None and not HEX40.match(stop)):
            raise MissingObject("not a full commit id")
        args = ["rev-list", "--first-parent", "--parents", tip]
        if stop is not None:
            args += ["--not", stop]
        result = self.git(*args, check=False)
        if result.returncode != 0:
            raise MissingObject(f"cannot walk the history of {tip[:12]}")
        return result.stdout.decode().splitlines()

    def config_value(self, key: str) -> str | None:
        section, _, rest = key.partition(".")
        subsection, _, name = rest.rpartition(".")
        normal = f"{section.lower()}.{subsection + '.' if subsection else ''}{name.lower()}"
        return self.config().get(normal)

    def config(self) -> dict[str, str]:
        if self._config is None:
            with self._lock:  # objects are read next: git starts on both at once
                self._start_batch()
            result = self.git("config", "--list", "-z")  # an unreadable config raises: never read as empty
            values: dict[str, str] = {}
            for item in result.stdout.decode("utf-8", "replace").split("\0"):
                if item:
                    key, _, value = item.partition("\n")
                    values[key] = value  # git prints keys normalized; the last one wins, as for git
            self._config = values
        return self._config

    def set_config(self, key: str, value: str) -> None:
        self.git("config", key, value)
        self._config = None


def absolute_git_dir(path: str | os.PathLike[str]) -> str | None:
    """The git directory of the repository at or above `path` (None: not in one)."""
    return locate_git_dir(path)[0]


def locate_git_dir(path: str | os.PathLike[str]) -> tuple[str | None, str]:
    """(the git directory at or above `path`, "") or (None, why git found none, in git's words)."""
    try:
        result = subprocess.run(["git", "-C", os.fspath(path), "rev-parse", "--absolute-git-dir"],
                                capture_output=True)
    except OSError as exc:
        return None, f"cannot run git: {exc}"
    found = result.stdout.decode("utf-8", "surrogateescape").strip()
    if result.returncode == 0 and found:
        return found, ""
    return None, git_failure(result.stderr, result.returncode)


_GIT_ERROR_PREFIXES = ("fatal: ", "error: ")
_HINT_LINES = 3  # git's advice after its error ("To add an exception for this directory, call: ...")


def git_failure(stderr: bytes, returncode: int) -> str:
    """Why git failed, on one line, in git's own words.

    Its first "fatal:" line and the advice that follows it (dubious ownership
    names the `safe.directory` command to run); without one, its last line.
    """
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("fatal: "):
            hints = []
            for hint in lines[i + 1:i + 1 + _HINT_LINES]:
                if hint.startswith(_GIT_ERROR_PREFIXES):
                    break
                hints.append(hint)
            return " ".join([line[len("fatal: "):] + (";" if hints else ""), *hints])
    return lines[-1] if lines else f"exit {returncode}"
