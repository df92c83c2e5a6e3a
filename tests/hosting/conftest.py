"""Real git servers for `make test-servers` (root only; `make test` leaves this folder out).

Everything listens on 127.0.0.1, on free ports, and lives in one temporary
directory that every server user can traverse:

- a venv with gitjit installed from the wheel `python -m build` makes (as
  `make dist` does), the way docs/hosting.md tells operators to install it;
- gitolite3 behind its own sshd, run by a dedicated user (created if
  absent, its home moved into the temporary directory): gitolite set up with
  a test admin key, LOCAL_CODE enabled, `gitjit hook install --gitolite` run
  as that user, then the repository `app` created through gitolite-admin;
- Apache 2.4 (prefork, mod_cgi) with git-http-backend behind basic auth,
  running CGIs as www-data, serving a bare repository owned by www-data
  whose hook www-data installed. Its environment carries a hostile
  PYTHONPATH (a json.py that shadows the standard library).

Both servers put a `gpg` wrapper first on the hooks' PATH: it runs the real
gpg, except while a fault file exists (see `Server.fault`). Every server is
stopped by a finalizer that kills its process group.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from helpers import REPO_ROOT, Clone, Keys, free_port, git  # noqa: E402
from hookkit import BranchWriter, policy_toml  # noqa: E402

GITOLITE_USER = "gitjit-gitolite"
HTTP_USER = "www-data"
APACHE_MODULES = "/usr/lib/apache2/modules"
REAL_GPG = shutil.which("gpg") or "/usr/bin/gpg"
# The system's Python: one under /root or pyenv is not executable by the server users (docs/hosting.md).
SERVER_PYTHON = "/usr/bin/python3"
FIGURES: list[str] = []  # measured costs, printed at the end of the run


def pytest_ignore_collect(collection_path, config):
    """Collected only when named on the command line (`make test-servers`), never by `make test`."""
    named = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    return not any(HERE == p or HERE in p.parents for p in named)


def pytest_collection_modifyitems(session, config, items):
    mine = [item for item in items if HERE in Path(str(item.fspath)).parents]
    if mine and os.geteuid() != 0:
        raise pytest.UsageError("make test-servers needs root: it creates users and starts sshd and Apache")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("cost per push (medians)")
        for line in FIGURES:
            terminalreporter.write_line(line)


# --------------------------------------------------------------------------
# processes and users


def run(args, user: str | None = None, env: dict | None = None, cwd=None, check: bool = True,
        input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs `args`, as `user` when given (with that user's groups and HOME)."""
    extra: dict = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        extra = {"user": entry.pw_uid, "group": entry.pw_gid,
                 "extra_groups": os.getgrouplist(user, entry.pw_gid)}
        env = dict(env or _base_env(), HOME=entry.pw_dir, USER=user, LOGNAME=user)
    proc = subprocess.run([str(a) for a in args], env=env, cwd=cwd or "/", input=input, capture_output=True,
                          text=True, timeout=timeout, check=False, **extra)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} (as {user}) exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    return proc


def _base_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


def ensure_user(name: str, home: Path) -> None:
    """A system user with `home` as its home; '*' as password: no password login, but not locked for sshd."""
    exists = subprocess.run(["id", "-u", name], capture_output=True, check=False).returncode == 0
    if exists:
        run(["usermod", "-d", home, "-s", "/bin/sh", "-p", "*", name])
    else:
        run(["useradd", "--system", "--user-group", "--shell", "/bin/sh", "--home-dir", home,
             "--no-create-home", "-p", "*", name])
    home.mkdir(exist_ok=True)
    shutil.chown(home, name, name)


class Daemon:
    """A server process in its own process group, stopped by killing the group."""

    def __init__(self, args, log: Path, ready_port: int, env: dict | None = None):
        self.log = log
        self.proc = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=log.open("a"),
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited {self.proc.returncode}:\n{log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", ready_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{args[0]} did not listen on {ready_port}:\n{log.read_text()}")

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                continue


# --------------------------------------------------------------------------
# the installation every server uses


@pytest.fixture(scope="session")
def base() -> Path:
    path = Path(tempfile.mkdtemp(prefix="gjsrv-", dir="/tmp"))
    # a tmpfs of its own: unmounting it is the whole clean-up (deleting a venv on a busy disk took minutes)
    run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs", path])
    try:
        yield path
    finally:
        if run(["umount", path], check=False).returncode != 0:
            run(["umount", "-l", path], check=False)
        path.rmdir()


@pytest.fixture(scope="session")
def dist(base: Path) -> Path:
    """A wheel and an sdist, built as `make dist` builds them."""
    out = base / "dist"
    run([sys.executable, "-m", "build", "--outdir", out, REPO_ROOT], env=dict(os.environ), timeout=600)
    return out


