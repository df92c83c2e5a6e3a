"""A server with gitjit's hooks whose policy has break-glass and single-use actions.

`make_glass_golden` copies the session's golden server (hookkit.make_golden:
alice admin; bob, carol approvers; dave with no role) and has alice push one
admin-signed policy commit through the hook that adds:

- `hotfix`: approvers alice, bob, carol (2 needed, fresh for 1h, self-approval
  allowed, so the breaker's own review is refused by the break-glass rule
  itself), tags `hotfix-*`; carol may break the glass, review within 2h;
- `db-export`: bob or carol approves, `uses = 1`, tags `export-*`;
- `release`: bob or carol approves, `uses = 2`, tags `rel-*`.

`deploy-prod` (from the golden policy) has no break_glass. Tests copy it with
hookkit.copy_world and run the real CLI in real clones.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import Clone, Keys
from hookkit import BranchWriter, accepted

EXTRA_ACTIONS = """
[actions.hotfix]
approvers = ["alice", "bob", "carol"]
threshold = 2
freshness = "1h"
self_approval = true
tags = ["hotfix-*"]

[actions.hotfix.break_glass]
people = ["carol"]
review_within = "2h"

[actions.db-export]
approvers = ["bob", "carol"]
threshold = 1
uses = 1
tags = ["export-*"]

[actions.release]
approvers = ["bob", "carol"]
threshold = 1
uses = 2
tags = ["rel-*"]
"""

FAST = {"GITJIT_RUN_INTERVAL": "0.3"}
# Writes its GITJIT_* environment to ran-<pid>.txt, one per line, and exits 0.
PROBE = ("import os; open(f'ran-{os.getpid()}.txt', 'w').write('\\n'.join(os.environ.get(k, '-') for k in "
         "('GITJIT_REQUEST', 'GITJIT_BREAK_GLASS', 'GITJIT_USE', 'GITJIT_APPROVERS')))")


def make_glass_golden(golden: Path, base: Path, keys: Keys) -> Path:
    shutil.copytree(golden, base, symlinks=True, dirs_exist_ok=True)
    alice = Clone(base / (base / "alice-path").read_text(), keys["alice"], keys)
    writer = BranchWriter(alice)
    policy = writer.git("show", "HEAD:policy.toml").stdout + EXTRA_ACTIONS
    writer.commit({"policy.toml": policy}, "gitjit: hotfix (break-glass), db-export and release (single-use)")
    alice.git("worktree", "remove", "--force", str(writer.wt))
    result = alice.git("push", "--porcelain", (base / "server.git").as_uri(), "approvals", check=False)
    accepted(result)
    return base


def probe() -> list[str]:
    return ["--", sys.executable, "-c", PROBE]


def runs(clone: Clone) -> list[list[str]]:
    """What each probe run in this clone saw: [GITJIT_REQUEST, GITJIT_BREAK_GLASS, GITJIT_USE, GITJIT_APPROVERS]."""
    return [p.read_text().split("\n") for p in sorted(clone.path.glob("ran-*.txt"))]


def utc(**delta) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(**delta)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_json(clone: Clone, request_id: str, at: datetime | None = None) -> dict:
    args = ["status", request_id, "--json"] + (["--at", iso(at)] if at else [])
    [request] = json.loads(clone.gitjit(*args, check=True).stdout)["requests"]
    return request


def server_file(world, path: str) -> str | None:
    from helpers import git

    result = git("show", f"refs/heads/approvals:{path}", cwd=world.server, env=world.keys.env, check=False)
    return result.stdout if result.returncode == 0 else None


def server_paths(world, folder: str) -> list[str]:
    from helpers import git

    out = git("ls-tree", "-r", "--name-only", "refs/heads/approvals", "--", folder, cwd=world.server,
              env=world.keys.env, check=False).stdout
    return out.split()
