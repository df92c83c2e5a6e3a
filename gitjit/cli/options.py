"""The options several commands share, declared once, and what they turn into.

A command declares `repo: str | None = options.REPO` and calls
`options.branch(repo, remote)`, `options.now(at)` or `options.root(root)`:
the help text, the metavar and the validation of each option live here, so
every command spells and checks them alike. Writers take `options.PUSH` and
`options.REMOTE`; reading commands take `options.JSON` and print through
`options.print_json`.

Metavars name what a value is (PATH, TIME, COMMIT, REV); flags have none, so
help never shows Python type names (cli/app.py strips Typer's).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import typer

from gitjit.errors import BadInput
from gitjit.git.branch import DEFAULT_REMOTE, ApprovalsBranch, open_repository
from gitjit.model.grammar import FULL_COMMIT_RE, parse_time, utc_now

REPO = typer.Option(None, "--repo", metavar="PATH",
                    help="The git repository to work in (default: the one around the current directory).")
AT = typer.Option(None, "--at", metavar="TIME",
                  help="Judge at this time instead of now, e.g. 2026-11-25T23:00:00Z (ISO 8601).")
ROOT = typer.Option(None, "--root", metavar="COMMIT",
                    help="Authenticate the branch from this root commit (full id) instead of git config gitjit.root.")
JSON = typer.Option(False, "--json", help="Print one JSON object on stdout (fields: docs/json.md).")
PUSH = typer.Option(False, "--push", help="Push the approvals branch to the remote afterwards.")
OFFLINE = typer.Option(False, "--offline",
                       help="Do not fetch the approvals branch from the remote first (the view may be stale).")
REMOTE = typer.Option(DEFAULT_REMOTE, "--remote", metavar="NAME",
                      help="The remote the approvals branch is fetched from and pushed to.")
TARGET = typer.Option("HEAD", "--target", metavar="REV",
                      help="The commit the action is for: any revision git knows.")

LAYOUT = typer.Option(2, "--layout", metavar="N",
                      help="Where records live: 2 sharded by target (default), 1 flat, for verifiers older than layout 2.")


def layout(value: int) -> int:
    """`--layout`, checked: 1 or 2 (docs/format.md, section 2.4)."""
    if value not in (1, 2):
        raise BadInput(f"--layout must be 1 or 2, not {value}")
    return value


def branch(repo: str | None, remote: str = DEFAULT_REMOTE) -> ApprovalsBranch:
    """The approvals branch of `repo` (default: the current repository), with `remote` for fetch and push."""
    return ApprovalsBranch(open_repository(repo), remote=remote)


def now(at: str | None) -> datetime:
    """`--at` as a time, or now."""
    return parse_time(at, "--at") if at else utc_now()


def root(value: str | None) -> str | None:
    """`--root`, checked: a full commit id, or None (use git config gitjit.root)."""
    if value is not None and not FULL_COMMIT_RE.match(value):
        raise BadInput(f"--root {value!r} is not a full commit id (40 lower-case hex digits)")
    return value


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
