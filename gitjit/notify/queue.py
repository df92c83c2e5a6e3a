"""The spool: events waiting for an endpoint, under `$GIT_DIR/gitjit/notify/`.

- `pushes/`: one file per accepted push of the approvals branch whose
  events are still to be worked out (`prepare.py`): the hook writes it and
  leaves the work to the deliverer, off the push's clock;
- `queued/`: one file per event and endpoint, named so that sorting the
  names gives the order the events happened in; each holds the event, the
  endpoint's name, the attempts made and the last error;
- `failed/`: the same files, moved there after `MAX_ATTEMPTS` failed
  attempts, when their endpoint is misconfigured or gone, or when a push's
  events could not be worked out at all (then the push's file, with why);
- `tmp/`: where a file is written before it is renamed into place, so a
  reader never sees half a file (there is no fsync, which would cost every
  push: after a power cut a file may read back empty, and is then listed
  as unreadable, not lost).

A file leaves the spool only once its endpoint took the event; nothing is
dropped silently. The spool never holds an endpoint's URL or secret: those
are read from the config at each attempt, so fixing the config fixes the
retries. Folders and files get the modes git gives its own under
`core.sharedRepository` (`trust/cache/files.py`), so pushes by several Unix users
share one spool. One deliverer works at a time (`deliver.lock`, held with flock and
released by the kernel if the process dies), so no event is sent twice by
two deliverers at once.
"""

from __future__ import annotations

import os
import time

from gitjit.namedtuple import NamedTuple
from gitjit.notify.config import spool_dir

MAX_ATTEMPTS = 5
PUSHES, QUEUED, FAILED = "pushes", "queued", "failed"
SPOOL_VERSION = 1
INTERRUPTED = "interrupted: no answer before the delivery ran out of time"


class Entry(NamedTuple):
    path: str
    state: str  # "pushes", "queued" or "failed"
    endpoint: str | None
    event: dict | None
    attempts: int
    queued_at: str
    last_attempt: str | None
    last_error: str | None
    push: dict | None = None  # a push's ref, old, new and time, for a push not yet worked out

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def to_json(self) -> dict:
        event = self.event or {}
        request = event.get("request") or {}
        return {
            "file": self.name,
            "state": self.state,
            "endpoint": self.endpoint,
            "event": event.get("event"),
            "event_id": event.get("id"),
            "request": request.get("id"),
            "attempts": self.attempts,
            "queued_at": self.queued_at,
            "last_attempt": self.last_attempt,
            "last_error": self.last_error,
            "push": self.push,
        }


