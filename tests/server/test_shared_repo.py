"""Any Unix user, any shared setup (issue 10): the caches under $GIT_DIR/gitjit never block anyone.

Real pushes into a server whose hook `gitjit hook install` wrote. What
gitjit creates follows core.sharedRepository exactly as git's own files do;
a cache that cannot be written (read-only, another user's) is used as it is
or rebuilt privately, never a PermissionError; git's own refusal (dubious
ownership) reaches the user in git's words. Tests that switch Unix users
or mount filesystems need root and are skipped without it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import REPO_ROOT, Keys, git, make_bare
from hookkit import copy_world

from gitjit.trust.cache.files import parse_shared, shared_mode

OTHER_USER = "gitjit-other"


class Server:
    def __init__(self, template: Path, where: Path, keys: Keys):
        world = copy_world(template, where, keys)  # test_hook's server and alice's clone
        self.keys, self.path, self.alice, self.writer = keys, world.server, world.alice, world.writer

    @property
    def cache(self) -> Path:
        return self.path / "gitjit"

    def push(self, *refspecs: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return git("push", "--porcelain", self.path.as_uri(), *refspecs, cwd=self.alice.path,
                   env=env or self.keys.env, check=False)

    def approved_tag(self, tag: str) -> None:
        """A new request approved by bob and carol (new signatures for the hook to check) and a tag."""
        target = self.alice.commit_file(f"{tag}.txt", f"{tag}\n")
        request_id = self.writer.request(target)
        self.writer.approve_by(self.keys, request_id, "bob", "carol")
        self.alice.git("tag", tag, target)

    def config(self, key: str, value: str) -> None:
        git("config", key, value, cwd=self.path, env=self.keys.env)


@pytest.fixture
def server(golden: Path, tmp_path: Path, keys: Keys) -> Server:  # noqa: F811 (the fixture)
    return Server(golden, tmp_path, keys)


def accepted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"push refused:\n{result.stdout}\n{result.stderr}"
    assert "refused" not in result.stderr and "Error" not in result.stderr


def listing(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`, with its mode, owner, size and mtime."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            found[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_size, info.st_mtime_ns)
    return found


# -- core.sharedRepository ------------------------------------------------------------------------


SETTINGS = ["group", "all", "umask", "0640", "0660", "0664", "true", "false", "1", "2"]


@pytest.mark.parametrize("setting", SETTINGS)
def test_shared_modes_are_the_modes_git_gives_its_own_files(setting: str, tmp_path: Path, keys: Keys):
    """gitjit's rule against git itself: a folder and a file git creates in a repository shared this way."""
    repo = make_bare(tmp_path / "probe.git", keys.env)
    git("config", "core.sharedRepository", setting, cwd=repo, env=keys.env)
    blob = git("hash-object", "-w", "--stdin", cwd=repo, env=keys.env, input="probe\n").stdout.strip()
    git("update-ref", "refs/tags/probe", blob, cwd=repo, env=keys.env)
    umask = os.umask(0)
    os.umask(umask)
    shared = parse_shared(setting)
    folder = (repo / "objects" / blob[:2]).stat().st_mode
    assert stat.S_IMODE(folder) == shared_mode(stat.S_IFDIR | (0o777 & ~umask), shared, is_dir=True)
    ref = (repo / "refs" / "tags" / "probe").stat().st_mode
    assert stat.S_IMODE(ref) == shared_mode(0o666 & ~umask, shared, is_dir=False)


