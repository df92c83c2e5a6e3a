"""The post-receive hook: spool the push, then work out and send its events from a detached process.

git runs post-receive after the refs moved, with the same `<old> <new> <ref>`
lines as pre-receive; it cannot refuse anything, and whatever it prints
reaches the pusher. So this hook:

1. reads the config (one `git config`); no endpoint: it is done;
2. spools each update of the approvals branch (old, new, the time) under
   pushes/: the deliverer works out its events (`prepare.py`), so the push
   pays neither for reading the branch nor for the network;
3. starts that deliverer in a new session, stdio closed, and returns at
   once: git and the pusher wait for nothing;
4. prints at most one line, when notifications from earlier pushes still
   wait or an endpoint is misconfigured, and never a traceback. It always
   exits 0.

Imports are lazy: a push reads the config and, where endpoints are set,
lists the spool and writes one small file per approvals-branch update.
"""

from __future__ import annotations

import os
import sys

PUSH_BUDGET = 4.0  # seconds a detached deliverer spends on one pass
ZERO = "0" * 40
_HEX = frozenset("0123456789abcdef")
_DELIVER = "import sys, gitjit.notify.post_receive as p; sys.exit(p.deliver_main(sys.argv[1]))"


def main(repo: str | None = None) -> int:
    """`gitjit.notify.post_receive.main()`: the hook itself. Always returns 0."""
    try:
        line = run(repo, sys.stdin.buffer.read().decode("utf-8", "surrogateescape"))
    except Exception as exc:
        if os.environ.get("GITJIT_DEBUG"):
            raise
        line = f"gitjit: notifications: unexpected error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    if line:
        sys.stderr.write(line.encode("utf-8", "replace").decode("utf-8") + "\n")
        sys.stderr.flush()
    return 0


def run(repo: str | None, data: str, detach: bool = True) -> str | None:
    """Spools one push and starts its delivery; returns the line for the pusher, if any."""
    from gitjit.notify.config import ConfigError, parse_config, read_git_config

    git_dir = os.path.realpath(repo or os.environ.get("GIT_DIR") or ".")
    try:
        values = read_git_config(git_dir)
    except ConfigError as exc:
        return f"gitjit: notifications not prepared: {exc}"
    config = parse_config(values)
    if not config.endpoints:
        return None
    from gitjit.model.grammar import format_time, utc_now
    from gitjit.notify.queue import Spool

    spool = Spool(git_dir, config.shared)
    waiting = spool.count("queued") + spool.count("pushes")
    branch_ref = f"refs/heads/{values.get('gitjit.branch') or 'approvals'}"
    pushes = 0
    for old, new, ref in _updates(data):
        if new is not None and _resolve(git_dir, ref) == branch_ref:
            spool.add_push({"ref": ref, "old": old, "new": new, "at": format_time(utc_now())})
            pushes += 1
    if (pushes or waiting) and detach:
        start_deliverer(git_dir)
    bad = sum(1 for e in config.endpoints if e.problem is not None)
    if waiting or bad:
        return (f"gitjit: notifications: {waiting} earlier still queued, {bad} endpoint{'s' if bad != 1 else ''} "
                f"misconfigured: see gitjit notify status on the server")
    return None


def _updates(data: str) -> list[tuple[str | None, str | None, str]]:
    found = []
    for line in data.splitlines():
        fields = line.split()
        if len(fields) != 3 or not all(len(f) == 40 and set(f) <= _HEX for f in fields[:2]):
            continue
        old, new, ref = fields
        found.append((None if old == ZERO else old, None if new == ZERO else new, ref))
    return found


def _resolve(git_dir: str, ref: str) -> str:
    """The ref a push to `ref` moved: a symbolic ref (a loose file starting "ref: ") is followed."""
    try:
        with open(os.path.join(git_dir, ref), "rb") as handle:
            if handle.read(5) != b"ref: ":
                return ref
    except OSError:
        return ref
    from gitjit.server.pre_receive import BadPushLine, resolve_symbolic

    try:
        return resolve_symbolic(git_dir, ref)
    except BadPushLine:
        return ref


def start_deliverer(git_dir: str) -> None:
    """Starts `deliver_main` in a process of its own: new session, no stdio, so nothing waits for it."""
    import subprocess

    flags = (["-S"] if sys.flags.no_site else []) + (["-P"] if sys.flags.safe_path else [])
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    subprocess.Popen([sys.executable, *flags, "-c", _DELIVER, git_dir], cwd=git_dir, env=env,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)


def deliver_main(git_dir: str) -> int:
    """The detached deliverer: one pass over the queue within `PUSH_BUDGET`."""
    try:
        from gitjit.notify.config import read_config
        from gitjit.notify.deliver import deliver_pending

        deliver_pending(git_dir, read_config(git_dir), budget=PUSH_BUDGET, wait=PUSH_BUDGET)
    except Exception:
        pass  # nobody to tell: every event stays spooled with its last error
    sys.stdout.flush()
    os._exit(0)  # sends still in flight past the budget end here, their attempt counted


if __name__ == "__main__":
    sys.exit(main())
