"""One question, answered from the commits that can decide it (docs/format.md, section 6.8).

`verify ACTION --target T` (and `verify-tag`, and `run`'s check) asks about
the requests for one target. What decides their verdicts is:

1. the chain itself: the pinned root, and a linear first-parent history
   (one `git rev-list --first-parent --parents`, no diffs, no gpg);
2. the policy chain: every commit that touches `policy.toml` or `keys/`,
   each authorized by the policy before it exactly as the full walk does;
3. the requests for T and everything on their ids: every commit that
   touches a path of such an id, wherever the layout puts it (its request
   file, its decisions, a later copy of the id that the full walk would
   refuse as a duplicate, a modification that does not count).

A commit outside those three cannot change the answer: it is a record of
another request, or a commit the full walk refuses (which does not untrust
the branch), never a request for T or a decision on one; and the full walk's only chain-breaking
refusals (a merge, a foreign root, an unauthorized policy change) are all
found in 1 and 2. The chosen commits are applied by the same
`TrustedBranch._apply` as the full walk, each at its own parent and
position; the view is `partial` and never saved as a snapshot.

2 and 3 come from path-limited walks: `git rev-list --first-parent TIP
-- policy.toml keys uses proposals requests approvals` (KNOWN_TOP_LEVEL),
run while the chain is read, then `... -- shards/<T[:2]>` (the target's
shard, in two halves of the chain at once on a long one), literal
pathspecs, which git answers from the top trees; and the changes of the
commits they list. A commit they do not list changes only
top-level names the format gives no meaning to and other shards (or names
under `shards/` that are no shard): `_apply` refuses such a commit whatever
it holds (in layout 2 a record counts only in its request's target's
shard), so it cannot touch T's requests. Of the listed commits, only one
whose every change is a record (either layout) of an id that is not a
candidate is skipped; anything else is replayed: a policy commit, a
proposal, a use record, a stray file in the target's shard or beside the
records. A quorum apply commit (trust/quorum.py) is judged against its
proposal's request and decisions: the ids of the proposals met are
candidates, and in layout 2 the shards of their proposal commits are walked
too. In layout 2 the walks list the policy chain and one 256th of the
records; a layout-1 branch (or the layout-1 part of a branch moved forward)
has all its records listed, every request file is read (no gpg) and one is a
candidate when it holds T's 40 hex digits, or a backslash (a TOML escape
could spell T otherwise).

Where an earlier run left a snapshot for the pinned root, the full walk
resumes from it and costs nothing more: it is used instead. `audit`,
`status` and the server hook always walk everything.
"""

from __future__ import annotations

import subprocess
from collections.abc import Set

from gitjit.errors import NotTrusted
from gitjit.git.branch import ApprovalsBranch, Change, cache_dir
from gitjit.git.read import MissingObject
from gitjit.model.layout import DECISIONS_DIR, REQUESTS_DIR, SHARDS_DIR, id_of, request_id_of, shard_of
from gitjit.model.limits import MAX_RECORD_BYTES
from gitjit.model.policy import KEYS_DIR, POLICY_FILE
from gitjit.model.records import USES_DIR
from gitjit.namedtuple import NamedTuple
from gitjit.trust.cache.snapshot import Snapshot
from gitjit.trust.quorum import PROPOSALS
from gitjit.trust.trusted import TrustedBranch

Walked = list[tuple[str, list[Change]]]  # commits in branch order, each with what it changes

# The top-level names TrustedBranch._apply gives a meaning to, `shards/` aside: a commit changing only
# other top-level paths (and other shards) is refused by the full walk whatever it holds, so it can
# never count for the target. A record kind with a new top-level name must be added here.
KNOWN_TOP_LEVEL = (POLICY_FILE, KEYS_DIR, USES_DIR, PROPOSALS, REQUESTS_DIR, DECISIONS_DIR)
_SPLIT_AT = 4096  # commits: from here the shard is walked in two halves at once


def load_for_target(branch: ApprovalsBranch, target: str, tip: str | None = None, root: str | None = None,
                    pin: bool = True) -> TrustedBranch:
    """A trusted view complete for every request of `target` (any action), and for the policy."""
    tip = tip or branch.read_tip()
    pinned = root or branch.pinned_root()
    if tip is None or (pinned and Snapshot.in_directory(cache_dir(branch)).head(pinned) is not None):
        return TrustedBranch.load(branch, tip=tip, root=root, pin=pin)
    chain = _chain(branch, tip, pinned, target)
    positions = {commit: index for index, commit in enumerate(chain.commits)}
    walked = list(branch.changes(_walked(chain.walks, tip, positions)))  # one diff for the next two looks
    proposals = _proposals(walked)
    extra = sorted({shard_of(commit) for commit in proposals.values()} - {shard_of(target)})
    if extra:  # a proposal's request and decisions are in the shard of its proposal commit
        walked = _with_shards(branch, tip, extra, walked, positions)
    root_commit = chain.commits[0]
    chosen = {root_commit} | _deciding_commits(branch, walked, target, set(proposals))
    order = sorted(chosen, key=positions.__getitem__)
    placed = {c: (chain.commits[positions[c] - 1] if positions[c] else None, positions[c]) for c in order}
    trusted = TrustedBranch(branch, root_commit)
    trusted.extend(order, placed)
    trusted.tip, trusted.count = tip, len(chain.commits)
    if pinned is None and pin:
        branch.set_config("gitjit.root", root_commit)
    return trusted


