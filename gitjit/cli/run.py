"""Typer commands for the gate (`gitjit run`) and `gitjit audit`, registered on the main app by cli/app.py.

Both parse arguments, call the core (commands/run.py, commands/audit.py) and render
(cli/render_run.py, cli/render_audit.py). Exit codes follow docs/format.md, section 8.2: `run` exits 1
without running the command when it is not approved in time, rejected, or
anything fails while verifying, 130 on Ctrl-C, and otherwise with the
command's own exit code; `audit` exits 1 when the history holds anything
that does not verify.
"""

from __future__ import annotations

import shlex
import sys

import typer

from gitjit.cli import options
from gitjit.errors import BadInput
from gitjit.model.grammar import parse_duration, parse_time


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""

    @app.command()
    def run(
        action: str = typer.Argument(..., metavar="ACTION", help="The action of the policy to run."),
        command: list[str] | None = typer.Argument(None, metavar="-- CMD...", help="The command to run once approved."),
        target: str = options.TARGET,
        wait: str = typer.Option("30m", "--wait", metavar="DURATION", help="How long to wait for approval (e.g. 30m, 2h)."),
        remote: str = options.REMOTE,
        reason: str = typer.Option("", "--reason", metavar="TEXT", help="Why (shown to approvers), for a new request."),
        ttl: str | None = typer.Option(None, "--ttl", metavar="DURATION",
                                       help="Lifetime of a new request (default 24h, at most max_ttl)."),
        interval: str | None = typer.Option(
            None, "--interval", metavar="DURATION",
            help="Time between fetches: 5s, 1m or seconds (default $GITJIT_RUN_INTERVAL or 5s)."),
        root: str | None = options.ROOT,
        repo: str | None = options.REPO,
    ) -> None:
        """Find or make and push a request, wait for approval (fetching from the remote), then run CMD.

        CMD runs only after `verify` says the action is approved for the
        target; it gets GITJIT_REQUEST and GITJIT_APPROVERS (comma-separated)
        in its environment, and its exit code is passed through. Not approved
        in time, or rejected: exit 1 and CMD never starts. Ctrl-C: exit 130.

        Example: gitjit run deploy-prod --wait 30m --reason "Release 1.4.2" -- ./deploy.sh
        """
        from gitjit.cli import render_run
        from gitjit.cli.render import console
        from gitjit.commands import run as gate_core

        out = console(stderr=True)
        wait_for = parse_duration(wait, "--wait")
        seconds = gate_core.parse_interval(interval)
        try:
            branch = options.branch(repo, remote)
            gate = gate_core.prepare(branch, action, target, reason, ttl, list(command or []), options.root(root))
            render_run.instructions(out, gate)
            with render_run.WaitDisplay(out, gate) as display:
                progress = gate.wait(wait_for, seconds, display.report)
        except KeyboardInterrupt:
            out.print(f"interrupted: {shlex.join(command or [])} was not run", soft_wrap=True, markup=False)
            raise typer.Exit(130) from None
        render_run.outcome(out, gate, progress, wait, list(command))
        if progress.end != gate_core.RUN:
            raise typer.Exit(1)
        env = gate_core.command_environment(gate, progress)
        sys.stdout.flush()
        sys.stderr.flush()
        code = gate_core.exec_command(list(command), env)  # returns only when CMD cannot start
        out.print(f"cannot run {command[0]}", markup=False)
        raise typer.Exit(code)

    @app.command()
    def audit(
        as_json: bool = options.JSON,
        since: str | None = typer.Option(
            None, "--since", metavar="TIME",
            help="List only commits made from this time (ISO 8601) or this long ago (7d)."),
        at: str | None = options.AT,
        root: str | None = options.ROOT,
        repo: str | None = options.REPO,
    ) -> None:
        """The whole approvals branch, authenticated: every request, decision, signer and policy change,
        and every commit that does not count and why. Exit 1 if anything does not verify.

        Example: gitjit audit --since 7d
        """
        from gitjit.cli import render_audit, render_json
        from gitjit.commands import audit as audit_core

        now = options.now(at)
        start = _since(since, now) if since else None
        report = audit_core.audit(options.branch(repo), now, start, options.root(root))
        if as_json:
            options.print_json(render_json.audit(report))
        else:
            render_audit.audit(report)
        raise typer.Exit(0 if report.ok else 1)


def _since(text: str, now):
    """An ISO 8601 time, or a duration back from now (`7d`, `12h`)."""
    try:
        return now - parse_duration(text, "--since")
    except BadInput:
        return parse_time(text, "--since")