@pytest.mark.parametrize("setting,folder_bits,file_bits,never", [
    pytest.param("group", 0o2770, 0o660, 0o002, id="group"),
    pytest.param("0640", 0o2750, 0o640, 0o007, id="0640"),
])
def test_everything_gitjit_creates_follows_core_shared_repository(server: Server, setting, folder_bits, file_bits,
                                                                   never):
    server.config("core.sharedRepository", setting)
    shutil.rmtree(server.cache)  # every cache entry is made again, by the hook, under this setting
    server.approved_tag("v1.0")
    accepted(server.push("approvals", "refs/tags/v1.0"))
    entries = listing(server.cache)
    assert {"trusted.sqlite", "signatures.jsonl", "keyrings"} <= set(entries)
    assert any(name.endswith("pubring.kbx") for name in entries)
    for name, (mode, _uid, _size, _mtime) in entries.items():
        wanted = folder_bits if stat.S_ISDIR(mode) else file_bits
        assert mode & wanted == wanted, f"{name}: {stat.filemode(mode)} under core.sharedRepository={setting}"
        assert not mode & never, f"{name}: {stat.filemode(mode)} under core.sharedRepository={setting}"
    folder = stat.S_IMODE((server.cache).stat().st_mode)
    assert folder & folder_bits == folder_bits


# -- a cache this run cannot write -----------------------------------------------------------------


@pytest.fixture
def read_only_cache(server: Server):
    """$GIT_DIR/gitjit read-only: a read-only bind mount as root (root ignores modes), modes otherwise."""
    cache = str(server.cache)
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", cache], check=True)
        yield server.cache
        subprocess.run(["chmod", "-R", "u+w", cache], check=True)
        return
    if subprocess.run(["mount", "--bind", cache, cache], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot bind-mount here")
    try:
        remount = ["mount", "-o", "remount,ro,bind", cache]
        if subprocess.run(remount, capture_output=True, check=False).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield server.cache
    finally:
        subprocess.run(["umount", "-l", cache], capture_output=True, check=False)


def test_a_read_only_cache_still_verifies_approvals(server: Server, read_only_cache: Path):
    before = listing(read_only_cache)
    server.approved_tag("v2.0")  # two new approvals: their signatures are checked with the cached keyring
    # Approvals first, then the tag: a tag pushed with its own approvals needs the guard's
    # ticket, which a read-only $GIT_DIR/gitjit cannot take (that push is refused, saying so).
    accepted(server.push("approvals"))
    result = server.push("refs/tags/v2.0")
    accepted(result)
    assert "refs/tags/v2.0 accepted" in result.stderr
    assert listing(read_only_cache) == before


# -- another Unix user ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_user() -> tuple[int, int]:
    """(uid, gid) of a Unix user that is not root, made with useradd where it is missing (root only)."""
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    for _ in range(20):  # other test runs on this machine may be adding users at the same moment
        found = subprocess.run(["id", "-u", OTHER_USER], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            break
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
                       capture_output=True, check=False)
        time.sleep(0.2)
    else:
        pytest.skip(f"cannot create user {OTHER_USER}")
    uid = int(found.stdout)
    gid = int(subprocess.run(["id", "-g", OTHER_USER], capture_output=True, text=True, check=True).stdout)
    return uid, gid


@pytest.fixture(scope="module")
def shared_python(tmp_path_factory, other_user) -> str:
    """A Python any user can run that imports gitjit and python-gnupg (this one may sit in root's home)."""
    base = Path(tempfile.mkdtemp(prefix="gjpy", dir="/tmp"))
    base.chmod(0o755)
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = next((p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if os.access(p, os.X_OK)), None)
    if system is None:
        pytest.skip(f"no system {name} to give another user")
    subprocess.run([system, "-m", "venv", "--without-pip", str(base / "py")], check=True, capture_output=True)
    import gnupg

    site = next((base / "py" / "lib").glob("python3*/site-packages"))
    (site / "gitjit-tests.pth").write_text(os.path.dirname(os.path.realpath(gnupg.__file__)) + "\n")
    python = str(base / "py" / "bin" / "python3")
    probe = subprocess.run(["runuser", "-u", OTHER_USER, "--", python, "-c", "import gnupg, gitjit"],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
                           check=False)
    if probe.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"{OTHER_USER} cannot run gitjit here: {probe.stderr.strip()[-200:]}")
    yield python
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def their_server(golden: Path, keys: Keys, other_user, shared_python):  # noqa: F811 (the fixture)
    """A server owned by the other user, its hook run with `shared_python`, its $GIT_DIR/gitjit made by root."""
    uid, gid = other_user
    where = Path(tempfile.mkdtemp(prefix="gjsh", dir="/tmp"))
    where.chmod(0o755)
    server = Server(golden, where, keys)
    server.approved_tag("v3.0")  # made by root, as alice, bob and carol: the other user only pushes
    env = dict(keys.env, PYTHONPATH=str(REPO_ROOT))
    subprocess.run([shared_python, "-m", "gitjit", "hook", "install", "--repo", str(server.path)],
                   check=True, capture_output=True, env=env)
    for folder, dirs, files in os.walk(server.path):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if not path.startswith(str(server.cache)):
                os.lchown(path, uid, gid)
    os.chown(server.path, uid, gid)
    yield server
    shutil.rmtree(where, ignore_errors=True)


