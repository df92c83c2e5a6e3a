"""`gitjit hook install`: puts the pre-receive hook into a repository (docs/format.md, section 7).

Modelled on pre-commit's install_uninstall:

- the hooks directory comes from git itself (`git rev-parse --git-path
  hooks`), so `core.hooksPath` is honoured, for bare and non-bare repos;
- the hook is a small POSIX sh script (`hook_template.sh`, also shipped as
  `hooks/pre-receive`) that execs the absolute path of the interpreter that
  ran the install and runs `gitjit.hook.main()` in it;
- a pre-receive hook that is not gitjit's is kept: renamed to
  `pre-receive.legacy` and chained (it runs after gitjit's checks pass, on
  the same input). If a `pre-receive.legacy` is already there too, install
  refuses unless `--force`, which moves the current hook over it;
- installing again is a no-op when the script would not change, and
  rewrites gitjit's own script when it would (a new interpreter path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import BadInput

HOOK_NAME = "pre-receive"
LEGACY_SUFFIX = ".legacy"
MARKER = "gitjit-hook: pre-receive"
TEMPLATE = "hook_template.sh"


@dataclass(frozen=True)
class Installed:
    path: Path
    status: str  # "installed", "updated" or "unchanged"
    legacy: Path | None  # the chained previous hook, if any
    moved: bool  # True when this install renamed a previous hook to legacy

    def message(self) -> str:
        text = {"installed": "installed", "updated": "updated", "unchanged": "already installed (unchanged)"}
        out = f"gitjit pre-receive hook {text[self.status]}: {self.path}"
        if self.moved:
            out += f"\nthe previous hook was kept as {self.legacy.name}; it runs after gitjit's checks pass"
        elif self.legacy is not None:
            out += f"\nchaining {self.legacy.name}: it runs after gitjit's checks pass"
        return out


def hooks_dir(repo: str | os.PathLike) -> Path:
    """The repository's hooks directory, as git itself would run hooks from it."""
    try:
        result = subprocess.run(
            ["git", "-C", os.fspath(repo), "rev-parse", "--path-format=absolute", "--git-path", "hooks"],
            capture_output=True, text=True,
        )
    except OSError as exc:
        raise BadInput(f"cannot run git: {exc}") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise BadInput(f"not a git repository: {repo}")
    return Path(result.stdout.strip())


def is_gitjit_hook(path: Path) -> bool:
    try:
        return path.is_file() and MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def template() -> str:
    return resources.files("gitjit").joinpath(TEMPLATE).read_text()


def _sh_quote(value: str) -> str:
    """A value for the inside of single quotes in sh."""
    return value.replace("'", "'\\''")


def _import_path(python: str) -> str:
    """Where `python` finds this gitjit and python-gnupg, as a PYTHONPATH.

    The hook runs Python with -S: skipping the site machinery (and an
    editable install's import hook) saves about 20 ms on every push, a
    large part of a tag push. The price is an explicit path, taken here from
    the very interpreter the hook will run; the hook's imports are the
    standard library, gitjit and python-gnupg (a test runs every hook through
    this script, so a missing path fails the suite).
    """
    here = Path(__file__).resolve().parent
    probe = ("import gitjit, gnupg, os; "
             "print(os.path.dirname(os.path.dirname(os.path.realpath(gitjit.__file__)))); "
             "print(os.path.dirname(os.path.realpath(gnupg.__file__)))")
    env = dict(os.environ, PYTHONPATH=str(here.parent))
    try:
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd="/", env=env)
    except OSError as exc:
        raise BadInput(f"cannot run {python}: {exc}") from None
    if found.returncode != 0:
        raise BadInput(f"{python} cannot import gitjit and python-gnupg: install gitjit with that interpreter")
    first, second = found.stdout.split("\n")[:2]
    if Path(first) != here.parent:
        first = str(here.parent)  # this very gitjit, whatever the interpreter would pick first
    return first if first == second else f"{first}:{second}"


