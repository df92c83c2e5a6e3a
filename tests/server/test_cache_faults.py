"""Caches that heal themselves (issue 10): a fault while a cache entry is built never sticks.

Every test pushes for real into a bare server whose hook `gitjit hook
install` wrote, with real gpg. A fault (a gpg killed while it imports, a
full disk, a damaged entry) may refuse the push it happens in, never a later
one: once the fault is gone the next push goes through, and nobody deletes
`$GIT_DIR/gitjit` by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import GPG, Keys, git
from hookkit import copy_world, policy_toml

from gitjit.trust.signatures import Keyring

APPROVALS = "refs/heads/approvals"


class Server:
    def __init__(self, template: Path, tmp: Path, keys: Keys):
        world = copy_world(template, tmp, keys)  # test_hook's server and alice's clone
        self.keys, self.path, self.alice, self.writer = keys, world.server, world.alice, world.writer
        self.env = dict(keys.env)

    @property
    def keyrings(self) -> Path:
        return self.path / "gitjit" / "keyrings"

    def push(self, *refspecs: str) -> subprocess.CompletedProcess:
        return git("push", "--porcelain", self.path.as_uri(), *refspecs, cwd=self.alice.path, env=self.env,
                   check=False)

    def keys_tree(self) -> str:
        return self.alice.git("rev-parse", "approvals:keys").stdout.strip()

    def add_erin(self) -> str:
        """An admin-signed policy commit adding erin's key: a new keys/ tree, so a keyring to build."""
        policy = policy_toml(self.keys, people=("alice", "bob", "carol", "dave", "erin"),
                             approvers=("alice", "bob", "carol", "erin"))
        self.writer.commit({"keys/erin.asc": self.keys["erin"].asc, "policy.toml": policy}, "gitjit: add erin")
        return self.keys_tree()

    def approved_tag(self, tag: str) -> str:
        target = self.alice.commit_file(f"{tag}.txt", f"{tag}\n")
        request_id = self.writer.request(target)
        self.writer.approve_by(self.keys, request_id, "bob", "carol")
        self.alice.git("tag", tag, target)
        return target


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> Server:  # noqa: F811 (the fixture)
    return Server(golden, tmp_path, keys)


def accepted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"push refused:\n{result.stdout}\n{result.stderr}"
    assert "refused" not in result.stderr and "Error" not in result.stderr