@pytest.fixture(scope="session")
def venv(base: Path, dist: Path) -> Path:
    """gitjit in a venv the server users can read, installed from the wheel as docs/hosting.md says."""
    path = base / "gitjit-venv"
    run([SERVER_PYTHON, "-m", "venv", path])
    wheel = next(dist.glob("gitjit-*.whl"))
    run([path / "bin" / "pip", "install", "-q", wheel], env=dict(os.environ), timeout=600)
    return path


@pytest.fixture(scope="session")
def gpg_wrapper(base: Path) -> Path:
    """A directory with a `gpg` that is the real one, except while a fault file exists:
    then it starts the real gpg, kills it with SIGKILL mid-operation, and dies by SIGKILL too."""
    path = base / "bin"
    path.mkdir()
    (base / "fault").mkdir(mode=0o777)
    (base / "fault").chmod(0o777)  # the server users write the log there
    (path / "gpg").write_text(f"""#!/bin/sh
fault={base}/fault/kill-gpg
if [ -e "$fault" ]; then
    {REAL_GPG} "$@" <&0 &
    pid=$!
    sleep 0.05
    kill -9 "$pid" 2>/dev/null
    echo "killed gpg $*" >> "$fault.log"
    kill -9 $$
fi
exec {REAL_GPG} "$@"
""")
    (path / "gpg").chmod(0o755)
    return path


# --------------------------------------------------------------------------
# the servers


