"""`gitjit audit` and the signature cache behind it, on real histories with honest and forged commits."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pygit2
import pytest
from gateworld import BRANCH, Team, build_remote, commit_on_approvals
from helpers import GPG

AT = "2030-01-01T00:00:00Z"  # beyond every freshness: the output must not depend on the clock


@pytest.fixture(scope="module")
def history(tmp_path_factory, keys):
    """Made once: deploy requested by dave and approved by bob and carol; quick requested, pending.
    Returns (the remote to copy, deploy's id, quick's id)."""
    base = tmp_path_factory.mktemp("audit-team")
    team = Team(base, keys, build_remote(base, keys))
    dave = team.clone("dave")
    deploy = dave.gitjit("request", "deploy", "--reason", "release", "--push", check=True).stdout.strip()
    quick = dave.gitjit("request", "quick", "--push", check=True).stdout.strip()
    for person in ("bob", "carol"):
        team.clone(person).gitjit("approve", deploy, "--push", check=True)
    return team.remote, deploy, quick


def decision(clone, rid: str, verdict: str = "approve") -> str:
    ref = "refs/remotes/origin/approvals"
    blob = clone.git("rev-parse", f"{ref}:requests/{rid}.toml").stdout.strip()
    target = clone.git("show", f"{ref}:requests/{rid}.toml").stdout.split('target = "')[1][:40]
    return (f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
            f'decision = "{verdict}"\ncomment = ""\n')


@pytest.fixture
def honest(tmp_path, keys, history):
    """A copy of the honest history: (team, deploy id, quick id)."""
    remote, deploy, quick = history
    return Team(tmp_path, keys, remote), deploy, quick


@pytest.fixture
def forged(honest, keys):
    """The honest history plus four commits that must not count, made by hand in erin's clone."""
    team, deploy, quick = honest
    erin = team.clone("erin")
    root = erin.git("rev-list", "--max-parents=0", "refs/remotes/origin/approvals").stdout.strip()
    erin.git("config", "gitjit.root", root)  # as a first `gitjit` command would have done
    commits = {
        "unsigned": commit_on_approvals(erin, {f"approvals/{quick}/bob.toml": decision(erin, quick)}, sign=False),
        "non-approver": commit_on_approvals(erin, {f"approvals/{quick}/dave.toml": decision(erin, quick)},
                                            key=keys["dave"].fpr),
        "wrong-key": commit_on_approvals(erin, {f"approvals/{quick}/erin.toml": decision(erin, quick)},
                                         key=keys["carol"].fpr),
        "layout": commit_on_approvals(erin, {"notes.txt": "hello\n"}),
    }
    return team, erin, deploy, quick, commits


def audit_json(clone, *args, check):
    return json.loads(clone.gitjit("audit", "--json", "--at", AT, *args, check=check).stdout)


