"""Typed refusals shared by the core, the CLI and the hook.

`BadInput` is the caller's fault (exit code 2 in the CLI); `NotTrusted`
means the approvals branch itself failed authentication (docs/format.md, section 5), which
is a refusal (exit code 1), never a silent fallback.
"""


class GitjitError(Exception):
    """Base of every error gitjit raises on purpose."""


class BadInput(GitjitError):
    """Bad input, bad policy or usage error: nothing was written (docs/format.md, section 8.2)."""


class NotTrusted(GitjitError):
    """The approvals branch does not authenticate from its pinned root."""


class BadPolicy(NotTrusted):
    """An authorized policy.toml on the branch that does not parse (docs/format.md, section 3.2).

    The branch cannot be used past it, as for any `NotTrusted`, but the CLI
    reports it as a bad policy (exit code 2, docs/format.md, section 8.2), not as an attack.
    """
