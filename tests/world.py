"""A shared repository where several test people act, for the verification tests.

`World` is one real git repository (worktree on `main`, approvals branch made
by `gitjit init`). Each person acts through their own HOME, whose
`.gitconfig` holds their name, email and `user.signingkey`: git and gitjit
(pygit2 reads the same global config) then sign as that person, with the
session's real GnuPG keys. Nothing is mocked.

Besides the CLI, a World writes on the approvals branch "by hand" with git
plumbing (`hash-object`, `update-index` on a private index, `commit-tree -S`,
`update-ref`), the way an approver without gitjit, or an attacker, would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygit2
from helpers import GPG, REPO_ROOT, Keys, _describe

BRANCH = "refs/heads/approvals"


def utc(text: str | None = None, **delta) -> datetime:
    """Now (whole seconds, UTC) moved by `delta`, or the time `text`."""
    if text is not None:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.now(UTC).replace(microsecond=0) + timedelta(**delta)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_toml(id: str, action: str, target: str, created: datetime, expires: datetime,
                 requested_by: str = "", reason: str = "") -> str:
    """A request file as docs/format.md, section 3.4 shows it, written without gitjit's renderer."""
    return (f'gitjit = 1\nid = "{id}"\naction = "{action}"\ntarget = "{target}"\n'
            f'requested_by = "{requested_by}"\nreason = "{reason}"\n'
            f"created = {iso(created)}\nexpires = {iso(expires)}\n")


def decision_toml(request: str, request_blob: str, target: str, decision: str = "approve",
                  comment: str = "") -> str:
    """A decision file as docs/format.md, section 3.5 shows it, written without gitjit's renderer."""
    return (f'gitjit = 1\nrequest = "{request}"\nrequest_blob = "{request_blob}"\n'
            f'target = "{target}"\ndecision = "{decision}"\ncomment = "{comment}"\n')


def person_toml(name: str, fpr: str, email: str | None = None) -> str:
    emails = f'emails = ["{email}"]\n' if email else ""
    return f'\n[people.{name}]\nkeys = ["{fpr}"]\n{emails}'


@dataclass(frozen=True)
class Snapshot:
    """Everything a command could have written: refs, reflogs, config, work tree, objects."""

    refs: str
    reflog: str
    config: str
    status: str
    objects: str