def test_an_honest_history_audits_clean(honest, keys):
    team, deploy, quick = honest
    carol = team.clone("carol")
    report = audit_json(carol, check=0)
    assert report["schema"] == "gitjit-audit/1"
    assert report["trusted"] is True and report["ok"] is True and report["not_trusted"] is None
    assert report["refusals"] == []
    assert report["counts"] == {"commits": 10, "policy_changes": 6, "requests": 2, "decisions": 2, "refusals": 0}
    assert report["root"] == carol.git("config", "gitjit.root").stdout.strip()  # pinned on first use

    changes = report["policy_changes"]
    assert [c["kind"] for c in changes] == ["root"] + ["policy"] * 5
    assert {c["signer"] for c in changes} == {"alice"} and {c["key"] for c in changes} == {keys["alice"].fpr}
    assert sorted(changes[0]["changes"]) == ["A keys/alice.asc", "A policy.toml"]
    assert sorted(changes[1]["changes"]) == ["A keys/bob.asc", "M policy.toml"]
    assert changes[5]["changes"] == ["M policy.toml"] and all(c["signed_at"] for c in changes)

    by_id = {r["id"]: r for r in report["requests"]}
    assert by_id[deploy]["reason"] == "release" and by_id[deploy]["signer"] == "dave"
    assert by_id[deploy]["key"] == keys["dave"].fpr and by_id[deploy]["signed"] is True
    # Judged at AT, years later: both approvals have gone stale, which is no fault of the history.
    assert by_id[deploy]["state"] == "expired"
    decisions = {d["person"]: d for d in by_id[deploy]["decisions"]}
    assert set(decisions) == {"bob", "carol"}
    for person, d in decisions.items():
        assert d["signer"] == person and d["key"] == keys[person].fpr and d["decision"] == "approve"
        assert d["signed_at"] and d["committed_at"] and d["counts"] is False and d["code"] == "stale"

    now = audit_json(carol, "--at", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), check=0)
    fresh = {r["id"]: r for r in now["requests"]}
    assert fresh[deploy]["state"] == "approved" and fresh[deploy]["approvals"] == ["bob", "carol"]
    assert all(d["counts"] and d["reason"] is None and d["code"] is None for d in fresh[deploy]["decisions"])
    assert fresh[quick]["state"] == "pending"

    text = carol.gitjit("audit", "--at", AT, check=0).stdout
    assert "ok: every commit verifies" in text and deploy in text and "policy and key changes" in text


def test_forged_commits_are_reported_with_their_reasons_and_exit_1(forged, keys):
    team, erin, deploy, quick, commits = forged
    report = audit_json(erin, check=1)
    assert report["trusted"] is True and report["ok"] is False
    assert [r["commit"] for r in report["refusals"]] == list(commits.values())  # in branch order
    reasons = {r["commit"]: r["reason"] for r in report["refusals"]}
    assert {r["commit"]: r["code"] for r in report["refusals"]} == {
        commits["unsigned"]: "not-signed",
        commits["non-approver"]: "not-approver",
        commits["wrong-key"]: "wrong-signer",
        commits["layout"]: "layout",
    }
    by_id = {r["id"]: r for r in report["requests"]}
    assert by_id[quick]["approvals"] == [] and by_id[quick]["state"] == "expired"
    decisions = {d["person"]: d for d in by_id[quick]["decisions"]}
    assert decisions["bob"]["counts"] is False and decisions["bob"]["key"] is None and decisions["bob"]["signer"] is None
    # The signer of a refused decision is still named: dave signed his own, carol signed erin's.
    assert (decisions["dave"]["signer"], decisions["dave"]["key"]) == ("dave", keys["dave"].fpr)
    assert (decisions["erin"]["signer"], decisions["erin"]["key"]) == ("carol", keys["carol"].fpr)
    assert decisions["erin"]["code"] == "wrong-signer"
    assert {d["counts"] for d in decisions.values()} == {False}

    text = erin.gitjit("audit", "--at", AT, check=1).stdout
    assert "commits that do not count (4)" in text and "4 commit(s) do not verify" in text
    for commit, reason in reasons.items():
        assert commit[:12] in text and reason in text
    assert "NOT TRUSTED" not in text


def test_text_from_the_branch_is_shown_verbatim_never_as_markup_or_terminal_codes(honest):
    team, deploy, quick = honest
    erin = team.clone("erin")
    hostile = "[green]ok[/] [/bold]\x1b[2J.txt"
    commit_on_approvals(erin, {hostile: "hello\n"})
    proc = erin.gitjit("audit", check=1)
    assert "\x1b" not in proc.stdout and "unexpected error" not in proc.stderr
    assert "[green]ok[/] [/bold]\\x1b[2J.txt is outside the approvals branch layout" in proc.stdout
    assert audit_json(erin, check=1)["refusals"][0]["reason"] == f"{hostile} is outside the approvals branch layout"


