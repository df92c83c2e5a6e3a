"""The CLI fits people's habits: --version, -h, completion, help that reads like a CLI's, `git jit`, its man page.

Everything runs the real entry points: the `gitjit` script of the virtualenv
or `python -m gitjit` in a subprocess, and git itself for `git jit`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from helpers import REPO_ROOT

from gitjit import __version__
from gitjit.cli import manpage
from gitjit.cli.app import app, main
from gitjit.cli.help import commands

PYTHON_TYPES = re.compile(r"<(bool|str|int|float|list\[[^\]]*\]|path|datetime)>", re.IGNORECASE)


def gitjit(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    run_env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), COLUMNS="100", **(env or {}))
    return subprocess.run([sys.executable, "-m", "gitjit", *args], capture_output=True, text=True, env=run_env,
                          cwd=cwd or REPO_ROOT, timeout=60)


def help_in_process(*path: str) -> str:
    """`gitjit PATH... -h` through the entry point itself (`main`), in this process: one interpreter for all."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*path, "-h"])
    assert exit_.value.code in (0, None), out.getvalue()
    return out.getvalue()


def every_command() -> list[tuple[tuple[str, ...], object]]:
    return [(path, command) for path, command in commands(typer.main.get_command(app)) if path]


def test_version_and_short_help():
    for flag in ("--version", "-V"):
        proc = gitjit(flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"gitjit {__version__}", proc
    short, long = gitjit("-h"), gitjit("--help")
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and "Usage: gitjit" in short.stdout
    proc = gitjit("status", "-h")
    assert proc.returncode == 0 and "--pending" in proc.stdout and "--mine" in proc.stdout


def test_every_command_and_option_is_described_with_an_example_and_no_python_types():
    found = every_command()
    names = {" ".join(path) for path, _ in found}
    assert {"request", "approve", "reject", "status", "verify", "verify-tag", "run", "audit", "init",
            "person add", "person list", "person remove", "hook install", "hook uninstall"} <= names
    for path, command in found:
        text = help_in_process(*path)
        assert f"Usage: gitjit {' '.join(path)}" in text
        assert not PYTHON_TYPES.search(text), f"gitjit {' '.join(path)} -h shows a Python type:\n{text}"
        assert command.help, f"gitjit {' '.join(path)} has no description"
        if getattr(command, "commands", None):
            continue  # a group: its commands carry the examples
        assert "Example: gitjit " in command.help or "Example: in hooks/" in command.help, path
        for param in command.params:
            assert param.help, f"gitjit {' '.join(path)}: {param.name} has no description"


def test_options_shared_by_commands_are_declared_once():
    """--repo means and says the same everywhere (cli/options.py)."""
    helps = {}
    for path, command in every_command():
        for param in command.params:
            if "--repo" in getattr(param, "opts", ()) and path != ("hook", "pre-receive"):
                helps[" ".join(path)] = (param.help, param.metavar)
            if "--at" in getattr(param, "opts", ()):
                assert param.metavar == "TIME"
    assert len(helps) >= 15 and len(set(helps.values())) == 1, helps


def test_writers_take_remote():
    for name in ("request", "approve", "reject", "person add", "person remove", "run"):
        command = dict((" ".join(p), c) for p, c in every_command())[name]
        assert any("--remote" in p.opts for p in command.params), name


def test_shell_completion():
    proc = gitjit(env={"_GITJIT_COMPLETE": "complete_bash", "COMP_WORDS": "gitjit sta", "COMP_CWORD": "1"})
    assert proc.returncode == 0 and proc.stdout.split() == ["status"], proc
    proc = gitjit(env={"_GITJIT_COMPLETE": "complete_bash", "COMP_WORDS": "gitjit person r", "COMP_CWORD": "2"})
    assert proc.stdout.split() == ["remove"], proc
    script = gitjit("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_GITJIT_COMPLETE=complete_bash" in script.stdout


def test_usage_errors_are_one_line_exit_2():
    proc = gitjit("status", "--no-such-option")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = gitjit("verify", "deploy", "--root", "HEAD")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--root" in proc.stderr


# -- git jit ------------------------------------------------------------------------

def test_man_page_is_generated_from_the_cli_and_installed_with_the_package():
    assert (REPO_ROOT / "man" / "gitjit.1").read_text() == manpage.render(), "run `make man`"
    assert (REPO_ROOT / "man" / "git-jit.1").read_text() == manpage.GIT_JIT_PAGE
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["data-files"]["share/man/man1"] == ["man/gitjit.1", "man/git-jit.1"]
    assert project["project"]["scripts"]["git-jit"] == "gitjit.cli.app:main"


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_git_jit_as_a_git_subcommand_with_help(tmp_path):
    """The layout pip makes: <prefix>/bin/git-jit on PATH, <prefix>/share/man/man1/ beside it."""
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "man" / "man1").mkdir(parents=True)
    script = prefix / "bin" / "git-jit"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
                      "from gitjit.cli.app import main\nmain()\n")
    script.chmod(0o755)
    for page in ("gitjit.1", "git-jit.1"):
        shutil.copy(REPO_ROOT / "man" / page, prefix / "share" / "man" / "man1" / page)
    env = {k: v for k, v in os.environ.items() if k not in ("MANPATH", "PAGER", "GIT_PAGER")}
    env.update(PATH=f"{prefix / 'bin'}:/usr/bin:/bin", MANPAGER="cat", MANWIDTH="80", COLUMNS="80",
               HOME=str(tmp_path), GIT_CONFIG_NOSYSTEM="1")

    def git_jit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "jit", *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=60)

    short = git_jit("-h")
    assert short.returncode == 0 and "Usage: git jit [OPTIONS] COMMAND" in short.stdout, short
    version = git_jit("--version")
    assert version.stdout.strip() == f"gitjit {__version__}"
    long = git_jit("--help")  # git turns this into `man git-jit`
    assert long.returncode == 0, long.stderr
    assert "GITJIT(1)" in long.stdout and "gitjit request" in long.stdout and "--comment TEXT" in long.stdout
    sub = git_jit("status", "--help")  # git passes a subcommand's --help through
    assert sub.returncode == 0 and "Usage: git jit status" in sub.stdout
