"""The `gitjit` command line: parse arguments, call the core, render (docs/format.md, section 8).

Exit codes: 0 success or approved; 1 not approved, or refused by a check;
2 bad input, bad policy or usage error (one line, no traceback, nothing
written). Any unexpected error while verifying is reported on one line and
exits 1: it never reads as "approved".

This module holds the app, the commands that read and write requests, and
`main`; the other command groups register themselves (cli/person.py,
cli/hook.py, cli/run.py, cli/notify.py). Options several commands share are
declared once in cli/options.py.
"""

from __future__ import annotations

import os
import sys

import typer

from gitjit import __version__, notices
from gitjit.cli import hook as cli_hook
from gitjit.cli import notify as cli_notify
from gitjit.cli import options, render, render_json
from gitjit.cli import person as cli_person
from gitjit.cli import policy as cli_policy
from gitjit.cli import run as cli_gate
from gitjit.cli.help import plain_help
from gitjit.commands import localstate
from gitjit.commands import status as status_core
from gitjit.commands import write as operations
from gitjit.errors import BadInput, GitjitError
from gitjit.git import sync
from gitjit.git.branch import ApprovalsBranch
from gitjit.model.grammar import utc_now
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import judge_request
from gitjit.trust.verdicts import verify as verify_action

CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
    help="Just-in-time approval of sensitive actions: signed approvals on a git branch.\n\n"
         "Also runs as `git jit` (help: `git jit -h`, or `man gitjit`). Every command takes -h.",
    epilog="Start with: gitjit init --admin NAME (docs/format.md is the format reference).",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"gitjit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    version: bool = typer.Option(False, "--version", "-V", callback=_show_version, is_eager=True,
                                 help="Print gitjit's version and exit."),
) -> None:
    """Just-in-time approval of sensitive actions: signed approvals on a git branch."""


def _trusted(branch: ApprovalsBranch, root: str | None = None, target: str | None = None) -> TrustedBranch:
    """The trusted view; for one question about `target`, only what it needs (trust/targeted.py)."""
    return localstate.load(branch, root=root, target=target)


def _fresh(branch: ApprovalsBranch, offline: bool) -> None:
    """Reading commands fetch first; a failed fetch is one line on stderr, and the command goes on."""
    warning = sync.refresh(branch, offline).stale_warning()
    if warning:
        notices.say(f"warning: {warning}")


def _say_next(written: operations.Written) -> None:
    if written.next_step:
        notices.say(written.next_step)


def _wrote(verb: str, written) -> str:
    return f"{verb} in {written.commit[:12]}{' (pushed)' if written.pushed else ''}"


@app.command()
def init(
    admin: str = typer.Option(..., "--admin", metavar="NAME", help="Your name in the policy: the first admin."),
    key: str | None = typer.Option(None, "--key", metavar="KEY",
                                   help="Your key (fingerprint, id or email; default: git config user.signingkey)."),
    layout: int = options.LAYOUT,
    repo: str | None = options.REPO,
) -> None:
    """Create the approvals branch: a policy with you as admin, your key, a signed root commit.

    Example: gitjit init --admin alice
    """
    layout = options.layout(layout)
    branch = options.branch(repo)
    written = operations.init(branch, admin, key, layout)
    typer.echo(f"created {branch.ref} at {written.commit}; pinned gitjit.root to it")
    typer.echo("keep this root id: other clones and CI pin it with 'git config gitjit.root ID' "
               "or 'gitjit verify --root ID'")


@app.command()
def request(
    action: str = typer.Argument(..., metavar="ACTION", help="The action of the policy to request."),
    target: str = options.TARGET,
    reason: str = typer.Option("", "--reason", metavar="TEXT", help="Why: shown to approvers."),
    ttl: str | None = typer.Option(None, "--ttl", metavar="DURATION",
                                   help="How long the request lives, e.g. 2h (default 24h, at most max_ttl)."),
    sign: bool | None = typer.Option(None, "--sign/--no-sign",
                                     help="Sign the request commit (default: when user.signingkey is set)."),
    push: bool = options.PUSH,
    offline: bool = options.OFFLINE,
    remote: str = options.REMOTE,
    repo: str | None = options.REPO,
) -> None:
    """Commit a request for ACTION on a commit; prints its id first, before signing or pushing.

    Example: gitjit request deploy-prod --target v1.4.2 --reason "Release 1.4.2" --push
    """
    branch = options.branch(repo, remote)
    written, record = operations.request(branch, action, target, reason, ttl, utc_now(), sign, push,
                                         offline=offline, on_id=lambda rid: print(rid, flush=True))
    _say_next(written)
    from gitjit.commands.policy import unapprovable  # docs/format.md 13.3: say it now, not after a long wait

    warning = unapprovable(branch, record.id, utc_now())
    if warning:
        typer.echo(f"warning: request {record.id} {warning}", err=True)


