"""Notification endpoints, from the server repository's git config (SPEC s.14).

```
[gitjit "notify.ops"]
    url = https://chat.example.com/hooks/abc
    format = slack
    secret = ...
    events = request,approved
[gitjit "notify.mail"]
    command = /usr/local/bin/send-gitjit-mail
```

The whole config is read with one `git config --list -z` (a push that
concerns no notification pays for that only). An endpoint that is not right
(no url or command, both, a url that is not http or https, an unknown
format, event or key) is kept with its problem: it is never contacted, and
`gitjit notify status` shows why. An unknown key is a problem rather than
ignored, so that a misspelt `secret` never sends unsigned bodies.
"""

from __future__ import annotations

import os
import subprocess

from gitjit.namedtuple import NamedTuple

PREFIX = "gitjit.notify."
KEYS = ("url", "command", "format", "secret", "events")
FORMATS = ("json", "slack")
EVENTS = ("request", "approve", "reject", "approved", "rejected", "expired", "used", "break-glass")
FUTURE_EVENTS: tuple[str, ...] = ()  # names accepted in filters before they are sent
SCHEMES = ("http", "https")


class ConfigError(Exception):
    """The repository's git config cannot be read."""


class Endpoint(NamedTuple):
    name: str
    url: str | None
    command: str | None
    format: str
    secret: str | None
    events: frozenset[str] | None  # None: every event
    problem: str | None  # why it is misconfigured (it is then never contacted); None when usable

    def wants(self, event: str) -> bool:
        return self.events is None or event in self.events

    @property
    def kind(self) -> str:
        return "command" if self.command is not None else "url"

    def shown_target(self) -> str:
        """Where it sends, safe to print: a webhook URL's path is often its secret."""
        if self.command is not None:
            return self.command
        return redact_url(self.url or "")


class NotifyConfig(NamedTuple):
    endpoints: tuple[Endpoint, ...]
    shared: int = 0  # core.sharedRepository, as cachefiles.parse_shared reads it: the spool's modes

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    @property
    def usable(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.problem is None)


def read_git_config(git_dir: str) -> dict[str, str | None]:
    """Every config value of the repository (system, global, local; the last one wins, as for git)."""
    try:
        result = subprocess.run(["git", "--git-dir", git_dir, "config", "--list", "-z"], check=False,
                                capture_output=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise ConfigError(f"cannot run git: {exc}") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"git config failed: {lines[-1] if lines else 'exit ' + str(result.returncode)}")
    values: dict[str, str | None] = {}
    for item in result.stdout.decode("utf-8", "replace").split("\0"):
        if item:
            key, newline, value = item.partition("\n")
            values[key] = value if newline else None  # `key` alone: a boolean "true" with no value
    return values


def read_config(git_dir: str) -> NotifyConfig:
    return parse_config(read_git_config(git_dir))


def parse_config(values: dict[str, str | None]) -> NotifyConfig:
    """The endpoints named in `gitjit.notify.<name>.<key>` values, in the order first seen."""
    found: dict[str, dict[str, str | None]] = {}
    for key, value in values.items():
        if key.startswith(PREFIX):
            name, dot, setting = key[len(PREFIX):].rpartition(".")
            if dot:
                found.setdefault(name, {})[setting] = value
            else:  # `[gitjit "notify"] url = ...`: a section without the endpoint's name
                found.setdefault("", {})[setting] = value
    if not found:
        return NotifyConfig(())
    from gitjit.trust.cache.files import parse_shared

    return NotifyConfig(tuple(_endpoint(name, settings) for name, settings in found.items()),
                        parse_shared(values.get("core.sharedrepository")))


def _endpoint(name: str, settings: dict[str, str | None]) -> Endpoint:
    from gitjit.model.grammar import is_valid_name

    url, command = settings.get("url"), settings.get("command")
    fmt = settings.get("format") or "json"
    secret = settings.get("secret")
    events, events_problem = _events(settings.get("events"))
    problem = None
    unknown = sorted(set(settings) - set(KEYS))
    if not is_valid_name(name):
        problem = (f"endpoint name {name!r} is not a valid name: use [gitjit \"notify.NAME\"] with NAME like "
                   f"ops or chat-1 (lower case, digits, . _ -)")
    elif unknown:
        problem = f"unknown key {unknown[0]!r} (known: {', '.join(KEYS)})"
    elif url is not None and command is not None:
        problem = "both url and command are set: an endpoint has one of them"
    elif url is None and command is None:
        problem = "neither url nor command is set"
    elif url is not None:
        problem = url_problem(url)
    elif not (command or "").strip():
        problem = "command is empty"
    if problem is None and fmt not in FORMATS:
        problem = f"format {fmt!r} is not one of {', '.join(FORMATS)}"
    if problem is None and secret is not None and not secret:
        problem = "secret is empty"
    problem = problem or events_problem
    return Endpoint(name, url, command, fmt, secret, events, problem)


def _events(text: str | None) -> tuple[frozenset[str] | None, str | None]:
    if text is None:
        return None, None
    names = frozenset(part for part in text.replace(",", " ").split() if part)
    unknown = sorted(names - set(EVENTS) - set(FUTURE_EVENTS))
    if not names:
        return frozenset(), "events is empty (leave it out to send every event)"
    if unknown:
        return names, f"events: unknown event {unknown[0]!r} (known: {', '.join(EVENTS + FUTURE_EVENTS)})"
    return names, None


def url_problem(url: str) -> str | None:
    """Why `url` may not be contacted; None for a plain http(s) URL."""
    from urllib.parse import urlsplit

    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "url contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        return f"url is not a valid URL: {exc}"
    if parts.scheme.lower() not in SCHEMES:
        shown = f"{parts.scheme}:" if parts.scheme else "none"
        return f"url scheme {shown} is not http or https: gitjit only POSTs over HTTP(S)"
    if not parts.hostname:
        return "url has no host"
    if parts.username is not None or parts.password is not None:
        return "url carries a user name or password: use the endpoint's secret instead"
    del port
    return None


def redact_url(url: str) -> str:
    """`https://chat.example.com/…`: scheme and host only."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable url)"
    if not parts.scheme or not host:
        return "(unreadable url)" if not url else url.split(":", 1)[0] + ":…"
    return f"{parts.scheme}://{host}{port}/…"


def spool_dir(git_dir: str) -> str:
    return os.path.join(git_dir, "gitjit", "notify")
