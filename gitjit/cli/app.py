"""The `gitjit` command line: parse arguments, call the core, render (docs/format.md, section 8).

Exit codes: 0 success or approved; 1 not approved, or refused by a check;
2 bad input, bad policy or usage error (one line, no traceback, nothing
written). Any unexpected error while verifying is reported on one line and
exits 1: it never reads as "approved".
"""

from __future__ import annotations

import json
import os
import sys

import typer

from gitjit.cli import hook as cli_hook
from gitjit.cli import notify as cli_notify
from gitjit.cli import render
from gitjit.cli import run as cli_gate
from gitjit.commands import write as operations
from gitjit.errors import BadInput, GitjitError
from gitjit.git.branch import ApprovalsBranch, open_repository
from gitjit.model.grammar import FULL_COMMIT_RE, parse_time, utc_now
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import judge_request
from gitjit.trust.verdicts import verify as verify_action

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Just-in-time approval of sensitive actions: signed approvals on a git branch.",
)
person_app = typer.Typer(no_args_is_help=True, help="Manage the people of the policy.")
app.add_typer(person_app, name="person")

RepoOption = typer.Option(None, "--repo", help="Repository to work in (default: the current one).")
JsonOption = typer.Option(False, "--json", help="Print JSON (see docs/json.md).")
PushOption = typer.Option(False, "--push", help="Push the approvals branch to origin afterwards.")


def _branch(repo: str | None) -> ApprovalsBranch:
    return ApprovalsBranch(open_repository(repo))


def _trusted(branch: ApprovalsBranch, root: str | None = None) -> TrustedBranch:
    return TrustedBranch.load(branch, root=root)


def _trusted_for(branch: ApprovalsBranch, target: str, root: str | None = None) -> TrustedBranch:
    """The view one question needs: the policy chain and the target's own commits (trust/targeted.py)."""
    from gitjit.trust.targeted import load_for_target

    return load_for_target(branch, target, root=root)


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


@app.command()
def init(
    admin: str = typer.Option(..., "--admin", help="Name of the first admin (you)."),
    key: str | None = typer.Option(None, "--key", help="Your key (default: git config user.signingkey)."),
    layout: int = typer.Option(2, "--layout", help="Where records live: 2 sharded by target (default), "
                                                  "1 flat, for verifiers older than layout 2."),
    repo: str | None = RepoOption,
) -> None:
    """Create the approvals branch: a policy with you as admin, your key, a signed root commit."""
    if layout not in (1, 2):
        raise BadInput(f"--layout must be 1 or 2, not {layout}")
    branch = _branch(repo)
    written = operations.init(branch, admin, key, layout)
    typer.echo(f"created {branch.ref} at {written.commit[:12]}; pinned gitjit.root to it")


@person_app.command("add")
def person_add(
    name: str = typer.Argument(..., help="The person's name in the policy."),
    key: str | None = typer.Option(None, "--key", help="Fingerprint of a key in your keyring."),
    key_file: str | None = typer.Option(None, "--key-file", help="An armored public key file."),
    email: str | None = typer.Option(None, "--email", help="The person's email address."),
    push: bool = PushOption,
    repo: str | None = RepoOption,
) -> None:
    """Add a person and their public key (an admin-signed policy commit)."""
    written = operations.add_person(_branch(repo), name, key, key_file, email, push)
    typer.echo(f"added {name} in {written.commit[:12]}{' (pushed)' if written.pushed else ''}")


@app.command()
def request(
    action: str = typer.Argument(..., help="The action of the policy to request."),
    target: str = typer.Option("HEAD", "--target", help="The commit the action is for."),
    reason: str = typer.Option("", "--reason", help="Why (shown to approvers)."),
    ttl: str | None = typer.Option(None, "--ttl", help="How long the request lives (default 24h, at most max_ttl)."),
    sign: bool | None = typer.Option(None, "--sign/--no-sign", help="Sign the request (default: when user.signingkey is set)."),
    push: bool = PushOption,
    repo: str | None = RepoOption,
) -> None:
    """Commit a request for ACTION on a commit; prints its id."""
    branch = _branch(repo)
    written, record = operations.request(branch, action, target, reason, ttl, utc_now(), sign, push)
    typer.echo(record.id)


def _decide(decision: str, request_id: str, comment: str, push: bool, repo: str | None) -> None:
    written = operations.decide(_branch(repo), request_id, decision, comment, push)
    verb = "approved" if decision == "approve" else "rejected"
    typer.echo(f"{verb} {request_id} in {written.commit[:12]}{' (pushed)' if written.pushed else ''}")


