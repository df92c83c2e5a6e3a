"""Typed refusals shared by the core, the CLI and the hook.

`BadInput` is the caller's fault (exit code 2 in the CLI); `NotTrusted`
means the approvals branch itself failed authentication (SPEC s.7), which
is a refusal (exit code 1), never a silent fallback.
"""


class GitjitError(Exception):
    """Base of every error gitjit raises on purpose."""


class BadInput(GitjitError):
    """Bad input, bad policy or usage error: nothing was written (SPEC s.9)."""


class NotTrusted(GitjitError):
    """The approvals branch does not authenticate from its pinned root."""


class BadPolicy(NotTrusted):
    """An authorized policy.toml on the branch that does not parse (SPEC s.3).

    The branch cannot be used past it, as for any `NotTrusted`, but the CLI
    reports it as a bad policy (exit code 2, SPEC s.9), not as an attack.
    """
