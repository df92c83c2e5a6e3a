"""Lines the core has for the person at the terminal while it works, beside its result.

A fetch that failed, the root pinned on first use, what is about to be
signed: the core says them here as it goes (so they come before a passphrase
prompt or a failure, not after), and whoever runs the core decides where
they go. The CLI prints them on standard error; without a listener they are
dropped (the hook, library use).
"""

from __future__ import annotations

from collections.abc import Callable

_listener: Callable[[str], None] | None = None


def listen(listener: Callable[[str], None] | None) -> None:
    """Where notices go from now on (None: nowhere)."""
    global _listener
    _listener = listener


def say(text: str) -> None:
    if _listener is not None:
        _listener(text)
