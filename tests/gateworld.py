"""A team around a real bare remote, for the `run` and `audit` tests.

`build_remote` makes it once per module: alice inits the approvals branch
(she is the admin), adds bob, carol, dave and erin with their real keys,
and adds the actions with a policy commit she signs by hand; main and
approvals are pushed to a bare repository. `Team` copies that remote for
one test and clones it as any person. Nothing is mocked: every commit is
made and signed by git with the session's GnuPG keys.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from helpers import REPO_ROOT, Clone, Keys, make_bare, make_clone

ACTIONS = """
[actions.deploy]
approvers = ["bob", "carol"]
threshold = 2
freshness = "1h"

[actions.quick]
approvers = ["bob", "carol", "erin"]
threshold = 1
"""
BRANCH = "refs/heads/approvals"


def commit_on_approvals(clone: Clone, files: dict[str, str], message: str = "by hand", sign: bool = True,
                        key: str | None = None, push: bool = False) -> str:
    """A commit on the clone's approvals branch made with git plumbing (no gitjit), the way an
    approver by hand, or an attacker, would; `key` signs instead of the clone's own key."""
    base = clone.git("rev-parse", "--verify", "--quiet", BRANCH, check=False).stdout.strip() \
        or clone.head("refs/remotes/origin/approvals")
    index = clone.path.parent / f"index-{clone.path.name}-{os.getpid()}"
    env = dict(clone.env, GIT_INDEX_FILE=str(index))
    clone.git("read-tree", base, env=env)
    for path, content in files.items():
        blob = clone.git("hash-object", "-w", "--stdin", input=content).stdout.strip()
        clone.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = clone.git("write-tree", env=env).stdout.strip()
    index.unlink(missing_ok=True)
    args = ["commit-tree", tree, "-p", base, "-m", message]
    if sign:
        args[1:1] = [f"-S{key}" if key else "-S"]
    commit = clone.git(*args).stdout.strip()
    clone.git("update-ref", BRANCH, commit)
    if push:
        clone.git("push", "-q", "origin", f"{BRANCH}:{BRANCH}")
    return commit


def build_remote(base: Path, keys: Keys) -> Path:
    """The shared starting point: a bare remote holding main and a trusted approvals branch."""
    remote = make_bare(base / "template.git", keys.env)
    alice = make_clone(base, keys["alice"], keys)
    alice.gitjit("init", "--admin", "alice", "--layout", "1", check=True)  # flat: tests write its paths
    for name in ("bob", "carol", "dave", "erin"):
        person = keys[name]
        alice.gitjit("person", "add", name, "--key", person.fpr, "--email", person.email, check=True)
    policy = alice.git("show", f"{BRANCH}:policy.toml").stdout + ACTIONS
    commit_on_approvals(alice, {"policy.toml": policy}, "gitjit: actions deploy and quick")
    alice.git("push", "-q", str(remote), "main", f"{BRANCH}:{BRANCH}")
    return remote


class Team:
    def __init__(self, base: Path, keys: Keys, template: Path):
        self.base = base
        self.keys = keys
        self.remote = base / "remote.git"
        shutil.copytree(template, self.remote, symlinks=True)

    def clone(self, person: str) -> Clone:
        return make_clone(self.base, self.keys[person], self.keys, origin=self.remote)

    def remote_git(self, *args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(self.remote), *args], env=self.keys.env,
                              capture_output=True, text=True, check=True).stdout

    def remote_requests(self) -> list[str]:
        out = self.remote_git("ls-tree", "--name-only", f"{BRANCH}:requests") if self.has_requests() else ""
        return [name[: -len(".toml")] for name in out.split()]

    def has_requests(self) -> bool:
        if BRANCH not in self.remote_git("for-each-ref", "--format=%(refname)").split():
            return False
        return "requests" in self.remote_git("ls-tree", "--name-only", BRANCH).split()


class Background:
    """`gitjit ARGS` running in a clone as a subprocess whose stderr is read as it comes."""

    def __init__(self, clone: Clone, *args: str, env: dict | None = None):
        run_env = dict(env or clone.env)
        run_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), run_env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "gitjit", *args], cwd=clone.path, env=run_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stdout = ""

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, predicate, timeout: float = 60) -> str:
        """The first stderr line for which predicate(line) holds; fails after `timeout`."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: next((l for l in self.lines if predicate(l)), None) or self.proc.poll() is not None,
                timeout=timeout)
            line = next((l for l in self.lines if predicate(l)), None)
        if line is None:
            raise AssertionError(f"no such line (found={found!r}); stderr so far:\n" + "\n".join(self.lines))
        return line

    def finish(self, timeout: float = 120) -> int:
        self.stdout = self.proc.stdout.read()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


class Later:
    """work() in a background thread after `delay` seconds; join() waits and re-raises its error."""

    def __init__(self, delay: float, work):
        self.error: BaseException | None = None
        self.delay, self.work = delay, work
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        threading.Event().wait(self.delay)
        try:
            self.work()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def join(self, timeout: float = 60) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the background work did not finish"
        if self.error is not None:
            raise self.error
