"""Human output: rich tables on a terminal, plain lines in a pipe."""

from __future__ import annotations

import os
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gitjit.model.grammar import format_time
from gitjit.trust.verdicts import RequestVerdict, Verdict

_STYLE = {"approved": "green", "pending": "yellow", "rejected": "red", "expired": "dim", "not-yet-valid": "dim"}


def console(stderr: bool = False) -> Console:
    """The one console of the CLI's human output (stdout, or stderr for `run`).

    In a pipe or a CI log, rich would wrap at 80 columns: lines are kept whole
    instead, unless $COLUMNS sets a width.
    """
    out = Console(highlight=False, stderr=stderr)
    if out.is_terminal or os.environ.get("COLUMNS"):
        return out
    return Console(highlight=False, stderr=stderr, width=200)


def shown(text: str) -> str:
    """Text from the branch (reasons, names, comments) as it is, on one line.

    It is never interpreted: rich markup is escaped (a stray "[/bold]" would
    crash the output, a "[green]" could forge it) and control characters,
    newlines and terminal escape sequences included, are shown as escapes.
    """
    out = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
    return escape(out)


def time(value: datetime) -> str:
    return format_time(value)


def state_text(verdict: RequestVerdict) -> str:
    if verdict.state == "pending":
        have, need = verdict.progress
        return f"pending ({have} of {need})"
    return verdict.state


# The status table's columns besides the request id, at their narrowest: below this the list layout is used.
_TABLE_REST = 52


def status(verdicts: list[RequestVerdict], detailed: bool = False) -> None:
    """The requests as a table where it fits, else as a list; ids are never cut (they are what people copy)."""
    out = console()
    if not verdicts:
        out.print("no requests")
        return
    ordered = sorted(verdicts, key=lambda v: v.created)
    id_width = max(len(v.id) for v in ordered)
    if out.width >= id_width + _TABLE_REST:
        out.print(_status_table(ordered, id_width))
    else:
        for v in ordered:
            _status_lines(out, v)
    if detailed:
        for v in verdicts:
            _details(out, v)


def _state(v: RequestVerdict) -> str:
    style = _STYLE.get(v.state, "")
    return f"[{style}]{state_text(v)}[/]" if style else state_text(v)


def _status_table(verdicts: list[RequestVerdict], id_width: int) -> Table:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("request", no_wrap=True, min_width=id_width)
    table.add_column("action", overflow="fold")
    table.add_column("target", no_wrap=True, min_width=12)
    table.add_column("state")
    table.add_column("expires", overflow="fold")
    table.add_column("reason", overflow="fold", ratio=1)
    for v in verdicts:
        table.add_row(v.id, shown(v.action), v.target[:12], _state(v) + _who(v), _short_time(v.expires),
                      shown(v.reason_text) or "-")
    return table


def _who(v: RequestVerdict) -> str:
    names = ", ".join(v.approvals)
    if v.rejections:
        names = ", ".join((*v.approvals, *(f"{r} (veto)" for r in v.rejections)))
    return f": {shown(names)}" if names else ""


def _short_time(value: datetime) -> str:
    return value.strftime("%m-%d %H:%MZ")


def _status_lines(out: Console, v: RequestVerdict) -> None:
    """One request as lines printed whole (soft-wrapped by the terminal, never cut)."""
    out.print(v.id, soft_wrap=True, markup=False)
    out.print(f"  {shown(v.action)} on {v.target[:12]}: {_state(v)}{_who(v)}", soft_wrap=True)
    out.print(f"  expires {format_time(v.expires)}; reason: {shown(v.reason_text) or '-'}", soft_wrap=True)


def _details(out: Console, v: RequestVerdict) -> None:
    out.print(f"\n[bold]{v.id}[/]: {v.action} on {v.target}", soft_wrap=True)
    out.print(f"  requested by {shown(v.requested_by) or '?'}; reason: {shown(v.reason_text) or '-'}", soft_wrap=True)
    out.print(f"  created {format_time(v.created)}, expires {format_time(v.expires)}", soft_wrap=True)
    for d in v.decisions:
        mark = "[green]counts[/]" if d.counts else f"[red]does not count[/]: {shown(d.reason)}"
        key = d.key[-16:] if d.key else "?"
        out.print(f"  {d.person}: {d.decision or '?'} (key {key}, commit {d.commit[:12]}) {mark}", soft_wrap=True)
        if d.comment:
            out.print(f"    comment: {shown(d.comment)}", soft_wrap=True)
    if len(v.rules) > 1:
        for t in v.rules:
            state = "holds" if t.holds else f"needs {t.needs()}"
            when = f", counts from {format_time(t.opens)}" if t.opens else ""
            out.print(f"  rule {t.name}: {len(t.approvals)} of {t.threshold}{when} ({state})")
    for reason in v.reasons:
        out.print(f"  - {shown(reason)}", soft_wrap=True)


def people(found: list) -> None:
    """`gitjit person list`: one block per person, lines printed whole (fingerprints are copied)."""
    out = console()
    if not found:
        out.print("nobody")
        return
    for p in found:
        roles = ["admin"] if p.admin else []
        roles += [f"@{g}" for g in p.groups]
        out.print(f"[bold]{p.name}[/]" + (f" ({', '.join(roles)})" if roles else "")
                  + (f" <{shown(', '.join(p.emails))}>" if p.emails else ""), soft_wrap=True)
        for k in p.keys:
            state = "revoked" if k.revoked else f"expires {format_time(k.expires)}" if k.expires else "no expiry"
            if not k.in_keys:
                state += f", missing from keys/{p.name}.asc: signs nothing that counts"
            out.print(f"  key {k.fingerprint} ({state})", soft_wrap=True)
        out.print(f"  approves: {', '.join(p.approves) or '-'}", soft_wrap=True)


def verdict(v: Verdict) -> None:
    out = console()
    if v.approved:
        request = next(r for r in v.requests if r.id == v.approved_by)
        out.print(f"[green]approved[/]: {v.action} on {v.target[:12]} by request {request.id} "
                  f"({', '.join(request.approvals)})", soft_wrap=True)
        return
    out.print(f"[red]not approved[/]: {v.action} on {v.target[:12]}", soft_wrap=True)
    for reason in v.reasons:
        out.print(f"  - {shown(reason)}", soft_wrap=True)
    for request in v.requests:  # why people vetoed: the comments of counted rejections
        for d in request.decisions:
            if d.decision == "reject" and d.counts and d.comment:
                out.print(f"  {d.person} vetoed {request.id}: {shown(d.comment)}", soft_wrap=True)
