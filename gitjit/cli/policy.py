"""Typer commands for the policy (registered on the main app by cli/app.py): `gitjit policy check`.

Parsing arguments and printing only; the checks are in commands/policy.py.
"""

from __future__ import annotations

import typer

from gitjit.cli import options


def register(app: typer.Typer) -> None:
    """Adds `gitjit policy ...` to `app`."""
    policy_app = typer.Typer(no_args_is_help=True, help="Check and change the policy.")
    app.add_typer(policy_app, name="policy")

    @policy_app.command("check")
    def check(
        file: str | None = typer.Argument(None, metavar="[FILE]", help="A policy.toml to check (default: the branch's)."),
        as_json: bool = options.JSON,
        repo: str | None = options.REPO,
    ) -> None:
        """Validate a policy against the branch's people and keys, including rules that can never hold.

        Exit 0 when it is sound, 2 with one line per problem otherwise.

        Example: gitjit policy check new-policy.toml
        """
        from gitjit.commands import policy as policy_core
        from gitjit.model.grammar import utc_now

        result = policy_core.check(options.branch(repo), file, utc_now())
        if as_json:
            options.print_json(result.to_json())
        else:
            for note in result.notes:
                typer.echo(f"note: {note}", err=True)
            for problem in result.problems:
                typer.echo(f"gitjit: {result.source}: {problem}", err=True)
            if result.ok:
                typer.echo(f"{result.source}: ok ({result.actions} actions, {result.rules} rules)")
        raise typer.Exit(0 if result.ok else 2)

    @policy_app.command("propose")
    def propose(
        policy: str | None = typer.Option(None, "--policy", help="The proposed policy.toml (default: unchanged)."),
        add_key: list[str] | None = typer.Option(None, "--add-key", metavar="PERSON=FILE",
                                                 help="Add or replace keys/PERSON.asc with FILE (repeatable)."),
        remove_key: list[str] | None = typer.Option(None, "--remove-key", metavar="PERSON",
                                                    help="Remove keys/PERSON.asc (repeatable)."),
        reason: str = typer.Option("", "--reason", help="Why (shown to the admins who decide)."),
        ttl: str | None = typer.Option(None, "--ttl", help="How long the proposal stays open (default 24h)."),
        push: bool = options.PUSH,
        remote: str = options.REMOTE,
        repo: str | None = options.REPO,
    ) -> None:
        """Propose a policy change where admins.threshold > 1; prints the proposal's id.

        Admins then run 'gitjit approve ID' (or reject), and one of them 'gitjit policy apply ID'.

        Example: gitjit policy propose --policy new-policy.toml --add-key frank=frank.asc --reason "frank joins sre" --push
        """
        from gitjit.commands import policy as policy_core
        from gitjit.model.grammar import utc_now

        branch = options.branch(repo, remote)
        proposal, _ = policy_core.propose(branch, policy, list(add_key or []), list(remove_key or []), reason, ttl,
                                          utc_now(), push)
        typer.echo(proposal)

    @policy_app.command("apply")
    def apply(
        proposal: str = typer.Argument(..., metavar="ID", help="The proposal to apply."),
        push: bool = options.PUSH,
        remote: str = options.REMOTE,
        repo: str | None = options.REPO,
    ) -> None:
        """Commit an approved policy proposal, signed by you (your signature counts as one admin's).

        Exit 1 with the reasons while it lacks its quorum or is rejected.

        Example: gitjit policy apply policy-20261130-e09b30 --push
        """
        from gitjit.commands import policy as policy_core
        from gitjit.model.grammar import utc_now

        commit, signed = policy_core.apply(options.branch(repo, remote), proposal, utc_now(), push)
        typer.echo(f"applied {proposal} in {commit[:12]}, signed for by {', '.join(signed)}"
                   f"{' (pushed)' if push else ''}")