def _precompile(python: str) -> None:
    """Byte-compiles gitjit once, so no push pays for compiling it.

    Python writes its own cache when it can, but not where PYTHONDONTWRITEBYTECODE
    is set or the package is not writable by the user git runs hooks as.
    """
    here = Path(__file__).resolve().parent
    subprocess.run([python, "-m", "compileall", "-q", str(here)], capture_output=True)


def render(python: str | None = None) -> str:
    python = python or sys.executable
    if not python or not os.path.isabs(python):
        raise BadInput(f"cannot tell the absolute path of this Python interpreter ({python!r})")
    text = template()
    return (text.replace("@INSTALL_PYTHON@", _sh_quote(python))
                .replace("@GITJIT_PYTHONPATH@", _sh_quote(_import_path(python))))


def install(repo: str | os.PathLike = ".", force: bool = False, python: str | None = None) -> Installed:
    hooks = hooks_dir(repo)
    hook = hooks / HOOK_NAME
    legacy = hooks / (HOOK_NAME + LEGACY_SUFFIX)
    script = render(python)
    _precompile(python or sys.executable)
    ours = is_gitjit_hook(hook)
    moved = False

    if os.path.lexists(hook) and not ours:
        if os.path.lexists(legacy) and not force:
            raise BadInput(
                f"{hook} is not gitjit's and {legacy.name} exists too: gitjit keeps one previous hook only; "
                f"merge them by hand or use --force to replace {legacy.name} with the current {HOOK_NAME}"
            )
        hooks.mkdir(parents=True, exist_ok=True)
        os.replace(hook, legacy)
        moved = True

    if ours and hook.read_text() == script:
        status = "unchanged"
        _make_executable(hook)
    else:
        status = "updated" if ours else "installed"
        hooks.mkdir(parents=True, exist_ok=True)
        scratch = hook.with_name(f".{HOOK_NAME}.gitjit-{os.getpid()}")
        scratch.write_text(script)
        _make_executable(scratch)
        os.replace(scratch, hook)  # atomic: a push never runs half a script
    install_guard(hooks, force)
    return Installed(hook, status, legacy if os.path.lexists(legacy) else None, moved)


GUARD_NAME = "reference-transaction"
GUARD_MARKER = "gitjit-hook: reference-transaction"
GUARD_MIN_GIT = (2, 28)  # the first git that runs reference-transaction hooks


def install_guard(hooks: Path, force: bool = False) -> bool:
    """Installs the reference-transaction guard beside pre-receive (see hook_tickets.py).

    Returns False, installing nothing, where git is too old to run it: the
    pre-receive hook then judges protected tags only on approvals the server
    already has. A foreign hook of that name is kept as `.legacy` and chained.
    """
    if _git_version() < GUARD_MIN_GIT:
        return False
    hook, legacy = hooks / GUARD_NAME, hooks / (GUARD_NAME + LEGACY_SUFFIX)
    script = resources.files("gitjit").joinpath("hook_templates", f"{GUARD_NAME}.sh").read_text()
    ours = hook.is_file() and GUARD_MARKER in hook.read_text(errors="replace")
    if os.path.lexists(hook) and not ours:
        if os.path.lexists(legacy) and not force:
            raise BadInput(f"{hook} is not gitjit's and {legacy.name} exists too: merge them by hand "
                           f"or use --force to replace {legacy.name}")
        os.replace(hook, legacy)
    if not (ours and hook.read_text() == script):
        scratch = hook.with_name(f".{GUARD_NAME}.gitjit-{os.getpid()}")
        scratch.write_text(script)
        _make_executable(scratch)
        os.replace(scratch, hook)
    _make_executable(hook)
    return True


def _git_version() -> tuple[int, ...]:
    import re

    try:
        found = subprocess.run(["git", "version"], capture_output=True, text=True).stdout
    except OSError:
        return (0,)
    match = re.search(r"(\d+)\.(\d+)", found)
    return (int(match.group(1)), int(match.group(2))) if match else (0,)


def _make_executable(path: Path) -> None:
    mode = path.stat().st_mode
    wanted = mode | 0o755
    if mode != wanted:
        os.chmod(path, wanted)