def test_since_narrows_the_report_and_its_verdict(forged):
    team, erin, deploy, quick, commits = forged
    later = audit_json(erin, "--since", "2029-01-01T00:00:00Z", check=0)  # nothing made since
    assert later["ok"] is True and later["requests"] == [] and later["refusals"] == [] and later["policy_changes"] == []
    assert later["counts"]["commits"] == 14  # still authenticated whole
    week = json.loads(erin.gitjit("audit", "--json", "--since", "7d", check=1).stdout)  # 7 days before now
    assert len(week["refusals"]) == 4 and len(week["requests"]) == 2
    assert erin.gitjit("audit", "--since", "whenever", check=2).stderr.count("\n") == 1


def test_an_unauthorized_policy_change_makes_the_branch_not_trusted(honest, keys):
    team, deploy, quick = honest
    bob = team.clone("bob")
    policy = bob.git("show", "refs/remotes/origin/approvals:policy.toml").stdout
    bad = commit_on_approvals(bob, {"policy.toml": policy.replace("threshold = 2", "threshold = 1")}, "easier")
    after = commit_on_approvals(bob, {f"approvals/{quick}/bob.toml": decision(bob, quick)})
    report = audit_json(bob, check=1)
    assert report["trusted"] is False and report["ok"] is False
    assert report["not_trusted"]["commit"] == bad
    assert report["not_trusted"]["code"] == "unauthorized-policy-change"
    assert "not an admin's key" in report["not_trusted"]["reason"]
    assert report["not_trusted"]["unchecked_commits"] == 2
    # What was authenticated before it is still reported; nothing after it is.
    assert {r["id"] for r in report["requests"]} == {deploy, quick}
    assert all(d["commit"] != after for r in report["requests"] for d in r["decisions"])
    assert len(report["policy_changes"]) == 6
    assert audit_json(bob, "--since", "2029-01-01T00:00:00Z", check=1)["trusted"] is False

    text = bob.gitjit("audit", check=1).stdout
    assert f"NOT TRUSTED at commit {bad}" in text
    assert "does not authenticate from its root" in text


def test_a_branch_that_is_not_from_the_pinned_root_is_not_trusted(honest):
    team, deploy, quick = honest
    carol = team.clone("carol")
    other = carol.head("refs/remotes/origin/approvals~1")
    report = audit_json(carol, "--root", other, check=1)
    assert report["trusted"] is False and report["not_trusted"]["code"] == "bad-root"
    assert report["requests"] == [] and report["policy_changes"] == []


def test_a_merge_on_the_branch_is_not_trusted(honest):
    team, deploy, quick = honest
    erin = team.clone("erin")
    tip = erin.head("refs/remotes/origin/approvals")
    merge = erin.git("commit-tree", f"{tip}^{{tree}}", "-p", tip, "-p", erin.head("main"), "-m", "merge").stdout.strip()
    erin.git("update-ref", BRANCH, merge)
    report = audit_json(erin, check=1)
    assert report["trusted"] is False and report["not_trusted"]["commit"] is None
    assert report["not_trusted"]["code"] == "not-linear" and "is a merge" in report["not_trusted"]["reason"]
    assert "NOT TRUSTED" in erin.gitjit("audit", check=1).stdout


# -- the signature cache --------------------------------------------------------

def gpg_wrapper(directory: Path, log: Path) -> Path:
    """A `gpg` first on PATH that logs its arguments and runs the real gpg: counts GnuPG's work."""
    directory.mkdir()
    script = directory / "gpg"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{shutil.which(GPG) or GPG}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def verifications(log: Path) -> int:
    return sum("--verify" in line for line in log.read_text().splitlines()) if log.exists() else 0