def push_as_other_user(server: Server, *refspecs: str) -> subprocess.CompletedProcess:
    home = server.path.parent / "other-home"
    home.mkdir(exist_ok=True)
    os.chown(home, *[int(subprocess.run(["id", flag, OTHER_USER], capture_output=True, text=True,
                                        check=True).stdout) for flag in ("-u", "-g")])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        # the client clone is root's: git may read it for this user (the server is theirs)
        "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*",
    }
    return subprocess.run(["runuser", "-u", OTHER_USER, "--", "git", "-C", str(server.alice.path), "push",
                           "--porcelain", server.path.as_uri(), *refspecs],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize("cache_as", ["readable", "private to root"])
def test_a_cache_made_by_root_never_blocks_another_user(their_server: Server, cache_as: str):
    """Root made $GIT_DIR/gitjit (as `gitjit` run by hand, or an older gitjit's 0700 keyrings);
    the web server's user pushes. Readable: its keyrings are used as they are, read-only.
    Private to root: this user builds its own keyring for the push. Never a PermissionError."""
    if cache_as == "private to root":
        subprocess.run(["chmod", "-R", "go-rwx", str(their_server.cache)], check=True)
    before = listing(their_server.cache)
    assert all(uid == 0 for _mode, uid, _size, _mtime in before.values())
    # Approvals first (their signatures checked as this user), then the tag: the guard's
    # ticket for a tag pushed with its approvals needs a $GIT_DIR/gitjit this user can write.
    for refspec in ("approvals", "refs/tags/v3.0"):
        result = push_as_other_user(their_server, refspec)
        assert result.returncode == 0, f"push refused:\n{result.stdout}\n{result.stderr}"
        assert "PermissionError" not in result.stderr and "Traceback" not in result.stderr
    assert "refs/tags/v3.0 accepted" in result.stderr
    assert listing(their_server.cache) == before  # root's cache is untouched, whatever happened


# -- git's own refusal ----------------------------------------------------------------------------


def test_dubious_ownership_is_reported_in_gits_words(server: Server, tmp_path: Path):
    """Run in a repository git distrusts, gitjit says what git says (and what to run), exit 2."""
    clone = server.alice
    env = dict(clone.env)
    if os.geteuid() == 0:
        owner = os.stat(clone.path)
        subprocess.run(["chown", "-R", "nobody", str(clone.path)], check=True)
    else:  # git's own switch for this check, where files cannot be given away
        env["GIT_TEST_ASSUME_DIFFERENT_OWNER"] = "1"
    try:
        result = clone.gitjit("verify", "deploy-prod", "--target", "HEAD", env=env, check=2)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{owner.st_uid}:{owner.st_gid}", str(clone.path)], check=True)
    assert result.stderr.startswith("gitjit: detected dubious ownership in repository at "), result.stderr
    assert f"safe.directory {clone.path}" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
