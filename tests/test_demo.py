"""The README's first command, `make demo`: the whole flow with throwaway keys and a throwaway server.

It runs demo/demo.py as the README does (with this interpreter, gitjit on its
path), so a change that breaks a step of the demo breaks the suite.
"""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO_ROOT


def test_the_demo_runs_every_step_as_expected(tmp_path):
    # TMPDIR stays /tmp: gpg-agent's socket path must stay short
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "demo" / "demo.py")], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo OK: every step behaved as expected" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
