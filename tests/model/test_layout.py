"""Record paths in both layouts (docs/format.md, section 2.4), and the trees writers build for them."""

from __future__ import annotations

import pygit2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitjit.git.trees import tree_with_files
from gitjit.model import layout as L

T = "9b23d2bd6f98d5388fc42f61f0c3ee42c6a8f3fa"


def test_paths_in_each_layout():
    assert L.request_path("r1", T, L.FLAT) == "requests/r1.toml"
    assert L.decision_path("r1", "bob", T, L.FLAT) == "approvals/r1/bob.toml"
    assert L.request_path("r1", T, L.SHARDED) == "shards/9b/requests/r1.toml"
    assert L.decision_path("r1", "bob", T, L.SHARDED) == "shards/9b/approvals/r1/bob.toml"


@pytest.mark.parametrize("path, layout, expected", [
    ("requests/r1.toml", 1, ("r1", None, None)),
    ("approvals/r1/bob.toml", 1, ("r1", "bob", None)),
    ("shards/9b/requests/r1-9b.toml", 2, ("r1-9b", None, "9b")),
    ("shards/9b/requests/r1.toml", 2, None),  # in layout 2 an id ends with its shard
    ("shards/9b/approvals/r1/bob.toml", 2, ("r1", "bob", "9b")),  # a decision's shard is its request's
    ("shards/9b/requests/r1.toml", 1, None),  # the other layout's path
    ("requests/r1.toml", 2, None),
    ("shards/9B/requests/r1.toml", 2, None),  # upper-case hex is not a shard
    ("shards/9/requests/r1.toml", 2, None),
    ("shards/9bc/requests/r1.toml", 2, None),
    ("shards/zz/requests/r1.toml", 2, None),
    ("shards/9b/requests/x/r1.toml", 2, None),
    ("shards/9b/notes/r1.toml", 2, None),
    ("requests/r1.txt", 1, None),
    ("approvals/r1/bob/extra.toml", 1, None),
    ("notes/x.toml", 1, None),
])
def test_record_path_reads_only_the_layout_in_force(path, layout, expected):
    found = L.record_path(path, layout)
    assert (tuple(found) if found else None) == expected


def test_shard_problem_names_the_right_shard():
    assert L.shard_problem(L.record_path("shards/9b/requests/r1-9b.toml", 2), T) is None
    assert "shards/9b/" in L.shard_problem(L.record_path("shards/00/requests/r1-00.toml", 2), T)
    assert L.shard_problem(L.record_path("requests/r1.toml", 1), T) is None  # flat: no shard


def test_request_id_of_reads_both_layouts_and_only_valid_names():
    assert L.request_id_of("requests/r1.toml") == "r1"
    assert L.request_id_of("shards/00/requests/r1-00.toml") == "r1-00"
    assert L.request_id_of("shards/00/requests/r1.toml") is None
    assert L.request_id_of("requests/R1.toml") is None
    assert L.request_id_of("approvals/r1/bob.toml") is None


def test_id_of_names_the_request_of_any_record_path():
    assert L.id_of("requests/r1.toml") == "r1"
    assert L.id_of("approvals/r1/bob.toml") == "r1"
    assert L.id_of("shards/9b/approvals/r1/bob.toml") == "r1"
    assert L.id_of("shards/9b/requests/r1-9b.toml") == "r1-9b"
    assert L.id_of("notes/r1.toml") is None


def test_new_ids_end_with_their_shard_in_layout_2():
    from datetime import UTC, datetime

    from gitjit.commands.write import new_request_id

    now = datetime(2026, 11, 30, tzinfo=UTC)
    sharded = new_request_id("a" * 63, now, T, L.SHARDED)
    flat = new_request_id("a" * 63, now, T, L.FLAT)
    assert sharded.endswith("9b") and L.record_path(L.request_path(sharded, T, 2), 2) is not None
    assert len(sharded) == len(flat) <= 64


name = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)


@given(files=st.dictionaries(st.builds(lambda shard, rid: f"shards/{shard}/requests/{rid}.toml",
                                       st.from_regex(r"[0-9a-f]{2}", fullmatch=True), name),
                             st.binary(max_size=20), min_size=1, max_size=8),
       more=st.dictionaries(st.builds(lambda rid: f"requests/{rid}.toml", name), st.binary(max_size=20), max_size=4))
def test_tree_builders_write_the_tree_an_index_would(tmp_path_factory, files, more):
    """Adding records with tree builders gives byte for byte the tree git's index gives."""
    repo = pygit2.init_repository(str(tmp_path_factory.mktemp("trees")), bare=True)
    base = repo[tree_with_files(repo, None, {"policy.toml": b"gitjit = 1\n", **more})]
    built = tree_with_files(repo, base, files)
    index = pygit2.Index()
    index.read_tree(base)
    for path, data in files.items():
        index.add(pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB))
    assert built == str(index.write_tree(repo))