REQUEST_ID = typer.Argument(..., metavar="ID", help="The request's id, as `gitjit request` or `gitjit status` prints it.")
COMMENT = typer.Option("", "--comment", metavar="TEXT", help="Why: shown in status, run and audit.")


def _decide(decision: str, request_id: str, comment: str, push: bool, offline: bool, remote: str,
            repo: str | None) -> None:
    written = operations.decide(options.branch(repo, remote), request_id, decision, comment, push, offline)
    verb = "approved" if decision == "approve" else "rejected"
    typer.echo(_wrote(f"{verb} {request_id}", written))
    _say_next(written)


@app.command()
def approve(
    request_id: str = REQUEST_ID,
    comment: str = COMMENT,
    push: bool = options.PUSH,
    offline: bool = options.OFFLINE,
    remote: str = options.REMOTE,
    repo: str | None = options.REPO,
) -> None:
    """Approve request ID with a signed commit.

    Example: gitjit approve deploy-prod-20261125-3fa9c1 --comment LGTM --push
    """
    _decide("approve", request_id, comment, push, offline, remote, repo)


@app.command()
def reject(
    request_id: str = REQUEST_ID,
    comment: str = COMMENT,
    push: bool = options.PUSH,
    offline: bool = options.OFFLINE,
    remote: str = options.REMOTE,
    repo: str | None = options.REPO,
) -> None:
    """Reject (veto) request ID with a signed commit.

    Example: gitjit reject deploy-prod-20261125-3fa9c1 --comment "not during the freeze" --push
    """
    _decide("reject", request_id, comment, push, offline, remote, repo)


@app.command()
def status(
    request_id: str | None = typer.Argument(None, metavar="ID", help="Show this request in detail."),
    pending: bool = typer.Option(False, "--pending", help="Only open requests (pending approval)."),
    mine: bool = typer.Option(False, "--mine",
                              help="Only requests waiting on me: open, I may approve them, I have not decided."),
    at: str | None = options.AT,
    as_json: bool = options.JSON,
    offline: bool = options.OFFLINE,
    remote: str = options.REMOTE,
    repo: str | None = options.REPO,
) -> None:
    """Requests and their state: pending (k of n), approved, rejected, expired.

    Example: gitjit status --mine
    """
    now = options.now(at)
    branch = options.branch(repo, remote)
    _fresh(branch, offline)
    trusted = _trusted(branch)
    entries = list(trusted.requests.values())
    if request_id is not None:
        entries = [e for e in entries if e.request.id == request_id]
        if not entries:
            raise BadInput(f"unknown request {request_id!r}")
    verdicts = [judge_request(trusted, e, now) for e in entries]
    if pending or mine:
        verdicts = [v for v in verdicts if status_core.is_open(v)]
    if mine:
        me = status_core.me(branch, trusted.policy)
        verdicts = [v for v in verdicts if status_core.waiting_on(trusted.policy, v, me)]
    from gitjit.commands.policy import proposal_diff  # a policy proposal shows its change (format.md 14)

    diff = proposal_diff(trusted, request_id) if request_id is not None else []
    if as_json:
        options.print_json({**render_json.status(now, verdicts), **({"diff": diff} if diff else {})})
    else:
        render.status(verdicts, detailed=request_id is not None)
        for line in diff:
            typer.echo(line)


def _verify_and_exit(verdicts: list, as_json: bool, tag: str | None = None) -> None:
    approved = all(v.approved for v in verdicts) and bool(verdicts)
    if as_json:
        options.print_json(render_json.verdict(verdicts[0]) if tag is None else
                           render_json.tag_verdicts(tag, verdicts[0].target, approved, verdicts))
    else:
        for verdict in verdicts:
            render.verdict(verdict)
    raise typer.Exit(0 if approved else 1)


