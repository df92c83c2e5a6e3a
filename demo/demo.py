"""gitjit, end to end: a server that only takes approved release tags.

Run it with `make demo`. Everything happens in a temporary directory, with
throwaway GnuPG keys and a throwaway bare repository playing the git server;
nothing outside it is read or written, and it is all removed at the end.

The story:

1. alice (admin), bob and carol (approvers) get OpenPGP keys.
2. The server gets the gitjit pre-receive hook: `gitjit hook install`.
3. alice creates the approvals branch (`gitjit init`), adds bob and carol
   (`gitjit person add`) and, as admin, adds an action by hand:
   `deploy-prod` protects tags `v*` and needs 2 approvals, fresh within 1h.
   She pushes it; the hook authenticates the branch and pins its root.
4. alice requests deploy-prod for her release commit; bob and carol approve,
   each from their own clone, each pushing through the hook.
5. alice's tag v1.0 on that commit is accepted.
6. A tag v1.1 on a commit nobody approved is refused, and the hook says why.
7. bob forges carol's approval (his own key on her file): refused.

The script exits 0 only if every step behaved as described.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = ("alice", "bob", "carol")


class Demo:
    def __init__(self, base: Path):
        self.base = base
        self.gnupghome = base / "gnupg"
        self.gnupghome.mkdir(mode=0o700)
        (base / "home").mkdir()
        # A clean environment: no git or GnuPG state of the person running the demo.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GNUPG"))}
        self.env.update(
            GNUPGHOME=str(self.gnupghome),
            HOME=str(base / "home"),
            XDG_CONFIG_HOME=str(base / "home" / ".config"),
            GIT_CONFIG_NOSYSTEM="1",
            LC_ALL="C.UTF-8",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        )
        self.fingerprints: dict[str, str] = {}
        self.failures: list[str] = []

    # -- running things ------------------------------------------------------

    def run(self, *cmd: str, cwd: Path | None = None, expect: int | None = 0, show: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess:
        shown = list(cmd)
        if show:
            where = f"({cwd.name}) " if cwd else ""
            print(f"  {where}$ {shlex.join(shown)}")
        proc = subprocess.run(cmd, cwd=cwd, env=self.env, capture_output=True, text=True, input=input)
        if show:
            for line in (proc.stdout + proc.stderr).splitlines():
                print(f"      {line}")
        if expect is not None and proc.returncode != expect:
            raise SystemExit(f"demo: {' '.join(shown)} exited {proc.returncode}, expected {expect}\n"
                             f"{proc.stdout}{proc.stderr}")
        return proc

    def git(self, cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("git", *args, cwd=cwd, **kw)

    def gitjit(self, cwd: Path, *args: str, **kw) -> subprocess.CompletedProcess:
        if kw.get("show", True):
            print(f"  ({cwd.name}) $ gitjit {shlex.join(args)}")
        proc = self.run(sys.executable, "-m", "gitjit", *args, cwd=cwd, show=False, **kw)
        if kw.get("show", True):
            for line in (proc.stdout + proc.stderr).splitlines():
                print(f"      {line}")
        return proc

    def expect(self, what: str, ok: bool) -> None:
        print(f"  {'ok' if ok else 'UNEXPECTED'}: {what}")
        if not ok:
            self.failures.append(what)

    def push_lines(self, proc: subprocess.CompletedProcess) -> list[str]:
        """What the hook said (git shows it as 'remote: ...')."""
        return [line.split("remote: ", 1)[1].strip() for line in proc.stderr.splitlines()
                if line.startswith("remote: gitjit")]

    # -- people --------------------------------------------------------------

    def make_key(self, person: str) -> None:
        uid = f"{person.capitalize()} <{person}@example.com>"
        proc = self.run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--status-fd", "1",
                        "--quick-gen-key", uid, "ed25519", "sign", "0", show=False)
        fpr = next(line.split()[3] for line in proc.stdout.splitlines() if "KEY_CREATED" in line)
        self.fingerprints[person] = fpr
        armored = self.run("gpg", "--armor", "--export", fpr, show=False).stdout
        (self.base / f"{person}.asc").write_text(armored)
        print(f"  {person}: key {fpr}")

    def clone(self, person: str, url: str) -> Path:
        path = self.base / person
        self.git(self.base, "clone", "-q", url, person)
        self.identify(path, person)
        return path

    def identify(self, path: Path, person: str) -> None:
        for key, value in (("user.name", person.capitalize()), ("user.email", f"{person}@example.com"),
                           ("user.signingkey", self.fingerprints[person])):
            self.run("git", "config", key, value, cwd=path, show=False)


def step(title: str) -> None:
    print(f"\n==> {title}")


def story(demo: Demo) -> None:
    base = demo.base

    step("1. Keys for alice (admin), bob and carol (approvers), in a throwaway GNUPGHOME")
    for person in PEOPLE:
        demo.make_key(person)

    step("2. A bare repository plays the server; gitjit's pre-receive hook goes in")
    server = base / "server.git"
    demo.git(base, "init", "-q", "--bare", "-b", "main", str(server))
    url = server.as_uri()
    demo.gitjit(base, "hook", "install", "--repo", str(server))
    demo.expect("the hook is installed and executable", os.access(server / "hooks" / "pre-receive", os.X_OK))

    step("3. alice creates the approvals branch, adds bob and carol, and the deploy-prod action")
    alice = base / "alice"
    demo.git(base, "init", "-q", "-b", "main", "alice")
    demo.identify(alice, "alice")
    demo.git(alice, "remote", "add", "origin", url)
    (alice / "app.txt").write_text("release 1.0\n")
    demo.git(alice, "add", "app.txt")
    demo.git(alice, "commit", "-q", "-m", "Release 1.0")
    demo.gitjit(alice, "init", "--admin", "alice")
    for person in ("bob", "carol"):
        demo.gitjit(alice, "person", "add", person, "--key-file", str(base / f"{person}.asc"),
                    "--email", f"{person}@example.com")
    print("  alice edits policy.toml on the approvals branch and signs the commit (she is the admin):")
    demo.git(alice, "switch", "-q", "approvals")
    with open(alice / "policy.toml", "a") as policy:
        policy.write(textwrap.dedent("""
            [actions.deploy-prod]
            approvers = ["bob", "carol"]
            threshold = 2
            freshness = "1h"
            tags = ["v*"]
            """))
    demo.git(alice, "commit", "-q", "-S", "-am", "policy: deploy-prod needs bob and carol")
    demo.git(alice, "switch", "-q", "main")
    first = demo.git(alice, "push", "origin", "main", "approvals")
    root = demo.run("git", "rev-list", "--max-parents=0", "approvals", cwd=alice, show=False).stdout.strip()
    pinned = demo.run("git", "config", "gitjit.root", cwd=server, show=False, expect=None).stdout.strip()
    demo.expect("the first push of the approvals branch is accepted", first.returncode == 0)
    demo.expect(f"the server pinned the branch's root ({root[:12]})", pinned == root)

    step("4. alice asks for deploy-prod on her release commit; bob and carol approve")
    release = demo.run("git", "rev-parse", "main", cwd=alice, show=False).stdout.strip()
    request_id = demo.gitjit(alice, "request", "deploy-prod", "--target", "main", "--reason", "Release 1.0",
                             "--push").stdout.strip().splitlines()[-1]
    for person in ("bob", "carol"):
        clone = demo.clone(person, url)
        demo.gitjit(clone, "approve", request_id, "--comment", "LGTM", "--push")
    status = demo.gitjit(base / "carol", "status", request_id)
    demo.expect("the request is approved", "approved" in status.stdout)

    step("5. alice pushes the tag v1.0 on the approved commit")
    demo.git(alice, "tag", "-a", "-m", "Release 1.0", "v1.0", release)
    accepted = demo.git(alice, "push", "origin", "v1.0", expect=None)
    demo.expect("the server accepted v1.0", accepted.returncode == 0)
    demo.expect("the hook named the approval behind it",
                any(f"approved by request {request_id} (bob, carol)" in l for l in demo.push_lines(accepted)))

    step("6. alice pushes v1.1 on a commit nobody approved")
    (alice / "app.txt").write_text("release 1.1\n")
    demo.git(alice, "commit", "-q", "-am", "Release 1.1")
    demo.git(alice, "tag", "v1.1")
    refused = demo.git(alice, "push", "origin", "main", "v1.1", expect=None)
    lines = demo.push_lines(refused)
    demo.expect("the server refused the push", refused.returncode != 0)
    demo.expect("the hook says what to do",
                any(l.startswith("gitjit: refs/tags/v1.1 refused: no request for deploy-prod") and
                    "gitjit request deploy-prod --target" in l for l in lines))
    server_refs = demo.run("git", "for-each-ref", "--format=%(refname)", cwd=server, show=False).stdout.split()
    demo.expect("neither v1.1 nor alice's new main reached the server (all or nothing)",
                "refs/tags/v1.1" not in server_refs and
                demo.run("git", "rev-parse", "main", cwd=server, show=False).stdout.strip() == release)

    step("7. bob approves a request for v1.1, then forges carol's approval with his own key")
    bob = base / "bob"
    demo.git(alice, "push", "-q", "origin", "main")
    demo.git(alice, "fetch", "-q", "origin")  # bob's and carol's approvals are on the server
    request_11 = demo.gitjit(alice, "request", "deploy-prod", "--target", "main", "--reason", "Release 1.1",
                             "--push").stdout.strip().splitlines()[-1]
    demo.git(bob, "fetch", "-q", "origin")
    demo.gitjit(bob, "approve", request_11, "--push")
    demo.git(bob, "fetch", "-q", "origin")
    demo.git(bob, "switch", "-q", "-C", "approvals", "origin/approvals")
    target = demo.run("git", "rev-parse", "origin/main", cwd=bob, show=False).stdout.strip()
    shard = Path("shards") / target[:2]  # layout 2: records sit in the shard of their target
    blob = demo.run("git", "rev-parse", f"HEAD:{shard}/requests/{request_11}.toml", cwd=bob,
                    show=False).stdout.strip()
    forged = bob / shard / "approvals" / request_11 / "carol.toml"
    forged.parent.mkdir(parents=True, exist_ok=True)
    forged.write_text(f'gitjit = 1\nrequest = "{request_11}"\nrequest_blob = "{blob}"\n'
                      f'target = "{target}"\ndecision = "approve"\ncomment = "carol agrees, honest"\n')
    print(f"  bob writes {forged.relative_to(bob)} and signs the commit with his own key:")
    demo.git(bob, "add", str(forged.relative_to(bob)))
    demo.git(bob, "commit", "-q", "-S", "-m", f"gitjit: approve {request_11}")
    forgery = demo.git(bob, "push", "origin", "approvals", expect=None)
    demo.expect("the server refused the forged approval", forgery.returncode != 0)
    demo.expect("the hook says whose key signed it",
                any("carol: signed by bob's key, not carol's" in l for l in demo.push_lines(forgery)))
    still = demo.git(alice, "push", "origin", "v1.1", expect=None)
    demo.expect("v1.1 is still refused: 1 of 2 approvals", still.returncode != 0 and
                any(f"request {request_11} has 1 of 2 approvals (bob)" in l for l in demo.push_lines(still)))


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="gitjit-demo-"))
    demo = Demo(base)
    try:
        story(demo)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=demo.env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    if demo.failures:
        print(f"\ndemo FAILED: {len(demo.failures)} step(s) did not behave as expected:")
        for failure in demo.failures:
            print(f"  - {failure}")
        return 1
    print("\ndemo OK: every step behaved as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
