"""`gitjit hook uninstall` restores the server as it was: the chained legacy hook is back, and runs."""

from __future__ import annotations

import os

from helpers import make_bare, make_clone

FOREIGN = "#!/bin/sh\necho legacy-hook-ran >> {log}\ncat > /dev/null\nexit 0\n"


def test_uninstall_restores_the_chained_legacy_hook_and_pushes_reach_it(tmp_path, keys):
    server = make_bare(tmp_path / "server.git", keys.env)
    hooks = server / "hooks"
    log = tmp_path / "legacy.log"
    (hooks / "pre-receive").write_text(FOREIGN.format(log=log))
    (hooks / "pre-receive").chmod(0o755)
    alice = make_clone(tmp_path, keys["alice"], keys)
    alice.gitjit("hook", "install", "--repo", str(server), check=True)
    assert (hooks / "pre-receive.legacy").exists()

    # with gitjit's hook: an approvals branch without a policy is refused (the legacy hook is chained after it)
    alice.git("push", "-q", str(server), "main")
    refused = alice.git("push", str(server), "main:approvals", check=False)
    assert refused.returncode != 0 and "gitjit: refs/heads/approvals refused" in refused.stderr

    out = alice.gitjit("hook", "uninstall", "--repo", str(server), check=True).stdout
    assert "pre-receive.legacy -> pre-receive" in out
    assert (hooks / "pre-receive").read_text() == FOREIGN.format(log=log) and os.access(hooks / "pre-receive", os.X_OK)
    left = sorted(p.name for p in hooks.iterdir() if not p.name.endswith(".sample"))
    assert left == ["pre-receive"], left  # nothing of gitjit's: no reference-transaction, no post-receive

    before = log.read_text().count("legacy-hook-ran") if log.exists() else 0
    alice.git("push", "-q", str(server), "main:approvals")  # gitjit no longer judges: the push goes through
    assert log.read_text().count("legacy-hook-ran") == before + 1
    again = alice.gitjit("hook", "uninstall", "--repo", str(server), check=True).stdout
    assert "is not gitjit's: left as it is" in again and (hooks / "pre-receive").exists()