class Spool:
    def __init__(self, git_dir: str, shared: int = 0):
        """`shared`: core.sharedRepository as `cachefiles.parse_shared` reads it (0: the umask alone)."""
        self.root = spool_dir(git_dir)
        self.shared = shared

    def _make_dir(self, path: str) -> None:
        """`path` and the folders above it up to $GIT_DIR, each one created here shared as the repository is."""
        from gitjit.trust.cache.files import adjust

        if os.path.isdir(path):
            return
        parent = os.path.dirname(path)
        if parent != path and os.path.basename(parent) in ("gitjit", "notify"):
            self._make_dir(parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            return
        adjust(path, self.shared)

    def _dir(self, state: str) -> str:
        return os.path.join(self.root, state)

    # -- writing -------------------------------------------------------------

    def add(self, endpoint: str, event: dict, sequence: int, error: str | None = None) -> Entry:
        """Spools one event for one endpoint; `error` files it straight under failed/."""
        name = f"{time.time_ns():020d}-{sequence:05d}-{event['id'][:16]}-{_file_safe(endpoint)}.json"
        entry = Entry(os.path.join(self._dir(FAILED if error else QUEUED), name), FAILED if error else QUEUED,
                      endpoint, event, 0, _now(), None, error)
        self._write(entry)
        return entry

    def add_push(self, push: dict) -> Entry:
        """Spools a push whose events are still to be worked out (by the deliverer, off the push's clock)."""
        name = f"{time.time_ns():020d}-00000-push-{str(push.get('new') or 'none')[:12]}.json"
        entry = Entry(os.path.join(self._dir(PUSHES), name), PUSHES, None, None, 0, _now(), None, None, push)
        self._write(entry)
        return entry

    def remove(self, entry: Entry) -> None:
        _unlink(entry.path)

    def started(self, entry: Entry) -> Entry:
        """Counts an attempt before it is made: a deliverer killed mid-way leaves it counted, not lost."""
        entry = entry._replace(attempts=entry.attempts + 1, last_attempt=_now(), last_error=INTERRUPTED)
        self._write(entry)
        return entry

    def failed_attempt(self, entry: Entry, error: str) -> Entry:
        entry = entry._replace(last_error=error)
        if entry.attempts >= MAX_ATTEMPTS:
            return self.give_up(entry, f"{error} (gave up after {entry.attempts} attempts)")
        self._write(entry)
        return entry

    def give_up(self, entry: Entry, error: str) -> Entry:
        moved = entry._replace(path=os.path.join(self._dir(FAILED), entry.name), state=FAILED, last_error=error)
        self._write(moved)
        _unlink(entry.path)
        return moved

    def delivered(self, entry: Entry) -> None:
        _unlink(entry.path)

    def requeue(self, entry: Entry) -> Entry:
        """A failed entry back in the queue (a push back in pushes/), its attempts counted afresh."""
        state = PUSHES if entry.event is None else QUEUED
        moved = entry._replace(path=os.path.join(self._dir(state), entry.name), state=state, attempts=0)
        self._write(moved)
        _unlink(entry.path)
        return moved

    def _write(self, entry: Entry) -> None:
        import json

        data = {
            "gitjit_spool": SPOOL_VERSION,
            "endpoint": entry.endpoint,
            "event": entry.event,
            "attempts": entry.attempts,
            "queued_at": entry.queued_at,
            "last_attempt": entry.last_attempt,
            "last_error": entry.last_error,
            "push": entry.push,
        }
        from gitjit.trust.cache.files import adjust

        tmp = self._dir("tmp")
        self._make_dir(tmp)
        self._make_dir(os.path.dirname(entry.path))
        scratch = os.path.join(tmp, f".{entry.name}.{os.getpid()}.{time.monotonic_ns()}")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the spool holds no secret
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False)
            adjust(scratch, self.shared)
            os.replace(scratch, entry.path)
        except BaseException:
            _unlink(scratch)
            raise

    # -- reading -------------------------------------------------------------

    def entries(self, state: str) -> list[Entry]:
        """The spooled files of one state, oldest first; an unreadable one is listed with its problem."""
        folder = self._dir(state)
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            entry = _read(os.path.join(folder, name), state)
            if entry is not None:
                found.append(entry)
        return found

    def count(self, state: str) -> int:
        try:
            return sum(1 for n in os.listdir(self._dir(state)) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return 0

    def lock(self, wait: float) -> DeliveryLock | None:
        """The deliverer's lock, waited for up to `wait` seconds; None when another deliverer keeps it."""
        self._make_dir(self.root)
        lock = DeliveryLock(os.path.join(self.root, "deliver.lock"), self.shared)
        return lock if lock.acquire(wait) else None


class DeliveryLock:
    def __init__(self, path: str, shared: int = 0):
        self.path = path
        self.shared = shared
        self.fd: int | None = None
        self.kept = False  # held on purpose until the process ends (a send still in flight)

    def acquire(self, wait: float) -> bool:
        import fcntl

        from gitjit.trust.cache.files import adjust

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            adjust(self.path, self.shared)
        except OSError:
            pass  # another user's lock file: it is theirs to share
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file releases the flock
            self.fd = None

    def __enter__(self) -> DeliveryLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(path: str, state: str) -> Entry | None:
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or data.get("gitjit_spool") != SPOOL_VERSION:
            raise ValueError("not a gitjit spool file of a known version")
        event = data.get("event")
        return Entry(path, state, data.get("endpoint"), event if isinstance(event, dict) else None,
                     int(data.get("attempts") or 0), str(data.get("queued_at") or ""), data.get("last_attempt"),
                     data.get("last_error"), data.get("push") if isinstance(data.get("push"), dict) else None)
    except FileNotFoundError:
        return None  # delivered or moved meanwhile
    except (OSError, ValueError, TypeError) as exc:
        return Entry(path, state, None, None, 0, "", None, f"unreadable spool file: {exc}")


def _file_safe(endpoint: str) -> str:
    """The endpoint's name in a file name; a name that is not valid (it is then misconfigured) is hashed."""
    import hashlib

    from gitjit.model.grammar import is_valid_name

    return endpoint if is_valid_name(endpoint) else "bad-name-" + hashlib.sha256(endpoint.encode()).hexdigest()[:12]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _now() -> str:
    from gitjit.model.grammar import format_time, utc_now

    return format_time(utc_now())