def test_a_second_audit_checks_only_what_is_new(forged, tmp_path):
    team, erin, deploy, quick, commits = forged
    log = tmp_path / "gpg.log"
    env = dict(erin.env, PATH=f"{gpg_wrapper(tmp_path / 'bin', log)}{os.pathsep}{erin.env['PATH']}")
    cache = erin.path / ".git" / "gitjit" / "signatures.jsonl"
    cache.unlink(missing_ok=True)  # cold: nothing verified in this clone yet by audit

    first = erin.gitjit("audit", "--json", "--at", AT, env=env, check=1).stdout
    cold = verifications(log)
    entries = [json.loads(line.split(" ", 1)[1]) for line in cache.read_text().splitlines()]
    # Every good signature is kept: 6 policy commits, 2 requests, 2 approvals, dave's and carol's forged ones.
    assert len({(e["commit"], e["keys"]) for e in entries}) >= 12
    assert all(e["check"]["good"] for e in entries)
    assert cold >= 12

    second = erin.gitjit("audit", "--json", "--at", AT, env=env, check=1).stdout
    assert second == first
    assert verifications(log) == cold  # nothing checked again: no gpg --verify at all
    text = erin.gitjit("audit", "--at", AT, env=env, check=1).stdout
    assert verifications(log) == cold and "commits that do not count (4)" in text

    # One new decision: one new verification.
    team.clone("carol").gitjit("approve", quick, "--push", check=True)
    erin.git("fetch", "-q", "origin")
    erin.git("update-ref", BRANCH, erin.head("refs/remotes/origin/approvals"))  # drop the local forgeries
    erin.gitjit("audit", "--json", env=env, check=0)
    assert verifications(log) == cold + 1


def test_a_damaged_cache_is_ignored_and_checked_again(forged, tmp_path):
    team, erin, deploy, quick, commits = forged
    first = erin.gitjit("audit", "--json", "--at", AT, check=1).stdout
    cache = erin.path / ".git" / "gitjit" / "signatures.jsonl"
    lines = cache.read_text().splitlines()
    # Edit entries (their checksums no longer match), drop checksums, add garbage, tear the last line.
    assert all('"created":17' in line for line in lines)
    damaged = [line.replace('"created":17', '"created":16') if i % 3 == 0 else
               line.split(" ", 1)[1] if i % 3 == 1 else "{not json" for i, line in enumerate(lines)]
    cache.write_text("\n".join(damaged) + "\n" + lines[-1][:40])
    # Without the first audit's snapshot of the branch, every signature goes through the damaged cache.
    (erin.path / ".git" / "gitjit" / "trusted.sqlite").unlink()
    log = tmp_path / "gpg.log"
    env = dict(erin.env, PATH=f"{gpg_wrapper(tmp_path / 'bin', log)}{os.pathsep}{erin.env['PATH']}")
    assert erin.gitjit("audit", "--json", "--at", AT, env=env, check=1).stdout == first
    assert verifications(log) >= 12  # every signature was checked again by GnuPG
    assert cache.read_text().startswith("\n".join(damaged))  # appended after the damage, never rewritten


# The cache in process, with the real keyring and GnuPG of a clone.

def _jobs(clone):
    from gitjit.git.branch import ApprovalsBranch
    from gitjit.trust.signatures import split_commit
    from gitjit.trust.trusted import TrustedBranch

    trusted = TrustedBranch.load(ApprovalsBranch(pygit2.Repository(str(clone.path))))
    entries = [d for ds in trusted.decisions.values() for d in ds] + list(trusted.requests.values())
    jobs = [(e.commit, split_commit(trusted.branch.raw_object(e.commit)), e.state.keyring) for e in entries]
    return trusted, jobs


