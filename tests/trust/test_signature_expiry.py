"""A signature's own expiry (OpenPGP signature expiration time) is judged at
verification time: GnuPG's verdict is kept between runs (snapshot, signature
cache), so the time-dependent part must be judged again on every run."""

from __future__ import annotations

import pytest
from helpers import GPG
from world import World, template_world, utc


@pytest.fixture(scope="module")
def template(tmp_path_factory, keys) -> World:
    return template_world(tmp_path_factory.mktemp("sigexpiry-template"), keys)


def test_an_expired_signature_stops_counting(template: World, tmp_path):
    world = template.copy(tmp_path)
    wrapper = tmp_path / "gpg-expiring-signatures"
    wrapper.write_text(f'#!/bin/sh\nexec "{GPG}" --default-sig-expire 1d "$@"\n')
    wrapper.chmod(0o755)
    with_expiry = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gpg.program", "GIT_CONFIG_VALUE_0": str(wrapper)}
    target = world.target()
    request_id = world.request("dave", "ops", target)
    world.hand_decision("bob", request_id, env=with_expiry)

    assert _code(world, "ops", target) == ""
    assert world.verdict("ops", target).approved
    # Two days on, well inside the action's 4d freshness, the signature itself has expired.
    later = utc(days=2)
    assert _code(world, "ops", target, at=later) == "expired-signature"
    assert not world.verdict("ops", target, at=later).approved


def _code(world, action: str, target: str, at=None) -> str:
    """The code of why bob's decision does not count ('' when it counts)."""
    verdict = world.verdict(action, target, at)
    return next(d.code for r in verdict.requests for d in r.decisions if d.person == "bob")
