"""Admin quorum for policy changes (docs/format.md, section 14): real keys, the real CLI in real
clones, and real pushes into a server whose hook was installed by `gitjit hook install`.

Every test starts from test_hook's golden server, then alice (its only admin) makes alice, bob and
carol admins with `threshold = 2`: a change she signs alone, as before, since the old policy needs one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import Keys, git, make_bare, make_clone
from hookkit import APPROVALS, World, accepted, copy_world, policy_toml, refused

ADMINS = 'people = ["alice", "bob", "carol"]\n'


def quorum_policy(keys: Keys, threshold: int = 2, extra: str = "") -> str:
    text = policy_toml(keys, admins=("alice", "bob", "carol"))
    assert ADMINS in text
    return text.replace(ADMINS, ADMINS + f"threshold = {threshold}\n") + extra


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> World:
    world = copy_world(golden, tmp_path, keys)
    world.writer.commit({"policy.toml": quorum_policy(keys)}, "gitjit: three admins, two must sign")
    accepted(world.push(world.alice, "approvals"))
    return world


def clone(server: World, person: str):
    c = server.clone(person)
    c.git("config", "gitjit.root", server.alice.git("rev-list", "--max-parents=0", "approvals").stdout.strip())
    return c


def fetch(c) -> None:
    c.git("fetch", "-q", "origin")


def sync(server: World) -> None:
    """The hand-writer's worktree at the server's approvals tip."""
    server.writer.git("fetch", "-q", server.url, "approvals")
    server.writer.git("reset", "-q", "--hard", "FETCH_HEAD")


def server_policy(server: World) -> str:
    return git("show", f"{APPROVALS}:policy.toml", cwd=server.server, env=server.keys.env).stdout


def propose(server: World, tmp_path: Path, extra: str = "\n# erin joins later\n", threshold: int = 2):
    alice = clone(server, "alice")
    new = tmp_path / "new-policy.toml"
    new.write_text(quorum_policy(server.keys, threshold, extra))
    proc = alice.gitjit("policy", "propose", "--policy", str(new), "--reason", "a comment line", "--push", check=0)
    return alice, proc.stdout.strip(), new.read_text()


def test_one_admin_alone_is_refused_by_the_hook_and_untrusts_a_mirror(server: World, tmp_path: Path, keys: Keys):
    before = server.refs()
    server.writer.commit({"policy.toml": quorum_policy(keys) + "\n# alice alone\n"}, "gitjit: alice alone")
    line = refused(server.push(server.alice, "approvals"), APPROVALS, "signed by alice alone, the policy needs 2 admins")
    assert "gitjit policy propose" in line and server.refs() == before
    # a mirror without the hook takes it; every verifier reading the mirror refuses the branch
    mirror = make_bare(tmp_path / "mirror.git", keys.env)
    server.alice.git("push", "-q", str(mirror), "main", "approvals")
    dave = make_clone(tmp_path, keys["dave"], keys, origin=mirror)
    dave.git("branch", "approvals", "origin/approvals")
    proc = dave.gitjit("verify", "deploy-prod", check=1)
    assert "not trusted" in proc.stderr and "signed by alice alone" in proc.stderr
    audit = dave.gitjit("audit", check=None)
    assert audit.returncode != 0


def test_propose_approve_apply(server: World, tmp_path: Path):
    alice, proposal, new_text = propose(server, tmp_path)
    assert proposal.startswith("policy-")
    bob = clone(server, "bob")
    status = bob.gitjit("status", proposal, check=0).stdout
    assert "+# erin joins later" in status and "--- a/policy.toml" in status
    assert "admins 0 of 2: needs two of alice, bob, carol" in status
    early = alice.gitjit("policy", "apply", proposal, check=1)
    assert f"proposal {proposal} has 1 of 2 admin signatures (alice, yours included): needs 1 more of bob, carol" \
        in early.stderr
    bob.gitjit("approve", proposal, "--push", check=0)
    fetch(alice)
    out = alice.gitjit("policy", "apply", proposal, "--push", check=0).stdout
    assert out.startswith(f"applied {proposal} in ") and "signed for by alice, bob (pushed)" in out
    assert server_policy(server) == new_text
    dave = clone(server, "dave")
    dave.gitjit("status", check=0)  # the branch authenticates with the applied change
    dave.gitjit("audit", check=0)  # and the whole history, proposal commits included, verifies
    again = alice.gitjit("policy", "apply", proposal, check=2)
    assert "made under an earlier policy" in again.stderr


def test_apply_with_other_bytes_than_approved_is_refused(server: World, tmp_path: Path, keys: Keys):
    alice, proposal, _ = propose(server, tmp_path)
    bob = clone(server, "bob")
    bob.gitjit("approve", proposal, "--push", check=0)
    sync(server)
    server.writer.commit({"policy.toml": quorum_policy(keys) + "\n# not what bob approved\n"},
                         f"gitjit: apply policy proposal {proposal}\n\nGitjit-Proposal: {proposal}")
    before = server.refs()
    refused(server.push(server.alice, "approvals"), APPROVALS, f"are not the bytes of proposal {proposal}")
    assert server.refs() == before


def test_a_rejection_by_one_admin_blocks(server: World, tmp_path: Path, keys: Keys):
    alice, proposal, new_text = propose(server, tmp_path)
    clone(server, "bob").gitjit("approve", proposal, "--push", check=0)
    clone(server, "carol").gitjit("reject", proposal, "--comment", "not now", "--push", check=0)
    fetch(alice)
    proc = alice.gitjit("policy", "apply", proposal, check=1)
    assert f"proposal {proposal} is rejected by carol" in proc.stderr
    # the same change made by hand, naming the proposal, is refused by the hook too
    sync(server)
    server.writer.commit({"policy.toml": new_text}, f"apply\n\nGitjit-Proposal: {proposal}")
    refused(server.push(server.alice, "approvals"), APPROVALS, f"proposal {proposal} is rejected by carol")


def test_changing_the_threshold_needs_the_old_quorum(server: World, tmp_path: Path):
    alice, proposal, _ = propose(server, tmp_path, extra="", threshold=3)
    clone(server, "bob").gitjit("approve", proposal, "--push", check=0)
    fetch(alice)
    alice.gitjit("policy", "apply", proposal, "--push", check=0)  # the old quorum, 2, suffices
    second = tmp_path / "second"
    second.mkdir()
    alice, proposal, _ = propose(server, second, extra="\n# under three\n", threshold=3)
    clone(server, "bob").gitjit("approve", proposal, "--push", check=0)
    fetch(alice)
    proc = alice.gitjit("policy", "apply", proposal, check=1)
    assert "has 2 of 3 admin signatures" in proc.stderr


def test_two_admins_apply_at_once(server: World, tmp_path: Path):
    alice, proposal, new_text = propose(server, tmp_path)
    carol = clone(server, "carol")
    carol.gitjit("approve", proposal, "--push", check=0)
    bob = clone(server, "bob")
    fetch(alice)
    results = {}

    def run(name, c):
        results[name] = c.gitjit("policy", "apply", proposal, "--push", check=None)

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in (("alice", alice), ("bob", bob))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.returncode for r in results.values())
    assert codes[0] == 0 and codes[1] != 0, {n: (r.returncode, r.stderr) for n, r in results.items()}
    assert server_policy(server) == new_text
    log = git("log", "--format=%s", APPROVALS, cwd=server.server, env=server.keys.env).stdout
    assert log.count(f"gitjit: apply policy proposal {proposal}") == 1
    clone(server, "dave").gitjit("status", check=0)


HOSTILE_PROPOSALS = {
    "outside-the-layout": ({"proposals/p1/evil.txt": "x"}, "outside a proposal's layout"),
    "two-proposals": ({"proposals/p1/policy.toml": "x", "proposals/p2/policy.toml": "y"}, "exactly one proposals/"),
    "no-policy": ({"proposals/p1/keys/bob.asc": "x"}, "has no policy.toml"),
    "bad-id": ({"proposals/P..1/policy.toml": "x"}, "not a valid proposal id"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PROPOSALS))
def test_hostile_proposal_commits_are_refused(server: World, name: str):
    files, expected = HOSTILE_PROPOSALS[name]
    server.writer.commit(files, "proposal by hand")
    refused(server.push(server.alice, "approvals"), APPROVALS, expected)


def test_an_apply_naming_a_request_that_is_no_proposal_is_refused(server: World, keys: Keys):
    target = server.alice.commit_file("app.txt", "1\n")
    request_id = server.writer.request(target)
    server.writer.approve_by(keys, request_id, "bob", "carol")
    server.writer.commit({"policy.toml": quorum_policy(keys) + "\n# sneaky\n"}, f"x\n\nGitjit-Proposal: {request_id}")
    refused(server.push(server.alice, "main", "approvals"), APPROVALS, "which is not a policy proposal")


def test_without_a_quorum_nothing_changes(golden: Path, tmp_path: Path, keys: Keys):
    """The golden branch (no admins.threshold) takes a change signed by its one admin, as before."""
    world = copy_world(golden, tmp_path, keys)
    world.writer.commit({"policy.toml": policy_toml(keys) + "\n# one admin\n"}, "gitjit: a comment")
    accepted(world.push(world.alice, "approvals"))
    proc = world.alice.gitjit("policy", "propose", "--reason", "x", check=2)
    assert "admins.threshold is 1" in proc.stderr


def test_an_applied_proposal_cannot_be_replayed_over_a_later_change(server: World, tmp_path: Path, keys: Keys):
    first_dir, second_dir = tmp_path / "p1", tmp_path / "p2"
    first_dir.mkdir()
    second_dir.mkdir()
    alice, first, first_text = propose(server, first_dir, extra="\n# first\n")
    clone(server, "bob").gitjit("approve", first, "--push", check=0)
    fetch(alice)
    alice.gitjit("policy", "apply", first, "--push", check=0)
    alice, second, second_text = propose(server, second_dir, extra="\n# second\n")
    clone(server, "carol").gitjit("approve", second, "--push", check=0)
    fetch(alice)
    alice.gitjit("policy", "apply", second, "--push", check=0)
    # the first proposal still has two admin signatures: replaying it would revert the second change
    sync(server)
    server.writer.commit({"policy.toml": first_text}, f"replay\n\nGitjit-Proposal: {first}")
    refused(server.push(server.alice, "approvals"), APPROVALS, f"proposal {first} was made under the policy of")
    assert server_policy(server) == second_text


@pytest.mark.parametrize("layout", [1, 2])
def test_a_fresh_clone_replays_an_applied_proposal_in_targeted_verification(golden: Path, tmp_path: Path,
                                                                             keys: Keys, layout: int):
    """`verify` in a fresh clone (no snapshot: trust/targeted.py) replays the proposal, its request,
    the admins' decisions and the apply commit, in either layout (in layout 2 the proposal's records
    are in the shard of its proposal commit, not the target's)."""
    from gitjit.git.branch import ApprovalsBranch, open_repository
    from gitjit.trust.targeted import load_for_target
    from gitjit.trust.trusted import TrustedBranch

    world = copy_world(golden, tmp_path, keys)
    text = quorum_policy(keys).replace("gitjit = 1\n", f"gitjit = 1\nlayout = {layout}\n", 1)
    world.writer.commit({"policy.toml": text}, "gitjit: three admins, two must sign")
    accepted(world.push(world.alice, "approvals"))
    alice = clone(world, "alice")
    new = tmp_path / "new-policy.toml"
    new.write_text(text + "\n# erin joins later\n")
    proposal = alice.gitjit("policy", "propose", "--policy", str(new), "--reason", "why", "--push",
                            check=0).stdout.strip()
    files = git("ls-tree", "-r", "--name-only", APPROVALS, cwd=world.server, env=keys.env).stdout.split()
    request_file = next(f for f in files if f.endswith(f"/{proposal}.toml"))
    if layout == 2:  # sharded by its target, the proposal commit, whose id it ends with
        proposal_commit = git("rev-parse", f"{APPROVALS}~1", cwd=world.server, env=keys.env).stdout.strip()
        assert request_file == f"shards/{proposal_commit[:2]}/requests/{proposal}.toml"
        assert proposal.endswith(proposal_commit[:2])
    else:
        assert request_file == f"requests/{proposal}.toml"
    clone(world, "bob").gitjit("approve", proposal, "--push", check=0)
    fetch(alice)
    alice.gitjit("policy", "apply", proposal, "--push", check=0)
    applied = git("rev-parse", APPROVALS, cwd=world.server, env=keys.env).stdout.strip()
    # a deploy request after the change, approved by two approvers
    dave = clone(world, "dave")
    target = dave.git("rev-parse", "HEAD").stdout.strip()
    rid = dave.gitjit("request", "deploy-prod", "--target", target, "--push", check=0).stdout.strip()
    for person in ("alice", "bob"):
        clone(world, person).gitjit("approve", rid, "--push", check=0)
    fresh = clone(world, "carol")
    fresh.git("branch", "approvals", "origin/approvals")
    proc = fresh.gitjit("verify", "deploy-prod", "--target", target, "--json", check=0)
    assert '"approved": true' in proc.stdout
    branch = ApprovalsBranch(open_repository(str(fresh.path)))
    view = load_for_target(branch, target)
    assert view.partial and applied in [commit for commit, _ in view.policy_changes]
    assert "# erin joins later" in branch.blob(branch.tree(branch.commit(applied).tree)["policy.toml"].id).decode()
    full = TrustedBranch.load(branch)
    assert view.policy_changes == full.policy_changes and view.tip == full.tip