def test_cache_rules_in_process(forged, tmp_path):
    from gitjit.trust.cache.signatures import SignatureCache, _line
    from gitjit.trust.signature_checks import SignatureChecker

    team, erin, deploy, quick, commits = forged
    trusted, jobs = _jobs(erin)
    calls: list[int] = []

    def verify(batch):
        calls.append(len(batch))
        return SignatureChecker().verify(batch)

    path = tmp_path / "cache"
    first = SignatureCache(path / "signatures.jsonl").check(jobs, verify)
    assert calls == [len(jobs)]
    good = [c for c in first if c.good]
    assert good and len(good) < len(first)  # the unsigned forgery is among the jobs
    lines = (path / "signatures.jsonl").read_text().splitlines()
    assert len(lines) == len(good)  # only good verdicts are stored

    again = SignatureCache(path / "signatures.jsonl").check(jobs, verify)
    assert again == first and calls[-1] == len(jobs) - len(good)  # only the one that is not good

    # A signature that expired since it was cached is checked again.
    record = json.loads(lines[0].split(" ", 1)[1])
    record["check"]["expires"] = (datetime.now(UTC) - timedelta(minutes=1)).timestamp()
    (path / "signatures.jsonl").write_bytes(_line(record) + b"\n")
    calls.clear()
    SignatureCache(path / "signatures.jsonl").check(jobs, verify)
    assert calls == [len(jobs)]

    # A cached verdict is reused only with the keyring of the same keys/ tree.
    job = next(j for j, c in zip(jobs, first, strict=True) if c.good)
    cache = SignatureCache(path / "signatures.jsonl")
    cache.check([job], verify)
    assert cache.lookup(job, datetime.now(UTC)) is not None
    later = datetime.now(UTC) + timedelta(days=36500)
    assert cache.lookup(job, later) is not None  # these keys never expire
    other = type(job[2])(str(Path(job[2].home).parent / ("0" * 40)), job[2].owners, job[2].keys)
    assert cache.lookup((job[0], job[1], other), datetime.now(UTC)) is None


def test_judge_status_keeps_the_signature_expiry():
    from gitjit.trust.signatures import judge_status

    fpr = "A" * 40
    lines = [("NEWSIG", ""), ("GOODSIG", f"{fpr[-16:]} Someone"),
             ("VALIDSIG", f"{fpr} 2026-11-26 1764100000 1764200000 4 0 22 10 00 {fpr}")]
    check = judge_status(lines, 0)
    assert check.good and check.expires == datetime.fromtimestamp(1764200000, UTC)
    assert judge_status(lines[:2] + [("VALIDSIG", f"{fpr} 2026-11-26 1764100000 0 4 0 22 10 00 {fpr}")], 0).expires is None
    assert not judge_status(lines[:2] + [("VALIDSIG", f"{fpr} 2026-11-26 1764100000 soon 4 0 22 10 00 {fpr}")], 0).good
    assert type(check).from_json(check.to_json()) == check


# -- GnuPG while the walk goes on (signature_checks.PendingChecks) ---------------------

def _open_branch(clone):
    from gitjit.git.branch import ApprovalsBranch, open_repository

    return ApprovalsBranch(open_repository(str(clone.path)))


def _fresh_caches():
    """A signature cache opener that reads each cache file again, as a new process would."""
    from gitjit.trust.cache.signatures import FILE_NAME, SignatureCache

    opened: dict[str, SignatureCache] = {}
    return lambda directory: opened.setdefault(directory, SignatureCache(Path(directory) / FILE_NAME))


def _recording_checker(**options):
    """The real signature checker, with the cache read afresh, that notes for each GnuPG check
    whether it ran on the main thread (`on_main`) and keeps each walk's batch (`batches`)."""
    from gitjit.trust.signature_checks import SignatureChecker

    class Recording(SignatureChecker):
        def __init__(self):
            super().__init__(open_cache=_fresh_caches(), **options)
            self.on_main: list[bool] = []
            self.batches: list = []

        def verify_one(self, job):
            self.on_main.append(threading.current_thread() is threading.main_thread())
            return super().verify_one(job)

        def pending(self, cache_directory):
            batch = super().pending(cache_directory)
            self.batches.append(batch)
            return batch

    return Recording()


def _walk(clone, checker, cold: bool = True) -> dict:
    """The clone's branch authenticated from its root in this process, its signatures checked
    by `checker`: its verdicts."""
    from gitjit.trust.trusted import TrustedBranch

    if cold:
        (clone.path / ".git" / "gitjit" / "signatures.jsonl").unlink(missing_ok=True)
    branch = _open_branch(clone)
    chain = branch.first_parent_chain(branch.read_tip())
    view = TrustedBranch(branch, chain[0], checker=checker)
    view.extend(chain)
    return {
        "requests": [(e.commit, e.known_signature) for e in view.requests.values()],
        "decisions": [(d.commit, d.person, d.signature, d.problem) for d in view.decisions.all()],
        "refusals": [tuple(r) for r in view.refusals],
        "policy_changes": [tuple(p) for p in view.policy_changes],
    }


