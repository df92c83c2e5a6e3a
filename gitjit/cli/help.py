"""Help that reads like a CLI's, not like Python: no `<bool>`, `<str>` or `<list[str]>`.

Typer shows each parameter's Python type beside it. Options say what their
value is with a metavar (PATH, TIME, REV: cli/options.py) and flags need
none; arguments already show their name. `plain_help` walks the built
command tree once, before it runs, and leaves only those.
"""

from __future__ import annotations

import typer


def _shown_type(param) -> str | None:
    """What the help shows in the type column: the metavar of an option that takes a value, else nothing."""
    if isinstance(param, typer.core.TyperOption) and not param.is_flag and param.metavar:
        return param.metavar
    return None


def _plain(param):
    param.display_type_rich = lambda ctx: _shown_type(param)  # per instance: Typer's classes stay as they are
    return param


def plain_help(command) -> None:
    """Replaces the Python type names in the help of `command` and its subcommands."""
    for param in command.params:
        _plain(param)
    made = command.get_help_option

    def get_help_option(ctx):  # made on demand, per context
        option = made(ctx)
        return _plain(option) if option is not None else None

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():  # a group's
        plain_help(sub)


def commands(command, path: tuple[str, ...] = ()) -> list:
    """Every command under `command`, with the words that reach it (for the man page and the tests)."""
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            found += commands(sub, (*path, name))
    return found
