"""Human output of `gitjit run`: a live display on a terminal, plain lines elsewhere.

`run` writes everything of its own to stderr: stdout belongs to the command
it runs. On a terminal the wait is a live display (who approved, k of n,
time left); in a pipe or a CI log it is one line per change, and one a
minute while nothing changes. Text from the branch or the remote (reasons,
git's error messages) goes through `render.shown`: never read as markup,
control characters escaped.
"""

from __future__ import annotations

import shlex
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from gitjit.cli.render import shown
from gitjit.commands.run import EXPIRED_END, FAILED, RUN, TIMEOUT, UNAPPROVABLE_END, VETOED, Gate, Progress

PLAIN_HEARTBEAT = 60.0  # seconds between "still waiting" lines in plain output


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def instructions(out: Console, gate: Gate) -> None:
    i = gate.instructions
    how = f"new, pushed to {i.remote}" if gate.created else "already on the branch, reused"
    out.print(f"request [bold]{i.request_id}[/] ({how}) for {i.action} on {i.target[:12]}", soft_wrap=True)
    if i.rules:
        out.print("  needs every rule:", markup=False)
        for line in i.rules:
            out.print(f"    {line}", soft_wrap=True, markup=False)
    else:
        out.print(f"  needs {i.threshold} approval{'s' if i.threshold != 1 else ''} from: {', '.join(i.approvers) or 'nobody'}")
    before, path, after = i.by_hand()
    out.print(f"  approve:  gitjit approve {i.request_id} --push", soft_wrap=True, markup=False)
    out.print(f"  veto:     gitjit reject {i.request_id} --push", soft_wrap=True, markup=False)
    out.print("  or by hand, as <person>:", markup=False)
    out.print(f"    {before}", soft_wrap=True, markup=False)
    out.print(f"    write {path}:", soft_wrap=True, markup=False)
    for line in i.decision_file.splitlines():
        out.print(f"      {line}", soft_wrap=True, markup=False)
    out.print(f"    {after}", soft_wrap=True, markup=False)


def _summary(p: Progress) -> str:
    text = p.summary or f"{len(p.approvals)} of {p.threshold} approvals"
    if p.approvals:
        text += f" ({', '.join(p.approvals)})"
    if p.rejections:
        text += f"; rejected by {', '.join(p.rejections)}"
    return text


class _LiveView:
    """What the live display draws at each refresh: the last Progress, with a ticking clock."""

    def __init__(self, gate: Gate):
        self.gate = gate
        self.progress: Progress | None = None
        self.spinner = Spinner("dots", style="cyan")

    def __rich__(self):
        p = self.progress
        head = Table.grid(padding=(0, 1))
        head.add_row(self.spinner, Text.from_markup(
            f"waiting for approval of [bold]{self.gate.action}[/] on {self.gate.target[:12]}: "
            f"request {self.gate.request_id}"))
        if p is None:
            return head
        rows = Table.grid(padding=(0, 2))
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=max(p.threshold, 1), completed=min(len(p.approvals), p.threshold), width=24),
                    Text(f"{len(p.approvals)} of {p.threshold}"),
                    Text(" ".join(f"{name} ✓" for name in p.approvals), style="green"))
        rows.add_row(Text("  approvals", style="bold"), bar)
        if p.summary:
            rows.add_row(Text("  rules", style="bold"), Text(p.summary))
        if p.rejections:
            rows.add_row(Text("  rejected by", style="bold red"), Text(", ".join(p.rejections), style="red"))
        rows.add_row(Text("  time left", style="bold"), Text(clock(p.left())))
        if p.fetch_error:
            rows.add_row(Text("  fetch", style="bold yellow"),
                         Text.from_markup(shown(f"{p.fetch_error} (retrying)"), style="yellow"))
        return Group(head, rows)


class WaitDisplay:
    """Live on a terminal, plain lines otherwise; `report` is Gate.wait's callback."""

    def __init__(self, out: Console, gate: Gate):
        self.out = out
        self.gate = gate
        self.live: Live | None = None
        self.view = _LiveView(gate)
        self._last_line: str | None = None
        self._last_time = 0.0

    def __enter__(self) -> WaitDisplay:
        if self.out.is_terminal:
            self.live = Live(self.view, console=self.out, refresh_per_second=4, transient=True)
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def report(self, progress: Progress) -> None:
        self.view.progress = progress
        if self.live is not None:
            self.live.refresh()
            return
        if progress.end is not None:
            return
        line = f"waiting: {_summary(progress)}"
        if progress.fetch_error:
            line += f"; last fetch failed: {progress.fetch_error}"
        now = time.monotonic()
        if line != self._last_line or now - self._last_time >= PLAIN_HEARTBEAT:
            self.out.print(shown(f"{line}; {clock(progress.left())} left"), soft_wrap=True)
            self._last_line, self._last_time = line, now


def outcome(out: Console, gate: Gate, p: Progress, wait_text: str, command: list[str]) -> None:
    what = shown(shlex.join(command))
    if p.end == RUN:
        other = "" if p.approved_by == gate.request_id else f" (request {p.approved_by})"
        out.print(f"[green]approved[/] by {', '.join(p.approved_with)}{other}: running {what}",
                  soft_wrap=True, markup=True, emoji=False)
        return
    if p.end == VETOED:
        head = f"[red]rejected[/] by {', '.join(p.rejections)}"
    elif p.end == TIMEOUT:
        head = f"[red]not approved[/] within {wait_text}"
    elif p.end == EXPIRED_END:
        head = f"[red]request {gate.request_id} expired[/]"
    elif p.end == UNAPPROVABLE_END:
        head = f"[red]request {gate.request_id} can never be approved[/]"
    else:
        head = "[red]not approved[/]"
    out.print(f"{head}: {what} was not run", soft_wrap=True, emoji=False)
    for reason in p.reasons:
        out.print(f"  - {shown(reason)}", soft_wrap=True)
    if p.end == VETOED:
        for person, comment in _veto_comments(gate):
            out.print(f"  {person} says: {shown(comment)}", soft_wrap=True)
    if p.end == FAILED and not p.reasons:
        out.print("  - verification failed", markup=False)


def _veto_comments(gate: Gate) -> list[tuple[str, str]]:
    """(person, comment) of each counted rejection of the gate's request: a veto says why."""
    try:
        verdict = gate.verdict()
    except Exception:  # noqa: BLE001 - only a comment is lost; the outcome is already decided
        return []
    return [(d.person, d.comment) for r in verdict.requests if r.id == gate.request_id
            for d in r.decisions if d.decision == "reject" and d.counts and d.comment]
