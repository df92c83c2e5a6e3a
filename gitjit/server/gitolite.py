"""`gitjit hook install|check|uninstall --gitolite`: gitjit's hooks in every gitolite repository.

Run as the gitolite user. gitolite links every file of
`$LOCAL_CODE/hooks/common/` into each repository's `hooks/` (on `gitolite
setup` and when it creates a repository), replacing what is there. So:

- `LOCAL_CODE` must be enabled in `~/.gitolite.rc`; gitjit's hooks are
  written there, executable, and a foreign common hook of the same name is
  kept as `<name>.legacy` beside it (linked and chained in every repository);
- a repository's own hook of that name (not one of gitolite's links) would
  be replaced: it is renamed `<name>.legacy` in that repository first, and
  chained. Where that cannot be done without losing a hook, nothing is done;
- `gitolite setup --hooks-only` links them; gitolite-admin then gets its own
  hooks back: gitjit never judges pushes of gitolite's configuration;
- every repository is checked afterwards: one where gitjit's hook is not
  what git will run (gitolite's repo-specific hooks replace it) is reported.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gitjit.errors import BadInput
from gitjit.server import install as hook_install
from gitjit.server.check import Finding

ADMIN_REPO = "gitolite-admin"


def _gitolite(*args: str, unset_ok: bool = False) -> str:
    """gitolite's output; with unset_ok, "" for a query-rc of an unset value (exit 1, no output)."""
    try:
        result = subprocess.run(["gitolite", *args], capture_output=True, text=True, check=False)
    except OSError:
        raise BadInput("gitolite is not installed (no `gitolite` on PATH)") from None
    if unset_ok and result.returncode == 1 and not result.stdout.strip() and not result.stderr.strip():
        return ""
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [""])[-1]
        raise BadInput(f"gitolite {' '.join(args)} failed: {detail} (run this as the gitolite user)")
    return result.stdout.strip()


class Gitolite:
    def __init__(self) -> None:
        self.base = Path(_gitolite("query-rc", "GL_REPO_BASE"))
        self.admin_base = Path(_gitolite("query-rc", "GL_ADMIN_BASE"))
        local = _gitolite("query-rc", "LOCAL_CODE", unset_ok=True)
        if not local:
            raise BadInput('LOCAL_CODE is not set in ~/.gitolite.rc: uncomment the line '
                           'LOCAL_CODE => "$ENV{HOME}/local", then run this again')
        self.common = Path(local) / "hooks" / "common"

    def repos(self) -> list[str]:
        return _gitolite("list-phy-repos").split()

    def hooks(self, repo: str) -> Path:
        return self.base / f"{repo}.git" / "hooks"

    def managed(self, path: Path) -> bool:
        """A link gitolite made (and will make again): into LOCAL_CODE's or gitolite's own hooks."""
        if not path.is_symlink():
            return False
        target = Path(os.readlink(path)).parent
        return target in (self.common, self.admin_base / "hooks" / "common",
                          self.admin_base / "hooks" / "gitolite-admin")


def install(force: bool = False, python: str | None = None) -> tuple[list[str], list[Finding]]:
    gl = Gitolite()
    scripts = hook_install.render_all(python)
    hook_install.refuse_conflicts(gl.common, force)
    moves = _own_hooks_to_chain(gl, force)
    done = []
    for repo, hook, legacy in moves:
        os.replace(hook, legacy)
        done.append(f"{repo}: its own {hook.name} was kept as {legacy.name}; it runs after gitjit's checks pass")
    done += [placed.message() for placed in (hook_install.place(gl.common, n, s) for n, s in scripts.items())]
    _gitolite("setup", "--hooks-only")
    if (gl.hooks(ADMIN_REPO)).is_dir():
        hook_install.uninstall_from(gl.hooks(ADMIN_REPO))
        done.append(f"{ADMIN_REPO}: left to gitolite's own hooks")
    return done, _linked(gl)


def _own_hooks_to_chain(gl: Gitolite, force: bool) -> list[tuple[str, Path, Path]]:
    """Each repository's own hook that gitolite's links would replace, and where it goes; refuses on a clash."""
    moves = []
    names = hook_install.active_hooks()
    for repo in gl.repos():
        for name in names:
            hooks = gl.hooks(repo)
            hook, legacy = hooks / name, hooks / (name + hook_install.LEGACY_SUFFIX)
            common_foreign = (os.path.lexists(gl.common / (name + hook_install.LEGACY_SUFFIX))
                              or (os.path.lexists(gl.common / name)
                                  and not hook_install.is_gitjit_hook(gl.common / name, name)))
            own_hook = (os.path.lexists(hook) and not gl.managed(hook)
                        and not hook_install.is_gitjit_hook(hook, name))
            own_legacy = os.path.lexists(legacy) and not gl.managed(legacy)
            if (own_hook or own_legacy) and common_foreign:
                raise BadInput(f"{hook.parent} has its own {name} and {gl.common} has another: "
                               f"gitjit chains one previous hook only; merge them by hand")
            if own_hook and own_legacy and not force:
                raise BadInput(f"{hook} is not gitjit's and {legacy.name} exists too: merge them by hand "
                               f"or use --force to replace {legacy.name} with the current {name}")
            if own_hook:
                moves.append((repo, hook, legacy))
    return moves


def _linked(gl: Gitolite) -> list[Finding]:
    """Is gitjit's hook what git runs in every repository (and not in gitolite-admin)?"""
    findings = []
    names = hook_install.active_hooks()
    for repo in gl.repos():
        for name in names:
            hook = gl.hooks(repo) / name
            ours = hook_install.is_gitjit_hook(hook, name)
            if repo == ADMIN_REPO and ours:
                findings.append(Finding(False, f"{repo}: runs gitjit's {name} (a later `gitolite setup` linked it)",
                                        "gitjit hook install --gitolite"))
            elif repo != ADMIN_REPO and not ours:
                findings.append(Finding(False, f"{repo}: {hook} is not gitjit's {name} hook (gitolite's "
                                               f"repo-specific hooks replace it)",
                                        f"remove the repository's `option hook.{name}` from gitolite.conf "
                                        f"and add what it ran to {gl.common / (name + '.legacy')}"))
    return findings


def check() -> tuple[list[Finding], list[str]]:
    from gitjit.server import check as hook_check

    gl = Gitolite()
    findings, info = _linked(gl), [f"gitolite: hooks from {gl.common}"]
    for repo in gl.repos():
        if repo == ADMIN_REPO:
            continue
        found, about = hook_check.check(gl.base / f"{repo}.git")
        info += [f"{repo}: {line}" for line in about if line.startswith("pinned")]
        findings += [Finding(f.ok, f"{repo}: {f.text}", f.fix) for f in found]
    return findings, info


def uninstall() -> list[str]:
    gl = Gitolite()
    done = hook_install.uninstall_from(gl.common)
    for repo in gl.repos():
        hooks = gl.hooks(repo)
        for name in hook_install.HOOK_NAMES:
            hook, legacy = hooks / name, hooks / (name + hook_install.LEGACY_SUFFIX)
            if hook.is_symlink() and not hook.exists():
                hook.unlink()  # a link to gitjit's common hook, now gone
            if legacy.is_symlink() and not legacy.exists():
                legacy.unlink()
            if os.path.lexists(legacy) and not os.path.lexists(hook):
                os.replace(legacy, hook)
                done.append(f"{repo}: restored its own {name}")
    _gitolite("setup", "--hooks-only")
    return done
