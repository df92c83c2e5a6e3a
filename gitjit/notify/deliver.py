"""Sending what is spooled: an HTTP POST, or a command given the body on stdin.

- HTTP: the standard library's urllib, http and https only (checked when
  the config is read, and again here), no redirects followed (a 3xx is a
  failure: a redirect could lead anywhere), a short timeout, and, where the
  endpoint has a `secret`, the body's HMAC-SHA256 in
  `X-Gitjit-Signature-256: sha256=<hex>`. Any 2xx answer is a delivery.
- command: run by `/bin/sh -c` in the repository, the body on stdin,
  `GITJIT_EVENT`, `GITJIT_EVENT_ID` and `GITJIT_ENDPOINT` in its
  environment; exit 0 is a delivery. One that outlives the timeout is
  killed with its process group.

A pass (`deliver_pending`) works per endpoint, in the order events
happened, each endpoint in its own thread so a hanging one delays no other;
after an endpoint's first failure its later events wait for the next pass,
so one dead endpoint costs one timeout per pass, not one per event. The
whole pass has a deadline: what is still in flight then stays queued, with
its attempt counted.
"""

from __future__ import annotations

import os
import threading
import time

from gitjit.namedtuple import NamedTuple
from gitjit.notify.config import Endpoint, NotifyConfig, url_problem
from gitjit.notify.queue import Entry, Spool

ATTEMPT_TIMEOUT = 2.0  # seconds one HTTP request or command may take
USER_AGENT = "gitjit-notify/1"
_MAX_THREADS = 8


class DeliveryError(Exception):
    pass


class PassResult(NamedTuple):
    delivered: int
    failed: int  # moved to failed/ in this pass
    queued: int  # still queued after the pass
    busy: bool = False  # another deliverer held the lock: nothing was tried


def signature(secret: str, body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def send(endpoint: Endpoint, event: dict, git_dir: str, timeout: float = ATTEMPT_TIMEOUT) -> None:
    """Delivers one event to one endpoint; DeliveryError says why not."""
    from gitjit.notify.formats import render

    if endpoint.problem is not None:
        raise DeliveryError(f"endpoint {endpoint.name} is misconfigured: {endpoint.problem}")
    body = render(event, endpoint.format)
    if endpoint.command is not None:
        _run_command(endpoint, event, body, git_dir, timeout)
    else:
        _post(endpoint, event, body, timeout)


def _post(endpoint: Endpoint, event: dict, body: bytes, timeout: float) -> None:
    import socket
    import urllib.error
    import urllib.request

    problem = url_problem(endpoint.url or "")
    if problem is not None:  # never reached through the config, checked again all the same
        raise DeliveryError(problem)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Gitjit-Event": str(event.get("event", "")),
        "X-Gitjit-Delivery": str(event.get("id", "")),
    }
    if endpoint.secret:
        headers["X-Gitjit-Signature-256"] = signature(endpoint.secret, body)
    request = urllib.request.Request(endpoint.url or "", data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_no_redirects())
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(1 << 16)
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {_one_line(str(exc.reason))}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise DeliveryError(f"no answer within {timeout:g}s") from None
        raise DeliveryError(f"cannot connect: {_one_line(str(reason))}") from None
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g}s") from None
    except (OSError, ValueError) as exc:  # connection reset, bad status line, ...
        raise DeliveryError(f"{type(exc).__name__}: {_one_line(str(exc))}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")


def _no_redirects():
    """A urllib handler that turns every redirect into an error: a webhook answers, it does not send us on."""
    import urllib.error
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            raise urllib.error.HTTPError(req.full_url, code, f"redirect refused ({msg})", headers, fp)

    return NoRedirects()


def _run_command(endpoint: Endpoint, event: dict, body: bytes, git_dir: str, timeout: float) -> None:
    import signal
    import subprocess
    import tempfile

    if not endpoint.command:
        raise DeliveryError("no command to run")
    env = dict(os.environ, GITJIT_EVENT=str(event.get("event", "")), GITJIT_EVENT_ID=str(event.get("id", "")),
               GITJIT_ENDPOINT=endpoint.name)
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a child left behind cannot hold us
        try:
            process = subprocess.Popen(["/bin/sh", "-c", endpoint.command], stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=errors, cwd=git_dir, env=env,
                                       start_new_session=True)
        except OSError as exc:
            raise DeliveryError(f"cannot run the command: {exc}") from None
        try:
            process.communicate(body, timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
            raise DeliveryError(f"the command did not finish within {timeout:g}s and was killed") from None
        if process.returncode != 0:
            errors.seek(0)
            lines = errors.read(1 << 16).decode("utf-8", "replace").strip().splitlines()
            said = f": {_one_line(lines[-1])[:300]}" if lines else ""
            raise DeliveryError(f"the command exited with {process.returncode}{said}")


def deliver_pending(git_dir: str, config: NotifyConfig, budget: float, wait: float = 0.0,
                    timeout: float = ATTEMPT_TIMEOUT) -> PassResult:
    """One pass over the queue, within `budget` seconds (see the module docstring)."""
    spool = Spool(git_dir, config.shared)
    lock = spool.lock(wait)
    if lock is None:
        return PassResult(0, 0, spool.count("queued"), busy=True)
    try:
        return _pass(spool, git_dir, config, budget, timeout, lock)
    finally:
        if not lock.kept:
            lock.release()


def _pass(spool: Spool, git_dir: str, config: NotifyConfig, budget: float, timeout: float, lock) -> PassResult:
    from gitjit.notify.prepare import prepare_pushes

    prepare_pushes(git_dir, config, spool)  # not on the budget: a push's events are always spooled whole
    deadline = time.monotonic() + budget
    by_endpoint: dict[str, list[Entry]] = {}
    failed = 0
    for entry in spool.entries("queued"):
        endpoint = config.endpoint(entry.endpoint) if entry.endpoint else None
        if entry.event is None:
            spool.give_up(entry, entry.last_error or "no event in the spool file")
            failed += 1
        elif endpoint is None:
            spool.give_up(entry, f"endpoint {entry.endpoint} is no longer configured")
            failed += 1
        elif endpoint.problem is not None:
            spool.give_up(entry, f"endpoint {endpoint.name} is misconfigured: {endpoint.problem}")
            failed += 1
        else:
            by_endpoint.setdefault(endpoint.name, []).append(entry)
    counts = {"delivered": 0, "failed": failed}
    count_lock = threading.Lock()
    slots = threading.Semaphore(_MAX_THREADS)

    def work(endpoint: Endpoint, entries: list[Entry]) -> None:
        with slots:
            for entry in entries:
                left = deadline - time.monotonic()
                if left <= 0.05:
                    return
                entry = spool.started(entry)
                try:
                    send(endpoint, entry.event or {}, git_dir, min(timeout, left))
                except Exception as exc:  # whatever went wrong, the event stays spooled with it
                    error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
                    moved = spool.failed_attempt(entry, error)
                    with count_lock:
                        counts["failed"] += moved.state == "failed"
                    return  # this endpoint's later events wait for the next pass
                spool.delivered(entry)
                with count_lock:
                    counts["delivered"] += 1

    threads = [threading.Thread(target=work, args=(config.endpoint(name), entries), daemon=True)
               for name, entries in by_endpoint.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    # A send still in flight keeps the lock until this process ends, so that
    # no other deliverer sends the same event meanwhile.
    lock.kept = any(thread.is_alive() for thread in threads)
    with count_lock:
        return PassResult(counts["delivered"], counts["failed"], spool.count("queued"))


def _one_line(text: str) -> str:
    return " ".join(text.split())
