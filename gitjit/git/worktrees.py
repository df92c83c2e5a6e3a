"""Worktrees that have the approvals branch checked out (docs/format.md, section 8.3).

gitjit moves `refs/heads/<branch>` without a checkout. Where a worktree has
that branch checked out, its index and files would be left showing the old
commit, so `git status` there would list every new file as a staged
deletion and the next by-hand `git commit` would commit those deletions.
So: before a write, a worktree with uncommitted changes to tracked files
stops it (with the command that puts them aside); after the write, each
worktree is moved along with `git read-tree -m -u OLD NEW`, the two-tree
fast-forward git itself uses, which keeps untracked files such as a
decision being written by hand.

Advice that moves the branch is given in a form that works whether or not
it is checked out (`git branch -f` refuses a checked-out branch).
"""

from __future__ import annotations

import os
import shlex
import subprocess

from gitjit.errors import BadInput
from gitjit.git.branch import ApprovalsBranch, run_git
from gitjit.git.read import git_failure
from gitjit.reasons import WORKTREE_DIRTY


def checked_out(branch: ApprovalsBranch) -> list[str]:
    """The worktrees (paths) whose HEAD is the approvals branch."""
    result = run_git(branch.repo, "worktree", "list", "--porcelain", check=False)
    if result.returncode != 0:
        return []
    found, path = [], None
    for line in result.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree "):]
        elif line == f"branch {branch.ref}" and path and os.path.isdir(path):
            found.append(path)
    return found


def _git_in(path: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    return subprocess.run(["git", "-C", path, *args], capture_output=True, env=env)


def check_clean(branch: ApprovalsBranch) -> None:
    """Refuses (before anything is written) where a checked-out worktree has changes to tracked files."""
    for path in checked_out(branch):
        status = _git_in(path, "status", "--porcelain", "--untracked-files=no")
        if status.returncode == 0 and status.stdout.strip():
            raise BadInput(f"the {branch.name} branch is checked out at {path} with uncommitted changes "
                           f"(git -C {shlex.quote(path)} status): gitjit will not move the branch under them; "
                           f"put them aside with 'git -C {shlex.quote(path)} stash' and run the command again",
                           WORKTREE_DIRTY)


def follow(branch: ApprovalsBranch, old: str | None, new: str) -> list[str]:
    """Brings each worktree with the branch checked out from `old` to `new`; what could not be done."""
    problems: list[str] = []
    if old is None or old == new:
        return problems
    for path in checked_out(branch):
        result = _git_in(path, "read-tree", "-m", "-u", old, new)
        if result.returncode != 0:
            problems.append(f"the worktree at {path} still shows {old[:12]} "
                            f"({git_failure(result.stderr, result.returncode)}); "
                            f"bring it to {new[:12]} with 'git -C {shlex.quote(path)} reset --keep {new[:12]}'")
    return problems


def move_branch_command(branch: ApprovalsBranch, to: str) -> str:
    """The one command that moves the local branch to `to`, checked out or not."""
    paths = checked_out(branch)
    if paths:
        return f"git -C {shlex.quote(paths[0])} reset --keep {to}"
    return f"git branch -f {branch.name} {to}"
