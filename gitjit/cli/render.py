"""Human output: rich tables on a terminal, plain lines in a pipe."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gitjit.model.grammar import format_time
from gitjit.trust.verdicts import RequestVerdict, Verdict

_STYLE = {"approved": "green", "pending": "yellow", "rejected": "red", "expired": "dim", "not-yet-valid": "dim"}


def console() -> Console:
    # In a pipe or a CI log, rich would wrap at 80 columns: lines are kept whole instead.
    out = Console(highlight=False)
    return out if out.is_terminal else Console(highlight=False, width=200)


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
        text = f"pending ({have} of {need})"
    else:
        text = verdict.state
    if verdict.uses is not None and verdict.state != "used":
        text += f", {verdict.uses_left} of {verdict.uses} uses left"
    if verdict.break_glass is not None and not verdict.state.startswith("break-glass"):
        text += f", break-glass {verdict.break_glass.review}"
    return text


def status(verdicts: list[RequestVerdict], detailed: bool = False) -> None:
    out = console()
    if not verdicts:
        out.print("no requests")
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("request", "action", "target", "state", "approvals", "expires"):
        table.add_column(column)
    for v in sorted(verdicts, key=lambda v: v.created):
        style = _STYLE.get(v.state, "")
        table.add_row(
            v.id, v.action, v.target[:12], f"[{style}]{state_text(v)}[/]" if style else state_text(v),
            ", ".join(v.approvals) or "-", format_time(v.expires),
        )
    out.print(table)
    if detailed:
        for v in verdicts:
            _details(out, v)


def _details(out: Console, v: RequestVerdict) -> None:
    out.print(f"\n[bold]{v.id}[/]: {v.action} on {v.target}")
    out.print(f"  requested by {shown(v.requested_by) or '?'}; reason: {shown(v.reason_text) or '-'}")
    out.print(f"  created {format_time(v.created)}, expires {format_time(v.expires)}")
    if v.break_glass is not None:
        bg = v.break_glass
        reviewed = f" ({len(bg.reviewed_by)} of {v.threshold}: {', '.join(bg.reviewed_by) or 'nobody yet'})"
        out.print(f"  break-glass by {bg.breaker or '?'}; review due {format_time(bg.review_due)}: "
                  f"{bg.review}{reviewed}")
    for u in v.use_records:
        mark = "counts" if u.counts else f"does not count: {shown(u.reason)}"
        tag = f" for tag {shown(u.tag)}" if u.tag else ""
        out.print(f"  use {u.number}{tag} by {u.user or '?'} (commit {u.commit[:12]}): {mark}")
    for d in v.decisions:
        mark = "[green]counts[/]" if d.counts else f"[red]does not count[/]: {shown(d.reason)}"
        key = d.key[-16:] if d.key else "?"
        out.print(f"  {d.person}: {d.decision or '?'} (key {key}, commit {d.commit[:12]}) {mark}")
    if len(v.rules) > 1:
        for t in v.rules:
            state = "holds" if t.holds else f"needs {t.needs()}"
            when = f", counts from {format_time(t.opens)}" if t.opens else ""
            out.print(f"  rule {t.name}: {len(t.approvals)} of {t.threshold}{when} ({state})")
    for reason in v.reasons:
        out.print(f"  - {shown(reason)}")


def verdict(v: Verdict) -> None:
    out = console()
    if v.approved:
        request = next(r for r in v.requests if r.id == v.approved_by)
        how = f"({shown(request.state)})" if request.break_glass else f"({', '.join(request.approvals)})"
        out.print(f"[green]approved[/]: {v.action} on {v.target[:12]} by request {request.id} {how}")
        if request.uses is not None:
            out.print(f"  {request.uses_left} of {request.uses} uses left")
        return
    out.print(f"[red]not approved[/]: {v.action} on {v.target[:12]}")
    for reason in v.reasons:
        out.print(f"  - {shown(reason)}")
