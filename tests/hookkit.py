"""Helpers for the server-hook tests: a server with the hook, and hand-made branch commits.

`BranchWriter` writes on a clone's approvals branch the way a person with
only git and gpg would (docs/format.md, section 3.5: write the file, `git commit -S`), and also
the way a forger would (unsigned, someone else's key, a modified request).
"""

from __future__ import annotations

import itertools
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import Clone, Keys, git, make_bare, make_clone

ACTION = "deploy-prod"
_ids = itertools.count()


def policy_toml(keys: Keys, people=("alice", "bob", "carol", "dave"), approvers=("alice", "bob", "carol"),
                admins=("alice",), threshold: int = 2, freshness: str = "1h", tags=("v*",)) -> str:
    lines = ["gitjit = 1", "", "[defaults]", 'freshness = "24h"', 'max_ttl = "72h"', 'clock_skew = "5m"', ""]
    for name in people:
        p = keys[name]
        lines += [f"[people.{name}]", f'keys = ["{p.fpr}"]', f'emails = ["{p.email}"]', ""]
    lines += ["[admins]", f"people = {list(admins)!r}".replace("'", '"'), ""]
    lines += [f"[actions.{ACTION}]", f"approvers = {list(approvers)!r}".replace("'", '"'),
              f"threshold = {threshold}", f'freshness = "{freshness}"', "self_approval = false",
              f"tags = {list(tags)!r}".replace("'", '"'), ""]
    return "\n".join(lines)


def toml_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BranchWriter:
    """Commits by hand on the approvals branch of `clone`, in a worktree beside it."""

    def __init__(self, clone: Clone, branch: str = "approvals"):
        self.clone = clone
        self.branch = branch
        self.wt = clone.path.parent / f"{clone.path.name}-{branch}-wt"
        if not self.wt.exists():
            clone.git("worktree", "add", "-q", str(self.wt), branch)

    def git(self, *args: str, check: bool = True):
        return git(*args, cwd=self.wt, env=self.clone.env, check=check)

    def tip(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def blob(self, path: str, rev: str = "HEAD") -> str:
        return self.git("rev-parse", f"{rev}:{path}").stdout.strip()

    def commit(self, files: dict[str, str | None], message: str = "by hand", sign: bool | str = True,
               parents_from: str | None = None) -> str:
        """Writes (or, with None, deletes) files and commits; sign=True: the clone's key,
        a fingerprint: that key, False: unsigned."""
        self.git("reset", "-q", "--hard")  # the branch may have moved under the worktree
        for path, content in files.items():
            target = self.wt / path
            if content is None:
                self.git("rm", "-q", path)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", path)
        args = ["commit", "-q", "--allow-empty", "-m", message]
        if sign is True:
            args.insert(1, "-S")
        elif sign:
            args.insert(1, f"-S{sign}")
        self.git(*args)
        return self.tip()

    def request(self, target: str, action: str = ACTION, ttl: timedelta = timedelta(hours=24),
                created: datetime | None = None, sign: bool | str = True) -> str:
        """Adds requests/<id>.toml; returns the id."""
        created = created or datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
        request_id = f"{action}-t{next(_ids)}-{secrets.token_hex(3)}"
        text = (f'gitjit = 1\nid = "{request_id}"\naction = "{action}"\ntarget = "{target}"\n'
                f'requested_by = "{self.clone.person.uid}"\nreason = "test"\n'
                f"created = {toml_time(created)}\nexpires = {toml_time(created + ttl)}\n")
        self.commit({f"requests/{request_id}.toml": text}, f"gitjit: request {request_id}", sign=sign)
        return request_id

    def decision_text(self, request_id: str, decision: str = "approve", blob: str | None = None,
                      target: str | None = None) -> str:
        blob = blob or self.blob(f"requests/{request_id}.toml")
        if target is None:
            text = self.git("show", f"HEAD:requests/{request_id}.toml").stdout
            target = next(l.split('"')[1] for l in text.splitlines() if l.startswith("target ="))
        return (f'gitjit = 1\nrequest = "{request_id}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
                f'decision = "{decision}"\ncomment = "by hand"\n')

    def decide(self, request_id: str, person: str, sign: bool | str, decision: str = "approve") -> str:
        """Adds approvals/<id>/<person>.toml, signed as `sign` says (a fingerprint, True, False)."""
        text = self.decision_text(request_id, decision)
        return self.commit({f"approvals/{request_id}/{person}.toml": text}, f"gitjit: {decision} {request_id}",
                           sign=sign)

    def approve_by(self, keys: Keys, request_id: str, *people: str) -> None:
        for person in people:
            self.decide(request_id, person, sign=keys[person].fpr)


def refs(bare: Path, env: dict) -> dict[str, str]:
    """Every ref of the server and what it points at."""
    out = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=bare, env=env).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def objects(bare: Path, env: dict) -> str:
    """The server's object store, summed up (count and size of loose and packed objects)."""
    return git("count-objects", "-v", cwd=bare, env=env).stdout


