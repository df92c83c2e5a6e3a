"""The snapshot of the trusted view (gitjit/trust/cache/snapshot.py): a resumed view must
judge exactly as a view authenticated from the root, and a snapshot that does
not fit (another line of history, damaged) must never be trusted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pygit2
import pytest
from world import BRANCH, World, template_world, utc

from gitjit.cli.render_json import plain
from gitjit.errors import NotTrusted
from gitjit.git.branch import ApprovalsBranch
from gitjit.trust.cache.snapshot import FILE_NAME, Snapshot
from gitjit.trust.trusted import TrustedBranch
from gitjit.trust.verdicts import judge_request


@pytest.fixture(scope="module")
def template(tmp_path_factory, keys) -> World:
    return template_world(tmp_path_factory.mktemp("snapshot-template"), keys)


@pytest.fixture
def world(template: World, tmp_path: Path) -> World:
    return template.copy(tmp_path)


def branch_of(world: World) -> ApprovalsBranch:
    return ApprovalsBranch(pygit2.Repository(str(world.path)))


def snapshot_file(world: World) -> Path:
    return world.path / ".git" / "gitjit" / FILE_NAME


def fresh(world: World, tip: str | None = None) -> TrustedBranch:
    """The view authenticated from the root, ignoring and not touching any snapshot."""
    branch = branch_of(world)
    view = TrustedBranch(branch, branch.pinned_root())
    view.extend(branch.first_parent_chain(tip or world.tip()))
    return view


def resumed(world: World, tip: str | None = None) -> TrustedBranch:
    return TrustedBranch.load(branch_of(world), tip=tip)


def judged(view: TrustedBranch, at) -> dict:
    """Everything a verifier reports, as plain data."""
    return {
        "tip": view.tip,
        "count": view.count,
        "requests": {e.request.id: plain(judge_request(view, e, at)) for e in view.requests.values()},
        "refusals": [(r.commit, r.reason) for r in view.refusals],
        "policy_changes": [tuple(p) for p in view.policy_changes],
        "policy": view.policy,
    }


def populate(world: World) -> dict[str, str]:
    """Requests, counted and uncounted decisions, a refusal: a bit of everything."""
    target = world.target()
    first = world.request("dave", "deploy", target)
    world.approve("alice", first)
    world.hand_decision("bob", first, sign=False)  # unsigned: does not count, is refused
    second = world.request("carol", "ops", world.target())
    world.approve("bob", second)
    return {"deploy": first, "ops": second, "target": target}


def test_resumed_view_judges_like_a_fresh_one(world: World):
    ids = populate(world)
    resumed(world)  # writes the snapshot
    assert snapshot_file(world).exists()
    head = Snapshot.in_directory(snapshot_file(world).parent).head(world.root())
    assert head is not None and head.tip == world.tip()

    # Commits after the snapshot: the next load resumes and extends.
    world.approve("carol", ids["deploy"])
    world.hand_decision("erin", ids["ops"])  # erin is not in the policy
    third = world.request("bob", "deploy", world.target())
    at = utc()
    view = resumed(world)
    # Each CLI write above also resumed and saved; this load continues from
    # the last of those snapshots and applies only the newest commit itself.
    assert view.resumed_from is not None and view.resumed_from.tip != world.tip()
    assert view.applied == [world.tip()]
    assert judged(view, at) == judged(fresh(world), at)
    assert view.requests[ids["deploy"]].request.id == ids["deploy"]
    assert third in view.requests
    assert [e.request.id for e in view.requests_for("deploy", ids["target"])] == [ids["deploy"]]
    assert judge_request(view, view.requests[ids["deploy"]], at).state == "approved"


def test_snapshot_at_the_tip_reads_only_what_it_needs(world: World):
    ids = populate(world)
    resumed(world)
    view = resumed(world)
    # Nothing was applied by this process: everything came from the snapshot.
    assert view.applied == []
    assert [e.request.id for e in view.requests_for("deploy", ids["target"])] == [ids["deploy"]]
    at = utc()
    assert judged(view, at) == judged(fresh(world), at)


def test_a_tip_older_than_the_snapshot_is_cut_at_its_position(world: World):
    ids = populate(world)
    older = world.tip()
    world.approve("carol", ids["deploy"])
    late = world.request("bob", "ops", world.target())
    resumed(world)  # snapshot at the newest tip
    view = resumed(world, tip=older)
    assert view.tip == older
    assert late not in view.requests
    at = utc()
    assert judged(view, at) == judged(fresh(world, older), at)


def test_a_snapshot_of_another_line_of_history_is_used_only_up_to_where_the_lines_meet(world: World):
    """A snapshot saved for a tip that never landed (a push that lost a race, a local commit the
    server refused): the view is cut back to the common ancestor and extended from there."""
    ids = populate(world)
    base = world.tip()
    abandoned = world.request("bob", "ops", world.target())
    resumed(world)  # snapshot includes `abandoned`
    kept = snapshot_file(world).read_bytes()
    world.git("update-ref", BRANCH, base)  # the branch is rewound locally ...
    other = world.request("carol", "ops", world.target())  # ... and goes another way
    snapshot_file(world).write_bytes(kept)  # (that write saved a snapshot of its own: put the old one back)
    view = resumed(world)
    assert view.resumed_from is not None and view.resumed_from.tip != world.tip()  # the abandoned line's snapshot
    assert view.applied == [world.tip()]  # only the new line's own commit was applied
    assert abandoned not in view.requests
    assert other in view.requests
    at = utc()
    assert judged(view, at) == judged(fresh(world), at)
    assert ids["deploy"] in view.requests


def test_a_damaged_snapshot_is_ignored(world: World):
    populate(world)
    resumed(world)
    snapshot_file(world).write_bytes(b"this is not a database" * 100)
    at = utc()
    view = resumed(world)
    assert view.resumed_from is None
    assert judged(view, at) == judged(fresh(world), at)


@pytest.mark.parametrize("table, damage", [("requests", "{cut short"), ("requests", '{"id": "x"}'),
                                           ("requests", "[]"), ("decisions", "[]"), ("decisions", "null"),
                                           ("decisions", '{"person": 7}')])
def test_a_row_that_does_not_read_back_fails_one_check_closed_and_the_next_walks_afresh(world: World, table: str,
                                                                                       damage: str):
    """A damaged row (a disk fault, a bug) met deep inside a verdict: that check fails closed (exit 1
    where it would have been approved) on one line naming the snapshot, which is set aside; the next
    check walks the branch and is right again."""
    populate(world)
    target = world.target()
    world.approve("bob", world.request("carol", "ops", target))  # ops needs one approval
    check = ("verify", "ops", "--target", target)
    before = world.gitjit("bob", *check, check=0)  # pins the root, writes the snapshot
    assert snapshot_file(world).exists()
    with sqlite3.connect(snapshot_file(world)) as db:
        assert db.execute(f"UPDATE {table} SET row = ?", (damage,)).rowcount >= 2
    failed = world.gitjit("bob", *check, check=1)
    assert "does not read back" in failed.stderr and "set aside" in failed.stderr, failed.stderr
    assert failed.stderr.count("\n") == 1 and failed.stdout == ""
    assert not snapshot_file(world).exists()
    again = world.gitjit("bob", *check, check=0)
    assert (again.stdout, again.stderr) == (before.stdout, before.stderr)


def test_an_unauthorized_policy_change_after_the_snapshot_is_caught(world: World):
    populate(world)
    resumed(world)
    world.edit_policy("bob", lambda text: text.replace("threshold = 2", "threshold = 1"))
    with pytest.raises(NotTrusted):
        resumed(world)


def kept_policy_documents(world: World) -> dict[str, str]:
    import sqlite3

    with sqlite3.connect(snapshot_file(world)) as db:
        return dict(db.execute("SELECT blob_id, document FROM policy_documents"))


def test_the_policy_is_read_back_from_the_snapshot_without_toml(world: World):
    populate(world)
    resumed(world)
    policy_blob = world.blob_id("policy.toml")
    assert policy_blob in kept_policy_documents(world)
    view = resumed(world)
    assert view.applied == [] and view.policies_parsed == []  # no TOML was parsed for it
    assert view.policy == fresh(world).policy


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"gitjit": 1}', '{"gitjit": 1, "admins": {"people": []}}'])
def test_a_damaged_policy_document_is_parsed_again_from_its_blob(world: World, damage: str):
    import sqlite3

    populate(world)
    resumed(world)
    with sqlite3.connect(snapshot_file(world)) as db:
        db.execute("UPDATE policy_documents SET document = ?", (damage,))
    at = utc()
    view = resumed(world)
    assert view.resumed_from is not None  # the rest of the snapshot is still used
    assert world.blob_id("policy.toml") in view.policies_parsed  # the blob was parsed
    assert judged(view, at) == judged(fresh(world), at)


def test_the_checker_a_view_is_given_decides_every_signature_from_the_root_and_after_a_snapshot(world, tmp_path):
    """The signature checker is the view's only way to GnuPG: one that trusts no signature
    leaves the root untrusted, and the commit a resumed view applies is refused by it."""
    from gitjit.reasons import GPG_FAILED, UNAUTHORIZED_POLICY_CHANGE, Reason
    from gitjit.trust.cache.signatures import SignatureCache
    from gitjit.trust.signature_checks import SignatureChecker
    from gitjit.trust.signatures import SignatureCheck

    class Refusing(SignatureChecker):
        def __init__(self):  # an empty cache of its own: no verdict an earlier run kept is reused
            super().__init__(open_cache=lambda directory: SignatureCache(tmp_path / "signatures.jsonl"))
            self.asked: list[str] = []

        def verify_one(self, job):
            self.asked.append(job[0])
            return SignatureCheck.refused(Reason(GPG_FAILED, "refused by the test's checker"))

    ids = populate(world)
    snapshot_file(world).unlink()  # the CLI's writes saved one: walk from the root
    checker = Refusing()
    with pytest.raises(NotTrusted) as raised:
        TrustedBranch.load(branch_of(world), checker=checker, save=False)
    assert raised.value.code == UNAUTHORIZED_POLICY_CHANGE and "refused by the test's checker" in str(raised.value)
    assert checker.asked == [world.root()]  # and it was asked, about the root

    resumed(world)  # a snapshot, every signature checked by the default checker
    world.approve("carol", ids["deploy"])
    checker = Refusing()
    view = TrustedBranch.load(branch_of(world), checker=checker, save=False)
    assert view.resumed_from is not None and view.applied == [world.tip()]
    assert checker.asked == [world.tip()]  # only the new commit, through the given checker
    assert view.refusals[-1] == (world.tip(), "carol: refused by the test's checker", GPG_FAILED)
    assert view.decisions[ids["deploy"]][-1].problem == (GPG_FAILED, "refused by the test's checker")


def test_saving_cuts_and_reads_by_position_through_an_index(world: World):
    """`save` deletes from a position on, and the refusals and policy changes are read up to one: each by an
    index, so that a push on a branch of 100,000 requests does not scan every row (docs/decisions.md)."""
    TrustedBranch.load(branch_of(world))
    db = sqlite3.connect(str(snapshot_file(world)))
    try:
        for table in ("requests", "decisions", "refusals", "policy_changes"):
            for query in (f"DELETE FROM {table} WHERE position >= 5", f"SELECT * FROM {table} WHERE position < 5"):
                plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {query}"))
                assert f"INDEX {table}_by_position" in plan, (query, plan)
    finally:
        db.close()
