"""Lines the core has for the person at the terminal while it works, beside its result.

A fetch that failed, what is about to be signed: the core says them here as
it goes (so they come before a passphrase prompt or a failure, not after),
and whoever runs the core decides where they go. The CLI prints them on
standard error; without a listener they are dropped (the hook, library use).

Some news belongs at the end of a command, and only where it succeeded: the
first pin of `gitjit.root` is said then (`say_at_end`), and where the
command ends in bad input (which writes nothing) the pin is undone instead,
so the next command that succeeds pins and says it.
"""

from __future__ import annotations

from collections.abc import Callable

_listener: Callable[[str], object] | None = None  # what it returns is ignored
_at_end: list[tuple[str, Callable[[], None] | None]] = []


def listen(listener: Callable[[str], object] | None) -> None:
    """Where notices go from now on (None: nowhere); forgets what was kept for the end."""
    global _listener
    _listener = listener
    _at_end.clear()


def say(text: str) -> None:
    if _listener is not None:
        _listener(text)


def say_at_end(text: str, undo: Callable[[], None] | None = None) -> None:
    """`text` once the command is over; `undo` is called instead where it ends in bad input."""
    if _listener is not None:
        _at_end.append((text, undo))


def finish(bad_input: bool) -> None:
    """The command is over: say what was kept for the end, or undo it."""
    kept = list(_at_end)
    _at_end.clear()
    for text, undo in kept:
        if not bad_input:
            say(text)
        elif undo is not None:
            undo()
