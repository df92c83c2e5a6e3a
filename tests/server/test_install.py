"""`gitjit hook install` (docs/format.md, section 7), run as a subprocess like a server admin would.

Modelled on pre-commit's install tests: real repositories, real hooks run by
real pushes. The checks a push must pass are in test_hook.py; here: where
the hook goes, what it runs, that a previous hook is kept and chained on the
same input, and that installing twice changes nothing.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, Clone, git, make_bare

FOREIGN = """#!/bin/sh
# somebody else's pre-receive hook: logs its input, refuses refs/heads/blocked
cat >> "{log}"
if grep -q ' refs/heads/blocked$' "{log}"; then
    echo "legacy: blocked is blocked" >&2
    exit 1
fi
exit 0
"""


def install(clone: Clone, repo: Path, *extra: str, check: bool | int = True):
    return clone.gitjit("hook", "install", "--repo", str(repo), *extra, check=check)


def write_foreign(hooks: Path, log: Path) -> Path:
    hook = hooks / "pre-receive"
    hook.write_text(FOREIGN.format(log=log))
    hook.chmod(0o755)
    return hook


@pytest.fixture
def alice(repo_for) -> Clone:
    return repo_for("alice")


def test_install_writes_an_executable_script_that_calls_this_python(alice, bare_remote):
    result = install(alice, bare_remote)
    hook = bare_remote / "hooks" / "pre-receive"
    assert f"installed: {hook}" in result.stdout
    assert os.access(hook, os.X_OK) and stat.S_IMODE(hook.stat().st_mode) & 0o755 == 0o755
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"INSTALL_PYTHON='{sys.executable}'" in text  # absolute, as installed
    # isolated (-I: no PYTHONPATH, no user site, not the repository's directory), no site (-S)
    assert 'exec "$INSTALL_PYTHON" $flags -c "$run" "$GITJIT_PYTHONPATH"' in text and "flags='-I -S'" in text
    assert "run='import sys, gitjit.hook; sys.exit(gitjit.hook.main())'" in text
    assert "sys.path[:0] = sys.argv[1].split(':')" in text
    assert "export" not in text.replace("exports nothing", "")  # the environment stays git's
    # -S skips site: the install wrote down where this gitjit and python-gnupg are instead
    import gnupg

    import gitjit

    assert f"GITJIT_PYTHONPATH='{Path(gitjit.__file__).resolve().parent.parent}" in text
    assert str(Path(gnupg.__file__).resolve().parent) in text
    assert "@INSTALL_PYTHON@" not in text and "@GITJIT_PYTHONPATH@" not in text
    alice.git("push", "-q", str(bare_remote), "main")  # the hook runs and lets a plain branch in
    assert git("rev-parse", "main", cwd=bare_remote, env=alice.env).stdout.strip() == alice.head()


def test_reinstall_is_a_no_op(alice, bare_remote):
    install(alice, bare_remote)
    hook = bare_remote / "hooks" / "pre-receive"
    before = (hook.read_bytes(), hook.stat().st_mtime_ns, sorted(os.listdir(hook.parent)))
    result = install(alice, bare_remote)
    assert "already installed (unchanged)" in result.stdout
    assert (hook.read_bytes(), hook.stat().st_mtime_ns, sorted(os.listdir(hook.parent))) == before
    assert not (hook.parent / "pre-receive.legacy").exists()


@pytest.mark.parametrize("transport", ["file", "daemon"])
def test_existing_hook_is_kept_and_chained_on_the_same_input(alice, bare_remote, tmp_path, request, transport):
    url = str(bare_remote) if transport == "file" else request.getfixturevalue("git_daemon") + bare_remote.name
    log = tmp_path / "legacy.log"
    foreign = write_foreign(bare_remote / "hooks", log).read_text()
    result = install(alice, bare_remote)
    assert "kept as pre-receive.legacy" in result.stdout
    hooks = bare_remote / "hooks"
    assert (hooks / "pre-receive.legacy").read_text() == foreign
    assert "gitjit-hook: pre-receive" in (hooks / "pre-receive").read_text()

    # Both hooks see the push; the legacy hook reads exactly what git sent.
    alice.git("push", "-q", url, "main")
    assert log.read_text() == f"{'0' * 40} {alice.head()} refs/heads/main\n"
    # The legacy hook's refusal refuses the push.
    alice.git("branch", "blocked")
    result = alice.git("push", url, "blocked", check=False)
    assert result.returncode != 0 and "legacy: blocked is blocked" in result.stderr
    assert "refs/heads/blocked" not in git("for-each-ref", cwd=bare_remote, env=alice.env).stdout

    # Installing again keeps the chain as it is.
    again = install(alice, bare_remote)
    assert "already installed" in again.stdout and "chaining pre-receive.legacy" in again.stdout
    assert (hooks / "pre-receive.legacy").read_text() == foreign


def test_gitjit_refusal_stops_before_the_legacy_hook(alice, bare_remote, tmp_path):
    log = tmp_path / "legacy.log"
    write_foreign(bare_remote / "hooks", log)
    install(alice, bare_remote)
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(bare_remote), "approvals")
    log.unlink()
    result = alice.git("push", str(bare_remote), ":refs/heads/approvals", check=False)
    assert "gitjit: refs/heads/approvals refused: the approvals branch may not be deleted" in result.stderr
    assert not log.exists()  # the legacy hook never ran


def test_foreign_hook_and_legacy_both_present_needs_force(alice, bare_remote, tmp_path):
    hooks = bare_remote / "hooks"
    (hooks / "pre-receive.legacy").write_text("#!/bin/sh\nexit 0\n")
    write_foreign(hooks, tmp_path / "log")
    result = install(alice, bare_remote, check=2)
    assert "pre-receive.legacy exists too" in result.stderr and "--force" in result.stderr
    assert "gitjit-hook" not in (hooks / "pre-receive").read_text()  # nothing was written
    install(alice, bare_remote, "--force")
    assert "somebody else's pre-receive hook" in (hooks / "pre-receive.legacy").read_text()
    assert "gitjit-hook: pre-receive" in (hooks / "pre-receive").read_text()


def test_core_hooks_path_is_honoured(alice, bare_remote, tmp_path):
    shared = tmp_path / "shared-hooks"
    git("config", "core.hooksPath", str(shared), cwd=bare_remote, env=alice.env)
    install(alice, bare_remote)
    assert (shared / "pre-receive").is_file()
    assert not (bare_remote / "hooks" / "pre-receive").exists()
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(bare_remote), "approvals")
    result = alice.git("push", str(bare_remote), ":refs/heads/approvals", check=False)
    assert "may not be deleted" in result.stderr  # git ran the hook from core.hooksPath


def test_non_bare_repository(alice, repo_for, keys):
    server = repo_for("bob")  # a repository with a working tree receives pushes too
    server.git("config", "receive.denyCurrentBranch", "updateInstead")
    install(alice, server.path)
    assert (server.path / ".git" / "hooks" / "pre-receive").is_file()
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(server.path), "approvals")
    assert server.head("refs/heads/approvals") == alice.head("approvals")
    result = alice.git("push", str(server.path), ":refs/heads/approvals", check=False)
    assert "gitjit: refs/heads/approvals refused: the approvals branch may not be deleted" in result.stderr
    assert server.head("refs/heads/approvals") == alice.head("approvals")


def test_install_outside_a_repository_is_bad_input(alice, tmp_path):
    result = install(alice, tmp_path / "nowhere", check=2)
    assert result.stderr.startswith("gitjit: not a git repository")
    assert "Traceback" not in result.stderr


def test_template_is_shipped_twice_identically():
    shipped = REPO_ROOT / "gitjit" / "server" / "templates" / "pre-receive.sh"
    assert (REPO_ROOT / "hooks" / "pre-receive").read_text() == shipped.read_text()
    assert os.access(REPO_ROOT / "hooks" / "pre-receive", os.X_OK)


def test_print_writes_the_script_for_a_hooks_d_directory(alice, bare_remote):
    """`--print` for hosts that run every script of pre-receive.d (GitLab, Gitea): same script, placed by hand."""
    script = alice.gitjit("hook", "install", "--print", check=True).stdout
    assert script.startswith("#!/bin/sh\n") and f"INSTALL_PYTHON='{sys.executable}'" in script
    assert not (alice.path / ".git" / "hooks" / "pre-receive").exists()  # nothing installed
    hooks_d = bare_remote / "hooks" / "pre-receive.d"
    hooks_d.mkdir()
    (hooks_d / "gitjit").write_text(script)
    (hooks_d / "gitjit").chmod(0o755)
    runner = bare_remote / "hooks" / "pre-receive"  # what such hosts install: run each script on the same input
    runner.write_text('#!/bin/sh\ndata=$(cat)\nfor h in "$(dirname "$0")"/pre-receive.d/*; do\n'
                      '  printf "%s\\n" "$data" | "$h" || exit 1\ndone\n')
    runner.chmod(0o755)
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(bare_remote), "approvals")
    result = alice.git("push", str(bare_remote), ":refs/heads/approvals", check=False)
    assert "the approvals branch may not be deleted" in result.stderr


def test_hand_installed_template_runs_python3(alice, tmp_path):
    """hooks/pre-receive copied as is (placeholders left) falls back to python3 and still judges."""
    bare = make_bare(tmp_path / "hand.git", alice.env)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text((REPO_ROOT / "hooks" / "pre-receive").read_text())
    hook.chmod(0o755)
    env = dict(alice.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{alice.env['PATH']}",
               PYTHONPATH=str(REPO_ROOT))
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(bare), "approvals", env=env)
    result = alice.git("push", str(bare), ":refs/heads/approvals", check=False, env=env)
    assert "the approvals branch may not be deleted" in result.stderr


# --------------------------------------------------------------------------
# the hook's interpreter is isolated from the environment git passes on


ENV_LOGGER = """#!/bin/sh
# a legacy hook that records the environment it was given
env > "{log}"
cat > /dev/null
"""


def test_a_hostile_pythonpath_neither_breaks_nor_fools_the_hook(alice, bare_remote, tmp_path):
    """A PYTHONPATH inherited by receive-pack (Apache's SetEnv, a login profile) with a json.py
    that would shadow the standard library: the hook still judges, refusing and accepting."""
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for module in ("json", "gitjit", "gnupg", "subprocess"):
        (hostile / f"{module}.py").write_text("raise SystemExit('hostile module imported')\n")
    install(alice, bare_remote)
    env = dict(alice.env, PYTHONPATH=str(hostile), PYTHONHOME=str(hostile), PYTHONSTARTUP=str(hostile / "json.py"))
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(bare_remote), "main", "approvals", env=env)
    assert git("rev-parse", "approvals", cwd=bare_remote, env=alice.env).stdout.strip() == alice.head("approvals")
    result = alice.git("push", str(bare_remote), ":refs/heads/approvals", check=False, env=env)
    assert "gitjit: refs/heads/approvals refused: the approvals branch may not be deleted" in result.stderr
    assert "hostile module imported" not in result.stderr


def test_the_legacy_hook_gets_exactly_the_environment_git_gave(alice, bare_remote, tmp_path):
    log, direct = tmp_path / "legacy.env", tmp_path / "direct.env"
    hooks = bare_remote / "hooks"
    (hooks / "pre-receive").write_text(ENV_LOGGER.format(log=direct))
    (hooks / "pre-receive").chmod(0o755)
    env = dict(alice.env, PYTHONPATH="/from/the/pusher")
    alice.git("push", "-q", str(bare_remote), "main", env=env)  # what git gives a hook, gitjit or not
    install(alice, bare_remote)
    (hooks / "pre-receive.legacy").write_text(ENV_LOGGER.format(log=log))
    alice.commit_file("b.txt", "b\n")
    alice.git("push", "-q", str(bare_remote), "main", env=env)
    given = dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)
    expected = dict(line.split("=", 1) for line in direct.read_text().splitlines() if "=" in line)
    assert given["PYTHONPATH"] == "/from/the/pusher"  # gitjit's own path never leaks
    changing = {"GIT_QUARANTINE_PATH", "GIT_OBJECT_DIRECTORY", "GIT_PUSH_OPTION_COUNT", "PWD", "OLDPWD"}
    assert {k: v for k, v in given.items() if k not in changing} == {
        k: v for k, v in expected.items() if k not in changing}


# --------------------------------------------------------------------------
# hook check, uninstall, --output, --print


def check(clone: Clone, repo: Path, expect: int):
    return clone.gitjit("hook", "check", "--repo", str(repo), check=expect)


def test_check_passes_after_install_and_shows_the_pinned_root(alice, bare_remote):
    result = install(alice, bare_remote)
    assert "ok   pre-receive: installed at" in result.stdout  # install runs the check itself
    alice.gitjit("init", "--admin", "alice", check=True)
    alice.git("push", "-q", str(bare_remote), "approvals")
    out = check(alice, bare_remote, 0).stdout
    root = alice.git("rev-list", "--max-parents=0", "approvals").stdout.strip()
    assert f"pinned root (gitjit.root): {root}" in out
    assert f"cache {bare_remote.resolve()}/gitjit writable" in out and "FAIL" not in out


def test_check_fails_with_the_fix_for_each_problem(alice, bare_remote, tmp_path):
    result = check(alice, bare_remote, 1)
    assert f"FAIL pre-receive: {bare_remote.resolve()}/hooks/pre-receive is missing" in result.stdout
    assert f"fix: gitjit hook install --repo {bare_remote.resolve()}" in result.stdout
    write_foreign(bare_remote / "hooks", tmp_path / "log")
    install(alice, bare_remote)
    hook = bare_remote / "hooks" / "pre-receive"
    hook.chmod(0o644)  # what `--print > hook` used to leave: git would skip it, and the push pass unchecked
    (hook.parent / "pre-receive.legacy").chmod(0o644)
    out = check(alice, bare_remote, 1).stdout
    assert "FAIL pre-receive: installed at" in out and f"fix: chmod 755 {hook.resolve()}" in out
    assert "FAIL pre-receive: chains pre-receive.legacy" in out
    text = hook.read_text().replace(sys.executable, "/nonexistent/python3")
    hook.write_text(text)
    hook.chmod(0o755)
    out = check(alice, bare_remote, 1).stdout
    assert "cannot run the hook's interpreter /nonexistent/python3" in out and "python3 -m venv /opt/gitjit" in out


def test_uninstall_removes_the_hook_and_restores_the_legacy_one(alice, bare_remote, tmp_path):
    foreign = write_foreign(bare_remote / "hooks", tmp_path / "log").read_text()
    install(alice, bare_remote)
    result = alice.gitjit("hook", "uninstall", "--repo", str(bare_remote), check=True)
    assert "removed gitjit's pre-receive hook" in result.stdout and "pre-receive.legacy -> pre-receive" in result.stdout
    hooks = bare_remote / "hooks"
    assert (hooks / "pre-receive").read_text() == foreign and os.access(hooks / "pre-receive", os.X_OK)
    assert not (hooks / "pre-receive.legacy").exists()
    # again: nothing of gitjit's is left, and a foreign hook is never removed
    again = alice.gitjit("hook", "uninstall", "--repo", str(bare_remote), check=True)
    assert "is not gitjit's: left as it is" in again.stdout and (hooks / "pre-receive").read_text() == foreign


def test_output_writes_an_executable_hook_for_a_hooks_d_directory(alice, tmp_path):
    target = tmp_path / "gitjit"
    result = alice.gitjit("hook", "install", "--output", str(target), check=True)
    assert "written" in result.stdout and os.access(target, os.X_OK)
    assert "gitjit-hook: pre-receive" in target.read_text() and f"INSTALL_PYTHON='{sys.executable}'" in target.read_text()
    other = tmp_path / "other"
    other.write_text("#!/bin/sh\nexit 0\n")
    refused = alice.gitjit("hook", "install", "--output", str(other), check=2)
    assert "exists and is not gitjit's" in refused.stderr and other.read_text() == "#!/bin/sh\nexit 0\n"


def test_print_refuses_to_be_redirected_into_a_file(alice, tmp_path):
    """`--print > hook` made a file git would not execute: the hook was skipped and every push passed."""
    target = tmp_path / "pre-receive"
    with open(target, "w") as out:
        result = subprocess.run([sys.executable, "-m", "gitjit", "hook", "install", "--print"], stdout=out,
                                stderr=subprocess.PIPE, text=True, cwd=alice.path, env=alice.env, check=False)
    assert result.returncode == 2 and "use --output FILE" in result.stderr
    assert target.read_text() == ""
    # the empty file such a redirection leaves is no obstacle to doing it right
    alice.gitjit("hook", "install", "--output", str(target), check=True)
    assert os.access(target, os.X_OK)


def test_every_hook_name_has_a_marked_template():
    """Adding a hook is adding its name to HOOK_NAMES and its template, marked as gitjit's."""
    from gitjit.server import install as hook_install

    for name in hook_install.HOOK_NAMES:
        text = hook_install.template(name)
        assert text.startswith("#!/bin/sh\n") and f"# gitjit-hook: {name} " in text
        if "INSTALL_PYTHON" in text:  # a hook that runs Python runs the installing one, isolated
            assert "@INSTALL_PYTHON@" in text and "@GITJIT_PYTHONPATH@" in text and "-I" in text
        assert f"{name}.legacy" in text  # and chains the hook it replaced
