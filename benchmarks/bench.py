"""gitjit's benchmark: `make bench` (issue 5).

Builds every scenario in a temporary directory with real GnuPG keys, real
bare servers whose hook `gitjit hook install` put there, and real pushes,
then prints and records (benchmarks/results/latest.json) five figures:

1. tag push through the gitjit hook vs. a floor hook that only runs
   `git verify-commit` on the two approval commits (target: <= 2.5x);
2. the same tag push with 20,000 extra requests in the history vs. a short
   history (target: <= 1.3x);
3. the hook's own rate on a push of 20,000 request commits at once
   (target: >= 1,000 commits/s);
4. `gitjit audit` of 2,000 signed decisions and their 1,000 signed requests,
   cold (target: >= 300 signatures/s) and again with nothing new (target: < 1 s);
5. hostile pushes (issue 9), each judged by the installed hook: a decision
   whose signature is a ~15 KB nested compressed-packet stream, a 100 MB
   request file, one commit adding 200,000 files, a request with TOML nested
   100,000 deep, a signature of 1 MB of armor (target: the hook passes or
   fails each in < 2 s and < 200 MiB, max RSS of its process tree). They are
   built once into a cache directory (see --hostile-cache) and reused.

6. CI (issue 13): fresh `git clone`s (file://) of a tiny branch, of 2,000 and
   of 20,000 requests with 300 signed decisions; in each a cold
   `gitjit verify`, `verify-tag` and `run` check (no $GIT_DIR/gitjit), a warm
   verify; and `gitjit request`, `approve` and a one-request push through the
   hook on branches of 100 and 100,000 requests (targets: cold long <= 2x cold
   tiny and <= 0.5x its clone; tiny cold <= 3x warm; clone 20k <= 12x 2k;
   per-commit operations at 100,000 <= 1.3x at 100). The same push also goes
   to a server holding the same history with no hook at all: git's own cost,
   printed beside the target, and the hook's part (the difference). The old
   figures beside them come from --ci-baseline (an earlier run's JSON,
   results/ci-baseline.json).

Pushes are timed as whole `git push` commands, runs interleaved, medians of
at least 7 (15 by default). Options: --runs N, --extra N (20000), --decisions N (2000),
--keep (leave the temporary directory), --only push|audit|hostile|ci (figures 1-3, 4,
5 or 6), --ci-requests N, --ci-decisions N, --ci-runs N, --case a..e (with --only hostile), --hostile-cache DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
PEOPLE = ("alice", "bob", "carol")
ACTION = """
[actions.deploy-prod]
approvers = ["bob", "carol"]
threshold = 2
freshness = "1h"
tags = ["v*"]
"""


def bulk_target(i: int) -> str:
    """The target of bulk request i: a made-up commit id, spread over the shards as real ones are."""
    return hashlib.sha1(f"bulk {i}".encode()).hexdigest()


def bulk_id(i: int, layout: int) -> str:
    """The id of bulk request i: in layout 2 an id ends with its target's shard."""
    return f"deploy-prod-bulk-{i:06d}" + (f"-{bulk_target(i)[:2]}" if layout == 2 else "")


def request_path(rid: str, target: str, layout: int) -> str:
    """docs/format.md, section 2.4 (written out here: the benchmark builds branches without gitjit's code)."""
    return f"shards/{target[:2]}/requests/{rid}.toml" if layout == 2 else f"requests/{rid}.toml"


def decision_path(rid: str, person: str, target: str, layout: int) -> str:
    return f"shards/{target[:2]}/approvals/{rid}/{person}.toml" if layout == 2 else f"approvals/{rid}/{person}.toml"


def log(message: str) -> None:
    print(message, flush=True)


