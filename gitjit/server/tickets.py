"""What pre-receive accepted, handed to the reference-transaction guard (docs/format.md, section 7.3).

pre-receive judges a push before git moves any ref; git then moves each ref
in a transaction of its own (one per ref, unless the push is atomic), and a
ref can still fail to move: another push won the lock, an `update` hook or a
chained pre-receive refused it, the disk filled. A protected tag judged on
approvals pushed alongside it must not land when those approvals did not.

So pre-receive writes a *ticket*: one line per ref update it accepted, in
`$GIT_DIR/gitjit/tickets/<pid of receive-pack>`. git runs the
`reference-transaction` hook (`server/templates/reference-transaction.sh`)
with each transaction's ref updates, once refs are locked ("prepared",
where a non-zero exit aborts the transaction) and once they are moved
("committed"). Inside a push (a ticket exists for the receive-pack that
runs it) the guard lets a branch or tag update through only when:

- the ticket names that exact update (`<ref> <old> <new>`), and
- for a tag that needed approvals arriving in the same push (`need`), the
  approvals branch holds the commit the tag was judged on: it landed in an
  earlier transaction of this push (a `landed` line the guard appended when
  it committed), moves there in this very transaction (an atomic push), or
  is an ancestor of the branch as git has it now.

A transaction outside a push (no ticket for its parent process: `git
pack-refs`, `gc`, an operator's `update-ref`) is not the guard's business,
exactly as pre-receive never saw it.

Verdicts, one per line after the header:

    <ref> <old> <new> pass                    any other accepted update
    <ref> <old> <new> need <commit> <branch>  a protected tag judged on <commit>
    <ref> <old> <new> branch                  the approvals branch, extended
    <ref> <old> <new> pin <root>              the approvals branch, created: pin <root> once it lands
    <branch> <new> - landed                   appended by the guard when the branch moved
"""

from __future__ import annotations

import os
import time

from gitjit.namedtuple import NamedTuple

HEADER = "gitjit-ticket 1"
STALE_AFTER = 3600  # seconds: a ticket older than this, whose receive-pack is gone, is removed


class Ticket(NamedTuple):
    ref: str
    old: str
    new: str
    verdict: str  # pass, need, branch or pin
    detail: str = ""  # need: "<commit> <branch ref>"; pin: the root

    def line(self) -> str:
        return " ".join(part for part in (self.ref, self.old, self.new, self.verdict, self.detail) if part)


def tickets_dir(git_dir: str) -> str:
    return os.path.join(git_dir, "gitjit", "tickets")


def write(git_dir: str, push_id: str, tickets: list[Ticket]) -> None:
    """Publishes this push's tickets whole (rename), replacing any earlier ones of the same id.

    Raises OSError when they cannot be written: the caller decides whether the
    push can go on without the guard's help.
    """
    from gitjit.trust.cache import files as cachefiles  # folders and files as core.sharedRepository says

    folder = tickets_dir(git_dir)
    cachefiles.make_dirs(folder)
    path = os.path.join(folder, push_id)
    scratch = f"{path}.{os.getpid()}.tmp"
    try:
        with open(scratch, "w") as handle:
            handle.write("\n".join([HEADER, *(t.line() for t in tickets)]) + "\n")
        cachefiles.adjust(scratch)
        os.replace(scratch, path)
    except BaseException:
        _remove(scratch)
        raise
    _sweep(folder, keep=path)


def discard(git_dir: str, push_id: str) -> None:
    """Drops this push's tickets (a refused push moves no ref)."""
    _remove(os.path.join(tickets_dir(git_dir), push_id))


def _sweep(folder: str, keep: str) -> None:
    """Removes tickets old enough that their receive-pack is gone."""
    limit = time.time() - STALE_AFTER
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        try:
            if path != keep and os.stat(path).st_mtime < limit and not _alive(name):
                os.unlink(path)
        except OSError:
            pass


def _alive(name: str) -> bool:
    """Whether the receive-pack a ticket is named after still runs (its ticket is then kept)."""
    if not name.isdigit():
        return False
    try:
        os.kill(int(name), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's process
    return True


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