class _Chain(NamedTuple):
    commits: list[str]  # the first-parent chain, root first
    walks: list[subprocess.Popen[bytes]]  # git walking the paths that may decide (see the module docstring)


def _chain(branch: ApprovalsBranch, tip: str, pinned: str | None, target: str) -> _Chain:
    """The chain, read while git walks the top-level names; then git starts on the target's shard."""
    walks = [_walk(branch, [tip], [f":(literal){name}" for name in KNOWN_TOP_LEVEL])]
    try:
        commits = branch.first_parent_chain(tip)  # linear, down to a root: NotTrusted otherwise
        if pinned is not None and commits[0] != pinned:
            raise NotTrusted(f"the approvals branch starts at {commits[0][:12]}, not at the pinned root {pinned[:12]}")
        walks += _shard_walks(branch, commits, shard_of(target))
    except BaseException:
        _stop(walks)
        raise
    return _Chain(commits, walks)


def _with_shards(branch: ApprovalsBranch, tip: str, shards: list[str], walked: Walked,
                 positions: dict[str, int]) -> Walked:
    """`walked` and the commits that change any of `shards`, in branch order."""
    seen = {commit for commit, _ in walked}
    more = _walked([_walk(branch, [tip], [f":(literal){SHARDS_DIR}/{shard}" for shard in shards])], tip, positions)
    walked = walked + list(branch.changes([commit for commit in more if commit not in seen]))
    return sorted(walked, key=lambda item: positions[item[0]])


def _proposals(walked: Walked) -> dict[str, str]:
    """Quorum proposals (trust/quorum.py) among the commits walked: proposal id -> the commit adding its folder.

    An apply commit is judged against its proposal's request and decisions:
    they are replayed as the target's own records are.
    """
    found: dict[str, str] = {}
    for commit, changes in walked:
        for change in changes:
            parts = change.path.split("/")
            if parts[0] == PROPOSALS and len(parts) > 2:
                found.setdefault(parts[1], commit)
    return found


def _deciding_commits(branch: ApprovalsBranch, walked: Walked, target: str,
                      proposals: Set[str] = frozenset()) -> set[str]:
    """Of the commits walked (those outside shards/, and those of the target's shard), the ones that may decide.

    Skipped are only the commits whose every change is a record (request or
    decision, either layout) of an id that is not a candidate. Everything
    else is replayed: policy commits, files of any other kind (proposals,
    a future record kind, a stray file), and the records of the candidates,
    the request files that may be for `target`. Records of other shards need
    no look: an id ends with its shard, and a decision outside its request's
    shard is refused before it counts for anything.
    """
    candidates: set[str] = set(proposals)
    needle = target.encode()
    for _, changes in walked:
        for change in changes:
            rid = request_id_of(change.path)
            if rid is not None and rid not in candidates and change.new_id is not None and change.is_regular_file \
                    and _may_be_for(branch, change.new_id, needle):
                candidates.add(rid)
    chosen = set()
    for commit, changes in walked:
        truncated = getattr(changes, "total", len(changes)) > len(changes)  # too large to read whole
        if truncated or not changes or any(id_of(c.path) in candidates or id_of(c.path) is None for c in changes):
            chosen.add(commit)
    return chosen


def _shard_walks(branch: ApprovalsBranch, chain: list[str], shard: str) -> list[subprocess.Popen[bytes]]:
    """`git rev-list`s of the commits that change `shards/<shard>`: on a long chain, one per half.

    git reads two trees of 256 entries at every commit to follow one shard,
    the longest part of a cold verify; the halves run on two cores once the
    chain is known. The walk of the top-level names stays a process of its
    own: git scans a tree's entries until it is past every pathspec item, so
    top-level items beside `shards/<t2>` would make it match each of them
    against the entries of `shards/` at every commit.
    """
    specs = [f":(literal){SHARDS_DIR}/{shard}"]
    if len(chain) < _SPLIT_AT:
        return [_walk(branch, [chain[-1]], specs)]
    middle = chain[len(chain) // 2]
    return [_walk(branch, [chain[-1], f"^{middle}"], specs), _walk(branch, [middle], specs)]


def _walk(branch: ApprovalsBranch, revisions: list[str], specs: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        branch.reader.command("rev-list", "--first-parent", "--reverse", *revisions, "--", *specs),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _walked(walks: list[subprocess.Popen[bytes]], tip: str, positions: dict[str, int]) -> list[str]:
    found: set[str] = set()
    for walk in walks:
        out, _ = walk.communicate()
        if walk.returncode != 0:
            raise NotTrusted(f"cannot walk the history of {tip[:12]} (git rev-list failed)")
        found.update(out.decode().split())
    return sorted(found, key=positions.__getitem__)


def _stop(walks: list[subprocess.Popen[bytes]]) -> None:
    for walk in walks:
        walk.kill()
        walk.wait()


def _may_be_for(branch: ApprovalsBranch, blob_id: str, needle: bytes) -> bool:
    """Whether a request file may name the target: it holds its hex digits or a TOML escape.

    A file over the record size limit never counts; one that cannot be read
    is a candidate, so that applying it fails as the full walk does.
    """
    try:
        kind, size = branch.reader.info(blob_id)
        if kind != "blob" or size > MAX_RECORD_BYTES:
            return kind != "blob"
        data = branch.blob(blob_id)
    except (MissingObject, NotTrusted):
        return True
    return needle in data or b"\\" in data
