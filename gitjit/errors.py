"""The one family of errors gitjit raises on purpose, shared by the core, the CLI and the hook.

Each error carries a `code` from gitjit.reasons, set where the cause is
known, and belongs to one of three kinds, which decide the CLI's exit code
(in one place, cli/app.py): `BadInput` and `BadPolicy` are the caller's or the
policy's fault (exit code 2, docs/format.md, section 8.2); `NotTrusted`
means the approvals branch itself failed authentication (docs/format.md,
section 5), a refusal (exit code 1), never a silent fallback.
"""

from gitjit import reasons as R


class GitjitError(Exception):
    """Base of every error gitjit raises on purpose."""

    code = R.INTERNAL
    exit_code = 1  # the CLI's, decided from the class alone (cli.main)
    lead = ""  # what the CLI's one-line message starts with

    def __init__(self, message: str = "", code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> R.Reason:
        return R.Reason(self.code, str(self))

    def describe(self) -> str:
        """The one line the CLI prints (after "gitjit: ")."""
        return self.lead + str(self)


class BadInput(GitjitError):
    """Bad input, bad policy or usage error: nothing was written (docs/format.md, section 8.2)."""

    code = R.BAD_INPUT
    exit_code = 2


class NotTrusted(GitjitError):
    """The approvals branch does not authenticate from its pinned root."""

    code = R.NOT_TRUSTED
    lead = "the approvals branch is not trusted: "


class BadPolicy(NotTrusted):
    """An authorized policy.toml on the branch that does not parse (docs/format.md, section 3.2).

    The branch cannot be used past it, as for any `NotTrusted`, but the CLI
    reports it as a bad policy (exit code 2, docs/format.md, section 8.2), not as an attack.
    """

    code = R.BAD_POLICY
    exit_code = 2
    lead = "bad policy on the approvals branch: "


class GitFailed(GitjitError):
    """git could not be run, or failed where the cause is not the caller's input (a fetch, a push)."""

    code = R.GIT_FAILED


class SnapshotDamaged(GitjitError):
    """A row of the local snapshot did not read back (trust/cache/view_store.py): it was set aside, and
    the check that met it fails closed; the next one walks the branch from its root."""

    code = R.SNAPSHOT_DAMAGED
