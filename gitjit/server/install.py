"""`gitjit hook install` / `uninstall`: puts gitjit's server hooks into a repository (docs/format.md, section 7).

Modelled on pre-commit's install_uninstall:

- gitjit installs every hook of `HOOK_NAMES`, each from its own template
  `server/templates/<name>.sh` (pre-receive's is also shipped as
  `hooks/pre-receive`), marked as gitjit's by the line `gitjit-hook: <name>`;
- the hooks directory comes from git itself (`git rev-parse --git-path
  hooks`), so `core.hooksPath` is honoured, for bare and non-bare repos;
- a hook is a small POSIX sh script that runs the absolute path of the
  interpreter that ran the install, isolated (`-I -S`) with the import path
  written down here;
- a hook of the same name that is not gitjit's is kept: renamed to
  `<name>.legacy` and chained (it runs after gitjit's checks pass, on the
  same input). If a `<name>.legacy` is already there too, install refuses
  unless `--force`, which moves the current hook over it. Uninstall puts
  the `.legacy` hook back;
- installing again is a no-op when the script would not change, and
  rewrites gitjit's own script when it would (a new interpreter path).

Every check is made before anything is written: a refused install leaves
the hooks directory as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gitjit.errors import BadInput

# The hooks `gitjit hook install` puts in place, in the order they are installed.
HOOK_NAMES: tuple[str, ...] = ("pre-receive", "reference-transaction", "post-receive")
# The first git that runs a hook, where it is not git 1.0: older gits get the others only.
MIN_GIT: dict[str, tuple[int, int]] = {"reference-transaction": (2, 28)}
LEGACY_SUFFIX = ".legacy"
TEMPLATES = "server/templates"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # gitjit/, whose parent goes on the hook's sys.path


def marker(name: str) -> str:
    return f"gitjit-hook: {name}"


@dataclass(frozen=True)
class Installed:
    name: str
    path: Path
    status: str  # "installed", "updated" or "unchanged"
    legacy: Path | None  # the chained previous hook, if any
    moved: bool  # True when this install renamed a previous hook to legacy

    def message(self) -> str:
        text = {"installed": "installed", "updated": "updated", "unchanged": "already installed (unchanged)"}
        out = f"gitjit {self.name} hook {text[self.status]}: {self.path}"
        if self.legacy is not None and self.moved:
            out += f"\nthe previous hook was kept as {self.legacy.name}; it runs after gitjit's checks pass"
        elif self.legacy is not None:
            out += f"\nchaining {self.legacy.name}: it runs after gitjit's checks pass"
        return out


def _rev_parse(repo: str | os.PathLike, *args: str) -> Path:
    try:
        result = subprocess.run(
            # safe.directory: root may install into (and check) a repository owned by the git user;
            # rev-parse only reads where the hooks are.
            ["git", "-c", "safe.directory=*", "-C", os.fspath(repo), "rev-parse", "--path-format=absolute", *args],
            capture_output=True, text=True, check=False,
        )
    except OSError as exc:
        raise BadInput(f"cannot run git: {exc}") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise BadInput(f"not a git repository: {repo}")
    return Path(result.stdout.strip())


def hooks_dir(repo: str | os.PathLike) -> Path:
    """The repository's hooks directory, as git itself would run hooks from it."""
    return _rev_parse(repo, "--git-path", "hooks")


def git_dir(repo: str | os.PathLike) -> Path:
    return _rev_parse(repo, "--git-dir")


def is_gitjit_hook(path: Path, name: str) -> bool:
    try:
        return path.is_file() and marker(name) in path.read_text(errors="replace")
    except OSError:
        return False


