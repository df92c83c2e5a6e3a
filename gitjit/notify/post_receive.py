"""The post-receive hook: spool the push's events, then send them from a detached process.

git runs post-receive after the refs moved, with the same `<old> <new> <ref>`
lines as pre-receive; it cannot refuse anything, and whatever it prints
reaches the pusher. So this hook:

1. reads the config (one `git config`); no endpoint: it is done;
2. for an approvals-branch update, works out the events (`events.py`) and
   spools each for every endpoint whose filter admits it; a misconfigured
   endpoint's events go straight to failed/, with the reason;
3. starts a deliverer in a new session, stdio closed, and returns at once:
   git and the pusher wait for no network;
4. prints at most one line, when notifications are waiting from earlier
   pushes or failed, and never a traceback. It always exits 0.

Imports are lazy: a push that moves no approvals branch reads the config
and the spool's directory listing, nothing else.
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
    """Spools the events of one push and starts their delivery; returns the line for the pusher, if any."""
    from .config import ConfigError, parse_config, read_git_config

    git_dir = os.path.realpath(repo or os.environ.get("GIT_DIR") or ".")
    try:
        values = read_git_config(git_dir)
    except ConfigError as exc:
        return f"gitjit: notifications not prepared: {exc}"
    config = parse_config(values)
    if not config.endpoints:
        return None
    from .queue import Spool

    spool = Spool(git_dir)
    waiting = spool.count("queued")
    branch_ref = f"refs/heads/{values.get('gitjit.branch') or 'approvals'}"
    failed = 0
    spooled = 0
    for old, new, ref in _updates(data):
        if new is None or _resolve(git_dir, ref) != branch_ref:
            continue
        try:
            events = _events(git_dir, old, new)
        except Exception as exc:
            spool.add_unprepared({"ref": ref, "old": old, "new": new},
                                 f"the events of this push could not be worked out: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        for sequence, event in enumerate(events):
            for endpoint in config.endpoints:
                if endpoint.wants(event["event"]):
                    error = None
                    if endpoint.problem is not None:
                        error = f"endpoint {endpoint.name or '(no name)'} is misconfigured: {endpoint.problem}"
                        failed += 1
                    spool.add(endpoint.name, event, sequence, error)
                    spooled += error is None
    if (spooled or waiting) and detach:
        start_deliverer(git_dir)
    if waiting or failed:
        return (f"gitjit: {waiting} earlier notification{'s' if waiting != 1 else ''} still queued, "
                f"{failed} failed: see gitjit notify status on the server")
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
    from ..hook import BadPushLine, resolve_symbolic

    try:
        return resolve_symbolic(git_dir, ref)
    except BadPushLine:
        return ref


def _events(git_dir: str, old: str | None, new: str) -> list[dict]:
    from ..names import utc_now
    from .events import push_events

    return push_events(git_dir, old, new, utc_now(), repository_name(git_dir))


def repository_name(git_dir: str) -> str:
    """`server` for /srv/git/server.git, `app` for /home/me/app/.git."""
    path = git_dir.rstrip("/")
    if os.path.basename(path) == ".git":
        path = os.path.dirname(path)
    name = os.path.basename(path)
    return name[: -len(".git")] if name.endswith(".git") and len(name) > 4 else name


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
        from .config import read_config
        from .deliver import deliver_pending

        deliver_pending(git_dir, read_config(git_dir), budget=PUSH_BUDGET, wait=PUSH_BUDGET)
    except Exception:
        pass  # nobody to tell: every event stays spooled with its last error
    sys.stdout.flush()
    os._exit(0)  # sends still in flight past the budget end here, their attempt counted


if __name__ == "__main__":
    sys.exit(main())
