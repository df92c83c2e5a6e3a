"""The post-receive script: rendered like the pre-receive one, and installed beside it.

`render()` fills the template's @INSTALL_PYTHON@ and @GITJIT_PYTHONPATH@
exactly as `hook_install.render()` does for pre-receive (the interpreter that
runs the install, and where it finds gitjit and python-gnupg). `install()`
puts it into a hooks directory the way `hook_install` puts its own hooks:
atomically, idempotently, keeping a foreign post-receive as
`post-receive.legacy` (chained: it runs after gitjit's, on the same input).
`gitjit hook install` is meant to call `install(hooks_dir(repo), force)`.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from ..errors import BadInput

HOOK_NAME = "post-receive"
LEGACY_SUFFIX = ".legacy"
MARKER = "gitjit-hook: post-receive"


def template() -> str:
    return resources.files("gitjit").joinpath("hook_templates", f"{HOOK_NAME}.sh").read_text()


def render(python: str | None = None) -> str:
    from ..hook_install import _import_path, _sh_quote

    python = python or sys.executable
    if not python or not os.path.isabs(python):
        raise BadInput(f"cannot tell the absolute path of this Python interpreter ({python!r})")
    return (template().replace("@INSTALL_PYTHON@", _sh_quote(python))
                      .replace("@GITJIT_PYTHONPATH@", _sh_quote(_import_path(python))))


def is_ours(path: Path) -> bool:
    try:
        return path.is_file() and MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install(hooks: Path, force: bool = False, python: str | None = None) -> str:
    """Installs the post-receive hook into `hooks`; returns "installed", "updated" or "unchanged"."""
    hook, legacy = hooks / HOOK_NAME, hooks / (HOOK_NAME + LEGACY_SUFFIX)
    script = render(python)
    ours = is_ours(hook)
    if os.path.lexists(hook) and not ours:
        if os.path.lexists(legacy) and not force:
            raise BadInput(f"{hook} is not gitjit's and {legacy.name} exists too: merge them by hand "
                           f"or use --force to replace {legacy.name}")
        hooks.mkdir(parents=True, exist_ok=True)
        os.replace(hook, legacy)
    if ours and hook.read_text() == script:
        status = "unchanged"
    else:
        status = "updated" if ours else "installed"
        hooks.mkdir(parents=True, exist_ok=True)
        scratch = hook.with_name(f".{HOOK_NAME}.gitjit-{os.getpid()}")
        scratch.write_text(script)
        os.chmod(scratch, 0o755)
        os.replace(scratch, hook)  # atomic: a push never runs half a script
    os.chmod(hook, os.stat(hook).st_mode | 0o755)
    return status
