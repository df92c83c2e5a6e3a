"""Typer commands for notify (registered on the main app by cli/app.py): docs/notifications.md.

`gitjit notify status` shows the endpoints of the server repository's config
(a misconfigured one with its problem) and what is queued or failed;
`gitjit notify flush` sends what is queued now. Both run on the server, in
the repository the post-receive hook spools into (docs/notifications.md).
"""

import json
import sys

import typer

from gitjit.cli.options import REPO

FLUSH_BUDGET = 60.0  # seconds a flush may spend sending
FLUSH_WAIT = 30.0  # seconds a flush waits for a deliverer started by a push


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    notify_app = typer.Typer(no_args_is_help=True, help="Notifications from the server: endpoints and queue.")
    app.add_typer(notify_app, name="notify")

    @notify_app.command("status")
    def status(
        as_json: bool = typer.Option(False, "--json", help="Print JSON (see docs/notifications.md)."),
        repo: str | None = REPO,
    ) -> None:
        """The endpoints configured, and the notifications queued or failed (run on the server).

        Example: gitjit notify status --repo /srv/git/app.git
        """
        _, config, spool = _open_spool(repo)
        pushes, queued, failed = spool.entries("pushes"), spool.entries("queued"), spool.entries("failed")
        if as_json:
            data = {"endpoints": [_endpoint_json(e) for e in config.endpoints],
                    "pushes": [e.to_json() for e in pushes],
                    "queued": [e.to_json() for e in queued], "failed": [e.to_json() for e in failed]}
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        _print_status(config, pushes, queued, failed)

    @notify_app.command("flush")
    def flush(
        retry_failed: bool = typer.Option(False, "--retry-failed",
                                          help="Move failed notifications back to the queue first."),
        repo: str | None = REPO,
    ) -> None:
        """Send the queued notifications now; exit 1 if some remain queued or failed (run on the server).

        Example: gitjit notify flush --retry-failed --repo /srv/git/app.git
        """
        from gitjit.notify.deliver import deliver_pending

        git_dir, config, spool = _open_spool(repo)
        if retry_failed:
            lock = spool.lock(FLUSH_WAIT)
            if lock is None:
                raise typer.Exit(_busy())
            with lock:
                for entry in spool.entries("failed"):
                    if entry.event is not None or entry.push is not None:
                        spool.requeue(entry)
        result = deliver_pending(git_dir, config, budget=FLUSH_BUDGET, wait=FLUSH_WAIT)
        if result.busy:
            raise typer.Exit(_busy())
        failed = spool.count("failed")
        typer.echo(f"delivered {result.delivered}, still queued {result.queued}, failed {failed}"
                   + (" (see gitjit notify status)" if result.queued or failed else ""))
        raise typer.Exit(1 if result.queued or failed else 0)



def _open_spool(repo: str | None):
    """The server repository's git directory, its notification config and spool; a config
    that does not read is bad input."""
    from gitjit.errors import BadInput
    from gitjit.git.branch import open_repository
    from gitjit.notify.config import ConfigError, read_config
    from gitjit.notify.queue import Spool

    git_dir = open_repository(repo)
    try:
        config = read_config(git_dir)
    except ConfigError as exc:
        raise BadInput(str(exc)) from None
    return git_dir, config, Spool(git_dir, config.shared)


def _busy() -> int:
    sys.stderr.write("gitjit: another delivery of notifications is still running: try again later\n")
    return 1


def _endpoint_json(endpoint) -> dict:
    return {
        "name": endpoint.name,
        "kind": endpoint.kind,
        "target": endpoint.shown_target(),
        "format": endpoint.format,
        "signed": bool(endpoint.secret),
        "events": sorted(endpoint.events) if endpoint.events is not None else None,
        "ok": endpoint.problem is None,
        "problem": endpoint.problem,
    }


def _print_status(config, pushes: list, queued: list, failed: list) -> None:
    out = sys.stdout
    if not config.endpoints:
        out.write("no notification endpoints configured (git config gitjit.notify.<name>.url or .command)\n")
    else:
        out.write("endpoints:\n")
        for endpoint in config.endpoints:
            events = ",".join(sorted(endpoint.events)) if endpoint.events is not None else "all events"
            signed = ", signed" if endpoint.secret else ""
            state = f"MISCONFIGURED: {endpoint.problem}" if endpoint.problem else "ok"
            out.write(f"  {endpoint.name or '(no name)'}: {endpoint.kind} {_clean(endpoint.shown_target())} "
                      f"({endpoint.format}, {events}{signed}): {state}\n")
    if pushes:
        out.write(f"pushes whose events are still to be worked out: {len(pushes)}\n")
    for title, entries in (("queued", queued), ("failed", failed)):
        out.write(f"{title}: {len(entries)}\n")
        for entry in entries:
            event = entry.event or {}
            what = f"{event.get('event')} {(event.get('request') or {}).get('id')}" if event else "push " + \
                str((entry.push or {}).get("new") or "")[:12]
            error = f": {_clean(entry.last_error)}" if entry.last_error else ""
            out.write(f"  {entry.name}: {what} -> {entry.endpoint or '-'}, "
                      f"{entry.attempts} attempt{'s' if entry.attempts != 1 else ''}{error}\n")


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in " ".join(str(text).split()))
