"""The GitHub Action (action.yml) and the GitLab CI template (ci/gitlab/gitjit.yml), run locally.

Their shell steps are taken from the YAML as the runners would take them
(GitHub: each `run:` with `bash --noprofile --norc -eo pipefail`, inputs
reaching it through `env:` only; GitLab: `before_script` and `script` in one
shell) and run with bash in a CI-like checkout: a shallow clone of a bare
origin that holds main, a tag and a sharded approvals branch whose root the
job pins. Nothing is mocked: the approvals are signed with the session's
keys and `gitjit` is the one installed in this virtualenv (one test installs
it the way the action does, from the action's own checkout).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from helpers import REPO_ROOT
from world import World, template_world

ACTION_FILE = REPO_ROOT / "action.yml"
GITLAB_FILE = REPO_ROOT / "ci" / "gitlab" / "gitjit.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(inputs|github)\.([\w-]+)\s*\}\}")
VENV_BIN = str(Path(sys.executable).parent)


class Origin:
    def __init__(self, world: World, base: Path):
        self.world = world
        self.base = base
        self.approved = world.target("release")
        world.git("update-ref", "refs/heads/main", self.approved)  # the checkout's HEAD is the approved commit
        rid = world.request("carol", "deploy", self.approved)
        world.approve("alice", rid)
        world.approve("bob", rid)
        self.pending = world.target("not approved")
        world.request("carol", "deploy", self.pending)
        world.git("tag", "v1.0", self.approved)
        world.git("tag", "v1.1", self.pending)
        self.root = world.root()
        self.bare = base / "origin.git"
        world.git("clone", "-q", "--bare", str(world.path), str(self.bare))

    def checkout(self, where: Path) -> Path:
        """What actions/checkout and GitLab's runner leave: a shallow clone of main, the tags fetched."""
        path = where / "checkout"
        self.world.git("clone", "-q", "--depth", "1", "--branch", "main", self.bare.as_uri(), str(path))
        self.world.git("-C", str(path), "fetch", "-q", "--depth", "1", "origin", "+refs/tags/*:refs/tags/*")
        return path


@pytest.fixture(scope="module")
def origin(keys, tmp_path_factory) -> Origin:
    base = tmp_path_factory.mktemp("ci-templates")
    return Origin(template_world(base / "world", keys, layout=2), base)


def job_env(origin: Origin, tmp: Path, path_first: str | None = VENV_BIN) -> dict[str, str]:
    env = origin.world.env("alice")
    env["PATH"] = os.pathsep.join(p for p in (path_first, os.environ.get("PATH", "")) if p)
    env["RUNNER_TEMP"] = str(tmp)
    env["CI_BUILDS_DIR"] = str(tmp)
    return env


# -- GitHub --------------------------------------------------------------------


def run_action(origin: Origin, checkout: Path, tmp: Path, **inputs: str) -> tuple[int, dict[str, str], str]:
    """action.yml's steps as a runner runs a composite action: (exit code, outputs, log)."""
    doc = yaml.safe_load(ACTION_FILE.read_text())
    values = {name: str(spec.get("default", "")) for name, spec in doc["inputs"].items()}
    values.update(inputs)
    github = {"sha": origin.approved, "action_path": str(REPO_ROOT)}

    def resolve(text: str) -> str:
        for _ in range(3):  # an input's default may itself be an expression
            text = EXPRESSION.sub(lambda m: (values if m[1] == "inputs" else github)[m[2]], str(text))
        return text

    env = job_env(origin, tmp, path_first=inputs.get("_path", VENV_BIN))
    outputs_file, path_file = tmp / "github_output", tmp / "github_path"
    outputs_file.write_text("")
    path_file.write_text("")
    log = ""
    for index, step in enumerate(doc["runs"]["steps"]):
        assert "${{" not in step["run"], "inputs reach a script through env: only (no expression injection)"
        assert step["shell"] == "bash"
        script = tmp / f"step-{index}.sh"
        script.write_text(step["run"])
        step_env = dict(env, GITHUB_OUTPUT=str(outputs_file), GITHUB_PATH=str(path_file),
                        **{k: resolve(v) for k, v in step.get("env", {}).items()})
        added = [line for line in path_file.read_text().splitlines() if line]
        step_env["PATH"] = os.pathsep.join([*reversed(added), step_env["PATH"]])
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=checkout,
                              env=step_env, capture_output=True, text=True, timeout=600)
        log += proc.stdout + proc.stderr
        if proc.returncode != 0:
            break
    outputs = dict(line.split("=", 1) for line in outputs_file.read_text().splitlines() if "=" in line)
    return proc.returncode, outputs, log


def test_action_passes_an_approved_commit(origin, tmp_path):
    code, outputs, log = run_action(origin, origin.checkout(tmp_path), tmp_path, action="deploy", root=origin.root,
                                    package="none")
    assert code == 0, log
    assert outputs["approved"] == "true" and outputs["exit-code"] == "0"
    assert json.loads(Path(outputs["verdict"]).read_text())["approved"] is True


def test_action_fails_a_commit_without_approval(origin, tmp_path):
    code, outputs, log = run_action(origin, origin.checkout(tmp_path), tmp_path, action="deploy",
                                    target=origin.pending, root=origin.root, package="none")
    assert code == 1, log
    assert outputs["approved"] == "false" and outputs["exit-code"] == "1"
    verdict = json.loads(Path(outputs["verdict"]).read_text())
    assert verdict["approved"] is False and "pending" in verdict["codes"]


def test_action_checks_tags(origin, tmp_path):
    checkout = origin.checkout(tmp_path)
    code, outputs, log = run_action(origin, checkout, tmp_path, tag="v1.0", root=origin.root, package="none")
    assert code == 0 and outputs["approved"] == "true", log
    code, outputs, log = run_action(origin, checkout, tmp_path, tag="v1.1", root=origin.root, package="none")
    assert code == 1 and outputs["approved"] == "false", log


