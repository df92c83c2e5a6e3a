"""`gitjit hook check`: will git really run gitjit's hooks in this repository?

git silently skips a hook it cannot execute, so a hook that is missing,
not executable, or whose interpreter the repository's owner cannot run
would let every push through, or refuse every one. This module checks, as
the user that owns the repository (the one git runs hooks as on a server):

- each hook of `HOOK_NAMES` (that this git runs) is there, gitjit's, and executable by the owner;
- the hook's interpreter runs and imports gitjit and python-gnupg as the
  owner, isolated exactly as the hook runs it; `gpg` and `git` are found;
- a chained `<name>.legacy` hook is executable (git's rule: a hook that is
  not executable is not run, and the chain would skip it just as silently);
- the cache, `$GIT_DIR/gitjit`, is writable by the owner (or can be made);
- the pinned root (`gitjit.root`) is shown.

Run as root, the checks run as the owner (a child process with the owner's
uid and groups); run as another user, they cannot, and that is a problem to
fix by running the check as the owner.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitjit.server import install as hook_install

CACHE = "gitjit"


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str
    fix: str = ""

    def lines(self) -> list[str]:
        out = [f"{'ok  ' if self.ok else 'FAIL'} {self.text}"]
        if not self.ok and self.fix:
            out.append(f"     fix: {self.fix}")
        return out


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    name: str
    home: str

    @classmethod
    def of(cls, path: Path) -> Owner:
        uid = path.stat().st_uid
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return cls(uid, path.stat().st_gid, str(uid), "/")
        return cls(uid, entry.pw_gid, entry.pw_name, entry.pw_dir)

    def can_act_as(self) -> bool:
        return os.geteuid() in (0, self.uid)

    def run(self, args: list[str], cwd: str = "/", input: str | None = None) -> subprocess.CompletedProcess:
        """Runs `args` as this user (directly when we are this user)."""
        extra: dict = {}
        if os.geteuid() != self.uid:
            extra = {"user": self.uid, "group": self.gid, "extra_groups": os.getgrouplist(self.name, self.gid),
                     "env": dict(os.environ, HOME=self.home, USER=self.name, LOGNAME=self.name)}
        return subprocess.run(args, cwd=cwd, input=input, capture_output=True, text=True, timeout=60, check=False, **extra)


_ASSIGNMENT = re.compile(r"^(INSTALL_PYTHON|GITJIT_PYTHONPATH)='((?:[^']|'\\'')*)'$", re.MULTILINE)

# Run by the hook's own interpreter, isolated as the hook runs it, as the owner.
_PROBE = r"""
import sys
sys.path[:0] = sys.argv[1].split(":")
import gitjit.server.pre_receive, gnupg
import json, os, shutil
gitdir, cache = sys.argv[2], sys.argv[3]
unwritable = []
if os.path.isdir(cache):
    for top, dirs, files in os.walk(cache):
        if not os.access(top, os.W_OK | os.X_OK):
            unwritable.append(top)
        unwritable += [os.path.join(top, f) for f in files if not os.access(os.path.join(top, f), os.W_OK)]
elif not os.access(gitdir, os.W_OK | os.X_OK):
    unwritable.append(gitdir)
print(json.dumps({"gitjit": os.path.dirname(gitjit.__file__), "gpg": shutil.which("gpg"),
                  "git": shutil.which("git"), "unwritable": unwritable[:5]}))
