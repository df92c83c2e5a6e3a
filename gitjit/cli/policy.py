"""Typer commands for the policy (registered on the main app by cli/app.py): `gitjit policy check`.

Parsing arguments and printing only; the checks are in commands/policy.py.
"""

from __future__ import annotations

import json
import sys

import typer


def register(app: typer.Typer) -> None:
    """Adds `gitjit policy ...` to `app`."""
    policy_app = typer.Typer(no_args_is_help=True, help="Check and change the policy.")
    app.add_typer(policy_app, name="policy")

    @policy_app.command("check")
    def check(
        file: str | None = typer.Argument(None, metavar="[FILE]", help="A policy.toml to check (default: the branch's)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (see docs/json.md)."),
        repo: str | None = typer.Option(None, "--repo", help="Repository to work in (default: the current one)."),
    ) -> None:
        """Validate a policy against the branch's people and keys, including rules that can never hold.

        Exit 0 when it is sound, 2 with one line per problem otherwise. Example:
        gitjit policy check new-policy.toml
        """
        from gitjit.commands import policy as policy_core
        from gitjit.git.branch import ApprovalsBranch, open_repository
        from gitjit.model.grammar import utc_now

        result = policy_core.check(ApprovalsBranch(open_repository(repo)), file, utc_now())
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        else:
            for note in result.notes:
                typer.echo(f"note: {note}", err=True)
            for problem in result.problems:
                typer.echo(f"gitjit: {result.source}: {problem}", err=True)
            if result.ok:
                typer.echo(f"{result.source}: ok ({result.actions} actions, {result.rules} rules)")
        raise typer.Exit(0 if result.ok else 2)