@pytest.mark.parametrize("inputs", [
    {"action": "deploy", "root": "HEAD"},  # not a commit id
    {"action": "deploy", "root": "0" * 39},  # too short
    {"action": "deploy", "tag": "v1.0"},  # both
    {},  # neither
    {"action": "no-such-action"},  # gitjit's own bad input
])
def test_action_refuses_bad_input_with_exit_2(origin, tmp_path, inputs):
    inputs = {"root": origin.root, **inputs}
    code, outputs, log = run_action(origin, origin.checkout(tmp_path), tmp_path, package="none", **inputs)
    assert code == 2, log
    assert outputs.get("approved") == "false" and outputs.get("exit-code") == "2"


def test_action_fails_a_branch_that_does_not_start_at_the_pinned_root(origin, tmp_path):
    """Hostile: the origin's approvals branch swapped for one bob made; the pin catches it."""
    fake = template_world(tmp_path / "fake", origin.world.keys, layout=2)
    forged_origin = tmp_path / "forged.git"
    origin.world.git("clone", "-q", "--bare", str(origin.bare), str(forged_origin))
    fake.git("push", "-q", "--force", str(forged_origin), "refs/heads/approvals:refs/heads/approvals")
    checkout = tmp_path / "gh-forged"
    origin.world.git("clone", "-q", "--depth", "1", forged_origin.as_uri(), str(checkout))
    code, outputs, log = run_action(origin, checkout, tmp_path, action="deploy", root=origin.root, package="none")
    assert code == 1 and outputs["approved"] == "false"
    assert "pinned root" in log


def test_two_jobs_in_one_checkout_at_once_both_pass(origin, tmp_path):
    """A race: two cold verifications in one checkout build the same keyring at the same time."""
    checkout = origin.checkout(tmp_path)
    results = {}

    def job(name: str) -> None:
        (tmp_path / name).mkdir()
        results[name] = run_action(origin, checkout, tmp_path / name, action="deploy", root=origin.root,
                                   package="none")

    threads = [threading.Thread(target=job, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[n][0] for n in ("one", "two")] == [0, 0], [results[n][2] for n in ("one", "two")]


def test_action_installs_gitjit_from_its_own_checkout(origin, tmp_path):
    """The default install: a virtualenv under RUNNER_TEMP, gitjit from the action's path, then on PATH."""
    code, outputs, log = run_action(origin, origin.checkout(tmp_path), tmp_path, action="deploy",
                                    root=origin.root, _path="")
    assert code == 0, log
    assert (tmp_path / "gitjit-venv" / "bin" / "gitjit").exists()
    assert (tmp_path / "github_path").read_text().strip() == str(tmp_path / "gitjit-venv" / "bin")


# -- GitLab --------------------------------------------------------------------


def run_gitlab(origin: Origin, checkout: Path, tmp: Path, **variables: str) -> tuple[int, str]:
    """The `.gitjit-verify` template's before_script and script in one bash, as GitLab's runner does."""
    job = yaml.safe_load(GITLAB_FILE.read_text())[".gitjit-verify"]
    env = job_env(origin, tmp)
    env["CI_COMMIT_SHA"] = origin.approved
    for name, value in job["variables"].items():  # $CI_... in a default is expanded by the runner
        env[name] = re.sub(r"\$(\w+)", lambda m: env.get(m[1], ""), str(value))
    env.update(GITJIT_PACKAGE="none", **variables)
    script = "\n".join([*job["before_script"], *job["script"]])
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_gitlab_template_passes_an_approved_commit_and_keeps_the_verdict(origin, tmp_path):
    checkout = origin.checkout(tmp_path)
    code, log = run_gitlab(origin, checkout, tmp_path, GITJIT_ACTION="deploy", GITJIT_ROOT=origin.root)
    assert code == 0, log
    assert json.loads((checkout / "gitjit-verdict.json").read_text())["approved"] is True
    assert "gitjit-verdict.json" in yaml.safe_load(GITLAB_FILE.read_text())[".gitjit-verify"]["artifacts"]["paths"]


def test_gitlab_template_fails_without_approval(origin, tmp_path):
    checkout = origin.checkout(tmp_path)
    code, log = run_gitlab(origin, checkout, tmp_path, GITJIT_ACTION="deploy", GITJIT_TARGET=origin.pending,
                           GITJIT_ROOT=origin.root)
    assert code == 1, log
    assert "pending" in json.loads((checkout / "gitjit-verdict.json").read_text())["codes"]


def test_gitlab_template_checks_tags(origin, tmp_path):
    checkout = origin.checkout(tmp_path)
    assert run_gitlab(origin, checkout, tmp_path, GITJIT_TAG="v1.0", GITJIT_ROOT=origin.root)[0] == 0
    assert run_gitlab(origin, checkout, tmp_path, GITJIT_TAG="v1.1", GITJIT_ROOT=origin.root)[0] == 1


@pytest.mark.parametrize("variables", [
    {"GITJIT_ACTION": "deploy", "GITJIT_ROOT": ""},
    {"GITJIT_ACTION": "deploy", "GITJIT_ROOT": "g" * 40},
    {"GITJIT_ACTION": "deploy", "GITJIT_TAG": "v1.0"},
    {"GITJIT_ACTION": "no-such-action"},
])
def test_gitlab_template_refuses_bad_input_with_exit_2(origin, tmp_path, variables):
    variables = {"GITJIT_ROOT": origin.root, **variables}
    assert run_gitlab(origin, origin.checkout(tmp_path), tmp_path, **variables)[0] == 2
