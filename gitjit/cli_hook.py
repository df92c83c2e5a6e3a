"""Typer commands for hook (registered on the main app by cli.py)."""

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
