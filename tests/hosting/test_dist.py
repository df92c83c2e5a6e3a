"""`make dist`: the wheel and the sdist install cleanly and give a working `gitjit`."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from conftest import run
from helpers import make_bare


def test_the_wheel_installs_into_a_fresh_venv_and_installs_the_hook(venv: Path, dist: Path, keys, tmp_path):
    """`venv` is a fresh venv (the system's python3) with only the wheel installed, as docs/hosting.md says."""
    help_text = run([venv / "bin" / "gitjit", "--help"]).stdout
    assert "hook" in help_text and "verify" in help_text
    bare = make_bare(tmp_path / "srv.git", keys.env)
    out = run([venv / "bin" / "gitjit", "hook", "install", "--repo", bare]).stdout
    assert f"gitjit pre-receive hook installed: {bare}/hooks/pre-receive" in out and "FAIL" not in out
    script = (bare / "hooks" / "pre-receive").read_text()
    assert f"INSTALL_PYTHON='{venv}/bin/python" in script and "site-packages" in script
    # the hook from the wheel judges a real push: a plain branch passes, an approvals branch without a policy not
    clone = tmp_path / "clone"
    subprocess.run(["git", "init", "-q", "-b", "main", str(clone)], check=True, env=keys.env)
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=A", "-c", "user.email=a@example.com",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=keys.env)
    subprocess.run(["git", "-C", str(clone), "push", "-q", str(bare), "main"], check=True,
                   env=keys.env)
    refused = subprocess.run(["git", "-C", str(clone), "push", str(bare), "main:approvals"], capture_output=True,
                             text=True, env=keys.env, check=False)
    assert refused.returncode != 0 and "gitjit: refs/heads/approvals refused" in refused.stderr


def test_the_sdist_builds_the_same_package(dist: Path, tmp_path):
    sdist = next(dist.glob("gitjit-*.tar.gz"))
    run(["python3", "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path, sdist], env=None, timeout=600)
    rebuilt = next(tmp_path.glob("gitjit-*.whl"))
    shipped = next(dist.glob("gitjit-*.whl"))
    names = {n for n in zipfile.ZipFile(shipped).namelist() if not n.endswith("RECORD")}
    assert names == {n for n in zipfile.ZipFile(rebuilt).namelist() if not n.endswith("RECORD")}
    assert "gitjit/server/templates/pre-receive.sh" in names
