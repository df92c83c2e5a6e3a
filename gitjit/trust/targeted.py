"""One question, answered from the commits that can decide it (docs/format.md, section 6.5).

`verify ACTION --target T` (and `verify-tag`, and `run`'s check) asks about
the requests for one target. What decides their verdicts is:

1. the chain itself: the pinned root, and a linear first-parent history
   (one `git rev-list --first-parent --parents`, no diffs, no gpg);
2. the policy chain: every commit that touches `policy.toml` or `keys/`
   (`git rev-list --first-parent TIP -- policy.toml keys`), each authorized by
   the policy before it exactly as the full walk does;
3. the requests for T and everything on their ids: every commit that
   touches a path of such an id, wherever the layout puts it (its request
   file, its decisions, a later copy of the id that the full walk would
   refuse as a duplicate, a modification that does not count).

A commit outside those three cannot change the answer: it adds one file
that is neither a request for T nor a decision on one (a refusal at most,
which does not untrust the branch), and the full walk's only chain-breaking
refusals (a merge, a foreign root, an unauthorized policy change) are all
found in 1 and 2. The chosen commits are applied by the same
`TrustedBranch._apply` as the full walk, each at its own parent and
position; the view is `partial` and never saved as a snapshot.

Where an earlier run left a snapshot for the pinned root, the full walk
resumes from it and costs nothing more: it is used instead. `audit`,
`status` and the server hook always walk everything.

Finding the requests for T: in the sharded layout (format revision 2)
they are under `shards/<T[:2]>/`, one 256th of the history, found by a
path-limited `git rev-list`. In the flat layout (revision 1) any request
file may be one, so every commit that adds one is diffed and its file
read (no gpg); a file is a candidate when it holds T's 40 hex digits, or a
backslash (a TOML escape could spell T otherwise).
"""

from __future__ import annotations

from gitjit.errors import NotTrusted
from gitjit.git.branch import ApprovalsBranch, cache_dir
from gitjit.git.read import MissingObject
from gitjit.model.layout import (
    REQUESTS_DIR,
    SHARDS_DIR,
    id_pathspecs,
    request_id_of,
    shard_of,
)
from gitjit.model.limits import MAX_RECORD_BYTES
from gitjit.model.policy import POLICY_FILE
from gitjit.trust.cache.snapshot import Snapshot
from gitjit.trust.trusted import TrustedBranch

POLICY_PATHS = (POLICY_FILE, "keys")
_PATHSPECS_PER_RUN = 400  # candidate ids' pathspecs per `git rev-list`


def load_for_target(branch: ApprovalsBranch, target: str, tip: str | None = None, root: str | None = None,
                    pin: bool = True) -> TrustedBranch:
    """A trusted view complete for every request of `target` (any action), and for the policy."""
    tip = tip or branch.read_tip()
    pinned = root or branch.pinned_root()
    if tip is None or (pinned and Snapshot.in_directory(cache_dir(branch)).head(pinned) is not None):
        return TrustedBranch.load(branch, tip=tip, root=root, pin=pin)
    chain = branch.first_parent_chain(tip)  # linear, down to a root: NotTrusted otherwise
    if pinned is not None and chain[0] != pinned:
        raise NotTrusted(f"the approvals branch starts at {chain[0][:12]}, not at the pinned root {pinned[:12]}")
    positions = {commit: index for index, commit in enumerate(chain)}
    chosen = {chain[0]} | set(_touching(branch, tip, [f":(literal){p}" for p in POLICY_PATHS]))
    ids = _candidate_ids(branch, tip, target)
    for start in range(0, len(ids), _PATHSPECS_PER_RUN):
        specs = [spec for rid in ids[start:start + _PATHSPECS_PER_RUN] for spec in id_pathspecs(rid)]
        chosen |= set(_touching(branch, tip, specs))
    order = sorted(chosen, key=positions.__getitem__)
    placed = {c: (chain[positions[c] - 1] if positions[c] else None, positions[c]) for c in order}
    trusted = TrustedBranch(branch, chain[0])
    trusted.extend(order, placed)
    trusted.tip, trusted.count = tip, len(chain)
    if pinned is None and pin:
        branch.set_config("gitjit.root", chain[0])
    return trusted


def _touching(branch: ApprovalsBranch, tip: str, pathspecs: list[str]) -> list[str]:
    """The commits of `tip`'s first-parent chain that change a path under `pathspecs`."""
    if not pathspecs:
        return []
    stdin = "".join(f"{spec}\n" for spec in pathspecs).encode()
    result = branch.reader.git("rev-list", "--first-parent", "--stdin", tip, "--", input=b"--\n" + stdin, check=False)
    if result.returncode != 0:
        raise NotTrusted(f"cannot walk the history of {tip[:12]} (git rev-list failed)")
    return result.stdout.decode().split()


def _candidate_ids(branch: ApprovalsBranch, tip: str, target: str) -> list[str]:
    """Ids of request files, in either layout, that may be a request for `target`."""
    flat = [f":(literal){REQUESTS_DIR}"]
    sharded = [f":(literal){SHARDS_DIR}/{shard_of(target)}/{REQUESTS_DIR}"]
    found: dict[str, None] = {}
    needle = target.encode()
    for specs in (flat, sharded):
        commits = _touching(branch, tip, specs)
        for _, changes in branch.changes(commits):
            for change in changes:
                rid = request_id_of(change.path)
                if rid is None or rid in found or change.new_id is None or not change.is_regular_file:
                    continue
                if _may_be_for(branch, change.new_id, needle):
                    found[rid] = None
    return list(found)


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