def refusal(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, f"push accepted:\n{result.stdout}\n{result.stderr}"
    lines = [line.split("remote: ", 1)[-1] for line in result.stderr.splitlines()]
    return "\n".join(line for line in lines if line.startswith("gitjit: refs/"))


def published(server: Server) -> set[str]:
    return set(os.listdir(server.keyrings))


def assert_entry_checks_out(server: Server, tree: str, *people: str) -> None:
    ring = Keyring.load(server.keyrings, tree)
    assert ring is not None and ring.home == str(server.keyrings / tree)
    assert set(ring.owners) >= set(people) and all(ring.owners[p] == {server.keys[p].fpr} for p in people)
    meta = json.loads((server.keyrings / tree / "gitjit-keys.json").read_text())
    assert meta["tree"] == tree and meta["pubring"][0] == (server.keyrings / tree / "pubring.kbx").stat().st_size


# -- a gpg killed while it imports -----------------------------------------------------------------


def killing_gpg(where: Path, flag: Path) -> Path:
    """A gpg that, while `flag` exists, is killed (SIGKILL) at the end of every --import.

    The real gpg has read the key and printed IMPORT_OK and IMPORT_RES by
    then: only the way the process ended tells that the import did not
    finish, as when a build is killed between writing the keybox and exiting.
    """
    script = where / "gpg-killed-on-import"
    script.write_text(f"""#!/bin/sh
for arg in "$@"; do
    if [ "$arg" = --import ] && [ -e '{flag}' ]; then
        '{GPG}' "$@"
        kill -9 $$
    fi
done
exec '{GPG}' "$@"
""")
    script.chmod(0o755)
    return script


def test_a_killed_import_refuses_that_push_and_the_next_push_builds_the_keyring(server: Server, tmp_path: Path):
    flag = tmp_path / "kill-imports"
    flag.touch()
    server.env["GITJIT_GPG"] = str(killing_gpg(tmp_path, flag))
    before = published(server)
    tree = server.add_erin()

    reason = refusal(server.push("approvals"))
    assert "could not be built" in reason and "gpg was killed by signal 9" in reason, reason
    assert published(server) == before  # no entry for the new tree, no scratch folder left behind

    flag.unlink()  # the fault is gone; nobody touches $GIT_DIR/gitjit
    accepted(server.push("approvals"))
    assert published(server) == before | {tree}
    assert_entry_checks_out(server, tree, "alice", "bob", "carol", "dave", "erin")


def test_a_killed_import_is_never_taken_for_a_key_file_without_keys(keys: Keys, tmp_path: Path, monkeypatch):
    """Directly against Keyring: the build is an error, nothing is cached, a later build succeeds."""
    from gitjit.trust.signatures import KeyringError

    flag = tmp_path / "kill-imports"
    flag.touch()
    monkeypatch.setenv("GITJIT_GPG", str(killing_gpg(tmp_path, flag)))
    cache = tmp_path / "keyrings"
    files = {"alice": keys["alice"].asc.encode()}
    with pytest.raises(KeyringError, match="keys/alice.asc could not be imported: gpg was killed by signal 9"):
        Keyring.load_or_build(cache, "d" * 40, files)
    assert Keyring.load(cache, "d" * 40) is None and os.listdir(cache) == []
    flag.unlink()
    ring = Keyring.load_or_build(cache, "d" * 40, files)
    assert ring.owners == {"alice": {keys["alice"].fpr}} and ring.home == str(cache / ("d" * 40))


# -- a full disk -----------------------------------------------------------------------------------


@pytest.fixture
def full_cache(server: Server, tmp_path: Path):
    """The server's $GIT_DIR/gitjit on a tiny tmpfs (root only), its old content copied in, then filled up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    cache = server.path / "gitjit"
    old = tmp_path / "old-cache"
    shutil.move(cache, old)
    cache.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=755", "tmpfs", str(cache)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        shutil.rmtree(cache)
        shutil.move(old, cache)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        shutil.copytree(old, cache, dirs_exist_ok=True)
        filler = cache / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass  # ENOSPC: the disk is full
        finally:
            os.close(fd)
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(cache)], capture_output=True, check=False)


def test_a_full_disk_during_a_keyring_build_publishes_nothing_and_heals(server: Server, full_cache: Path):
    before = published(server)
    tree = server.add_erin()
    # The keyring cannot be built in the cache: this push builds one of its own (slower) and goes through.
    accepted(server.push("approvals"))
    assert published(server) == before

    full_cache.unlink()  # space again: the next push builds the keyring in the cache, checked
    server.approved_tag("v1.0")
    accepted(server.push("approvals", "refs/tags/v1.0"))
    assert published(server) == before | {tree}
    assert_entry_checks_out(server, tree, "erin", "bob")


# -- damaged entries -------------------------------------------------------------------------------


def _empty_keyring_of_an_older_gitjit(entry: Path) -> None:
    """What issue 10 found: an empty keyring, cached as if it held every key."""
    for child in entry.iterdir():
        if child.name != "gitjit-keys.json":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    meta = json.loads((entry / "gitjit-keys.json").read_text())
    (entry / "gitjit-keys.json").write_text(json.dumps({"owners": {p: [] for p in meta["owners"]}, "keys": {}}))


DAMAGES = {
    "empty keyring of an older gitjit": _empty_keyring_of_an_older_gitjit,
    "pubring missing": lambda entry: (entry / "pubring.kbx").unlink(),
    "pubring truncated": lambda entry: os.truncate(entry / "pubring.kbx", 10),
    "pubring zeroed": lambda entry: (entry / "pubring.kbx").write_bytes(b"\0" * (entry / "pubring.kbx").stat().st_size),
    "metadata missing": lambda entry: (entry / "gitjit-keys.json").unlink(),
    "metadata of another tree": lambda entry: (entry / "gitjit-keys.json").write_text(
        (entry / "gitjit-keys.json").read_text().replace(entry.name, "0" * 40)),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_keyring_entry_is_rebuilt_never_trusted(server: Server, damage: str):
    tree = server.keys_tree()
    entry = server.keyrings / tree
    assert entry.is_dir()
    DAMAGES[damage](entry)
    server.approved_tag("v2.0")
    accepted(server.push("approvals", "refs/tags/v2.0"))
    assert_entry_checks_out(server, tree, "alice", "bob", "carol", "dave")
    assert not [name for name in os.listdir(server.keyrings) if name.startswith(".")]


def test_a_scratch_folder_left_by_a_killed_build_is_swept_and_never_read(server: Server):
    """A build killed before publishing leaves `.xxxx-` folders: never loaded, removed once old."""
    stale = server.keyrings / ".deadbeef0000-killed"
    shutil.copytree(server.keyrings / server.keys_tree(), stale)
    old = os.stat(stale).st_mtime - 2 * 3600
    os.utime(stale, (old, old))
    server.add_erin()
    accepted(server.push("approvals"))
    assert not stale.exists()


def test_a_snapshot_that_is_not_a_database_is_replaced(server: Server):
    snapshot = server.path / "gitjit" / "trusted.sqlite"
    assert snapshot.is_file()
    snapshot.write_bytes(b"this is not a database" * 100)
    server.approved_tag("v3.0")
    accepted(server.push("approvals", "refs/tags/v3.0"))
    import sqlite3

    with sqlite3.connect(snapshot) as db:  # written afresh by that push, for the next one
        tip = dict(db.execute("SELECT key, value FROM meta").fetchall())["tip"]
    assert tip == server.alice.head("approvals")


def test_signature_files_are_never_written_into_the_keyring(server: Server, tmp_path: Path):
    """gpg reads the signature from a temporary file outside the cache: the keyring folder
    holds exactly what the build put there, before and after signatures were checked."""
    entry = server.keyrings / server.keys_tree()
    before = sorted(os.listdir(entry))
    server.env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    server.approved_tag("v4.0")
    accepted(server.push("approvals", "refs/tags/v4.0"))
    assert sorted(os.listdir(entry)) == before
    assert os.listdir(tmp_path / "tmp") == []  # and the temporary files are gone


# -- a key file without a key -----------------------------------------------------------------------


@pytest.mark.parametrize("content", ["not a key at all\n",
                                     ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQ==\n"
                                      "-----END PGP PUBLIC KEY BLOCK-----\n")])
def test_a_policy_commit_adding_a_key_file_without_a_key_is_refused_and_the_branch_goes_on(server: Server,
                                                                                            content: str):
    """Such a file would make every later keyring build fail: the push that brings it is refused,
    so it never lands, and the branch keeps working (docs/decisions.md)."""
    before = published(server)
    bad = server.writer.commit({"keys/zoe.asc": content}, "gitjit: a key file holding no key")
    reason = refusal(server.push("approvals"))
    assert "keys/zoe.asc holds no public key" in reason, reason
    assert published(server) == before
    server.writer.git("reset", "-q", "--hard", f"{bad}~1")
    server.alice.git("update-ref", "refs/heads/approvals", f"{bad}~1")
    server.approved_tag("v5.0")
    accepted(server.push("approvals", "refs/tags/v5.0"))


# -- snapshot rows that do not read back --------------------------------------------------------------


SNAPSHOT = Path("gitjit") / "trusted.sqlite"


def _rewrite_rows(snapshot: Path, table: str, change) -> set[str]:
    """Every row of `table` in the server's snapshot replaced by change(its JSON text); the rows written."""
    import sqlite3

    key = "id" if table == "requests" else "commit_id"
    written = set()
    with sqlite3.connect(snapshot) as db:
        for name, row in db.execute(f"SELECT {key}, row FROM {table}").fetchall():
            written.add(change(row))
            db.execute(f"UPDATE {table} SET row = ? WHERE {key} = ?", (change(row), name))
    return written


ROW_DAMAGES = {
    "request cut short": ("requests", lambda row: row[:10]),
    "request that is a list": ("requests", lambda row: "[]"),
    "request without its creation time": ("requests", lambda row: json.dumps(
        {k: v for k, v in json.loads(row).items() if k != "created"})),
    "request time of the wrong kind": ("requests", lambda row: json.dumps({**json.loads(row), "created": "monday"})),
    "decision that is null": ("decisions", lambda row: "null"),
    "decision that is a list": ("decisions", lambda row: "[]"),
    "decision with the wrong fields": ("decisions", lambda row: json.dumps({**json.loads(row), "decision": [1]})),
}


def _snapshot_tip(snapshot: Path) -> str:
    import sqlite3

    with sqlite3.connect(snapshot) as db:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())["tip"]