@app.command()
def approve(
    request_id: str = typer.Argument(..., metavar="ID"),
    comment: str = typer.Option("", "--comment"),
    push: bool = PushOption,
    repo: str | None = RepoOption,
) -> None:
    """Approve request ID with a signed commit."""
    _decide("approve", request_id, comment, push, repo)


@app.command()
def reject(
    request_id: str = typer.Argument(..., metavar="ID"),
    comment: str = typer.Option("", "--comment"),
    push: bool = PushOption,
    repo: str | None = RepoOption,
) -> None:
    """Reject (veto) request ID with a signed commit."""
    _decide("reject", request_id, comment, push, repo)


@app.command()
def status(
    request_id: str | None = typer.Argument(None, metavar="[ID]"),
    at: str | None = typer.Option(None, "--at", help="Judge at this time instead of now (ISO 8601)."),
    as_json: bool = JsonOption,
    repo: str | None = RepoOption,
) -> None:
    """Requests and their state: pending (k of n), approved, rejected, expired."""
    now = parse_time(at, "--at") if at else utc_now()
    trusted = _trusted(_branch(repo))
    entries = list(trusted.requests.values())
    if request_id is not None:
        entries = [e for e in entries if e.request.id == request_id]
        if not entries:
            raise BadInput(f"unknown request {request_id!r}")
    verdicts = [judge_request(trusted, e, now) for e in entries]
    if as_json:
        _print_json({"at": render.time(now), "requests": [v.to_json() for v in verdicts]})
    else:
        render.status(verdicts, detailed=request_id is not None)


def _verify_and_exit(verdicts: list, as_json: bool, tag: str | None = None) -> None:
    approved = all(v.approved for v in verdicts) and bool(verdicts)
    if as_json:
        if tag is None:
            _print_json(verdicts[0].to_json())
        else:  # one shape whatever the number of actions the tag matches (docs/json.md)
            _print_json({"tag": tag, "target": verdicts[0].target, "approved": approved,
                         "actions": [v.to_json() for v in verdicts]})
    else:
        for verdict in verdicts:
            render.verdict(verdict)
    raise typer.Exit(0 if approved else 1)


@app.command()
def verify(
    action: str = typer.Argument(...),
    target: str = typer.Option("HEAD", "--target", help="The commit to check (default HEAD)."),
    at: str | None = typer.Option(None, "--at", help="Judge at this time instead of now (ISO 8601)."),
    root: str | None = typer.Option(None, "--root", help="Pin the root commit for this run."),
    as_json: bool = JsonOption,
    repo: str | None = RepoOption,
) -> None:
    """Exit 0 if ACTION is approved for the target commit, 1 if not, with every reason."""
    now = parse_time(at, "--at") if at else utc_now()
    if root is not None and not FULL_COMMIT_RE.match(root):
        raise BadInput(f"--root {root!r} is not a full commit id (40 lower-case hex digits)")
    branch = _branch(repo)
    commit = operations.resolve_target(branch.repo, target)
    trusted = _trusted_for(branch, commit, root)
    _verify_and_exit([verify_action(trusted, action, commit, now)], as_json)


@app.command("verify-tag")
def verify_tag(
    tag: str = typer.Argument(...),
    at: str | None = typer.Option(None, "--at", help="Judge at this time instead of now (ISO 8601)."),
    as_json: bool = JsonOption,
    repo: str | None = RepoOption,
) -> None:
    """Check a tag: the actions whose `tags` it matches, for the commit it points at."""
    now = parse_time(at, "--at") if at else utc_now()
    branch = _branch(repo)
    name = tag.removeprefix("refs/tags/")
    commit = _tag_commit(branch, name)
    trusted = _trusted_for(branch, commit)
    actions = trusted.policy.actions_for_tag(name)
    if not actions:
        raise BadInput(f"tag {name!r} matches no action's tags in the policy")
    _verify_and_exit([verify_action(trusted, a.name, commit, now) for a in actions], as_json, tag=name)


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


cli_hook.register(app)  # gitjit hook install / pre-receive (docs/format.md, section 7)
cli_gate.register(app)  # gitjit run / audit
cli_notify.register(app)  # gitjit notify status / flush (SPEC s.14)


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="gitjit")
    except GitjitError as exc:  # the one place exit codes are decided: by the error's kind (errors.py)
        _fail(exc.describe(), exc.exit_code)
    except Exception as exc:  # fail closed, on one line
        if os.environ.get("GITJIT_DEBUG"):
            raise
        _fail(f"unexpected error: {type(exc).__name__}: {exc}", 1)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"gitjit: {message}\n")
    sys.exit(code)
