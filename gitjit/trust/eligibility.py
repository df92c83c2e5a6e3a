"""Who can still give an approval that counts, and whether a rule can ever hold (docs/format.md, section 13.3).

An approval counts only when signed by a key that the policy lists for the
person, that is in their own `keys/` file, and that is neither expired nor
revoked when it is judged. A rule whose threshold is above the number of such
people (the requester left out where self-approval is off) can never hold
under the policy and keys as they are: `request` warns, `run` stops at once,
`policy check` refuses the policy.
"""

from __future__ import annotations

from datetime import datetime

from gitjit.model.policy import Policy
from gitjit.trust.signatures import Keyring


def can_sign(policy: Policy, keyring: Keyring, person: str, now: datetime) -> bool:
    """Whether `person` has a key, listed for them and in their own keys/ file, usable at `now`."""
    entry = policy.people.get(person)
    if entry is None:
        return False
    for fingerprint in entry.keys:
        if fingerprint not in keyring.owners.get(person, ()):
            continue
        key = keyring.keys.get(fingerprint)
        if key is not None and key.problem_at(fingerprint, now) is None:
            return True
    return False


def signers(policy: Policy, keyring: Keyring, people: frozenset[str] | set[str], now: datetime) -> frozenset[str]:
    """Those of `people` who can sign an approval that counts at `now`."""
    return frozenset(p for p in people if can_sign(policy, keyring, p, now))
