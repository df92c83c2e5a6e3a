"""Human output of `gitjit audit`: rich tables (plain, full-width lines in a pipe).

Text that comes from the branch (reasons quote paths and file contents) goes
through `render.shown`: never read as markup, control characters escaped.
"""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gitjit.cli.render import console, shown
from gitjit.commands.audit import AuditReport
from gitjit.model.grammar import format_time

_DECISION_STYLE = {"approve": "green", "reject": "red"}
_STATE_STYLE = {"approved": "green", "pending": "yellow", "rejected": "red", "expired": "dim", "not-yet-valid": "dim"}


def _t(value: datetime | None) -> str:
    return format_time(value) if value else "-"


def _text(value: str, style: str = "") -> Text:
    """Text from the branch, shown as it is (see render.shown)."""
    return Text.from_markup(shown(value), style=style)


def _k(fingerprint: str | None) -> str:
    return fingerprint[-16:] if fingerprint else "-"


def audit(report: AuditReport) -> None:
    out = console()
    window = f" since {format_time(report.since)}" if report.since else ""
    _header(out, report, window)
    _policy_changes(out, report)
    _requests(out, report)
    _uses(out, report)
    _overdue(out, report)
    _refusals(out, report)
    _conclusion(out, report, window)


def _header(out: Console, report: AuditReport, window: str) -> None:
    out.print(f"[bold]audit of {report.ref}[/] at {format_time(report.at)}{window}", soft_wrap=True)
    pin = "pinned" if report.root_pinned else "trusted on first use, now pinned" if report.trusted else "not pinned"
    out.print(f"  root {report.root or '-'} ({pin}), tip {report.tip}, {report.commits} commits", soft_wrap=True)
    if report.not_trusted:
        nt = report.not_trusted
        where = f" at commit {nt.commit}" if nt.commit else ""
        out.print(Panel(_text(f"NOT TRUSTED{where}: {nt.reason}", "bold red") + _text(
            f"\n{nt.unchecked} commit(s) from there on were not checked; nothing after it can count.", "bold red"),
            border_style="red"))


def _policy_changes(out: Console, report: AuditReport) -> None:
    if not report.policy_changes:
        return
    table = _table("policy and key changes", "commit", "kind", "signer", "key", "signed at", "changes")
    for p in report.policy_changes:
        table.add_row(p.commit[:12], p.kind, p.signer, _k(p.key), _t(p.signed_at), _text(", ".join(p.changes)))
    _print(out, table)


def _requests(out: Console, report: AuditReport) -> None:
    """The requests, then every decision on them."""
    if not report.requests:
        return
    table = _table("requests", "request", "action", "target", "state", "signer", "committed", "approvals")
    for r in report.requests:
        v = r.verdict
        style = _STATE_STYLE.get(v.state, "")
        signer = r.signer or ("unsigned" if not r.signed else f"key {_k(r.key)}")
        table.add_row(v.id, v.action, v.target[:12], Text(v.state, style=style), signer, _t(r.committed_at),
                      f"{len(v.approvals)} of {v.threshold}")
    _print(out, table)
    table = _table("decisions", "request", "person", "decision", "commit", "signer", "key", "signed at", "counts")
    for r in report.requests:
        for d in r.decisions:
            dv = d.verdict
            counts = Text("yes", style="green") if dv.counts else _text(f"no: {dv.reason}", "red")
            style = _DECISION_STYLE.get(dv.decision or "", "")
            table.add_row(r.verdict.id, dv.person, Text(dv.decision or "?", style=style),
                          dv.commit[:12], d.signer or "-", _k(d.key), _t(d.signed_at), counts)
    if table.row_count:
        _print(out, table)


def _uses(out: Console, report: AuditReport) -> None:
    uses = [(r.verdict.id, u) for r in report.requests for u in r.verdict.use_records]
    if not uses:
        return
    table = _table("uses", "request", "use", "commit", "by", "tag", "signed at", "counts")
    for request_id, u in uses:
        counts = Text("yes", style="green") if u.counts else _text(f"no: {u.reason}", "red")
        table.add_row(request_id, str(u.number), u.commit[:12], u.user or "-", _text(u.tag or "-"),
                      _t(u.signed_at), counts)
    _print(out, table)


def _overdue(out: Console, report: AuditReport) -> None:
    for r in report.overdue:
        bg = r.verdict.break_glass
        if bg is None:  # overdue: only break-glass requests
            continue
        out.print(_text(f"break-glass overdue: {r.verdict.id} ({r.verdict.action} on {r.verdict.target[:12]}, "
                        f"by {bg.breaker}) was due for review at {format_time(bg.review_due)}; "
                        f"{len(bg.reviewed_by)} of {r.verdict.threshold} reviews", "bold red"))


def _refusals(out: Console, report: AuditReport) -> None:
    if not report.refusals:
        return
    table = _table(f"commits that do not count ({len(report.refusals)})", "commit", "committed", "reason",
                   style="red")
    for refused in report.refusals:
        table.add_row(refused.commit[:12], _t(refused.committed_at), _text(refused.reason, "red"))
    _print(out, table)


def _conclusion(out: Console, report: AuditReport, window: str) -> None:
    if report.ok:
        out.print(f"[green]ok[/]: every commit{window} verifies")
    elif report.not_trusted:
        out.print("[bold red]NOT TRUSTED[/]: the approvals branch does not authenticate from its root")
    elif not report.refusals:
        out.print(f"[red]{len(report.overdue)} break-glass request(s) overdue for review[/]")
    else:
        out.print(f"[red]{len(report.refusals)} commit(s){window} do not verify[/]")


# Columns whose cells people copy (request ids): never wrapped, folded or shortened.
_WHOLE = {"request"}


def _table(title: str, *columns: str, style: str = "bold") -> Table:
    table = Table(title=title, title_justify="left", title_style=style, show_header=True, header_style="bold",
                  box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in _WHOLE)
    return table


def _print(out: Console, table: Table) -> None:
    """Prints `table` at the terminal's width, or wider when the ids would not fit whole (the terminal then
    wraps the long lines: nothing is cut)."""
    needed = sum(max((len(str(cell)) for cell in col.cells), default=0) + 1 for col in table.columns
                 if col.header in _WHOLE) + 4 * len(table.columns)
    out.print(table, width=max(out.width, needed))
