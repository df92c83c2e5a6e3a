"""gitjit's man page, generated from the command tree itself (`make man` writes man/gitjit.1).

`git jit --help` makes git run `man git-jit`: the package installs
man/gitjit.1 and man/git-jit.1 (which sources it) under share/man/man1,
where man finds them beside the `gitjit` script on PATH. A test compares the
committed page with this output, so the page cannot drift from the CLI.
"""

from __future__ import annotations

import inspect
import sys

import typer

from gitjit import __version__

GIT_JIT_PAGE = ".so man1/gitjit.1\n"


def _roff(text: str) -> str:
    """Plain text as roff: backslashes and leading dots or quotes cannot be read as requests."""
    lines = []
    for line in text.replace("\\", "\\e").replace("-", "\\-").splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _usage(path: tuple[str, ...], command, ctx) -> str:
    pieces = command.collect_usage_pieces(ctx)
    return " ".join(("gitjit", *path, *pieces))


def _param_line(param) -> tuple[str, str]:
    if isinstance(param, typer.core.TyperArgument):
        return param.metavar or param.name.upper(), param.help or ""
    names = ", ".join([*param.opts, *param.secondary_opts])
    if not param.is_flag and param.metavar:
        names += f" {param.metavar}"
    return names, param.help or ""


def render() -> str:
    from gitjit.cli.app import app
    from gitjit.cli.help import commands, plain_help

    root = typer.main.get_command(app)
    plain_help(root)
    out = [
        f'.TH GITJIT 1 "" "gitjit {__version__}" "gitjit manual"',
        ".SH NAME",
        "gitjit, git\\-jit \\- just\\-in\\-time approval of sensitive actions, signed on a git branch",
        ".SH SYNOPSIS",
        ".B gitjit",
        "[\\fB\\-\\-version\\fR] [\\fB\\-h\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".br",
        ".B git jit",
        "\\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _roff(inspect.cleandoc(app.info.help or "")),
        ".PP",
        "Exit codes: 0 success or approved; 1 not approved, or refused by a check; 2 bad input, bad policy or "
        "usage error.",
        ".SH COMMANDS",
    ]
    for path, command in commands(root):
        if not path or getattr(command, "commands", None):
            continue  # the top and the groups: their commands are listed one by one
        ctx = typer.Context(command, info_name=" ".join(path))
        out += [".SS " + _roff(" ".join(("gitjit", *path))), ".nf", _roff(_usage(path, command, ctx)), ".fi", ".PP",
                _roff(inspect.cleandoc(command.help or ""))]
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            names, text = _param_line(param)
            out += [".TP", "\\fB" + _roff(names) + "\\fR", _roff(text)]
    out += [".SH SEE ALSO", "git(1), gpg(1); docs/format.md in gitjit's sources is the format reference.", ""]
    return "\n".join(out)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