@app.command()
def verify(
    action: str = typer.Argument(..., metavar="ACTION", help="The action of the policy to check."),
    target: str = typer.Option("HEAD", "--target", metavar="REV", help="The commit to check: any revision git knows."),
    at: str | None = options.AT,
    root: str | None = options.ROOT,
    as_json: bool = options.JSON,
    offline: bool = options.OFFLINE,
    remote: str = options.REMOTE,
    repo: str | None = options.REPO,
) -> None:
    """Exit 0 if ACTION is approved for the target commit, 1 if not, with every reason.

    Example: gitjit verify deploy-prod --target "$CI_COMMIT_SHA"
    """
    now = options.now(at)
    pinned = options.root(root)
    branch = options.branch(repo, remote)
    commit = operations.resolve_target(branch.repo, target)
    _fresh(branch, offline)
    trusted = _trusted(branch, pinned, target=commit)
    _verify_and_exit([verify_action(trusted, action, commit, now)], as_json)


@app.command("verify-tag")
def verify_tag(
    tag: str = typer.Argument(..., metavar="TAG", help="A tag name (refs/tags/TAG exactly, never a revision)."),
    at: str | None = options.AT,
    as_json: bool = options.JSON,
    offline: bool = options.OFFLINE,
    remote: str = options.REMOTE,
    repo: str | None = options.REPO,
) -> None:
    """Check a tag: the actions whose `tags` it matches, for the commit it points at.

    Example: gitjit verify-tag v1.4.2 --json
    """
    now = options.now(at)
    branch = options.branch(repo, remote)
    name = tag.removeprefix("refs/tags/")
    commit = _tag_commit(branch, name)
    _fresh(branch, offline)
    trusted = _trusted(branch, target=commit)
    actions = trusted.policy.actions_for_tag(name)
    if not actions:
        raise BadInput(f"tag {name!r} matches no action's tags in the policy")
    from gitjit.trust.uses import tag_verdict  # as the hook judges it: a single-use action needs the tag's use

    _verify_and_exit([tag_verdict(trusted, a.name, commit, name, now) for a in actions], as_json, tag=name)


def _tag_commit(branch: ApprovalsBranch, name: str) -> str:
    """The commit `refs/tags/NAME` points at, peeled (docs/format.md, section 8.1): a tag name,
    never a revision.

    `v2.0.0~1` or `v9.0.0-1-g<abbrev>` would name some commit to a revision
    parser; here they are not tags, so they are bad input.
    """
    ref = f"refs/tags/{name}"
    valid = branch.reader.git("check-ref-format", ref, check=False).returncode == 0
    target = branch.ref_target(ref) if valid else None
    if target is None:
        raise BadInput(f"no tag {name} ({ref} {'does not exist' if valid else 'is not a valid ref name'})")
    commit = branch.reader.peel_to_commit(target)
    if commit is None:
        raise BadInput(f"tag {name} does not point at a commit")
    return commit


cli_person.register(app)  # gitjit person add / list / remove
cli_hook.register(app)  # gitjit hook install / check / uninstall / pre-receive (docs/format.md, section 7)
cli_gate.register(app)  # gitjit run / audit
cli_notify.register(app)  # gitjit notify status / flush (docs/notifications.md)
cli_policy.register(app)  # gitjit policy check / propose / apply


def main(argv: list[str] | None = None) -> None:
    notices.listen(lambda text: sys.stderr.write(f"gitjit: {text}\n"))
    try:
        command = typer.main.get_command(app)
        plain_help(command)
        command(args=argv, prog_name=_prog_name())
    except SystemExit as exc:  # typer's way out, also on success; 2 is a usage error
        notices.finish(bad_input=exc.code == 2)
        raise
    except GitjitError as exc:  # the one place exit codes are decided: by the error's kind (errors.py)
        notices.finish(bad_input=exc.exit_code == 2)
        _fail(exc.describe(), exc.exit_code)
    except Exception as exc:  # fail closed, on one line
        notices.finish(bad_input=True)
        if os.environ.get("GITJIT_DEBUG"):
            raise
        _fail(f"unexpected error: {type(exc).__name__}: {exc}", 1)
    notices.finish(bad_input=False)


def _prog_name() -> str:
    """`git jit` when git runs us as its subcommand (the `git-jit` script), else `gitjit`."""
    return "git jit" if os.path.basename(sys.argv[0] or "") == "git-jit" else "gitjit"


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"gitjit: {message}\n")
    sys.exit(code)
