"""The README's tour, run as written: its `sh` blocks, taken from README.md itself, so they cannot drift.

The blocks run one after another as one shell session (bash; the working
directory and the variables the tour sets carry from one block to the next)
on a "fresh machine": an empty HOME, no gitjit on PATH, no GnuPG keyring, no
git config. The tour installs gitjit from a copy of this checkout into its own
virtualenv, makes the three keys, the server and the clones itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import REPO_ROOT

TOUR_HEADING = "## A five-minute tour"
STATE_PROLOGUE = 'set -euo pipefail\n[ -s "$TOUR_STATE" ] && . "$TOUR_STATE"\n'
ID_RE = re.compile(r"^deploy-prod-[0-9]{8}-[0-9a-f]{6}$", re.M)


def readme() -> str:
    return (REPO_ROOT / "README.md").read_text()


def tour_blocks(text: str) -> list[str]:
    """The fenced ```sh blocks under the tour's heading, up to the next `## ` heading, in order."""
    section = text.split(TOUR_HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)


def test_tour_blocks_are_found():
    blocks = tour_blocks(readme())
    assert len(blocks) >= 8
    joined = "\n".join(blocks)
    for step in ("pip install", "gpg --armor --export", "git init -q --bare", "gitjit hook install",
                 "git config user.signingkey", "gitjit init", "gitjit request", "gitjit approve",
                 "request_blob", "git tag v1.4.2", "gitjit verify-tag v1.4.2"):
        assert step in joined, step
    # the hook is installed before anything is pushed; the tag exists before verify-tag reads it
    assert joined.index("gitjit hook install") < joined.index("git push")
    assert joined.index("git tag v1.4.2") < joined.index("gitjit verify-tag v1.4.2")


def test_readme_points_only_at_files_a_user_has():
    text = readme()
    assert "SPEC" not in text and "../shared" not in text and "/work/" not in text
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (REPO_ROOT / target).exists(), f"README links to {target}, which is not in the repository"


def _copy_checkout(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
                                    ".pytest_cache", "benchmarks", "fuzz")
    shutil.copytree(REPO_ROOT, dest, ignore=ignore, symlinks=True)


def _fresh_env(home: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("LANG", "TZ", "TMPDIR")}
    env.update(HOME=str(home), PATH="/usr/local/bin:/usr/bin:/bin", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C.UTF-8",
               TOUR_STATE=str(state), COLUMNS="100")
    return env


@pytest.mark.skipif(shutil.which("bash") is None, reason="the tour is written for a POSIX shell (bash here)")
def test_the_readme_tour_runs_as_written(tmp_path):
    blocks = tour_blocks(readme())
    home, start = tmp_path / "home", tmp_path / "start"
    home.mkdir()
    start.mkdir()
    _copy_checkout(start / "gitjit")  # "From a checkout of this repository in ./gitjit"
    state = tmp_path / "tour-state.sh"
    state.write_text(f"cd {start}\n")
    env = _fresh_env(home, state)
    names = sorted({m for b in blocks for m in re.findall(r"^([A-Z][A-Z0-9_]*)=", b, re.M)})
    epilogue = ("\n{ export -p; " + "".join(f"declare -p {n} 2>/dev/null || true; " for n in names)
                + 'echo "cd $(printf %q "$PWD")"; } > "$TOUR_STATE.new" && mv "$TOUR_STATE.new" "$TOUR_STATE"\n')
    outputs = []
    try:
        for number, block in enumerate(blocks):
            proc = subprocess.run(["bash", "-c", STATE_PROLOGUE + block + epilogue], env=env, cwd=start,
                                  capture_output=True, text=True, timeout=600)
            outputs.append(proc.stdout)
            assert proc.returncode == 0, (f"README tour block {number} failed (exit {proc.returncode}):\n{block}\n"
                                          f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, check=False)
    out = "\n".join(outputs)
    assert (home / ".local" / "gitjit" / "share" / "man" / "man1" / "gitjit.1").exists()  # for `git jit --help`
    assert ID_RE.search(out), out
    assert "refused, as it should be" in out and "deploying v1.4.2" in out
    server = home / "tour" / "server.git"
    tags = subprocess.run(["git", "tag"], cwd=server, env=env, capture_output=True, text=True).stdout.split()
    assert tags == ["v1.4.2"]
    # what the tour wrote counts: the request approved by bob (with gitjit) and carol (by hand)
    rid = ID_RE.search(out).group(0)
    status = subprocess.run(["bash", "-c", STATE_PROLOGUE + f"cd ~/tour/alice && gitjit status {rid} --json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    request = json.loads(status.stdout)["requests"][0]
    assert request["state"] == "approved" and request["approvals"] == ["bob", "carol"]
    assert {d["comment"] for d in request["decisions"]} == {"LGTM", "LGTM, by hand"}