def git_version() -> tuple[int, int]:
    import re

    try:
        found = subprocess.run(["git", "version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return (0, 0)
    match = re.search(r"(\d+)\.(\d+)", found)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def active_hooks() -> tuple[str, ...]:
    """The hooks of HOOK_NAMES that this machine's git runs."""
    version = git_version()
    return tuple(name for name in HOOK_NAMES if version >= MIN_GIT.get(name, (0, 0)))


def template(name: str = "pre-receive") -> str:
    return resources.files("gitjit").joinpath(f"{TEMPLATES}/{name}.sh").read_text()


def _sh_quote(value: str) -> str:
    """A value for the inside of single quotes in sh."""
    return value.replace("'", "'\\''")


def _import_path(python: str) -> str:
    """Where `python` finds this gitjit and python-gnupg, as a `:`-separated path.

    The hook runs Python with -I -S: no inherited PYTHONPATH, and no site
    machinery (nor an editable install's import hook), which saves about
    20 ms on every push. The price is an explicit path, taken here from the
    very interpreter the hook will run; the hook's imports are the standard
    library, gitjit and python-gnupg (a test runs every hook through this
    script, so a missing path fails the suite).
    """
    here = _PACKAGE_DIR
    probe = ("import gitjit, gnupg, os; "
             "print(os.path.dirname(os.path.dirname(os.path.realpath(gitjit.__file__)))); "
             "print(os.path.dirname(os.path.realpath(gnupg.__file__)))")
    env = dict(os.environ, PYTHONPATH=str(here.parent))
    try:
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd="/", env=env,
                               check=False)
    except OSError as exc:
        raise BadInput(f"cannot run {python}: {exc}") from None
    if found.returncode != 0:
        raise BadInput(f"{python} cannot import gitjit and python-gnupg: install gitjit with that interpreter")
    first, second = found.stdout.split("\n")[:2]
    if Path(first) != here.parent:
        first = str(here.parent)  # this very gitjit, whatever the interpreter would pick first
    if ":" in first + second:
        raise BadInput(f"gitjit's path may not contain ':' ({first}, {second}): install it elsewhere")
    return first if first == second else f"{first}:{second}"


def _precompile(python: str) -> None:
    """Byte-compiles gitjit once, so no push pays for compiling it.

    Python writes its own cache when it can, but not where PYTHONDONTWRITEBYTECODE
    is set or the package is not writable by the user git runs hooks as.
    """
    here = _PACKAGE_DIR
    subprocess.run([python, "-m", "compileall", "-q", str(here)], capture_output=True, check=False)


def _python(python: str | None) -> str:
    python = python or sys.executable
    if not python or not os.path.isabs(python):
        raise BadInput(f"cannot tell the absolute path of this Python interpreter ({python!r})")
    return python


def render(name: str = "pre-receive", python: str | None = None, import_path: str | None = None) -> str:
    python = _python(python)
    path = import_path if import_path is not None else _import_path(python)
    return (template(name).replace("@INSTALL_PYTHON@", _sh_quote(python))
            .replace("@GITJIT_PYTHONPATH@", _sh_quote(path)))


def render_all(python: str | None = None) -> dict[str, str]:
    """Every hook's script, for one interpreter (its import path is probed once)."""
    python = _python(python)
    path = _import_path(python)
    return {name: render(name, python, path) for name in active_hooks()}


def refuse_conflicts(hooks: Path, force: bool) -> None:
    """Install keeps one previous hook per name: refuses where a foreign hook and a legacy one both exist."""
    if force:
        return
    for name in active_hooks():
        hook, legacy = hooks / name, hooks / (name + LEGACY_SUFFIX)
        if os.path.lexists(hook) and not is_gitjit_hook(hook, name) and os.path.lexists(legacy):
            raise BadInput(
                f"{hook} is not gitjit's and {legacy.name} exists too: gitjit keeps one previous hook only; "
                f"merge them by hand or use --force to replace {legacy.name} with the current {name}"
            )


def place(hooks: Path, name: str, script: str) -> Installed:
    """Writes one hook into `hooks`, keeping a foreign one as `<name>.legacy` (conflicts checked before)."""
    hook = hooks / name
    legacy = hooks / (name + LEGACY_SUFFIX)
    ours = is_gitjit_hook(hook, name)
    moved = False
    hooks.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(hook) and not ours:
        os.replace(hook, legacy)
        moved = True
    if ours and hook.read_text() == script:
        status = "unchanged"
        make_executable(hook)
    else:
        status = "updated" if ours else "installed"
        write_executable(hook, script)
    return Installed(name, hook, status, legacy if os.path.lexists(legacy) else None, moved)


def install(repo: str | os.PathLike = ".", force: bool = False, python: str | None = None) -> list[Installed]:
    hooks = hooks_dir(repo)
    scripts = render_all(python)
    refuse_conflicts(hooks, force)
    _precompile(_python(python))
    return [place(hooks, name, script) for name, script in scripts.items()]


def write_output(target: str | os.PathLike, name: str = "pre-receive", force: bool = False,
                 python: str | None = None) -> Path:
    """`--output FILE`: the hook as an executable file of its own (a pre-receive.d/ entry)."""
    path = Path(target)
    if path.is_dir():
        raise BadInput(f"{path} is a directory: name the file, e.g. {path / 'gitjit'}")
    if not path.parent.is_dir():
        raise BadInput(f"no such directory: {path.parent}")
    # An empty file is what a shell redirection of a refused `--print > FILE` leaves.
    if os.path.lexists(path) and not is_gitjit_hook(path, name) and _size(path) and not force:
        raise BadInput(f"{path} exists and is not gitjit's: remove it or use --force to overwrite it")
    script = render(name, python)
    _precompile(_python(python))
    write_executable(path, script)
    return path


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 1


def uninstall(repo: str | os.PathLike = ".") -> list[str]:
    """Removes gitjit's hooks and puts each chained `.legacy` hook back; returns what it did."""
    return uninstall_from(hooks_dir(repo))


def uninstall_from(hooks: Path) -> list[str]:
    done = []
    for name in HOOK_NAMES:
        hook, legacy = hooks / name, hooks / (name + LEGACY_SUFFIX)
        if os.path.lexists(hook) and not is_gitjit_hook(hook, name):
            done.append(f"{hook} is not gitjit's: left as it is")
            continue
        if os.path.lexists(hook):
            os.unlink(hook)
            done.append(f"removed gitjit's {name} hook: {hook}")
        else:
            done.append(f"no gitjit {name} hook in {hooks}")
        if os.path.lexists(legacy):
            os.replace(legacy, hook)
            done.append(f"restored the previous hook: {legacy.name} -> {name}")
    return done


def write_executable(path: Path, text: str) -> None:
    """Writes `text` to `path` atomically (a push never runs half a script), mode 0755."""
    scratch = path.with_name(f".{path.name}.gitjit-{os.getpid()}")
    try:
        scratch.write_text(text)
        os.chmod(scratch, 0o755)
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def make_executable(path: Path) -> None:
    mode = path.stat().st_mode
    wanted = mode | 0o755
    if mode != wanted:
        os.chmod(path, wanted)
