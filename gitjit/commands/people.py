"""`gitjit person list` and `gitjit person remove`: the people of the policy in force (docs/format.md, section 3).

`people` describes each person from the authenticated branch: their keys
with expiry and revocation as the key material in `keys/` says, the groups
they are in, whether they are an admin, and the actions they may approve.

`remove_person` writes an admin-signed policy commit that takes a person out
of `policy.toml` (their table, and every group, admin list, approver and
requester list naming them) and deletes `keys/<name>.asc`. It refuses, with
the reason, to remove the last admin or anyone without whom the policy
would not load (an action left with fewer approvers than its threshold):
a refused removal writes nothing. The policy is written back with tomli-w,
so comments in policy.toml do not survive a removal (docs/decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gitjit.errors import BadInput, NotTrusted
from gitjit.git.branch import ApprovalsBranch
from gitjit.model.grammar import check_name
from gitjit.model.policy import POLICY_FILE, load_policy_document, policy_from_document
from gitjit.trust.trusted import TrustedBranch

if TYPE_CHECKING:
    from typing import Any

    from gitjit.commands.write import Written


@dataclass(frozen=True)
class KeyState:
    fingerprint: str
    expires: datetime | None
    revoked: bool
    in_keys: bool  # keys/<person>.asc holds it: without it the key signs nothing that counts


@dataclass(frozen=True)
class PersonInfo:
    name: str
    emails: tuple[str, ...]
    keys: tuple[KeyState, ...]
    admin: bool
    groups: tuple[str, ...]
    approves: tuple[str, ...]  # actions this person may approve


def people(trusted: TrustedBranch) -> list[PersonInfo]:
    state = trusted.state
    if state is None:  # a loaded view has its policy
        raise NotTrusted("the approvals branch has no policy in force")
    policy = state.policy
    found = []
    for name, person in sorted(policy.people.items()):
        keys = []
        owned = state.keyring.owners.get(name, frozenset())
        for fpr in person.keys:
            info = state.keyring.keys.get(fpr)
            expires = datetime.fromtimestamp(info.expires, UTC) if info and info.expires else None
            keys.append(KeyState(fpr, expires, bool(info and info.revoked), fpr in owned))
        found.append(PersonInfo(
            name=name,
            emails=tuple(person.emails),
            keys=tuple(keys),
            admin=name in policy.admins,
            groups=tuple(sorted(g for g, members in policy.groups.items() if name in members)),
            approves=tuple(sorted(a.name for a in policy.actions.values() if name in a.approvers)),
        ))
    return found


def without_person(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The policy document with `name` taken out of every list and table that names them."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}

    def drop(values: object) -> object:
        if not isinstance(values, list):
            return values
        return [v for v in values if v != name]

    people = dict(out.get("people", {}))
    people.pop(name, None)
    out["people"] = people
    if isinstance(out.get("groups"), dict):
        out["groups"] = {g: drop(members) for g, members in out["groups"].items()}
    if isinstance(out.get("admins"), dict):
        out["admins"] = {**out["admins"], "people": drop(out["admins"].get("people", []))}
    if isinstance(out.get("actions"), dict):
        out["actions"] = {action: _drop_within(entry, name) for action, entry in out["actions"].items()}
    return out


def _drop_within(value: object, name: str) -> object:
    """An action's table with `name` out of every list of people in it (its rules, escalation, break-glass too)."""
    if isinstance(value, dict):
        return {k: [v for v in item if v != name] if k in _PEOPLE_LISTS and isinstance(item, list)
                else _drop_within(item, name) for k, item in value.items()}
    if isinstance(value, list):
        return [_drop_within(item, name) for item in value]
    return value


_PEOPLE_LISTS = ("approvers", "requesters", "people")


def removal_refused(doc: dict[str, Any], name: str, admins: frozenset[str]) -> str | None:
    """Why removing `name` would leave a policy that cannot work, or None."""
    if admins == {name}:
        return f"{name} is the last admin: add another admin first"
    try:
        policy_from_document(without_person(doc, name))
    except BadInput as exc:
        return f"without {name} the policy does not hold: {exc}"
    return None


def remove_person(branch: ApprovalsBranch, name: str, push: bool = False, offline: bool = False) -> Written:
    import tomli_w

    from gitjit.commands.write import Draft, _write

    check_name(name, "person")

    def compose(trusted: TrustedBranch, base: str) -> Draft:
        policy = trusted.policy
        if name not in policy.people:
            raise BadInput(f"unknown person {name!r}: the policy has {', '.join(sorted(policy.people)) or 'nobody'}")
        root_tree = branch.tree(branch.commit(base).tree)
        doc = load_policy_document(branch.blob(root_tree[POLICY_FILE].id))
        refused = removal_refused(doc, name, policy.admins)
        if refused:
            raise BadInput(f"cannot remove {name}: {refused}")
        files: dict[str, bytes | None] = {POLICY_FILE: tomli_w.dumps(without_person(doc, name)).encode()}
        if f"{name}.asc" in branch.tree(root_tree["keys"].id):
            files[f"keys/{name}.asc"] = None  # deleted
        return Draft(files, f"gitjit: remove person {name}", True)

    written, _ = _write(branch, compose, push, offline)
    return written
