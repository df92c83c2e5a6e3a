"""`gitjit verify-tag TAG`: TAG is a tag name, `refs/tags/TAG` exactly, never a revision (docs/format.md, 8.1).

Through the real CLI on a World (tests/world.py): real keys, real repository.
"""

from __future__ import annotations

import pytest
from world import World, template_world


@pytest.fixture(scope="module")
def template(keys, tmp_path_factory) -> World:
    world = template_world(tmp_path_factory.mktemp("verify-tag"), keys)
    # v2.0.0 is approved for deploy; its parent is not
    parent = world.target("parent")
    world.git("update-ref", "refs/heads/parent", parent)
    release = world.git("commit-tree", "HEAD^{tree}", "-p", parent, "-m", "release 2.0.0").stdout.strip()
    world.git("tag", "-a", "-m", "release", "v2.0.0", release)
    rid = world.request("carol", "deploy", release)
    world.approve("alice", rid)
    world.approve("bob", rid)
    return world


@pytest.fixture
def world(template, tmp_path) -> World:
    return template.copy(tmp_path)


def bad_tag(world: World, tag: str, message: str) -> None:
    """Exit 2, one line naming the problem, nothing written."""
    before = world.snapshot()
    proc = world.gitjit("erin", "verify-tag", tag, check=2)
    assert proc.stdout == ""
    assert proc.stderr == f"gitjit: {message}\n"
    assert world.snapshot() == before


def test_an_approved_tag_is_judged_at_the_commit_it_points_at(world):
    data = world.json("erin", "verify-tag", "v2.0.0")
    assert data["approved"] is True
    assert data["target"] == world.rev("v2.0.0^{commit}")
    assert world.json("erin", "verify-tag", "refs/tags/v2.0.0")["approved"] is True


def test_a_revision_expression_is_not_a_tag(world):
    """'v2.0.0~1' named the parent commit to a revision parser: it is not a tag name."""
    bad_tag(world, "v2.0.0~1", "no tag v2.0.0~1 (refs/tags/v2.0.0~1 is not a valid ref name)")
    bad_tag(world, "v2.0.0^{commit}", "no tag v2.0.0^{commit} (refs/tags/v2.0.0^{commit} is not a valid ref name)")


def test_a_describe_name_of_a_tag_that_exists_nowhere_is_not_approved(world):
    """`v9.0.0-1-g<abbrev>` resolves to the abbreviated commit for git rev-parse; with that
    commit approved it read as "approved" for a tag that does not exist."""
    abbrev = world.rev("v2.0.0^{commit}")[:10]
    name = f"v9.0.0-1-g{abbrev}"
    assert world.git("rev-parse", "--verify", "--quiet", name, check=False).returncode == 0  # git resolves it
    bad_tag(world, name, f"no tag {name} (refs/tags/{name} does not exist)")


def test_a_branch_or_a_commit_id_with_a_tag_like_name_is_not_a_tag(world):
    world.git("update-ref", "refs/heads/v3.0", world.rev("v2.0.0^{commit}"))
    bad_tag(world, "v3.0", "no tag v3.0 (refs/tags/v3.0 does not exist)")
    commit = world.rev("v2.0.0^{commit}")
    bad_tag(world, commit, f"no tag {commit} (refs/tags/{commit} does not exist)")


def test_a_tag_below_the_name_does_not_stand_in_for_it(world):
    """for-each-ref also lists refs/tags/v4/...: only refs/tags/v4 itself counts."""
    world.git("update-ref", "refs/tags/v4/inner", world.rev("v2.0.0^{commit}"))
    bad_tag(world, "v4", "no tag v4 (refs/tags/v4 does not exist)")
