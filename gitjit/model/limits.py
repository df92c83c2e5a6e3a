"""The bounds on what the approvals branch may hold (docs/format.md, section 10).

Sizes are checked from git's object header (`cat-file --batch-check`)
before a blob is read, so an oversized file costs its header only. Times
and durations have ranges so that adding one to the other never overflows.
The choices are documented in docs/decisions.md ("Bounds").
"""

from __future__ import annotations

from datetime import timedelta

MAX_RECORD_BYTES = 16 * 1024  # requests/<id>.toml, approvals/<id>/<person>.toml
MAX_POLICY_BYTES = 256 * 1024  # policy.toml
MAX_KEY_FILE_BYTES = 64 * 1024  # keys/<person>.asc
MAX_TEXT_BYTES = 4 * 1024  # a request's `reason`, a decision's `comment` (UTF-8)
MAX_CHANGES = 1000  # files one commit may change: a policy commit adding many keys stays possible
MAX_RULES = 32  # rules of one action: a policy stays readable, a verdict cheap
SHOWN_CHANGES = 3  # files a refusal names; the rest are counted

FIRST_YEAR, LAST_YEAR = 1970, 9999
MAX_DURATION = timedelta(days=3653)  # ten years, leap days included


def size_problem(path: str, size: int, limit: int) -> str | None:
    """Why a file of `size` bytes at `path` is refused, or None."""
    if size > limit:
        return f"{path} is {size} bytes, the limit is {limit}"
    return None


def max_bytes_for(path: str) -> int:
    """The size limit of a file of the branch, by its path (docs/format.md, section 3)."""
    if path == "policy.toml":
        return MAX_POLICY_BYTES
    if path.startswith("keys/"):
        return MAX_KEY_FILE_BYTES
    return MAX_RECORD_BYTES


def list_some(items: list[str], total: int | None = None) -> str:
    """The first few items, and how many more: a refusal line stays short whatever a commit holds."""
    total = len(items) if total is None else total
    shown = ", ".join(items[:SHOWN_CHANGES])
    if total > SHOWN_CHANGES:
        shown += f" and {total - SHOWN_CHANGES} more"
    return shown
