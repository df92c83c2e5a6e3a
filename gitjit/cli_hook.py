"""Typer commands for hook (registered on the main app by cli.py): docs/format.md, section 7.

`gitjit hook install` writes the pre-receive script (see hook_install.py);
`gitjit hook pre-receive` is the hook itself, for servers that would rather
call the CLI. The installed script calls `python -m gitjit.hook` directly,
which skips Typer and Rich.
"""

from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    hook_app = typer.Typer(no_args_is_help=True, help="The server hook: refuses pushes that break the rules.")
    app.add_typer(hook_app, name="hook")

    @hook_app.command("install")
    def install(
        repo: Optional[str] = typer.Option(None, "--repo", help="Repository to install into (default: the current one)."),
        force: bool = typer.Option(
            False, "--force", help="When both a foreign pre-receive and pre-receive.legacy exist, "
                                   "replace pre-receive.legacy with the foreign hook (the old legacy is lost)."),
        print_script: bool = typer.Option(
            False, "--print", help="Print the hook script instead of installing it, to place it yourself "
                                   "(GitLab custom_hooks/pre-receive.d/, Gitea hooks/pre-receive.d/)."),
    ) -> None:
        """Install the pre-receive hook; an existing hook is kept as pre-receive.legacy and chained."""
        from . import hook_install

        if print_script:
            typer.echo(hook_install.render(), nl=False)
            return
        result = hook_install.install(repo or ".", force=force)
        typer.echo(result.message())

    @hook_app.command("pre-receive")
    def pre_receive(
        repo: Optional[str] = typer.Option(None, "--repo", help="Repository (default: git's environment)."),
    ) -> None:
        """Be the pre-receive hook: read `<old> <new> <ref>` lines on stdin, refuse or accept the push."""
        from . import hook

        raise typer.Exit(hook.main(repo))