"""


def _script_settings(text: str) -> dict[str, str]:
    return {key: value.replace("'\\''", "'") for key, value in _ASSIGNMENT.findall(text)}


def _config(gitdir: Path, key: str) -> str:
    result = subprocess.run(["git", "-c", "safe.directory=*", "--git-dir", str(gitdir), "config", "--get", key], capture_output=True, text=True,
                            check=False)
    return result.stdout.strip()


def check(repo: str | os.PathLike = ".") -> tuple[list[Finding], list[str]]:
    """The findings for `repo` (exit 1 when any is not ok) and informational lines."""
    gitdir = hook_install.git_dir(repo)
    hooks = hook_install.hooks_dir(repo)
    owner = Owner.of(gitdir)
    info = [f"repository: {gitdir} (owner {owner.name})"]
    root = _config(gitdir, "gitjit.root")
    info.append(f"pinned root (gitjit.root): {root}" if root else
                "pinned root (gitjit.root): not pinned yet; the first accepted push of the approvals branch pins it")
    if not owner.can_act_as():
        return [Finding(False, f"cannot check as {owner.name}, who owns {gitdir} and runs its hooks",
                        f"run the check as that user: sudo -u {owner.name} gitjit hook check --repo {gitdir}")], info
    findings: list[Finding] = []
    settings: dict[str, str] = {}
    active = hook_install.active_hooks()
    info += [f"{name}: not used, git is older than {'.'.join(map(str, hook_install.MIN_GIT[name]))}"
             for name in hook_install.HOOK_NAMES if name not in active]
    for name in active:
        hook = hooks / name
        if not hook_install.is_gitjit_hook(hook, name):
            there = "is not gitjit's" if os.path.lexists(hook) else "is missing"
            findings.append(Finding(False, f"{name}: {hook} {there}", f"gitjit hook install --repo {gitdir}"))
            continue
        settings = settings or _script_settings(hook.read_text(errors="replace"))
        findings.append(_executable(owner, hook, f"{name}: installed at {hook}",
                                    f"chmod 755 {hook} (git skips a hook it cannot execute: the push would pass unchecked)"))
        legacy = hooks / (name + hook_install.LEGACY_SUFFIX)
        if os.path.lexists(legacy):
            if hook_install.is_gitjit_hook(legacy, name):
                findings.append(Finding(False, f"{name}: the chained {legacy.name} is gitjit's own hook",
                                        f"rm {legacy}"))
            else:
                findings.append(_executable(owner, legacy, f"{name}: chains {legacy.name}",
                                            f"chmod 755 {legacy}, or remove it if it should not run"))
    if settings:
        findings += _probe(owner, settings, gitdir)
    return findings, info


def _executable(owner: Owner, path: Path, text: str, fix: str) -> Finding:
    result = owner.run(["/bin/sh", "-c", 'test -f "$1" && test -r "$1" && test -x "$1"', "sh", str(path)])
    if result.returncode == 0:
        return Finding(True, f"{text}, executable by {owner.name}")
    return Finding(False, f"{text}, but {owner.name} cannot execute it", fix)


def _probe(owner: Owner, settings: dict[str, str], gitdir: Path) -> list[Finding]:
    python = settings.get("INSTALL_PYTHON", "")
    path = settings.get("GITJIT_PYTHONPATH", "")
    cache = gitdir / CACHE
    reinstall = (f"install gitjit where {owner.name} can read and run it (python3 -m venv /opt/gitjit; "
                 f"/opt/gitjit/bin/pip install gitjit), then /opt/gitjit/bin/gitjit hook install --repo {gitdir}")
    if python.startswith("@") or path.startswith("@") or not path:
        return [Finding(False, "the hook was placed by hand without its interpreter", reinstall)]
    try:
        result = owner.run([python, "-I", "-S", "-c", _PROBE, path, str(gitdir), str(cache)], cwd=str(gitdir))
    except OSError as exc:
        return [Finding(False, f"{owner.name} cannot run the hook's interpreter {python}: {exc.strerror}", reinstall)]
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return [Finding(False, f"{owner.name} cannot run gitjit with {python}: {last}", reinstall)]
    found = json.loads(result.stdout)
    findings = [Finding(True, f"{python} runs gitjit from {found['gitjit']} as {owner.name}")]
    for tool, package in (("gpg", "gnupg"), ("git", "git")):
        findings.append(Finding(True, f"{tool}: {found[tool]}") if found[tool] else
                        Finding(False, f"{tool} is not on PATH ({os.environ.get('PATH', '')})",
                                f"install {package}, on the PATH of the server that runs the hooks"))
    if found["unwritable"]:
        findings.append(Finding(False, f"{owner.name} cannot write the cache: {', '.join(found['unwritable'])}",
                                f"rm -rf {cache} (deleting the cache is always safe), "
                                f"or chown -R {owner.name}: {cache}"))
    else:
        findings.append(Finding(True, f"cache {cache} writable by {owner.name}"))
    return findings