@dataclass
class Server:
    kind: str
    url: str  # where clients push the app repository
    repo: Path  # the app repository on disk
    owner: str  # the user git runs hooks as
    venv: Path
    base: Path
    client_env: dict[str, str] = field(repr=False)
    keys: Keys = field(repr=False)

    def gitjit(self, *args: str, check: bool | int = True) -> subprocess.CompletedProcess:
        """The server's gitjit, run as the repository's owner (as docs/hosting.md says)."""
        proc = run([self.venv / "bin" / "gitjit", *args], user=self.owner, check=False)
        expected = 0 if check is True else check
        if expected is not False and proc.returncode != expected:
            raise AssertionError(f"gitjit {' '.join(args)} exited {proc.returncode}, not {expected}\n"
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def clone(self, tmp_path: Path, person: str = "alice") -> Clone:
        path = tmp_path / f"{person}-{self.kind}"
        git("clone", "-q", self.url, str(path), env=self.client_env)
        clone = Clone(path, self.keys[person], self.keys)
        clone.env = dict(self.client_env)
        for key, value in (("user.name", clone.person.real_name), ("user.email", clone.person.email),
                           ("user.signingkey", clone.person.fpr), ("gpg.program", REAL_GPG)):
            clone.git("config", key, value)
        return clone

    def push(self, clone: Clone, *refspecs: str, force: bool = False) -> subprocess.CompletedProcess:
        return clone.git("push", *(["--force"] if force else []), "origin", *refspecs, check=False)

    def ref(self, name: str) -> str:
        return git("-c", "safe.directory=*", "rev-parse", "--verify", "-q", name, cwd=self.repo,
                   env=self.client_env, check=False).stdout.strip()

    def fault(self) -> Path:
        """While this file exists, every gpg the hooks start is killed with SIGKILL."""
        return self.base / "fault" / "kill-gpg"


def _seed(server: Server, tmp: Path) -> None:
    """The approvals branch of tests/server/test_hook.py: alice admin; alice, bob, carol approve deploy-prod
    (tags v*, 2 approvals, 1h); dave has no role."""
    run(["git", "--git-dir", server.repo, "symbolic-ref", "HEAD", "refs/heads/main"], user=server.owner)
    alice = server.clone(tmp, "alice")
    alice.git("checkout", "-q", "-b", "main")
    alice.commit_file("README", "app\n", "initial commit")
    alice.gitjit("init", "--admin", "alice", check=True)
    writer = BranchWriter(alice)
    files = {f"keys/{p}.asc": server.keys[p].asc for p in ("bob", "carol", "dave")}
    files["policy.toml"] = policy_toml(server.keys)
    writer.commit(files, "gitjit: policy with deploy-prod")
    result = server.push(alice, "HEAD:refs/heads/main", "approvals")
    assert result.returncode == 0, result.stderr


SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {base}/ssh_host_ed25519_key
PidFile {base}/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
# the fault-injecting gpg first, as a server's PATH might carry any directory
SetEnv PATH={bin}:/usr/local/bin:/usr/bin:/bin
"""


@pytest.fixture(scope="session")
def gitolite(base: Path, venv: Path, gpg_wrapper: Path, keys: Keys, tmp_path_factory) -> Server:
    root = base / "gitolite"
    root.mkdir()
    home = root / "home"
    ensure_user(GITOLITE_USER, home)
    # gitolite with a test admin key, and LOCAL_CODE on: the steps of docs/hosting.md
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", root / "admin"])
    shutil.copy(root / "admin.pub", home / "admin.pub")
    run(["gitolite", "setup", "-pk", home / "admin.pub"], user=GITOLITE_USER)
    rc = home / ".gitolite.rc"
    rc.write_text(rc.read_text().replace('# LOCAL_CODE                =>  "$ENV{HOME}/local",',
                                         'LOCAL_CODE                =>  "$ENV{HOME}/local",', 1))
    installed = run([venv / "bin" / "gitjit", "hook", "install", "--gitolite"], user=GITOLITE_USER, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # sshd of its own
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", root / "ssh_host_ed25519_key"])
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    (root / "sshd_config").write_text(SSHD_CONFIG.format(port=port, base=root, user=GITOLITE_USER, bin=gpg_wrapper))
    daemon = Daemon(["/usr/sbin/sshd", "-D", "-e", "-f", root / "sshd_config"], root / "sshd.log", port)
    env = dict(keys.env, GIT_SSH_COMMAND=(
        f"ssh -i {root / 'admin'} -p {port} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"))
    try:
        # the repository, made through gitolite-admin
        admin = root / "gitolite-admin"
        git("clone", "-q", f"ssh://{GITOLITE_USER}@127.0.0.1/gitolite-admin", str(admin), env=env)
        conf = admin / "conf" / "gitolite.conf"
        conf.write_text(conf.read_text() + "\nrepo app\n    RW+     =   admin\n")
        for args in (("add", "conf/gitolite.conf"), ("-c", "user.name=Admin", "-c", "user.email=admin@example.com",
                                                       "commit", "-q", "-m", "add app"), ("push", "-q")):
            git(*args, cwd=admin, env=env)
        server = Server("gitolite", f"ssh://{GITOLITE_USER}@127.0.0.1/app", home / "repositories" / "app.git",
                        GITOLITE_USER, venv, base, env, keys)
        _seed(server, tmp_path_factory.mktemp("gitolite-seed"))
        yield server
    finally:
        daemon.stop()


APACHE_CONFIG = """\
# --- the test's own server: ports, paths, modules
ServerRoot {root}
Listen 127.0.0.1:{port}
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
DefaultRuntimeDir {root}
Mutex file:{root} default
ServerName 127.0.0.1
User www-data
Group www-data
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authn_file_module {modules}/mod_authn_file.so
LoadModule auth_basic_module {modules}/mod_auth_basic.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule env_module {modules}/mod_env.so
LoadModule cgi_module {modules}/mod_cgi.so
# what a server's environment may carry: a module path that shadows the standard library
SetEnv PYTHONPATH {hostile}
SetEnv PATH {bin}:/usr/local/bin:/usr/bin:/bin

# --- the snippet of docs/hosting.md
SetEnv GIT_PROJECT_ROOT {projects}
SetEnv GIT_HTTP_EXPORT_ALL
ScriptAlias /git/ /usr/lib/git-core/git-http-backend/
<Location /git/>
    AuthType Basic
    AuthName "git"
    AuthUserFile {root}/htpasswd
    Require valid-user
</Location>
"""


@pytest.fixture(scope="session")
def apache(base: Path, venv: Path, gpg_wrapper: Path, keys: Keys, tmp_path_factory) -> Server:
    root = base / "apache"
    projects = base / "http"
    hostile = base / "hostile"
    for path in (root, projects, hostile):
        path.mkdir()
    (hostile / "json.py").write_text("raise SystemExit('a hostile json.py was imported')\n")
    repo = projects / "app.git"
    git("init", "-q", "--bare", "-b", "main", str(repo), env=keys.env)
    shutil.chown(projects, HTTP_USER, HTTP_USER)
    run(["chown", "-R", f"{HTTP_USER}:{HTTP_USER}", repo])
    installed = run([venv / "bin" / "gitjit", "hook", "install", "--repo", repo], user=HTTP_USER, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    run(["htpasswd", "-bc", root / "htpasswd", "pusher", "secret"])
    port = free_port()
    conf = root / "httpd.conf"
    conf.write_text(APACHE_CONFIG.format(root=root, port=port, modules=APACHE_MODULES, hostile=hostile,
                                         bin=gpg_wrapper, projects=projects))
    daemon = Daemon(["/usr/sbin/apache2", "-f", conf, "-DFOREGROUND"], root / "apache.log", port,
                    env=_base_env())
    try:
        server = Server("apache", f"http://pusher:secret@127.0.0.1:{port}/git/app.git", repo, HTTP_USER,
                        venv, base, dict(keys.env), keys)
        _seed(server, tmp_path_factory.mktemp("apache-seed"))
        yield server
    finally:
        daemon.stop()


@pytest.fixture(params=["gitolite", "apache"])
def server(request) -> Server:
    return request.getfixturevalue(request.param)
