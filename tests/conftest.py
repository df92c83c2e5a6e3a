"""Shared fixtures: see tests/helpers.py for the objects they return."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import (  # noqa: E402
    Clone,
    GitDaemon,
    Keys,
    Person,
    destroy_keys,
    generate_keys,
    make_bare,
    make_clone,
)
from hookkit import World, copy_world, make_golden  # noqa: E402


@pytest.fixture(scope="session")
def keys() -> Keys:
    """One GnuPG home for the whole session with keys for alice, bob, carol,
    dave, erin, shortlived, revoked and subby (no passphrases)."""
    k = generate_keys()
    yield k
    destroy_keys(k)


@pytest.fixture
def repo_for(tmp_path: Path, keys: Keys):
    """Factory: repo_for("alice") -> a new repo acting as alice, with one
    commit on main; repo_for("bob", origin=url_or_path) -> a clone of origin."""

    def make(person: str | Person, origin: Path | str | None = None) -> Clone:
        if isinstance(person, str):
            person = keys.people[person]
        return make_clone(tmp_path, person, keys, origin=origin)

    return make


@pytest.fixture
def bare_remote(tmp_path: Path, keys: Keys) -> Path:
    """An empty bare repository (default branch main) at tmp_path/remote.git."""
    return make_bare(tmp_path / "remote.git", keys.env)


@pytest.fixture
def git_daemon(tmp_path: Path, keys: Keys):
    """A git daemon serving tmp_path (read + push); yields the URL base, e.g.
    git_daemon + "remote.git" reaches the bare_remote fixture."""
    with GitDaemon(tmp_path, keys.env) as url:
        yield url


@pytest.fixture(scope="session")
def golden(tmp_path_factory, keys: Keys) -> Path:
    """A server with the hook and alice's clone with the approvals branch, both pushed."""
    return make_golden(tmp_path_factory.mktemp("golden"), keys)


@pytest.fixture(params=["file", "daemon"])
def world(request, golden: Path, tmp_path: Path, keys: Keys) -> World:
    url = None if request.param == "file" else request.getfixturevalue("git_daemon") + "server.git"
    return copy_world(golden, tmp_path, keys, url)
