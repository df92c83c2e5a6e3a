"""Signing failures explained, each with its fix, decided from gpg's status lines (docs/format.md, 8.3).

Each case is a real GnuPG home: only the public key, an agent that is not
running and may not start, a key that needs a passphrase with no pinentry
able to ask. The write is a signed request (`request --sign`), which the
golden policy lets anyone make, so the key need not be in the policy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import kill_agent, run_gpg, scratch_gnupghome
from hookkit import APPROVALS, World, copy_world

from gitjit import reasons as R
from gitjit.commands import write as operations
from gitjit.errors import GitjitError
from gitjit.git.branch import ApprovalsBranch
from gitjit.model.grammar import utc_now


@pytest.fixture
def team(golden, tmp_path, keys) -> World:
    return copy_world(golden, tmp_path, keys)


def new_key(home: Path, env: dict, uid: str, passphrase: str = "") -> str:
    proc = run_gpg(home, "--pinentry-mode", "loopback", "--passphrase", passphrase, "--status-fd", "1",
                   "--quick-gen-key", uid, "ed25519", "sign", "0", env=env)
    return next(line.split()[3] for line in proc.stdout.splitlines() if " KEY_CREATED " in line)


def signing_in(team: World, home: Path, fingerprint: str, monkeypatch):
    """A clone of erin whose GnuPG home is `home` and signing key `fingerprint`; runs a signed request."""
    erin = team.clone("erin")
    erin.git("config", "user.signingkey", fingerprint)
    erin.env = {k: v for k, v in dict(erin.env, GNUPGHOME=str(home)).items() if k != "GPG_TTY"}
    erin.gitjit("status", check=0)  # pins the root, so the failing command says only its own line
    proc = erin.gitjit("request", "deploy-prod", "--sign", "--push", check=2, input="")
    for key in ("GNUPGHOME", "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_NOSYSTEM"):
        monkeypatch.setenv(key, erin.env[key])
    monkeypatch.delenv("GPG_TTY", raising=False)
    with pytest.raises(GitjitError) as caught:
        operations.request(ApprovalsBranch(str(erin.path / ".git")), "deploy-prod", "HEAD", "", None, utc_now(),
                           sign=True, offline=True)
    assert erin.git("for-each-ref", "refs/heads/approvals").stdout == ""  # nothing written
    assert team.refs()[APPROVALS] == erin.head("refs/remotes/origin/approvals")
    return proc, caught.value.code


def error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("gitjit: 0 of")]
    assert "gpg failed to sign the data" not in proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[-1]


def test_public_key_only(team, keys, monkeypatch):
    with scratch_gnupghome(keys.env) as home:
        run_gpg(home, "--import", input=keys["erin"].asc, env=keys.env)
        proc, code = signing_in(team, home, keys["erin"].fpr, monkeypatch)
    assert code == R.SIGNING_NO_SECRET_KEY
    line = error_line(proc)
    assert "only its public key" in line and "gpg --list-secret-keys" in line


def test_agent_not_running(team, keys, monkeypatch):
    with scratch_gnupghome(keys.env) as home:
        env = dict(keys.env, GNUPGHOME=str(home))
        fingerprint = new_key(home, env, "Nobody <nobody@example.com>")
        kill_agent(home, env)
        with open(home / "gpg.conf", "a") as conf:
            conf.write("no-autostart\n")
        proc, code = signing_in(team, home, fingerprint, monkeypatch)
    assert code == R.SIGNING_NO_AGENT
    assert "gpgconf --launch gpg-agent" in error_line(proc)


def test_passphrase_needed_and_no_pinentry_can_ask(team, keys, monkeypatch):
    with scratch_gnupghome(keys.env) as home:
        env = dict(keys.env, GNUPGHOME=str(home))
        fingerprint = new_key(home, env, "Locked <locked@example.com>", passphrase="correct horse")
        kill_agent(home, env)  # nothing cached
        pinentry = shutil.which("pinentry-curses") or shutil.which("pinentry")
        if pinentry:  # a terminal pinentry, and no terminal: it cannot ask
            (home / "gpg-agent.conf").write_text(f"pinentry-program {pinentry}\n")
        proc, code = signing_in(team, home, fingerprint, monkeypatch)
    assert code == R.SIGNING_NO_PINENTRY
    line = error_line(proc)
    assert "needs its passphrase" in line and "export GPG_TTY=$(tty)" in line


def test_a_working_setup_signs_and_says_nothing_of_it(team, keys):
    erin = team.clone("erin")
    proc = erin.gitjit("request", "deploy-prod", "--sign", "--push", check=0)
    assert "sign" not in proc.stderr.replace("--sign", "")
    tip = erin.head("refs/remotes/origin/approvals")
    status = subprocess.run(["git", "verify-commit", "--raw", tip], cwd=erin.path, env=erin.env,
                            capture_output=True, text=True)
    assert "[GNUPG:] VALIDSIG" in status.stderr and os.path.exists(erin.path)