def _rows_written_afresh(snapshot: Path, damaged: set[str]) -> None:
    """The snapshot was written again: every row reads back, and none of the damaged ones is left."""
    import sqlite3

    with sqlite3.connect(snapshot) as db:
        for table in ("requests", "decisions"):
            for (row,) in db.execute(f"SELECT row FROM {table}"):
                assert row not in damaged and isinstance(json.loads(row), dict)


def _damaged(server: Server, damage: str) -> set[str]:
    table, change = ROW_DAMAGES[damage]
    damaged = _rewrite_rows(server.path / SNAPSHOT, table, change)
    assert damaged
    return damaged


@pytest.mark.parametrize("damage", list(ROW_DAMAGES))
def test_a_snapshot_row_that_does_not_read_back_blocks_no_push(server: Server, damage: str):
    """A damaged row (a disk fault, a bug) of a request or decision the push needs: the hook sets the
    snapshot aside and judges the push again from the branch's root, in the same push; the next push
    resumes from the snapshot that walk saved."""
    first = server.approved_tag("v6.0")
    second = server.approved_tag("v7.0")
    accepted(server.push("approvals"))  # their requests and decisions are rows of the snapshot now
    damaged = _damaged(server, damage)
    result = server.push("refs/tags/v6.0")
    accepted(result)
    assert "approved by request" in result.stderr and first[:12] in result.stderr
    assert _snapshot_tip(server.path / SNAPSHOT) == server.alice.head("approvals")
    _rows_written_afresh(server.path / SNAPSHOT, damaged)
    result = server.push("refs/tags/v7.0")  # resumed from the new snapshot
    accepted(result)
    assert "approved by request" in result.stderr and second[:12] in result.stderr


