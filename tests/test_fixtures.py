"""Self-tests of the test infrastructure (keys, repos, git daemon)."""

from __future__ import annotations

import time

from helpers import ALL_PEOPLE, git, run_gpg, scratch_gnupghome


def colons(keys, *args, home=None):
    """gpg --with-colons output, as lists of fields."""
    out = keys.gpg("--with-colons", "--fixed-list-mode", *args, home=home).stdout
    return [line.split(":") for line in out.splitlines()]


def validsig(status: str) -> list[str]:
    """Fields of the `[GNUPG:] VALIDSIG ...` status line."""
    line = next(l for l in status.splitlines() if l.startswith("[GNUPG:] VALIDSIG "))
    return line.split()[2:]


def test_every_key_has_a_secret_part(keys):
    assert set(keys.people) == set(ALL_PEOPLE)
    records = colons(keys, "--list-secret-keys")
    secret_fprs = {r[9] for r in records if r[0] == "fpr"}
    for person in keys.people.values():
        assert len(person.fpr) == 40 and person.fpr == person.fpr.upper()
        assert person.fpr in secret_fprs, person.name
        assert person.email == f"{person.name}@example.com"
        assert "BEGIN PGP PUBLIC KEY BLOCK" in person.asc
        assert person.asc_path.read_text() == person.asc


def test_env_is_isolated(keys):
    assert keys.env["GNUPGHOME"] == str(keys.home)
    assert keys.env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert "GIT_AUTHOR_DATE" not in keys.env and "GIT_COMMITTER_DATE" not in keys.env
    global_cfg = git("config", "--global", "--list", env=keys.env, check=False)
    assert global_cfg.stdout == ""


def test_signed_commit_verifies(keys, repo_for):
    repo = repo_for("alice")
    commit = repo.git("commit-tree", "-S", "HEAD^{tree}", "-p", "HEAD", "-m", "signed").stdout.strip()
    assert "gpgsig " in repo.git("cat-file", "commit", commit).stdout
    verify = repo.git("verify-commit", "--raw", commit)
    assert validsig(verify.stderr)[-1] == keys["alice"].fpr


def test_subby_signs_with_subkey(keys, repo_for):
    subby = keys["subby"]
    assert subby.sub_fpr and subby.sub_fpr != subby.fpr
    records = colons(keys, "--list-keys", subby.fpr)
    pub = next(r for r in records if r[0] == "pub")
    sub = next(r for r in records if r[0] == "sub")
    assert "s" not in pub[11] and "s" in sub[11]  # primary can't sign, subkey can

    repo = repo_for("subby")
    commit = repo.commit_file("x.txt", "x\n", sign=True)
    # VALIDSIG <signing-key fpr> ... <primary fpr>
    fields = validsig(repo.git("verify-commit", "--raw", commit).stderr)
    assert fields[0] == subby.sub_fpr and fields[-1] == subby.fpr


def test_shortlived_expires_in_two_days(keys):
    pub = next(r for r in colons(keys, "--list-keys", keys["shortlived"].fpr) if r[0] == "pub")
    expires = int(pub[6])
    assert abs(expires - (time.time() + 2 * 86400)) < 3600


def test_revoked_asc_is_revoked_only_outside_the_session_keyring(keys):
    revoked = keys["revoked"]
    main_pub = next(r for r in colons(keys, "--list-keys", revoked.fpr) if r[0] == "pub")
    assert main_pub[1] != "r"  # still usable for signing in tests
    with scratch_gnupghome(keys.env) as scratch:
        run_gpg(scratch, "--import", input=revoked.revoked_asc, env=keys.env)
        pub = next(r for r in colons(keys, "--list-keys", revoked.fpr, home=scratch) if r[0] == "pub")
        assert pub[1] == "r"


def test_clone_from_origin(keys, repo_for, bare_remote):
    alice = repo_for("alice")
    alice.git("push", "-q", str(bare_remote), "main")
    bob = repo_for("bob", origin=bare_remote)
    assert bob.head() == alice.head()
    assert bob.git("config", "user.signingkey").stdout.strip() == keys["bob"].fpr
    assert bob.git("config", "user.email").stdout.strip() == "bob@example.com"


def test_push_through_git_daemon(keys, repo_for, bare_remote, git_daemon):
    repo = repo_for("carol")
    commit = repo.commit_file("a.txt", "a\n", sign=True)
    repo.git("push", "-q", git_daemon + bare_remote.name, "HEAD:refs/heads/main")
    assert git("rev-parse", "main", cwd=bare_remote, env=keys.env).stdout.strip() == commit
    clone = repo_for("dave", origin=git_daemon + bare_remote.name)
    assert clone.head() == commit
