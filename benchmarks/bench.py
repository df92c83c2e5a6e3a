"""gitjit's benchmark: `make bench` (issue 5).

Builds every scenario in a temporary directory with real GnuPG keys, real
bare servers whose hook `gitjit hook install` put there, and real pushes,
then prints and records (benchmarks/results/latest.json) four figures:

1. tag push through the gitjit hook vs. a floor hook that only runs
   `git verify-commit` on the two approval commits (target: <= 2.5x);
2. the same tag push with 20,000 extra requests in the history vs. a short
   history (target: <= 1.3x);
3. the hook's own rate on a push of 20,000 request commits at once
   (target: >= 1,000 commits/s);
4. `gitjit audit` of 2,000 signed decisions, cold (target: >= 300
   signatures/s) and again with nothing new (target: < 1 s).

Pushes are timed as whole `git push` commands, runs interleaved, medians of
at least 7 (15 by default). Options: --runs N, --extra N (20000), --decisions N (2000),
--keep (leave the temporary directory), --only push|audit (figures 1-3 or 4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
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


def log(message: str) -> None:
    print(message, flush=True)


class Bench:
    def __init__(self, base: Path):
        self.base = base
        self.gnupghome = Path(tempfile.mkdtemp(prefix="gjb", dir="/tmp"))
        home = base / "home"
        home.mkdir()
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

    def client(self, name: str) -> Path:
        """A repository with one commit on main and an approvals branch: alice admin,
        bob and carol approvers of deploy-prod."""
        repo = self.base / name
        self.run("git", "init", "-q", "-b", "main", str(repo))
        self.act_as(repo, "alice")
        self.git(repo, "commit", "-q", "--allow-empty", "-m", "release candidate")
        self.gitjit(repo, "init", "--admin", "alice")
        for name_ in ("bob", "carol"):
            self.gitjit(repo, "person", "add", name_, "--key-file", str(self.base / f"{name_}.asc"))
        policy = self.git(repo, "show", "refs/heads/approvals:policy.toml") + "\n" + ACTION
        self.commit_files(repo, {"policy.toml": policy.encode()}, "deploy-prod needs bob and carol", sign=True)
        return repo

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
        now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
        created, expires = now.strftime("%Y-%m-%dT%H:%M:%SZ"), (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stamp = int(now.timestamp())
        chunks = []
        for i in range(count):
            rid = f"deploy-prod-bulk-{i:06d}"
            body = (f'gitjit = 1\nid = "{rid}"\naction = "deploy-prod"\ntarget = "{i:040x}"\n'
                    f'requested_by = "Bench <bench@example.com>"\nreason = "history"\n'
                    f"created = {created}\nexpires = {expires}\n").encode()
            message = f"gitjit: request {rid}\n".encode()
            chunks += [b"commit refs/heads/approvals\n",
                       f"committer Bench <bench@example.com> {stamp + i} +0000\n".encode(),
                       b"data %d\n%s" % (len(message), message)]
            if i == 0:
                chunks.append(f"from {tip}\n".encode())
            chunks += [f"M 100644 inline requests/{rid}.toml\n".encode(), b"data %d\n%s\n" % (len(body), body)]
        self.run("git", "-C", str(repo), "fast-import", "--quiet", input=b"".join(chunks))

    def approved_request(self, repo: Path, server: Path) -> tuple[str, list[str]]:
        """A request for main approved by bob and carol, pushed; returns (id, approval commits)."""
        request_id = self.gitjit(repo, "request", "deploy-prod", "--target", "main", "--reason", "bench")
        approvals = []
        for name in ("bob", "carol"):
            self.act_as(repo, name)
            self.gitjit(repo, "approve", request_id)
            approvals.append(self.git(repo, "rev-parse", "refs/heads/approvals"))
        self.act_as(repo, "alice")
        self.git(repo, "push", "-q", str(server), "main", "refs/heads/approvals:refs/heads/approvals")
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
    tip = repo.revparse_single("refs/heads/approvals")
    tree = tip.tree
    now = datetime.now(timezone.utc).replace(microsecond=0)
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
        rid = f"deploy-prod-audit-{i:05d}"
        body = (f'gitjit = 1\nid = "{rid}"\naction = "deploy-prod"\ntarget = "{target}"\n'
                f'requested_by = "Alice <alice@example.com>"\nreason = "audit"\n'
                f'created = {now.strftime("%Y-%m-%dT%H:%M:%SZ")}\n'
                f'expires = {(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}\n').encode()
        blob = repo.create_blob(body)
        index.add(pygit2.IndexEntry(f"requests/{rid}.toml", blob, pygit2.enums.FileMode.BLOB))
        payloads.append((index.write_tree(repo), f"gitjit: request {rid}\n", None))
        for name in ("bob", "carol"):
            decision = (f'gitjit = 1\nrequest = "{rid}"\nrequest_blob = "{blob}"\ntarget = "{target}"\n'
                        f'decision = "approve"\ncomment = ""\n').encode()
            index.add(pygit2.IndexEntry(f"approvals/{rid}/{name}.toml", repo.create_blob(decision),
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
    log(f"  made {len(payloads)} commits ({decisions} signed) in {time.perf_counter() - started:.1f} s")

    shutil.rmtree(repo_path / ".git" / "gitjit", ignore_errors=True)
    cold = bench.timed(PY, "-m", "gitjit", "audit", "--json", "--repo", str(repo_path))
    warm = statistics.median(bench.timed(PY, "-m", "gitjit", "audit", "--json", "--repo", str(repo_path))
                             for _ in range(3))
    report = json.loads(bench.run(PY, "-m", "gitjit", "audit", "--json", "--repo", str(repo_path)).stdout)
    counted = sum(1 for r in report.get("requests", []) for d in r.get("decisions", []) if d.get("counts"))
    log(f"  audit cold {cold:.2f} s ({decisions / cold:.0f} signatures/s), warm {warm:.2f} s, "
        f"{counted} decisions counted")
    return {
        "audit_decisions": decisions,
        "audit_decisions_counted": counted,
        "audit_cold_s": cold,
        "audit_signatures_per_s": decisions / cold,
        "audit_warm_s": warm,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--extra", type=int, default=20000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--only", choices=("push", "audit"), help="run only the tag-push figures (1-3) or the audit one (4)")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="gitjit-bench-"))
    bench = Bench(base)
    try:
        bench.make_keys()
        figures = {}
        if args.only != "audit":
            figures.update(figure_1_and_2(bench, max(7, args.runs), args.extra))
        if args.only != "push":
            figures.update(figure_4(bench, args.decisions))
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
    results = []
    log("")
    for name, value, op, limit in targets:
        if value is None:  # a figure left out by --only
            continue
        ok = value <= limit if op == "<=" else value >= limit if op == ">=" else value < limit
        results.append({"figure": name, "value": value, "target": f"{op} {limit}", "met": ok})
        log(f"{'MET ' if ok else 'MISS'}  {name:40} {value:10.2f}   target {op} {limit}")
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
               "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
               "gpg": subprocess.run(["gpg", "--version"], capture_output=True, text=True).stdout.splitlines()[0]}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "machine": machine, "figures": figures, "targets": results}, indent=2) + "\n")
    log(f"\nwritten to {out}")
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