class Bench:
    def __init__(self, base: Path, gnupghome: Path | None = None):
        self.base = base
        if gnupghome is not None:
            gnupghome.mkdir(exist_ok=True)
        self.gnupghome = gnupghome or Path(tempfile.mkdtemp(prefix="gjb", dir="/tmp"))
        home = base / "home"
        home.mkdir(exist_ok=True)
        (home / ".gitconfig").write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GNUPG"))}
        self.env.update(GNUPGHOME=str(self.gnupghome), HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C.UTF-8")
        self.fpr: dict[str, str] = {}

    # -- running ---------------------------------------------------------------

    def run(self, *args: str, cwd: Path | None = None, input: bytes | None = None,
            env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, cwd=cwd, input=input, capture_output=True, env=env or self.env)
        if check and proc.returncode != 0:
            raise SystemExit(f"failed: {' '.join(args)}\n{proc.stdout.decode()}\n{proc.stderr.decode()}")
        return proc

    def git(self, repo: Path, *args: str, **kw) -> str:
        return self.run("git", "-C", str(repo), *args, **kw).stdout.decode().strip()

    def gitjit(self, repo: Path, *args: str, **kw) -> str:
        return self.run(PY, "-m", "gitjit", *args, "--repo", str(repo), **kw).stdout.decode().strip()

    def timed(self, *args: str, cwd: Path | None = None, input: bytes | None = None) -> float:
        start = time.perf_counter()
        self.run(*args, cwd=cwd, input=input)
        return time.perf_counter() - start

    # -- setting up --------------------------------------------------------------

    def make_keys(self) -> None:
        self.gnupghome.chmod(0o700)
        for name in PEOPLE:
            self.run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                     "--quick-gen-key", f"{name.title()} <{name}@example.com>", "ed25519", "sign", "0")
            out = self.run("gpg", "--with-colons", "--list-keys", f"{name}@example.com").stdout.decode()
            self.fpr[name] = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))
            (self.base / f"{name}.asc").write_bytes(self.run("gpg", "--armor", "--export", self.fpr[name]).stdout)

    def act_as(self, repo: Path, name: str) -> None:
        self.git(repo, "config", "user.name", name.title())
        self.git(repo, "config", "user.email", f"{name}@example.com")
        self.git(repo, "config", "user.signingkey", self.fpr[name])

    def server(self, name: str, hook: bool = True) -> Path:
        path = self.base / f"{name}.git"
        self.run("git", "init", "-q", "--bare", str(path))
        if hook:
            self.run(PY, "-m", "gitjit", "hook", "install", "--repo", str(path))
        return path

    def client(self, name: str, layout: int = 2) -> Path:
        """A repository with one commit on main and an approvals branch: alice admin,
        bob and carol approvers of deploy-prod."""
        repo = self.base / name
        self.run("git", "init", "-q", "-b", "main", str(repo))
        self.act_as(repo, "alice")
        self.git(repo, "commit", "-q", "--allow-empty", "-m", "release candidate")
        self.gitjit(repo, "init", "--admin", "alice", "--layout", str(layout))
        for name_ in ("bob", "carol"):
            self.gitjit(repo, "person", "add", name_, "--key-file", str(self.base / f"{name_}.asc"))
        policy = self.git(repo, "show", "refs/heads/approvals:policy.toml") + "\n" + ACTION
        self.commit_files(repo, {"policy.toml": policy.encode()}, "deploy-prod needs bob and carol", sign=True)
        return repo

    def layout(self, repo: Path) -> int:
        """The branch's layout (docs/format.md, section 2.4): 2 where its policy says so, else 1."""
        policy = self.git(repo, "show", "refs/heads/approvals:policy.toml")
        return 2 if "\nlayout = 2\n" in f"\n{policy}\n" else 1

    def commit_files(self, repo: Path, files: dict[str, bytes], message: str, sign: bool) -> str:
        index = self.base / "bench-index"
        env = dict(self.env, GIT_INDEX_FILE=str(index))
        tip = self.git(repo, "rev-parse", "refs/heads/approvals")
        self.run("git", "-C", str(repo), "read-tree", tip, env=env)
        for path, data in files.items():
            blob = self.git(repo, "hash-object", "-w", "--stdin", input=data)
            self.run("git", "-C", str(repo), "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = self.run("git", "-C", str(repo), "write-tree", env=env).stdout.decode().strip()
        index.unlink()
        commit = self.git(repo, "commit-tree", *(["-S"] if sign else []), tree, "-p", tip, "-m", message)
        self.git(repo, "update-ref", "refs/heads/approvals", commit, tip)
        return commit

    def bulk_requests(self, repo: Path, count: int) -> None:
        """`count` unsigned request commits for other targets, through git fast-import."""
        tip = self.git(repo, "rev-parse", "refs/heads/approvals")
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        created, expires = now.strftime("%Y-%m-%dT%H:%M:%SZ"), (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stamp = int(now.timestamp())
        layout = self.layout(repo)
        chunks = []
        for i in range(count):
            rid = bulk_id(i, layout)
            target = bulk_target(i)
            body = (f'gitjit = 1\nid = "{rid}"\naction = "deploy-prod"\ntarget = "{target}"\n'
                    f'requested_by = "Bench <bench@example.com>"\nreason = "history"\n'
                    f"created = {created}\nexpires = {expires}\n").encode()
            message = f"gitjit: request {rid}\n".encode()
            chunks += [b"commit refs/heads/approvals\n",
                       f"committer Bench <bench@example.com> {stamp + i} +0000\n".encode(),
                       b"data %d\n%s" % (len(message), message)]
            if i == 0:
                chunks.append(f"from {tip}\n".encode())
            chunks += [f"M 100644 inline {request_path(rid, target, layout)}\n".encode(),
                       b"data %d\n%s\n" % (len(body), body)]
        self.run("git", "-C", str(repo), "fast-import", "--quiet", input=b"".join(chunks))

    def approved_request(self, repo: Path, server: Path) -> tuple[str, list[str]]:
        """A request for main approved by bob and carol, pushed; returns (id, approval commits)."""
        request_id, approvals = self.approved_request_local(repo)
        self.git(repo, "push", "-q", str(server), "main", "refs/heads/approvals:refs/heads/approvals")
        return request_id, approvals

    def approved_request_local(self, repo: Path) -> tuple[str, list[str]]:
        """A request for main approved by bob and carol, not pushed; returns (id, approval commits)."""
        request_id = self.gitjit(repo, "request", "deploy-prod", "--target", "main", "--reason", "bench")
        approvals = []
        for name in ("bob", "carol"):
            self.act_as(repo, name)
            self.gitjit(repo, "approve", request_id)
            approvals.append(self.git(repo, "rev-parse", "refs/heads/approvals"))
        self.act_as(repo, "alice")
        return request_id, approvals

    def floor_server(self, approvals: list[str]) -> Path:
        """A bare repository whose pre-receive hook only runs git verify-commit on the approvals."""
        floor_home = Path(tempfile.mkdtemp(prefix="gjf", dir="/tmp"))
        floor_home.chmod(0o700)
        for name in ("bob", "carol"):
            self.run("gpg", "--homedir", str(floor_home), "--batch", "--import", str(self.base / f"{name}.asc"))
        server = self.server("floor", hook=False)
        hook = server / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\ncat >/dev/null\n"
                        f"GNUPGHOME='{floor_home}' exec git verify-commit {' '.join(approvals)} 2>/dev/null\n")
        hook.chmod(0o755)
        return server


def median_runs(bench: Bench, pushes: dict[str, tuple[Path, Path]], runs: int) -> dict[str, float]:
    """Interleaved tag pushes from each (client, server), one new tag per run; the median push time of each."""
    times: dict[str, list[float]] = {name: [] for name in pushes}
    for i in range(runs + 1):
        tag = f"v1.{i}"
        for name, (repo, server) in pushes.items():
            bench.git(repo, "tag", "-f", tag, "main")
            elapsed = bench.timed("git", "-C", str(repo), "push", "-q", str(server), f"refs/tags/{tag}")
            if i > 0:  # the first round warms caches (keyrings, snapshots, page cache)
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def figure_1_and_2(bench: Bench, runs: int, extra: int) -> dict:
    log("setting up the short history ...")
    short = bench.client("short")
    short_server = bench.server("short")
    bench.git(short, "push", "-q", str(short_server), "main", "refs/heads/approvals:refs/heads/approvals")
    _, approvals = bench.approved_request(short, short_server)
    floor = bench.floor_server(approvals)
    bench.git(short, "push", "-q", str(floor), "main", "refs/heads/approvals:refs/heads/approvals")

    log(f"setting up the long history ({extra} extra requests) ...")
    long_ = bench.client("long")
    long_server = bench.server("long")
    bench.git(long_, "push", "-q", str(long_server), "main", "refs/heads/approvals:refs/heads/approvals")
    base = bench.git(long_, "rev-parse", "refs/heads/approvals")
    started = time.perf_counter()
    bench.bulk_requests(long_, extra)
    log(f"  fast-import of {extra} requests: {time.perf_counter() - started:.1f} s")
    bulk_tip = bench.git(long_, "rev-parse", "refs/heads/approvals")

    # Figure 3: the hook on the whole bulk push. The objects go up under a ref no
    # rule protects, then the hook is run on the approvals update exactly as git
    # runs it (same stdin, same repository), and the ref is moved as git would.
    started = time.perf_counter()
    bench.git(long_, "push", "-q", str(long_server), f"{bulk_tip}:refs/heads/bench-objects")
    log(f"  pushing the objects: {time.perf_counter() - started:.1f} s")
    line = f"{base} {bulk_tip} refs/heads/approvals\n".encode()
    # One push of 20,000 commits is above what a server takes by default (2,000): this
    # one is the operator's one-off migration, so the limit is raised for it.
    bench.git(long_server, "config", "gitjit.maxPushCommits", str(extra))
    hook_seconds = bench.timed(PY, "-m", "gitjit.hook", cwd=long_server, input=line)
    bench.git(long_server, "update-ref", "refs/heads/approvals", bulk_tip, base)
    bench.git(long_server, "update-ref", "-d", "refs/heads/bench-objects")
    rate = extra / hook_seconds
    log(f"  hook on {extra} request commits: {hook_seconds:.1f} s, {rate:.0f} commits/s")

    bench.approved_request(long_, long_server)

    log(f"timing tag pushes ({runs} runs each, interleaved) ...")
    medians = median_runs(bench, {"gitjit": (short, short_server), "floor": (short, floor),
                                  "gitjit-long": (long_, long_server)}, runs)
    return {
        "tag_push_gitjit_s": medians["gitjit"],
        "tag_push_floor_s": medians["floor"],
        "tag_push_long_history_s": medians["gitjit-long"],
        "ratio_gitjit_to_floor": medians["gitjit"] / medians["floor"],
        "ratio_long_to_short": medians["gitjit-long"] / medians["gitjit"],
        "extra_requests": extra,
        "bulk_push_hook_s": hook_seconds,
        "bulk_push_commits_per_s": rate,
    }


def figure_4(bench: Bench, decisions: int) -> dict:
    """gitjit audit of `decisions` signed decisions (two per request), cold and warm."""
    log(f"setting up {decisions} signed decisions ...")
    import pygit2

    repo_path = bench.client("audit")
    repo = pygit2.Repository(str(repo_path))
    layout = bench.layout(repo_path)
    tip = repo.revparse_single("refs/heads/approvals")
    tree = tip.tree
    now = datetime.now(UTC).replace(microsecond=0)
    target = str(repo.revparse_single("main").id)
    index = pygit2.Index()
    index.read_tree(tree)
    payloads = []  # (tree, message, signer or None), in branch order

    def sign(data: bytes, name: str) -> bytes:
        return bench.run("gpg", "--batch", "--armor", "--detach-sign", "--local-user", bench.fpr[name],
                         input=data).stdout

    parent = tip.id
    requests = decisions // 2
    for i in range(requests):
        rid = f"deploy-prod-audit-{i:05d}" + (f"-{target[:2]}" if layout == 2 else "")  # layout 2: ends with its shard
        body = (f'gitjit = 1\nid = "{rid}"\naction = "deploy-prod"\ntarget = "{target}"\n'
                f'requested_by = "Alice <alice@example.com>"\nreason = "audit"\n'
                f'created = {now.strftime("%Y-%m-%dT%H:%M:%SZ")}\n'
                f'expires = {(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}\n').encode()
        blob = repo.create_blob(body)
        index.add(pygit2.IndexEntry(request_path(rid, target, layout), blob, pygit2.enums.FileMode.BLOB))
        # Signed by alice: where self_approval is false, an unsigned request never counts.
        payloads.append((index.write_tree(repo), f"gitjit: request {rid}\n", "alice"))
        for name in ("bob", "carol"):
            decision = (f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
                        f'decision = "approve"\ncomment = ""\n').encode()
            index.add(pygit2.IndexEntry(decision_path(rid, name, target, layout), repo.create_blob(decision),
                                        pygit2.enums.FileMode.BLOB))
            payloads.append((index.write_tree(repo), f"gitjit: approve {rid}\n", name))
    # Each commit names its parent's id, which covers the parent's signature: signing is
    # sequential (setup only, not measured).
    started = time.perf_counter()
    for tree_id, message, signer in payloads:
        who = signer or "alice"
        # the committer time must agree with the signature's own time (clock_skew)
        ident = pygit2.Signature(who.title(), f"{who}@example.com", int(time.time()), 0)
        content = repo.create_commit_string(ident, ident, message, tree_id, [parent])
        if signer:
            signature = sign(content.encode(), signer).decode()
            parent = repo.create_commit_with_signature(content, signature, "gpgsig")
        else:
            parent = repo.odb.write(pygit2.enums.ObjectType.COMMIT, content.encode())
    repo.references["refs/heads/approvals"].set_target(parent)
    signatures = sum(1 for _, _, signer in payloads if signer)  # the decisions and their requests
    log(f"  made {len(payloads)} commits ({signatures} signed) in {time.perf_counter() - started:.1f} s")

    shutil.rmtree(repo_path / ".git" / "gitjit", ignore_errors=True)
    cold = bench.timed(PY, "-m", "gitjit", "audit", "--json", "--repo", str(repo_path))
    warm = statistics.median(bench.timed(PY, "-m", "gitjit", "audit", "--json", "--repo", str(repo_path))
                             for _ in range(3))
    report = json.loads(bench.run(PY, "-m", "gitjit", "audit", "--json", "--repo", str(repo_path)).stdout)
    counted = sum(1 for r in report.get("requests", []) for d in r.get("decisions", []) if d.get("counts"))
    log(f"  audit cold {cold:.2f} s ({signatures / cold:.0f} signatures/s), warm {warm:.2f} s, "
        f"{counted} decisions counted")
    if counted != decisions:
        raise SystemExit(f"only {counted} of {decisions} decisions count: the scenario is broken")
    return {
        "audit_decisions": decisions,
        "audit_signatures": signatures,
        "audit_decisions_counted": counted,
        "audit_cold_s": cold,
        "audit_signatures_per_s": signatures / cold,
        "audit_warm_s": warm,
    }


# -- the CI figures (issue 13): a fresh clone asks one question ------------------

CI_TARGETS = (
    # (figure, ratio key, op, limit)
    ("cold verify, 20k history / tiny", "ci_verify_ratio_long_to_tiny", "<=", 2.0),
    ("cold verify, 20k history / its clone", "ci_verify_ratio_to_clone", "<=", 0.5),
    ("cold verify-tag, 20k history / tiny", "ci_verify_tag_ratio_long_to_tiny", "<=", 2.0),
    ("cold verify-tag, 20k history / its clone", "ci_verify_tag_ratio_to_clone", "<=", 0.5),
    ("cold run check, 20k history / tiny", "ci_run_ratio_long_to_tiny", "<=", 2.0),
    ("cold run check, 20k history / its clone", "ci_run_ratio_to_clone", "<=", 0.5),
    ("tiny branch, cold verify / warm verify", "ci_tiny_cold_to_warm", "<=", 3.0),
    ("clone, 20k requests / 2k requests", "ci_clone_growth", "<=", 12.0),
    ("git walk, 20k requests / 2k requests", "ci_walk_growth", "<=", 12.0),
    ("git fast-import, 20k requests / 2k requests", "ci_build_growth", "<=", 12.0),
    ("request, 100k history / 100", "ci_request_growth", "<=", 1.3),
    ("approve, 100k history / 100", "ci_approve_growth", "<=", 1.3),
    ("one-request push, 100k history / 100", "ci_push_growth", "<=", 1.3),
    ("  the hook's part of it (push - no hook)", "ci_push_hook_growth", "<=", 1.3),
)
# Printed beside the targets, with none of their own: what bounds a target from below.
CI_CONTEXT = (
    ("  git's own push, no hook, 100k / 100", "ci_push_floor_growth"),
)


class CiBranch:
    """A client with an approvals branch of `requests` bulk requests and `decisions` signed
    decisions on them, then one request for main approved by bob and carol, and tag v1.0;
    pushed to a bare server whose hook `gitjit hook install` put there."""

    def __init__(self, bench: Bench, name: str, requests: int, decisions: int, layout: int):
        self.bench, self.name = bench, name
        self.client = bench.client(f"ci-{name}", layout)
        started = time.perf_counter()
        if requests:
            bench.bulk_requests(self.client, requests)
        self.build_s = time.perf_counter() - started  # git's own cost of writing the request commits
        if decisions:
            self.signed_decisions(decisions)
        self.request_id, _ = bench.approved_request_local(self.client)
        bench.git(self.client, "tag", "v1.0", "main")
        self.server = bench.server(f"ci-{name}", hook=False)
        # the same history on a server with no hook at all: git's own cost of a push, the floor under gitjit's
        self.plain = bench.server(f"ci-{name}-plain", hook=False)
        for server in (self.server, self.plain):
            bench.git(self.client, "push", "-q", str(server), "main", "refs/tags/v1.0",
                      "refs/heads/approvals:refs/heads/approvals")
        bench.run(PY, "-m", "gitjit", "hook", "install", "--repo", str(self.server))
        bench.git(self.server, "config", "gitjit.root", self.root)
        bench.git(self.client, "remote", "add", "origin", str(self.server))
        bench.git(self.client, "fetch", "-q", "origin")
        self.commits = int(bench.git(self.client, "rev-list", "--count", "refs/heads/approvals"))
        self.target = bench.git(self.client, "rev-parse", "main")  # as CI has it: $GITHUB_SHA

    @property
    def root(self) -> str:
        return self.bench.git(self.client, "rev-list", "--max-parents=0", "refs/heads/approvals")

    def signed_decisions(self, count: int) -> None:
        """`count` approvals of bulk requests (other targets), each commit really signed."""
        import pygit2

        bench = self.bench
        repo = pygit2.Repository(str(self.client))
        tip = repo.revparse_single("refs/heads/approvals")
        index = pygit2.Index()
        index.read_tree(tip.tree)
        parent = tip.id
        layout = bench.layout(self.client)
        for i in range(count):
            rid, target = bulk_id(i // 2, layout), bulk_target(i // 2)
            name = ("bob", "carol")[i % 2]
            blob = index[request_path(rid, target, layout)].id
            decision = (f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
                        f'decision = "approve"\ncomment = ""\n').encode()
            index.add(pygit2.IndexEntry(decision_path(rid, name, target, layout), repo.create_blob(decision),
                                        pygit2.enums.FileMode.BLOB))
            ident = pygit2.Signature(name.title(), f"{name}@example.com", int(time.time()), 0)
            content = repo.create_commit_string(ident, ident, f"gitjit: approve {rid}\n",
                                                index.write_tree(repo), [parent])
            signature = bench.run("gpg", "--batch", "--armor", "--detach-sign", "--local-user", bench.fpr[name],
                                  input=content.encode()).stdout.decode()
            parent = repo.create_commit_with_signature(content, signature, "gpgsig")
        repo.references["refs/heads/approvals"].set_target(parent)

    def fresh_clone(self, where: Path) -> float:
        shutil.rmtree(where, ignore_errors=True)
        return self.bench.timed("git", "clone", "-q", f"file://{self.server}", str(where))

    def cold(self, clone: Path, *args: str) -> float:
        """A gitjit command in `clone` with nothing kept from an earlier run ($GIT_DIR/gitjit)."""
        shutil.rmtree(clone / ".git" / "gitjit", ignore_errors=True)
        head, sep, command = (args[:args.index("--")], ("--",), args[args.index("--") + 1:]) if "--" in args \
            else (args, (), ())
        return self.bench.timed(PY, "-m", "gitjit", *head, "--repo", str(clone), *sep, *command)


def ci_measure(bench: Bench, branch: CiBranch, runs: int) -> dict:
    """Clone, cold and warm verify, verify-tag and run's check in fresh clones of `branch`."""
    clone = bench.base / f"ci-{branch.name}-clone"
    clones, verify, tag, run, warm = [], [], [], [], []
    for _ in range(runs):
        clones.append(branch.fresh_clone(clone))
        bench.git(clone, "config", "gitjit.root", branch.root)
        verify.append(branch.cold(clone, "verify", "deploy-prod", "--target", branch.target))
        tag.append(branch.cold(clone, "verify-tag", "v1.0"))
        run.append(branch.cold(clone, "run", "deploy-prod", "--target", branch.target, "--wait", "0s", "--", "true"))
        warm.append(bench.timed(PY, "-m", "gitjit", "verify", "deploy-prod", "--target", branch.target,
                                "--repo", str(clone)))
    # git's own walk of the history: every object, then every commit's changes (a median, as the others)
    walks = [bench.timed("git", "-C", str(clone), "rev-list", "--objects", "--all") +
             bench.timed("git", "-C", str(clone), "log", "--raw", "--no-renames", "--format=%H", "origin/approvals")
             for _ in range(runs)]
    median = statistics.median
    return {"clone_s": median(clones), "verify_cold_s": median(verify), "verify_tag_cold_s": median(tag),
            "run_cold_s": median(run), "verify_warm_s": median(warm), "walk_s": median(walks),
            "build_s": branch.build_s}


def ci_per_commit(bench: Bench, branch: CiBranch, runs: int) -> dict:
    """`gitjit request`, `gitjit approve` and a one-request push through the hook, warm, medians."""
    repo = branch.client
    bench.gitjit(repo, "status", "--json")  # warm: the client's snapshot
    requests, approvals, pushes, plain = [], [], [], []
    branch_ref = "refs/heads/approvals:refs/heads/approvals"
    for i in range(runs + 1):  # the first round warms the server's snapshot too
        bench.act_as(repo, "alice")
        started = time.perf_counter()
        rid = bench.gitjit(repo, "request", "deploy-prod", "--target", "main", "--reason", f"per-commit {i}")
        requested = time.perf_counter() - started
        pushed = bench.timed("git", "-C", str(repo), "push", "-q", "origin", branch_ref)
        plain_pushed = bench.timed("git", "-C", str(repo), "push", "-q", str(branch.plain), branch_ref)
        bench.act_as(repo, "bob")
        approved = bench.timed(PY, "-m", "gitjit", "approve", rid, "--repo", str(repo))
        for server in ("origin", str(branch.plain)):
            bench.git(repo, "push", "-q", server, branch_ref)
        if i:
            requests.append(requested)
            approvals.append(approved)
            pushes.append(pushed)
            plain.append(plain_pushed)
    bench.act_as(repo, "alice")
    median = statistics.median
    return {"request_s": median(requests), "approve_s": median(approvals), "push_one_request_s": median(pushes),
            "push_no_hook_s": median(plain)}


def figure_ci(bench: Bench, runs: int, requests: int, decisions: int, layout: int = 2, huge: int = 0) -> dict:
    """Issue 13: fresh clones of a tiny branch, of 2k and of `requests` requests with `decisions` signed decisions;
    per-commit operations at 100 requests, at `requests` and at `huge` (0: left out)."""
    figures: dict = {"ci_requests": requests, "ci_decisions": decisions, "ci_layout": layout, "ci_huge": huge}
    small = max(2, requests // 10)
    sizes = {"tiny": (0, 0), "short": (small, decisions * small // max(requests, 1)), "long": (requests, decisions)}
    branches = {}
    for name, (count, signed) in sizes.items():
        log(f"setting up the {name} CI branch ({count} requests, {signed} signed decisions) ...")
        branches[name] = CiBranch(bench, name, count, signed, layout)
        log(f"  {branches[name].commits} commits, built in {branches[name].build_s:.1f} s")
    # git scans shards/ up to the target's shard at every commit: the shard is part of the figure
    figures["ci_target_shard"] = branches["long"].target[:2]
    for name, branch in branches.items():
        log(f"timing fresh clones of the {name} branch ({runs} runs) ...")
        measured = ci_measure(bench, branch, runs)
        log("  " + ", ".join(f"{k} {v:.2f}" for k, v in measured.items()))
        figures.update({f"ci_{name}_{k}": v for k, v in measured.items()})
    for name, count in (("hundred", 100), ("huge", huge)):
        if count:
            log(f"setting up the {name} branch ({count} requests) for per-commit operations ...")
            branches[name] = CiBranch(bench, name, count, 0, layout)
            log(f"  {branches[name].commits} commits, built in {branches[name].build_s:.1f} s")
            figures[f"ci_{name}_build_s"] = branches[name].build_s
    for name in ("hundred", "long", "huge"):
        if name not in branches:
            continue
        log(f"timing per-commit operations on the {name} branch ...")
        measured = ci_per_commit(bench, branches[name], runs)
        log("  " + ", ".join(f"{k} {v:.2f}" for k, v in measured.items()))
        figures.update({f"ci_{name}_{k}": v for k, v in measured.items()})
    f = figures
    for what in ("verify", "verify_tag", "run"):
        f[f"ci_{what}_ratio_long_to_tiny"] = f[f"ci_long_{what}_cold_s"] / f[f"ci_tiny_{what}_cold_s"]
        f[f"ci_{what}_ratio_to_clone"] = f[f"ci_long_{what}_cold_s"] / f["ci_long_clone_s"]
    f["ci_tiny_cold_to_warm"] = f["ci_tiny_verify_cold_s"] / f["ci_tiny_verify_warm_s"]
    f["ci_clone_growth"] = f["ci_long_clone_s"] / f["ci_short_clone_s"]
    f["ci_walk_growth"] = f["ci_long_walk_s"] / f["ci_short_walk_s"]
    f["ci_build_growth"] = f["ci_long_build_s"] / max(f["ci_short_build_s"], 1e-3)
    largest = "huge" if huge else "long"
    for what in ("request", "approve", "push_one_request", "push_no_hook"):
        key = {"push_one_request": "push", "push_no_hook": "push_floor"}.get(what, what)
        f[f"ci_{key}_growth"] = f[f"ci_{largest}_{what}_s"] / f[f"ci_hundred_{what}_s"]
    # what the hook adds to git's own push: the part of a push that gitjit's design decides
    added = {name: f[f"ci_{name}_push_one_request_s"] - f[f"ci_{name}_push_no_hook_s"] for name in ("hundred", largest)}
    f.update({f"ci_{name}_hook_added_s": seconds for name, seconds in added.items()})
    f["ci_push_hook_growth"] = added[largest] / added["hundred"]
    return figures


# -- figure 5: hostile pushes (issue 9) ------------------------------------------

HOSTILE_CASES = {
    "a": "decision signed with a ~15 KB nested compressed-packet stream",
    "b": "a 100 MB request file",
    "c": "one commit adding 200,000 files",
    "d": "a request with TOML nested 100,000 deep",
    "e": "a decision whose signature is 1 MB of armor",
}
HOSTILE_TARGET_S, HOSTILE_TARGET_MIB = 2.0, 200
# The measuring wrapper's own caps, so that a runaway hook cannot take the shared
# machine down: a hook that reaches one is killed and its row is a miss.
HOOK_CAP_S, HOOK_CAP_MIB = 300, 4096

MEASURED_HOOK = """#!{python}
# gitjit's pre-receive hook, measured for make bench: its wall time and the largest
# resident set in its process tree. The wrapper is a child subreaper, so processes
# the hook leaves behind (git cat-file, gpg) are reaped here and counted too.
import ctypes, json, os, resource, signal, subprocess, sys, time

ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

def capped():
    resource.setrlimit(resource.RLIMIT_AS, ({cap_mib} << 20, {cap_mib} << 20))

start = time.perf_counter()
hook = subprocess.Popen([{hook!r}], preexec_fn=capped, start_new_session=True)
try:
    status, timed_out = hook.wait(timeout={cap_s}), False
except subprocess.TimeoutExpired:
    os.killpg(hook.pid, signal.SIGKILL)
    status, timed_out = hook.wait(), True
seconds = time.perf_counter() - start
deadline = time.monotonic() + 30
while True:  # the hook's orphans
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        if time.monotonic() > deadline:
            os.killpg(hook.pid, signal.SIGKILL)
        time.sleep(0.01)
max_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open({out!r}, "w") as handle:
    json.dump({{"seconds": seconds, "max_rss_mib": max_rss_kib / 1024, "exit": status,
               "timed_out": timed_out}}, handle)
sys.exit(1 if status else 0)
"""


def packet_header(tag: int, length: int) -> bytes:
    """A new-format OpenPGP packet header (RFC 4880 s.4.2.2)."""
    if length < 192:
        return bytes([0xC0 | tag, length])
    if length < 8384:
        return bytes([0xC0 | tag, ((length - 192) >> 8) + 192, (length - 192) & 0xFF])
    return bytes([0xC0 | tag, 0xFF]) + length.to_bytes(4, "big")


def nested_compression(packet: bytes, size: int = 15_000) -> bytes:
    """`packet` inside ZLIB-compressed packets, one inside the other, until the stream is `size` bytes."""
    while len(packet) < size:
        body = b"\x02" + zlib.compress(packet)
        packet = packet_header(8, len(body)) + body
    return packet


def repeated(packet: bytes, armored_size: int = 1 << 20) -> bytes:
    """The same signature packet again and again, to `armored_size` bytes once armored (4/3 larger)."""
    return packet * (armored_size * 3 // 4 // len(packet) + 1)


class Hostile:
    """The five hostile pushes, built once into a cache directory and reused by later runs.

    The cache is named after gitjit's and this file's sources: any change to
    either builds it again. Each push goes to a fresh server of its own.
    """

    def __init__(self, cache: Path):
        self.cache = cache
        self.bench = Bench(cache, gnupghome=cache / "gnupg")
        self.repo = cache / "hostile"

    @staticmethod
    def default_cache() -> Path:
        digest = hashlib.sha256()
        for path in sorted((HERE.parent / "gitjit").glob("*.py")) + [Path(__file__).resolve()]:
            digest.update(path.read_bytes())
        return Path(tempfile.gettempdir()) / f"gitjit-bench-hostile-{digest.hexdigest()[:12]}"

    def build(self) -> None:
        ready = self.cache / "ready.json"
        if ready.exists():
            self.bench.fpr = json.loads(ready.read_text())
            log(f"  hostile pushes: reusing {self.cache}")
            return
        bench = self.bench
        bench.make_keys()
        repo = bench.client("hostile", layout=1)  # the pushes of issue 9, as they were made
        request_id = bench.gitjit(repo, "request", "deploy-prod", "--target", "main", "--reason", "bench")
        base = bench.git(repo, "rev-parse", "refs/heads/approvals")
        target = bench.git(repo, "rev-parse", "main")
        decision = (f'gitjit = 1\nrequest = "{request_id}"\n'
                    f'request_blob = "{bench.git(repo, "rev-parse", f"{base}:requests/{request_id}.toml")}"\n'
                    f'target = "{target}"\ndecision = "approve"\ncomment = "bench"\n').encode()
        path = f"approvals/{request_id}/bob.toml"
        started = time.perf_counter()
        builders = {
            "a": lambda: self.signed_commit(base, path, decision, "bob", nested_compression),
            "b": lambda: self.request_commit(base, target, b'"' + b"x" * 100_000_000 + b'"'),
            "c": lambda: self.many_files_commit(base, 200_000),
            "d": lambda: self.request_commit(base, target, b"[" * 100_000 + b"]" * 100_000),
            "e": lambda: self.signed_commit(base, path, decision, "bob", repeated),
        }
        for case, build in builders.items():
            begun = time.perf_counter()
            bench.git(repo, "update-ref", f"refs/heads/hostile-{case}", build())
            log(f"  ({case}) built in {time.perf_counter() - begun:.1f} s")
        ready.write_text(json.dumps(bench.fpr))
        log(f"  hostile pushes built in {time.perf_counter() - started:.1f} s, cached in {self.cache}")

    def signed_commit(self, parent: str, path: str, content: bytes, signer: str, shape) -> str:
        """A commit adding `path`, its gpgsig header the signer's real signature packet shaped by `shape`."""
        bench, repo = self.bench, self.repo
        tree = self.tree_with(parent, path, content)
        ident = f"{signer.title()} <{signer}@example.com> {int(time.time())} +0000"
        head = f"tree {tree}\nparent {parent}\nauthor {ident}\ncommitter {ident}\n".encode()
        message = f"\n{path}\n".encode()
        packet = bench.run("gpg", "--batch", "--detach-sign", "--local-user", bench.fpr[signer],
                           input=head + message).stdout
        armor = bench.run("gpg", "--batch", "--enarmor", input=shape(packet)).stdout
        armor = armor.replace(b"PGP ARMORED FILE", b"PGP SIGNATURE")
        armor = b"\n".join(line for line in armor.splitlines() if not line.startswith(b"Comment:"))
        raw = head + b"gpgsig " + armor.replace(b"\n", b"\n ") + b"\n" + message
        return bench.git(repo, "hash-object", "-t", "commit", "-w", "--literally", "--stdin", input=raw)

    def tree_with(self, parent: str, path: str, content: bytes) -> str:
        bench, repo = self.bench, self.repo
        env = dict(bench.env, GIT_INDEX_FILE=str(self.cache / "hostile-index"))
        bench.run("git", "-C", str(repo), "read-tree", parent, env=env)
        blob = bench.git(repo, "hash-object", "-w", "--stdin", input=content)
        bench.run("git", "-C", str(repo), "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        return bench.run("git", "-C", str(repo), "write-tree", env=env).stdout.decode().strip()

    def fast_import(self, parent: str, message: str, files: list[bytes]) -> str:
        """An unsigned commit on `parent` made by git fast-import from `files` (its M lines and data)."""
        ref = "refs/hostile/scratch"
        stamp = int(time.time())
        stream = b"".join([f"commit {ref}\ncommitter Bench <bench@example.com> {stamp} +0000\n".encode(),
                           b"data %d\n%s\n" % (len(message), message.encode()), f"from {parent}\n".encode(), *files])
        self.bench.run("git", "-C", str(self.repo), "fast-import", "--quiet", "--force", input=stream)
        return self.bench.git(self.repo, "rev-parse", ref)

    def request_commit(self, parent: str, target: str, reason: bytes) -> str:
        rid = f"deploy-prod-hostile-{secrets.token_hex(3)}"
        created, expires = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ahead)) for ahead in (0, 3600))
        body = (f'gitjit = 1\nid = "{rid}"\naction = "deploy-prod"\ntarget = "{target}"\n'
                f'requested_by = "Bench <bench@example.com>"\nreason = ').encode() + reason + (
                f"\ncreated = {created}\nexpires = {expires}\n").encode()
        return self.fast_import(parent, f"gitjit: request {rid}", [
            f"M 100644 inline requests/{rid}.toml\n".encode(), b"data %d\n" % len(body), body, b"\n"])

    def many_files_commit(self, parent: str, count: int) -> str:
        """An unsigned commit adding `count` files under requests/, all the same small blob.

        Its trees are made by git mktree: git fast-import slows down with the
        square of a directory's size.
        """
        bench, repo = self.bench, self.repo
        blob = bench.git(repo, "hash-object", "-w", "--stdin", input=b"gitjit = 1\n")
        listing = bench.git(repo, "ls-tree", f"{parent}:requests").splitlines()
        listing += [f"100644 blob {blob}\tbulk-{i:06d}.toml" for i in range(count)]
        requests = bench.git(repo, "mktree", input="\n".join(listing).encode() + b"\n")
        top = [line for line in bench.git(repo, "ls-tree", parent).splitlines() if not line.endswith("\trequests")]
        tree = bench.git(repo, "mktree", input="\n".join([*top, f"040000 tree {requests}\trequests"]).encode() + b"\n")
        return bench.git(repo, "commit-tree", tree, "-p", parent, "-m", f"{count} files at once")

    def push_all(self, base: Path, only: list[str] | None = None) -> dict:
        """Each case pushed by a real `git push` to a fresh server whose hook `gitjit hook install` put there."""
        bench = self.bench
        template = base / "hostile-server.git"
        bench.run("git", "init", "-q", "--bare", str(template))
        bench.run(PY, "-m", "gitjit", "hook", "install", "--repo", str(template))
        bench.git(self.repo, "push", "-q", str(template), "main", "refs/heads/approvals:refs/heads/approvals")
        rows = {}
        for case, what in HOSTILE_CASES.items():
            if only and case not in only:
                continue
            server = base / f"hostile-{case}.git"
            shutil.copytree(template, server, symlinks=True)
            hooks = server / "hooks"
            (hooks / "pre-receive").rename(hooks / "pre-receive.measured")
            measure = base / f"hostile-{case}.json"
            (hooks / "pre-receive").write_text(MEASURED_HOOK.format(
                python=PY, hook=str(hooks / "pre-receive.measured"), out=str(measure),
                cap_mib=HOOK_CAP_MIB, cap_s=HOOK_CAP_S))
            (hooks / "pre-receive").chmod(0o755)
            log(f"  ({case}) {what} ...")
            started = time.perf_counter()
            push = bench.run("git", "-C", str(self.repo), "push", "--porcelain", str(server),
                             f"refs/heads/hostile-{case}:refs/heads/approvals", check=False)
            push_seconds = time.perf_counter() - started
            hook = json.loads(measure.read_text())
            said = [line.split("remote: ", 1)[-1].strip() for line in push.stderr.decode(errors="replace").splitlines()]
            refusal = next((line for line in said if " refused: " in line), "")
            met = (not hook["timed_out"] and hook["seconds"] < HOSTILE_TARGET_S
                   and hook["max_rss_mib"] < HOSTILE_TARGET_MIB)
            rows[case] = {
                "push": what,
                "hook_s": hook["seconds"],
                "hook_max_rss_mib": hook["max_rss_mib"],
                "hook_timed_out": hook["timed_out"],
                "push_s": push_seconds,
                "verdict": "refused" if push.returncode else "accepted",
                "reason": refusal[:300],
                "met": met,
            }
            shutil.rmtree(server, ignore_errors=True)
            log(f"      hook {hook['seconds']:.2f} s, {hook['max_rss_mib']:.0f} MiB, "
                f"{rows[case]['verdict']}{' (killed at the cap)' if hook['timed_out'] else ''}: {refusal[:160]}")
        return rows


def figure_5(base: Path, cache: Path | None, only: list[str] | None = None) -> dict:
    """The hook's time and memory on five hostile pushes (issue 9): target < 2 s and < 200 MiB each."""
    cache = cache or Hostile.default_cache()
    if cache.exists() and not (cache / "ready.json").exists():
        shutil.rmtree(cache)  # a build that did not finish: start again
    cache.mkdir(parents=True, exist_ok=True)
    hostile = Hostile(cache)
    log("setting up the hostile pushes ...")
    try:
        hostile.build()
        return hostile.push_all(base, only)
    finally:
        hostile.bench.run("gpgconf", "--kill", "all", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--extra", type=int, default=20000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--only", choices=("push", "audit", "hostile", "ci"),
                        help="run only the tag-push figures (1-3), the audit one (4), the hostile pushes (5) "
                             "or the CI figures (6)")
    parser.add_argument("--ci-requests", type=int, default=20000, help="requests on the long CI branch")
    parser.add_argument("--ci-decisions", type=int, default=300, help="signed decisions on the long CI branch")
    parser.add_argument("--ci-layout", type=int, choices=(1, 2), default=2,
                        help="the CI branches' layout: 2 sharded (what gitjit init writes), 1 flat (older branches)")
    parser.add_argument("--ci-huge", type=int, default=100000,
                        help="requests on the branch for per-commit operations against 100 (0: use the long branch)")
    parser.add_argument("--ci-runs", type=int, default=3, help="fresh clones (and per-commit rounds) per CI branch")
    parser.add_argument("--ci-baseline", type=Path, default=HERE / "results" / "ci-baseline.json",
                        help="an earlier run's CI figures, printed beside the new ones as 'old'")
    parser.add_argument("--case", action="append", choices=sorted(HOSTILE_CASES),
                        help="with --only hostile: only this push (repeatable)")
    parser.add_argument("--hostile-cache", type=Path,
                        help="where the hostile pushes are built once (default: a temp dir named after the sources)")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="gitjit-bench-"))
    bench = Bench(base)
    figures: dict = {}
    hostile: dict | None = None
    try:
        if args.only != "hostile":
            bench.make_keys()
            if args.only in (None, "push"):
                figures.update(figure_1_and_2(bench, max(7, args.runs), args.extra))
            if args.only in (None, "audit"):
                figures.update(figure_4(bench, args.decisions))
            if args.only in (None, "ci"):
                figures.update(figure_ci(bench, args.ci_runs, args.ci_requests, args.ci_decisions, args.ci_layout,
                                         args.ci_huge))
        if args.only in (None, "hostile"):
            hostile = figure_5(base, args.hostile_cache, args.case)
    finally:
        bench.run("gpgconf", "--kill", "all", check=False)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(bench.gnupghome, ignore_errors=True)

    targets = [
        ("tag push, gitjit / floor", figures.get("ratio_gitjit_to_floor"), "<=", 2.5),
        ("tag push, 20k history / short", figures.get("ratio_long_to_short"), "<=", 1.3),
        ("bulk push, commits/s through the hook", figures.get("bulk_push_commits_per_s"), ">=", 1000),
        ("audit cold, signatures/s", figures.get("audit_signatures_per_s"), ">=", 300),
        ("audit warm, seconds", figures.get("audit_warm_s"), "<", 1.0),
    ]
    try:
        old = json.loads(args.ci_baseline.read_text()).get("figures", {})
    except (OSError, ValueError):
        old = {}
    targets += [(name, figures.get(key), op, limit) for name, key, op, limit in CI_TARGETS]
    olds = {name: old.get(key) for name, key, _, _ in CI_TARGETS}
    results = []
    log("")
    for name, value, op, limit in targets:
        if value is None:  # a figure left out by --only
            continue
        ok = value <= limit if op == "<=" else value >= limit if op == ">=" else value < limit
        results.append({"figure": name, "value": value, "target": f"{op} {limit}", "met": ok})
        before = f"   (old {olds[name]:.2f})" if olds.get(name) is not None else ""
        log(f"{'MET ' if ok else 'MISS'}  {name:40} {value:10.2f}   target {op} {limit}{before}")
    for name, key in CI_CONTEXT:
        if key in figures:
            before = f"   (old {old[key]:.2f})" if key in old else ""
            log(f"      {name:40} {figures[key]:10.2f}   (no target: git alone){before}")
    seconds = sorted(k for k in figures if k.startswith("ci_") and k.endswith("_s"))
    if seconds:
        log("\nCI seconds (medians)                      new        old")
        for key in seconds:
            before = f"{old[key]:10.2f}" if key in old else "         -"
            log(f"      {key[3:]:36} {figures[key]:10.2f} {before}")
    target = f"< {HOSTILE_TARGET_S:g} s and < {HOSTILE_TARGET_MIB} MiB"
    for case, row in (hostile or {}).items():
        log(f"{'MET ' if row['met'] else 'MISS'}  hostile ({case}) {row['push']:58} {row['hook_s']:7.2f} s "
            f"{row['hook_max_rss_mib']:6.0f} MiB   target {target}")
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
               "gpg": subprocess.run(["gpg", "--version"], capture_output=True, text=True).stdout.splitlines()[0]}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:  # what other runs recorded stays: --only rewrites its own figures only
        record = json.loads(out.read_text())
    except (OSError, ValueError):
        record = {}
    if args.only != "hostile":
        if args.only is not None:  # this run's figures join the others already recorded
            names = {r["figure"] for r in results}
            stale = (lambda k: k.startswith("ci_")) if args.only == "ci" else (lambda k: k in figures)
            figures = {**{k: v for k, v in record.get("figures", {}).items() if not stale(k)}, **figures}
            results = [r for r in record.get("targets", []) if r["figure"] not in names] + results
        record.update({"when": when, "machine": machine, "figures": figures, "targets": results})
    if hostile is not None:
        record["hostile"] = {"when": when, "machine": machine,
                             "target": f"{target} per push: the hook's wall time and the max RSS of its process tree",
                             "pushes": hostile}
    out.write_text(json.dumps(record, indent=2) + "\n")
    log(f"\nwritten to {out}")
    met = [r["met"] for r in results] + [row["met"] for row in (hostile or {}).values()]
    return 0 if all(met) else 1

if __name__ == "__main__":
    sys.exit(main())
