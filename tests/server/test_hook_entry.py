"""`python -m gitjit.hook` is the pre-receive hook too: it must judge, never exit 0 without looking."""

from __future__ import annotations

import subprocess
import sys

from helpers import git


def test_python_m_gitjit_hook_refuses_what_the_hook_refuses(tmp_path, keys):
    server = tmp_path / "server.git"
    git("init", "-q", "--bare", str(server), env=keys.env)
    bad = subprocess.run([sys.executable, "-m", "gitjit.hook"], cwd=server, input=b"not a ref update line\n",
                         capture_output=True, env=keys.env)
    assert bad.returncode != 0, bad.stderr
    assert b"refused" in bad.stderr or b"gitjit" in bad.stderr
    deleting = subprocess.run([sys.executable, "-m", "gitjit.hook"], cwd=server,
                              input=f"{'1' * 40} {'0' * 40} refs/heads/approvals\n".encode(),
                              capture_output=True, env=keys.env)
    assert deleting.returncode != 0, deleting.stderr