class World:
    def __init__(self, path: Path, keys: Keys, homes: Path):
        self.path = path
        self.keys = keys
        self.homes = homes
        self._count = 0

    # -- making -------------------------------------------------------------

    @classmethod
    def create(cls, base: Path, keys: Keys, admin: str = "alice") -> World:
        homes = base / "homes"
        for person in keys.people.values():
            home = homes / person.name
            (home / ".config").mkdir(parents=True)
            (home / ".gitconfig").write_text(
                f"[user]\n\tname = {person.real_name}\n\temail = {person.email}\n"
                f"\tsigningkey = {person.fpr}\n[gpg]\n\tprogram = {GPG}\n"
            )
        path = base / "repo"
        world = cls(path, keys, homes)
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], env=world.env(admin), check=True)
        (path / "README").write_text("test repository\n")
        world.git("add", "README")
        world.git("commit", "-q", "-m", "initial commit")
        return world

    def copy(self, dest: Path) -> World:
        """An independent copy of this world (its keyring cache included)."""
        shutil.copytree(self.path, dest / "repo", symlinks=True, ignore=shutil.ignore_patterns("S.*", ".#*"))
        return World(dest / "repo", self.keys, self.homes)

    # -- running ------------------------------------------------------------

    def env(self, person: str) -> dict[str, str]:
        home = self.homes / person
        return dict(self.keys.env, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))

    def git(self, *args: str, person: str = "alice", check: bool = True, input: str | bytes | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
        run_env = dict(self.env(person), **(env or {}))
        text = not isinstance(input, bytes)
        proc = subprocess.run(["git", *args], cwd=self.path, env=run_env, input=input,
                              capture_output=True, text=text, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(_describe(["git", *args], proc))
        return proc

    def gitjit(self, person: str, *args: str, check: int | None = 0, env: dict | None = None,
               cwd: Path | None = None, process: bool = False) -> subprocess.CompletedProcess:
        """The gitjit CLI as `person`; `check` is the expected exit code (None: any).

        By default it runs in this process (`gitjit.cli.app.main`, the entry point
        itself) with the person's environment, which is several times faster
        than a new interpreter; `process=True` runs `python -m gitjit`.
        """
        cmd = [sys.executable, "-m", "gitjit", *args]
        if process:
            run_env = dict(self.env(person), **(env or {}))
            run_env["PYTHONPATH"] = str(REPO_ROOT)
            proc = subprocess.run(cmd, cwd=cwd or self.path, env=run_env, capture_output=True, text=True, timeout=120)
        else:
            proc = _run_in_process(list(args), dict(self.env(person), **(env or {})), cwd or self.path)
        if check is not None and proc.returncode != check:
            raise AssertionError(f"expected exit {check}\n" + _describe(cmd[2:], proc))
        return proc

    def json(self, person: str, *args: str, check: int | None = 0) -> dict:
        proc = self.gitjit(person, *args, "--json", check=check)
        return json.loads(proc.stdout)

    # -- reading ------------------------------------------------------------

    def rev(self, rev: str) -> str:
        return self.git("rev-parse", "--verify", "--quiet", rev).stdout.strip()

    def tip(self) -> str:
        return self.rev(BRANCH)

    def show(self, path: str, rev: str = BRANCH) -> str:
        return self.git("show", f"{rev}:{path}").stdout

    def blob_id(self, path: str, rev: str = BRANCH) -> str:
        return self.rev(f"{rev}:{path}")

    def root(self) -> str:
        return self.git("config", "gitjit.root").stdout.strip()

    def snapshot(self) -> Snapshot:
        return Snapshot(
            refs=self.git("for-each-ref", "--format=%(refname) %(objectname)").stdout,
            reflog=self.git("reflog", "show", "--format=%H %gs", BRANCH, check=False).stdout,
            config=(self.path / ".git" / "config").read_text(),
            status=self.git("status", "--porcelain=v1", "--untracked-files=all").stdout,
            objects=self.git("count-objects", "-v").stdout,
        )

    def trusted(self, root: str | None = None):
        from gitjit.git.branch import ApprovalsBranch
        from gitjit.trust.trusted import TrustedBranch

        return TrustedBranch.load(ApprovalsBranch(pygit2.Repository(str(self.path))), root=root)

    def verdict(self, action: str, target: str, at: datetime | None = None):
        """The core API's verdict (docs/format.md, section 6), in process."""
        from gitjit.trust.verdicts import verify

        return verify(self.trusted(), action, target, at or utc())

    def decision_reasons(self, action: str, target: str, at: datetime | None = None) -> dict[str, str]:
        """person -> why their decision does not count ('' when it counts), over every request."""
        verdict = self.verdict(action, target, at)
        return {d.person: d.reason for r in verdict.requests for d in r.decisions}

    # -- writing ------------------------------------------------------------

    def target(self, label: str | None = None) -> str:
        """A new commit (on refs/heads/t-N) for requests to point at; the work tree is not touched."""
        self._count += 1
        label = label or f"target {self._count}"
        commit = self.git("commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", label).stdout.strip()
        self.git("update-ref", f"refs/heads/t-{self._count}-{os.getpid()}", commit)
        return commit

    def commit_on_branch(self, person: str, files: dict[str, str | bytes] | None = None, remove: tuple[str, ...] = (),
                         sign: bool = True, message: str = "by hand", parent: str | None = "tip",
                         move_branch: bool = True, env: dict | None = None) -> str:
        """A commit on the approvals branch made with git plumbing, as `person`."""
        index = self.path.parent / f"index-{self._next()}"
        run_env = dict(env or {}, GIT_INDEX_FILE=str(index))
        base = self.tip() if parent == "tip" else parent
        if base:
            self.git("read-tree", base, person=person, env=run_env)
        else:
            self.git("read-tree", "--empty", person=person, env=run_env)
        for path, data in (files or {}).items():
            blob = self.git("hash-object", "-w", "--stdin", person=person,
                            input=data if isinstance(data, bytes) else data.encode()).stdout.strip()
            if isinstance(blob, bytes):
                blob = blob.decode()
            self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", person=person, env=run_env)
        for path in remove:
            self.git("update-index", "--force-remove", path, person=person, env=run_env)
        tree = self.git("write-tree", person=person, env=run_env).stdout.strip()
        index.unlink(missing_ok=True)
        args = ["commit-tree", *(["-S"] if sign else []), tree, "-m", message]
        if base:
            args += ["-p", base]
        commit = self.git(*args, person=person, env=env).stdout.strip()
        if move_branch:
            self.git("update-ref", BRANCH, commit, *([base] if base and parent == "tip" else []))
        return commit

    def _next(self) -> int:
        self._count += 1
        return self._count

    def edit_policy(self, person: str, change, keys: dict[str, str] | None = None, sign: bool = True,
                    message: str = "policy change by hand") -> str:
        """A policy commit by hand: `change` maps the current policy text to the new one."""
        text = change(self.show("policy.toml"))
        files = {"policy.toml": text, **{f"keys/{name}.asc": data for name, data in (keys or {}).items()}}
        return self.commit_on_branch(person, files, sign=sign, message=message)

    def hand_request(self, person: str, action: str, target: str, created: datetime | None = None,
                     expires: datetime | None = None, id: str | None = None, sign: bool = True) -> str:
        """A request committed by hand; returns its id."""
        created = created or utc()
        expires = expires or created + timedelta(hours=24)
        id = id or f"{action}-by-hand-{self._next()}"
        text = request_toml(id, action, target, created, expires, requested_by=person)
        self.commit_on_branch(person, {f"requests/{id}.toml": text}, sign=sign, message=f"request {id}")
        return id

    def hand_decision(self, person: str, request_id: str, decision: str = "approve", as_person: str | None = None,
                      sign: bool = True, request_blob: str | None = None, target: str | None = None,
                      env: dict | None = None, move_branch: bool = True) -> str:
        """`person` writes approvals/<id>/<as_person>.toml and commits it (signed with their own key)."""
        request_path = f"requests/{request_id}.toml"
        blob = request_blob or self.blob_id(request_path)
        request_target = target or self._field(self.show(request_path), "target")
        text = decision_toml(request_id, blob, request_target, decision)
        return self.commit_on_branch(person, {f"approvals/{request_id}/{as_person or person}.toml": text},
                                     sign=sign, message=f"{decision} {request_id}", env=env,
                                     move_branch=move_branch)

    @staticmethod
    def _field(toml_text: str, key: str) -> str:
        import tomllib

        return tomllib.loads(toml_text)[key]

    def request(self, person: str, action: str, target: str, *args: str) -> str:
        """`gitjit request` as `person`; returns the new request's id."""
        return self.gitjit(person, "request", action, "--target", target, *args).stdout.strip()

    def approve(self, person: str, request_id: str, *args: str) -> None:
        self.gitjit(person, "approve", request_id, *args)


def _run_in_process(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`gitjit.cli.app.main(argv)` with `env` as the environment and `cwd` as the current directory.

    git and gpg subprocesses inherit os.environ; pygit2 reads the global
    config from search paths fixed when it loaded, so they are pointed at the
    person's HOME too. Everything is restored afterwards.
    """
    from pygit2.enums import ConfigLevel

    from gitjit.cli.app import main

    levels = {ConfigLevel.GLOBAL: env["HOME"], ConfigLevel.XDG: f"{env['XDG_CONFIG_HOME']}/git",
              ConfigLevel.SYSTEM: f"{env['HOME']}/no-system-config"}
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_paths = {level: pygit2.settings.search_path[level] for level in levels}
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        for level, path in levels.items():
            pygit2.settings.search_path[level] = path
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    err.write(exc.code + "\n")
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for level, path in saved_paths.items():
            pygit2.settings.search_path[level] = path
    return subprocess.CompletedProcess(["gitjit", *argv], code, out.getvalue(), err.getvalue())


def template_world(base: Path, keys: Keys, layout: int = 1) -> World:
    """alice is admin; bob (CLI, --key-file), carol (CLI, --key) and, by hand, dave,
    shortlived, revoked and subby are people; erin is not in the policy. Records in `layout`.

    actions:
      deploy      approvers @sre (alice, bob) + carol, threshold 2, freshness 1h, tags v*
      selfok      approvers bob, carol; threshold 1; self_approval = true
      ops         approvers bob, carol, shortlived, revoked, subby; threshold 1; freshness 4d
      restricted  approvers bob; only carol may request
    """
    world = World.create(base, keys)
    people = keys.people
    # flat by default: most tests write its paths by hand (tests/trust/test_targeted.py writes both)
    world.gitjit("alice", "init", "--admin", "alice", "--layout", str(layout))
    world.gitjit("alice", "person", "add", "bob", "--key-file", str(people["bob"].asc_path), "--email", "bob@example.com")
    world.gitjit("alice", "person", "add", "carol", "--key", people["carol"].fpr, "--email", "carol@example.com")

    def change(text: str) -> str:
        assert 'max_ttl = "72h"' in text
        text = text.replace('max_ttl = "72h"', 'max_ttl = "5d"')
        for name in ("dave", "shortlived", "revoked", "subby"):
            text += person_toml(name, people[name].fpr, people[name].email)
        return text + POLICY_ACTIONS

    world.edit_policy("alice", change, keys={n: people[n].asc for n in ("dave", "shortlived", "revoked", "subby")},
                      message="add dave, shortlived, revoked, subby and the actions")
    world.trusted()  # builds the keyring cache once, for every copy
    return world


POLICY_ACTIONS = """
[groups]
sre = ["alice", "bob"]

[actions.deploy]
approvers = ["@sre", "carol"]
threshold = 2
freshness = "1h"
self_approval = false
requesters = ["*"]
tags = ["v*"]

[actions.selfok]
approvers = ["bob", "carol"]
self_approval = true

[actions.ops]
approvers = ["bob", "carol", "shortlived", "revoked", "subby"]
freshness = "4d"

[actions.restricted]
approvers = ["bob"]
requesters = ["carol"]
"""
