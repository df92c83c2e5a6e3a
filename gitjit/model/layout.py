"""Where requests and decisions live on the branch: the layout revisions (docs/format.md, section 2.4).

Revision 1 (flat), every branch made before revision 2:

    requests/<id>.toml
    approvals/<id>/<person>.toml

Revision 2 (sharded by target), `layout = 2` in policy.toml, written by
`gitjit init` since:

    shards/<t2>/requests/<id>.toml
    shards/<t2>/approvals/<id>/<person>.toml

where <t2> is the first two hex digits of the request's target, and a
request's id ends with <t2> too (so that ids, unique on the whole branch,
can be checked within one shard). A decision sits in the shard of its
request's target, whatever the request's layout. A commit
then rewrites trees of about 256 + n/256 entries instead of n, and the
requests for one target are under one directory (trust/targeted.py).

The layout in force at a commit is the one of the policy in force at its
parent: a record at a path of another layout does not count. An admin moves
an old branch forward with a policy commit that sets `layout = 2`; the
files already on it stay where they are and keep counting (nothing is
rewritten), and new records go to the sharded paths.
"""

from __future__ import annotations

from gitjit.model.grammar import is_valid_name
from gitjit.namedtuple import NamedTuple

FLAT, SHARDED = 1, 2
LAYOUTS = (FLAT, SHARDED)
REQUESTS_DIR, DECISIONS_DIR, SHARDS_DIR = "requests", "approvals", "shards"
_HEX = frozenset("0123456789abcdef")


class RecordPath(NamedTuple):
    """A request's or decision's path, read: `person` is None for a request."""

    request_id: str
    person: str | None
    shard: str | None  # <t2> in the sharded layout, None in the flat one


def shard_of(target: str) -> str:
    return target[:2]


def request_path(request_id: str, target: str, layout: int = FLAT) -> str:
    if layout == SHARDED:
        return f"{SHARDS_DIR}/{shard_of(target)}/{REQUESTS_DIR}/{request_id}.toml"
    return f"{REQUESTS_DIR}/{request_id}.toml"


def decision_path(request_id: str, person: str, target: str, layout: int = FLAT) -> str:
    if layout == SHARDED:
        return f"{SHARDS_DIR}/{shard_of(target)}/{DECISIONS_DIR}/{request_id}/{person}.toml"
    return f"{DECISIONS_DIR}/{request_id}/{person}.toml"


def record_path(path: str, layout: int) -> RecordPath | None:
    """What a path holds under `layout`, or None where it is outside that layout.

    Names are checked by the parsers (a request's id must match its file
    name); only the shape is read here.
    """
    segments = path.split("/")
    shard = None
    if layout == SHARDED:
        if len(segments) < 4 or segments[0] != SHARDS_DIR or not _is_shard(segments[1]):
            return None
        shard, segments = segments[1], segments[2:]
    if len(segments) == 2 and segments[0] == REQUESTS_DIR and segments[1].endswith(".toml"):
        request_id = segments[1][: -len(".toml")]
        if shard is not None and not request_id.endswith(shard):
            return None  # in layout 2 an id ends with its shard: the same id never sits in two shards
        return RecordPath(request_id, None, shard)
    if len(segments) == 3 and segments[0] == DECISIONS_DIR and segments[2].endswith(".toml"):
        return RecordPath(segments[1], segments[2][: -len(".toml")], shard)
    return None


def request_id_of(path: str) -> str | None:
    """The id of a request file at `path` in either layout (valid names only), else None."""
    for layout in LAYOUTS:
        found = record_path(path, layout)
        if found is not None and found.person is None and is_valid_name(found.request_id):
            return found.request_id
    return None


def shard_problem(record: RecordPath, target: str) -> str | None:
    """Why a sharded record is in the wrong shard for its request's target, or None."""
    if record.shard is not None and record.shard != shard_of(target):
        return f"belongs under {SHARDS_DIR}/{shard_of(target)}/ (its target is {target[:12]}), not {SHARDS_DIR}/{record.shard}/"
    return None


def id_of(path: str) -> str | None:
    """The request id a record path names in either layout (its request or a decision on it), else None."""
    for layout in LAYOUTS:
        found = record_path(path, layout)
        if found is not None:
            return found.request_id
    return None


def new_id_suffix(target: str, layout: int) -> str:
    """What a new request's id must end with: its shard in layout 2, nothing in layout 1."""
    return shard_of(target) if layout == SHARDED else ""


def _is_shard(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX
