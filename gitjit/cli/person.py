"""Typer commands for person (registered on the main app by cli/app.py): docs/format.md, sections 3 and 8.

`gitjit person add` and `gitjit person remove` write admin-signed policy
commits (commands/write.py, commands/people.py); `gitjit person list` shows
the people of the policy in force, their keys (expiry), groups and what
they may approve.
"""

from __future__ import annotations

import typer

from gitjit.cli import options, render, render_json

PERSON = typer.Argument(..., metavar="NAME", help="The person's name in the policy (lower-case letters, digits, . _ -).")


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    person_app = typer.Typer(no_args_is_help=True, help="The people of the policy: list, add, remove.")
    app.add_typer(person_app, name="person")

    @person_app.command("add")
    def add(
        name: str = PERSON,
        key: str | None = typer.Option(None, "--key", metavar="KEY",
                                       help="Their key in your keyring: fingerprint, key id or email."),
        key_file: str | None = typer.Option(None, "--key-file", metavar="FILE",
                                            help="Their armored public key (gpg --armor --export THEM > FILE)."),
        email: str | None = typer.Option(None, "--email", metavar="EMAIL",
                                         help="Their email address (author email of unsigned requests)."),
        push: bool = options.PUSH,
        remote: str = options.REMOTE,
        repo: str | None = options.REPO,
    ) -> None:
        """Add a person and their public key (an admin-signed policy commit).

        Example: gitjit person add bob --key-file bob.asc --email bob@example.com --push
        """
        from gitjit.commands import write

        written = write.add_person(options.branch(repo, remote), name, key, key_file, email, push)
        typer.echo(f"added {name} in {written.commit[:12]}{' (pushed)' if written.pushed else ''}")

    @person_app.command("list")
    def list_people(
        as_json: bool = options.JSON,
        repo: str | None = options.REPO,
    ) -> None:
        """The people of the policy: keys (expiry), groups, admin, the actions they may approve.

        Example: gitjit person list --json
        """
        from gitjit.commands.people import people
        from gitjit.trust.trusted import TrustedBranch

        found = people(TrustedBranch.load(options.branch(repo)))
        if as_json:
            options.print_json({"people": [render_json.plain(p) for p in found]})
        else:
            render.people(found)

    @person_app.command("remove")
    def remove(
        name: str = PERSON,
        push: bool = options.PUSH,
        remote: str = options.REMOTE,
        repo: str | None = options.REPO,
    ) -> None:
        """Take a person out of the policy and delete their key (an admin-signed policy commit).

        Refused, with the reason, for the last admin or anyone without whom
        an action could no longer be approved. Comments in policy.toml are
        not kept.

        Example: gitjit person remove dave --push
        """
        from gitjit.commands.people import remove_person

        written = remove_person(options.branch(repo, remote), name, push)
        typer.echo(f"removed {name} in {written.commit[:12]}{' (pushed)' if written.pushed else ''}")