def _killing_gpg(directory: Path, tree: str) -> str:
    """A gpg that is the real one, except that it dies by SIGKILL when asked to verify the
    commit whose tree is `tree`: GnuPG could not check that one signature."""
    directory.mkdir()
    script = directory / "gpg"
    script.write_text(f"""#!/bin/sh
case " $* " in *" --verify "*) ;; *) exec "{shutil.which(GPG) or GPG}" "$@";; esac
data=$(mktemp) || exit 2
cat > "$data"
if grep -q "^tree {tree}" "$data"; then rm -f "$data"; kill -9 $$; fi
"{shutil.which(GPG) or GPG}" "$@" < "$data"
status=$?
rm -f "$data"
exit $status
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_checks_started_during_the_walk_give_the_verdicts_of_one_batch_at_its_end(forged):
    team, erin, deploy, quick, commits = forged
    checker = _recording_checker(pool_min_jobs=10**6)
    one_by_one = _walk(erin, checker)
    assert checker.on_main and all(checker.on_main) and [b.pooled for b in checker.batches] == [0]
    checker = _recording_checker(pool_min_jobs=1)
    pooled = _walk(erin, checker)
    # The signed requests and decisions were all handed to the pool during the walk.
    assert not all(checker.on_main) and checker.batches[-1].pooled >= 4
    assert pooled == one_by_one
    assert any(r[1].endswith("signed by carol's key, not erin's") for r in pooled["refusals"])
    assert all(check is not None and check.good for _, check in pooled["requests"])
    checker = _recording_checker(pool_min_jobs=1)
    cached = _walk(erin, checker, cold=False)
    assert cached == pooled and checker.on_main == []  # every verdict came from the cache


def test_once_the_walk_is_over_its_thread_checks_what_the_pool_has_not_started(forged):
    from gitjit.trust.signature_checks import SignatureChecker

    team, erin, deploy, quick, commits = forged
    one_by_one = _walk(erin, _recording_checker(pool_min_jobs=10**6))
    # One pool thread, held on its first check until the walk's thread has taken one from the queue.
    taken = threading.Event()
    stolen: list[str] = []

    class Held(SignatureChecker):
        def verdict(self, job):
            if threading.current_thread() is threading.main_thread():
                stolen.append(job[0])
                taken.set()
            else:
                taken.wait(timeout=30)
            return super().verdict(job)

    pooled = _walk(erin, Held(workers=1, pool_min_jobs=1, open_cache=_fresh_caches()))
    assert taken.is_set() and stolen  # the last checks queued were taken from the back
    assert pooled == one_by_one


@pytest.mark.parametrize("pooled", [True, False], ids=["pooled", "one-by-one"])
@pytest.mark.parametrize("where", ["gpg", "job"])
def test_a_check_that_fails_in_the_middle_of_a_batch_fails_closed(forged, monkeypatch, tmp_path, pooled, where):
    from gitjit.trust.signature_checks import SignatureChecker
    from gitjit.trust.signatures import GPG_ENV

    team, erin, deploy, quick, commits = forged
    min_jobs = 1 if pooled else 10**6
    reference = _walk(erin, _recording_checker(pool_min_jobs=min_jobs))
    carol = next(c for c, person, _, _ in reference["decisions"] if person == "carol")
    if where == "gpg":  # GnuPG dies while checking this one: Keyring.verify reports it
        tree = erin.git("rev-parse", f"{carol}^{{tree}}").stdout.strip()
        monkeypatch.setenv(GPG_ENV, _killing_gpg(tmp_path / "bin", tree))
        checker = SignatureChecker(pool_min_jobs=min_jobs, open_cache=_fresh_caches())
        reason = "signature could not be checked: gpg was killed by signal 9"
    else:  # the job itself raises, past Keyring.verify

        class Failing(SignatureChecker):
            def verify_one(self, job):
                if job[0] == carol:
                    raise OSError("gpg was killed")
                return super().verify_one(job)

        checker = Failing(pool_min_jobs=min_jobs, open_cache=_fresh_caches())
        reason = "signature could not be checked: gpg was killed"
    failed = _walk(erin, checker)
    monkeypatch.undo()

    decision = next(d for d in failed["decisions"] if d[0] == carol)
    assert decision[2].good is False and decision[2].reason == reason and decision[2].code == "gpg-failed"
    assert decision[3] == ("gpg-failed", reason)
    assert [r for r in failed["refusals"] if r[0] != carol] == reference["refusals"]
    assert (carol, f"carol: {reason}", "gpg-failed") in failed["refusals"]
    # Refused when its signature was judged, in branch order: before erin's forgery, after the walk's.
    order = [r[0] for r in failed["refusals"]]
    assert order.index(carol) == order.index(commits["wrong-key"]) - 1 == len(order) - 2
    assert [d for d in failed["decisions"] if d[0] != carol] == [d for d in reference["decisions"] if d[0] != carol]
    assert failed["requests"] == reference["requests"]
    # The failure is not kept: the next run checks it again, and it counts.
    cache = erin.path / ".git" / "gitjit" / "signatures.jsonl"
    assert carol not in cache.read_text()
    again = _walk(erin, _recording_checker(pool_min_jobs=min_jobs), cold=False)
    assert again == reference


def test_a_walk_stopped_by_an_untrusted_commit_stops_its_checks(honest):
    from gitjit.errors import NotTrusted
    from gitjit.trust.signature_checks import PendingChecks, SignatureChecker
    from gitjit.trust.trusted import TrustedBranch

    team, deploy, quick = honest
    bob = team.clone("bob")
    policy = bob.git("show", "refs/remotes/origin/approvals:policy.toml").stdout
    commit_on_approvals(bob, {"policy.toml": policy.replace("threshold = 2", "threshold = 1")}, "easier")
    (bob.path / ".git" / "gitjit" / "signatures.jsonl").unlink(missing_ok=True)
    branch = _open_branch(bob)
    chain = branch.first_parent_chain(branch.read_tip())
    threads = threading.active_count()
    started = []

    class Watched(PendingChecks):
        def append(self, entry):
            super().append(entry)
            started.append(self.pool_running)

    class Checker(SignatureChecker):
        def pending(self, cache_directory):
            return Watched(self, cache_directory)

    checker = Checker(pool_min_jobs=1, open_cache=_fresh_caches())  # every check is one for GnuPG
    with pytest.raises(NotTrusted, match="not an admin's key"):
        TrustedBranch(branch, chain[0], checker=checker).extend(chain)
    assert started and all(started)  # the pool was at work when the walk stopped
    assert threading.active_count() == threads  # and is gone


# -- the audit resumed from the snapshot -------------------------------------------------

@pytest.fixture
def in_process_audit(forged, monkeypatch):
    """(erin's clone, report(cold=False) -> the audit's JSON, made in this process, the lengths
    of the walks it made): cold removes the snapshot first."""
    from gitjit.cli.render_json import plain
    from gitjit.commands.audit import audit
    from gitjit.model.grammar import parse_time
    from gitjit.trust.cache.snapshot import FILE_NAME
    from gitjit.trust.trusted import TrustedBranch

    team, erin, deploy, quick, commits = forged
    at = parse_time(AT, "--at")
    walked: list[int] = []
    real_extend = TrustedBranch.extend

    def extend(self, commit_ids):
        walked.append(len(commit_ids))
        return real_extend(self, commit_ids)

    monkeypatch.setattr(TrustedBranch, "extend", extend)

    def report(cold: bool = False, checker=None) -> dict:
        if cold:
            (erin.path / ".git" / "gitjit" / FILE_NAME).unlink(missing_ok=True)
        return plain(audit(_open_branch(erin), at, checker=checker))

    return erin, report, walked


def test_an_audit_resumes_from_the_snapshot_and_reports_what_a_walk_from_the_root_does(in_process_audit):
    erin, report, walked = in_process_audit
    first = report(cold=True)
    assert walked == [first["counts"]["commits"]]  # and the walk saved its view
    assert report() == first and len(walked) == 1  # resumed whole: nothing walked again

    commit_on_approvals(erin, {"notes.txt": "again\n"})  # one more commit that does not count
    resumed = report()
    assert walked[-1] == 1  # only the new commit
    assert resumed == report(cold=True) and len(resumed["refusals"]) == 5

    # An unauthorized change after the snapshot: reported as a walk from the root reports it.
    report()
    policy = erin.git("show", f"{BRANCH}:policy.toml").stdout
    bad = commit_on_approvals(erin, {"policy.toml": policy.replace("threshold = 2", "threshold = 1")}, "easier")
    untrusted = report()
    assert untrusted["trusted"] is False and untrusted["not_trusted"]["commit"] == bad
    assert untrusted == report(cold=True)


def test_a_gnupg_failure_does_not_stick_through_the_snapshot(in_process_audit, monkeypatch, tmp_path):
    from gitjit.trust.signature_checks import SignatureChecker
    from gitjit.trust.signatures import GPG_ENV

    erin, report, walked = in_process_audit
    honest = report(cold=True)
    carol = next(d["commit"] for r in honest["requests"] for d in r["decisions"] if d["person"] == "carol")
    tree = erin.git("rev-parse", f"{carol}^{{tree}}").stdout.strip()
    monkeypatch.setenv(GPG_ENV, _killing_gpg(tmp_path / "bin", tree))
    (erin.path / ".git" / "gitjit" / "signatures.jsonl").unlink()
    checker = SignatureChecker(open_cache=_fresh_caches())  # no good verdict kept: GnuPG is asked again
    failed = report(cold=True, checker=checker)  # and saved, with carol's decision refused
    reasons = {r["commit"]: (r["code"], r["reason"]) for r in failed["refusals"]}
    assert reasons[carol] == ("gpg-failed", "carol: signature could not be checked: gpg was killed by signal 9")
    monkeypatch.delenv(GPG_ENV)
    walks = len(walked)
    assert report(checker=checker) == honest and len(walked) == walks + 1  # walked again from the root


def test_a_snapshot_verdict_that_has_expired_since_is_judged_again(in_process_audit):
    import sqlite3

    from gitjit.trust.cache.snapshot import FILE_NAME

    erin, report, walked = in_process_audit
    first = report(cold=True)
    # As if the snapshot had been written before carol's signature expired: GnuPG would no
    # longer call it good, so the audit may not take it from the snapshot.
    db = sqlite3.connect(erin.path / ".git" / "gitjit" / FILE_NAME)
    rows = db.execute("SELECT commit_id, row FROM decisions").fetchall()
    commit, row = next((c, json.loads(r)) for c, r in rows if json.loads(r)["person"] == "carol")
    row["signature"]["expires"] = (datetime.now(UTC) - timedelta(minutes=1)).timestamp()
    db.execute("UPDATE decisions SET row = ? WHERE commit_id = ?", (json.dumps(row), commit))
    db.commit()
    db.close()
    assert report() == first and len(walked) == 2  # walked again from the root, not resumed


def test_commits_read_in_one_go_are_those_git_reads_one_at_a_time(forged):
    from gitjit.commands.audit import _read_commits

    team, erin, deploy, quick, commits = forged
    branch = _open_branch(erin)
    root = erin.git("rev-list", "--max-parents=0", BRANCH).stdout.strip()
    tree = erin.git("rev-parse", f"{root}^{{tree}}").stdout.strip()
    asked = [commits["unsigned"], "0" * 40, tree, "not an id", root, commits["layout"]]
    found = _read_commits(branch, asked)
    assert list(found) == [commits["unsigned"], root, commits["layout"]]  # no missing object, no tree
    assert all(found[c] == branch.raw_object(c) for c in found)