@pytest.mark.parametrize("damage", ["request cut short", "decision that is null"])
def test_a_tag_without_its_approvals_is_refused_for_that_reason_through_a_damaged_snapshot(server: Server,
                                                                                          damage: str):
    """The second look judges as the first would have on a sound snapshot: bob's approval alone (of the
    two the action needs) does not let the tag in, and the push says so, not "unexpected error"."""
    target = server.alice.commit_file("half.txt", "half\n")
    request_id = server.writer.request(target)
    server.writer.approve_by(server.keys, request_id, "bob")
    server.alice.git("tag", "v10.0", target)
    accepted(server.push("approvals"))
    _damaged(server, damage)
    reason = refusal(server.push("refs/tags/v10.0"))
    assert f"refs/tags/v10.0 refused: request {request_id} has 1 of 2 approvals (bob)" in reason, reason


def test_approvals_and_their_tag_in_one_push_through_a_damaged_snapshot(server: Server):
    """The branch and the tag in one push (tickets for the guard, the tag judged on the pushed commits):
    the request is a row of the damaged snapshot, carol's approval arrives with the tag."""
    target = server.alice.commit_file("both.txt", "both\n")
    request_id = server.writer.request(target)
    server.writer.approve_by(server.keys, request_id, "bob")
    accepted(server.push("approvals"))
    damaged = _damaged(server, "request cut short")
    server.writer.approve_by(server.keys, request_id, "carol")
    server.alice.git("tag", "v11.0", target)
    result = server.push("approvals", "refs/tags/v11.0")
    accepted(result)
    assert request_id in result.stderr
    assert _snapshot_tip(server.path / SNAPSHOT) == server.alice.head("approvals")
    _rows_written_afresh(server.path / SNAPSHOT, damaged)


def test_two_pushes_that_meet_the_same_damaged_snapshot_both_go_through(server: Server, tmp_path: Path):
    """Two clones push a tag each at the same moment, both into the damaged snapshot: each hook sets it
    aside (the second may find it gone), walks from the root and is judged on its own."""
    import threading

    server.approved_tag("v8.0")
    server.approved_tag("v9.0")
    accepted(server.push("approvals"))
    other = tmp_path / "other-clone"
    git("clone", "-q", str(server.alice.path), str(other), env=server.env)
    damaged = _rewrite_rows(server.path / SNAPSHOT, "requests", lambda row: "{")
    results: dict[str, subprocess.CompletedProcess] = {}
    start = threading.Barrier(2)

    def push(clone: Path, tag: str) -> None:
        start.wait()
        results[tag] = git("push", "--porcelain", server.path.as_uri(), f"refs/tags/{tag}", cwd=clone,
                           env=server.env, check=False)

    threads = [threading.Thread(target=push, args=(server.alice.path, "v8.0")),
               threading.Thread(target=push, args=(other, "v9.0"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted(results["v8.0"])
    accepted(results["v9.0"])
    _rows_written_afresh(server.path / SNAPSHOT, damaged)
