"""Typer commands for hook (registered on the main app by cli/app.py): docs/format.md, section 7.

`gitjit hook install` writes the hook scripts (see server/install.py, and
server/gitolite.py for `--gitolite`), then checks them as `gitjit hook check`
does (server/check.py): an install that git would not run exits 1.
`gitjit hook uninstall` takes them out again. `gitjit hook pre-receive` is
the hook itself, for servers that would rather call the CLI; the installed
script calls `gitjit.hook.main()` directly, which skips Typer and Rich.
"""

import os
import stat
import sys

import typer

from gitjit.cli.options import REPO
from gitjit.errors import BadInput

GITOLITE_HELP = "Every gitolite repository, through gitolite's LOCAL_CODE hooks (run as the gitolite user)."


def _report(findings, info) -> None:
    """Prints the check's findings; exit 1 when any is a problem."""
    for line in info:
        typer.echo(line)
    for finding in findings:
        for line in finding.lines():
            typer.echo(line)
    problems = sum(not f.ok for f in findings)
    if problems:
        typer.echo(f"gitjit hook check: {problems} problem(s): git may skip gitjit's checks or refuse every push",
                   err=True)
        raise typer.Exit(1)


def _stdout_is_a_file() -> bool:
    try:
        return stat.S_ISREG(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    hook_app = typer.Typer(no_args_is_help=True, help="The server hook: refuses pushes that break the rules.")
    app.add_typer(hook_app, name="hook")

    @hook_app.command("install")
    def install(
        repo: str | None = REPO,
        force: bool = typer.Option(
            False, "--force", help="When both a foreign hook and its .legacy exist, replace the .legacy one "
                                   "with the foreign hook (the old legacy is lost); with --output, overwrite FILE."),
        output: str | None = typer.Option(
            None, "--output", metavar="FILE", help="Write the pre-receive script as an executable FILE, to place it yourself "
                                   "(GitLab custom_hooks/pre-receive.d/gitjit, Gitea hooks/pre-receive.d/gitjit)."),
        gitolite: bool = typer.Option(False, "--gitolite", help=GITOLITE_HELP),
        print_script: bool = typer.Option(
            False, "--print", help="Print the pre-receive script (to read it; to place it, use --output)."),
    ) -> None:
        """Install gitjit's hooks; an existing hook is kept as <name>.legacy and chained. Then check them.

        Example: gitjit hook install --repo /srv/git/app.git
        """
        from gitjit.server import check as hook_check
        from gitjit.server import install as hook_install

        if sum(map(bool, (repo, output, gitolite, print_script))) > 1:
            raise BadInput("--repo, --output, --gitolite and --print go one at a time")
        if print_script:
            if _stdout_is_a_file():
                raise BadInput("--print into a file makes a hook git will not run (not executable): "
                               "use --output FILE, which writes an executable file")
            typer.echo(hook_install.render(), nl=False)
            return
        if output:
            path = hook_install.write_output(output, force=force)
            typer.echo(f"gitjit pre-receive hook written: {path} (executable)")
            return
        if gitolite:
            from gitjit.server import gitolite as hook_gitolite

            done, findings = hook_gitolite.install(force=force)
            typer.echo("\n".join(done))
            _report(findings, ["gitolite: run `gitjit hook check --gitolite` after every `gitolite setup`"])
            return
        for result in hook_install.install(repo or ".", force=force):
            typer.echo(result.message())
        _report(*hook_check.check(repo or "."))

    @hook_app.command("check")
    def check(
        repo: str | None = REPO,
        gitolite: bool = typer.Option(False, "--gitolite", help=GITOLITE_HELP),
    ) -> None:
        """Check that git will run gitjit's hooks as the repository's owner: exit 0 if so, 1 with fixes if not.

        Example: gitjit hook check --repo /srv/git/app.git
        """
        if gitolite:
            from gitjit.server import gitolite as hook_gitolite

            _report(*hook_gitolite.check())
            return
        from gitjit.server import check as hook_check

        _report(*hook_check.check(repo or "."))

    @hook_app.command("uninstall")
    def uninstall(
        repo: str | None = REPO,
        gitolite: bool = typer.Option(False, "--gitolite", help=GITOLITE_HELP),
    ) -> None:
        """Remove gitjit's hooks and put back each hook they chained (<name>.legacy).

        Example: gitjit hook uninstall --repo /srv/git/app.git
        """
        if gitolite:
            from gitjit.server import gitolite as hook_gitolite

            typer.echo("\n".join(hook_gitolite.uninstall()))
            return
        from gitjit.server import install as hook_install

        typer.echo("\n".join(hook_install.uninstall(repo or ".")))

    @hook_app.command("pre-receive")
    def pre_receive(
        repo: str | None = typer.Option(None, "--repo", metavar="PATH",
                                        help="The repository pushed to (default: git's environment)."),
    ) -> None:
        """Be the pre-receive hook: read `<old> <new> <ref>` lines on stdin, refuse or accept the push.

        Example: in hooks/pre-receive, exec gitjit hook pre-receive
        """
        from gitjit.server import pre_receive as hook

        raise typer.Exit(hook.main(repo))