def make_golden(base: Path, keys: Keys) -> Path:
    """A bare server with gitjit's hooks and alice's clone holding the approvals branch, both
    pushed: `gitjit init` plus one admin-signed policy commit naming alice (admin), bob, carol
    (approvers with alice) and dave (no role). Tests copy it (see hookkit.copy_world)."""
    server = make_bare(base / "server.git", keys.env)
    alice = make_clone(base, keys["alice"], keys)
    alice.gitjit("hook", "install", "--repo", str(server), check=True)
    alice.gitjit("init", "--admin", "alice", check=True)
    writer = BranchWriter(alice)
    files = {f"keys/{p}.asc": keys[p].asc for p in ("bob", "carol", "dave")}
    files["policy.toml"] = policy_toml(keys)
    writer.commit(files, "gitjit: policy with deploy-prod")
    alice.git("worktree", "remove", "--force", str(writer.wt))
    alice.git("push", "-q", str(server), "main", "approvals")
    (base / "alice-path").write_text(alice.path.name)
    return base


# --------------------------------------------------------------------------
# a copy of the golden server, and what a push's result says

APPROVALS = "refs/heads/approvals"


@dataclass
class World:
    keys: Keys
    tmp: Path
    server: Path
    url: str
    alice: Clone
    writer: BranchWriter

    def push(self, clone: Clone, *refspecs: str, force: bool = False) -> subprocess.CompletedProcess:
        args = ["push", "--porcelain", *(["--force"] if force else []), self.url, *refspecs]
        return clone.git(*args, check=False)

    def refs(self) -> dict[str, str]:
        return refs(self.server, self.keys.env)

    def clone(self, person: str) -> Clone:
        return make_clone(self.tmp, self.keys[person], self.keys, origin=self.url)

    def config(self, key: str) -> str:
        return git("config", "--get", key, cwd=self.server, env=self.keys.env, check=False).stdout.strip()


def copy_world(golden: Path, tmp_path: Path, keys: Keys, url: str | None = None) -> World:
    """A fresh copy of the golden server and of alice's clone, the server reached at `url` (default file://)."""
    server = tmp_path / "server.git"
    shutil.copytree(golden / "server.git", server, symlinks=True)
    alice_path = tmp_path / "alice-main"
    shutil.copytree(golden / (golden / "alice-path").read_text(), alice_path, symlinks=True)
    alice = Clone(alice_path, keys["alice"], keys)
    return World(keys, tmp_path, server, url or server.as_uri(), alice, BranchWriter(alice))


def accepted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"push refused:\n{result.stdout}\n{result.stderr}"
    assert "refused" not in result.stderr


def refused(result: subprocess.CompletedProcess, ref: str, *fragments: str) -> str:
    """Asserts the push failed and the hook named `ref` with every fragment; returns that line."""
    assert result.returncode != 0, f"push accepted:\n{result.stdout}\n{result.stderr}"
    prefix = f"gitjit: {ref} refused: "
    lines = [l.split("remote: ", 1)[-1].strip() for l in result.stderr.splitlines()]
    mine = [l for l in lines if l.startswith(prefix)]
    assert len(mine) == 1, f"no single refusal line for {ref}:\n{result.stderr}"
    for fragment in fragments:
        assert fragment in mine[0], f"{fragment!r} not in {mine[0]!r}"
    assert "pre-receive hook declined" in result.stdout + result.stderr
    return mine[0]


def approved_request(world: World, target: str, people: tuple[str, ...] = ("bob", "carol")) -> str:
    request_id = world.writer.request(target)
    world.writer.approve_by(world.keys, request_id, *people)
    return request_id
