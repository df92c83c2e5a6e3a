"""The approvals branch and its remote: fetch, push, and telling a lost race from a refusal
(docs/format.md, section 8.3).

A fetch only ever moves the remote-tracking ref `refs/remotes/<remote>/<branch>`
(forced: a rewound remote is then refused by the authentication, never
trusted). A push sends one commit to `refs/heads/<branch>` without force.
Whether a failed push lost a race is decided from the refs, not from git's
words: after the failure the remote is fetched again, and if its tip moved
away from the one the commit was built on, someone else's push won and the
writer rebuilds on the new tip (`attempts`, bounded, with a jittered pause).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from gitjit.errors import GitFailed
from gitjit.git.branch import ApprovalsBranch, run_git
from gitjit.git.read import git_failure
from gitjit.namedtuple import NamedTuple

TRIES = 5  # a writer builds, signs and pushes at most this many times
PAUSE = 0.15  # seconds, the first pause after a lost race (doubled each time, jittered)


def has_remote(branch: ApprovalsBranch) -> bool:
    return run_git(branch.repo, "remote", "get-url", branch.remote, check=False).returncode == 0


def fetch(branch: ApprovalsBranch) -> None:
    """`git fetch <remote> +refs/heads/<branch>:refs/remotes/<remote>/<branch>` (GitFailed when it fails)."""
    result = run_git(branch.repo, "-c", "maintenance.auto=false", "-c", "gc.auto=0", "fetch", "--quiet",
                     "--no-tags", "--no-write-fetch-head", branch.remote,
                     f"+{branch.ref}:{branch.remote_ref}", check=False)
    if result.returncode != 0:
        raise GitFailed(f"cannot fetch {branch.name} from {branch.remote}: "
                        f"{git_failure(result.stderr, result.returncode)}")


def try_fetch(branch: ApprovalsBranch) -> str | None:
    """Fetches where a remote is configured; the failure on one line, or None (fetched, or no remote)."""
    if not has_remote(branch):
        return None
    try:
        fetch(branch)
    except GitFailed as exc:
        return str(exc)
    return None


class Freshness(NamedTuple):
    """What a reading command knows of the remote before it reads."""

    fetched: bool  # the remote's branch was fetched just now
    problem: str | None = None  # why it was not (a failed fetch); None when fetched, offline or no remote

    def stale_warning(self) -> str | None:
        if self.problem is None:
            return None
        return f"{self.problem}; going on with what this clone has: the view may be stale " \
               f"(approvals or vetoes pushed since may be missing)"


def refresh(branch: ApprovalsBranch, offline: bool = False) -> Freshness:
    """Step one of every reading command (docs/format.md, section 8.3): fetch unless `offline`."""
    if offline or not has_remote(branch):
        return Freshness(False)
    problem = try_fetch(branch)
    return Freshness(problem is None, problem)


class Pushed(NamedTuple):
    """How one push went."""

    ok: bool
    lost_race: bool = False  # the remote moved since the commit was built: rebuild and push again
    unreachable: bool = False  # the remote could not be asked again after the failure
    detail: str = ""  # why it failed, on one line (the server's own refusal line where it gave one)


def push(branch: ApprovalsBranch, commit: str, built_on_remote: str | None) -> Pushed:
    """Pushes `commit` to the remote's branch; on success the remote-tracking ref follows it.

    `built_on_remote`: the remote-tracking tip when the commit was built
    (None: the remote had no such branch).
    """
    result = run_git(branch.repo, "push", "--porcelain", "--quiet", branch.remote, f"{commit}:{branch.ref}",
                     check=False)
    if result.returncode == 0:
        run_git(branch.repo, "update-ref", "-m", "gitjit: pushed", branch.remote_ref, commit)
        return Pushed(True)
    detail = _refusal_line(result.stderr) or f"git push failed: {git_failure(result.stderr, result.returncode)}"
    problem = try_fetch(branch)
    if problem is not None:
        return Pushed(False, unreachable=True, detail=detail)
    return Pushed(False, lost_race=branch.ref_target(branch.remote_ref) != built_on_remote, detail=detail)


def _refusal_line(stderr: bytes) -> str:
    """The server hook's own line ("gitjit: refs/heads/approvals refused: ..."), if it gave one."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        text = line.removeprefix("remote:").strip()
        if text.startswith("gitjit: ") and " refused: " in text:
            return "the server refused it: " + text.removeprefix("gitjit: ")
    return ""


def attempts(tries: int = TRIES) -> Iterator[int]:
    """0, 1, ... tries-1, pausing before each retry (jittered, so racing writers spread out)."""
    for attempt in range(tries):
        if attempt:
            time.sleep(PAUSE * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
        yield attempt
