"""policy.toml: parsed and validated whole into immutable records (docs/format.md, section 3.2).

A policy either loads completely or raises `BadInput` naming the file, the
key and the problem; it never half-loads. Unknown keys are refused too: a
typo such as `treshold` must not silently weaken an action.
"""

from __future__ import annotations

import fnmatch
from datetime import timedelta

from gitjit.errors import BadInput
from gitjit.model.grammar import FINGERPRINT_RE, is_valid_name, parse_duration
from gitjit.model.limits import MAX_RULES
from gitjit.model.records import load_toml
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import Any

POLICY_FILE = "policy.toml"
KEYS_DIR = "keys"  # keys/<person>.asc
ANYONE = "*"
POLICY_ACTION = "policy"  # the reserved action of policy proposals, where admins.threshold > 1 (section 14)


class Person(NamedTuple):
    name: str
    keys: tuple[str, ...]  # primary-key fingerprints, upper-case hex
    emails: tuple[str, ...]


class BreakGlass(NamedTuple):
    """`[actions.NAME.break_glass]`: who may act before approval, and how soon the review is due."""

    people: frozenset[str]  # groups expanded
    review_within: timedelta


MAX_USES = 1_000_000  # `uses` above this is refused: a limit nobody reaches is no limit

DEFAULT_RULE = "default"  # the name of the rule an action-level approvers/threshold pair makes


class Rule(NamedTuple):
    """One rule of an action: `threshold` distinct people among `approvers` (docs/format.md, section 13.1)."""

    name: str
    approvers: frozenset[str]  # people, groups expanded
    threshold: int


class Escalation(NamedTuple):
    """The alternative route: approvals of `approvers` signed at least `after` past the request's created (13.2)."""

    after: timedelta
    approvers: frozenset[str]
    threshold: int


class Action(NamedTuple):
    name: str
    rules: tuple[Rule, ...]  # every rule must hold; never empty
    freshness: timedelta
    self_approval: bool
    requesters: frozenset[str] | None  # None means anyone ("*")
    tags: tuple[str, ...]
    escalation: Escalation | None = None
    break_glass: BreakGlass | None = None  # None: `--break-glass` is refused for this action
    uses: int | None = None  # None: unlimited while fresh; N: each approved request runs at most N times

    @property
    def approvers(self) -> frozenset[str]:
        """Everyone whose decision can count: the approvers of every rule and of the escalation."""
        out = frozenset().union(*(rule.approvers for rule in self.rules))
        return out | self.escalation.approvers if self.escalation else out

    @property
    def threshold(self) -> int:
        """Approvals the rules need together (each rule's threshold, summed; one rule: its threshold)."""
        return sum(rule.threshold for rule in self.rules)

    @property
    def simple(self) -> bool:
        """One rule named `default` and no escalation: the form of section 3, reported as before."""
        return self.escalation is None and len(self.rules) == 1 and self.rules[0].name == DEFAULT_RULE

    def may_request(self, person: str | None) -> bool:
        return self.requesters is None or (person is not None and person in self.requesters)

    def matches_tag(self, tag: str) -> bool:
        return any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.tags)


class Policy(NamedTuple):
    freshness: timedelta
    max_ttl: timedelta
    clock_skew: timedelta
    people: dict[str, Person]
    groups: dict[str, frozenset[str]]
    admins: frozenset[str]
    actions: dict[str, Action]
    admin_threshold: int = 1  # distinct admins who must sign for a change of policy.toml or keys/
    layout: int = 1  # where records live on the branch (model/layout.py): 1 flat, 2 sharded

    @property
    def quorum(self) -> bool:
        """Whether policy changes need several admins (and go through proposals)."""
        return self.admin_threshold > 1

    def action(self, name: str) -> Action | None:
        """An action of the policy, or the reserved `policy` action of proposals where a quorum is set."""
        if name == POLICY_ACTION and self.quorum:
            # approvals of a proposal hold for its whole life (at most max_ttl), as the quorum counts them
            return Action(POLICY_ACTION, (Rule("admins", self.admins, self.admin_threshold),), self.max_ttl,
                          self_approval=True, requesters=self.admins, tags=())
        return self.actions.get(name)

    def person_with_key(self, fingerprint: str) -> str | None:
        for person in self.people.values():
            if fingerprint in person.keys:
                return person.name
        return None

    def person_with_email(self, email: str) -> str | None:
        wanted = email.strip().lower()
        for person in self.people.values():
            if wanted in (e.lower() for e in person.emails):
                return person.name
        return None

    def actions_for_tag(self, tag: str) -> list[Action]:
        return [a for a in self.actions.values() if a.matches_tag(tag)]


class _Reader:
    """Walks the TOML document, raising errors that name file and key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, problem: str) -> BadInput:
        where = f"{self.source}: {key}: " if key else f"{self.source}: "
        return BadInput(where + problem)

    def strings(self, value: object, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return tuple(value)

    def duration(self, value: object, key: str) -> timedelta:
        try:
            return parse_duration(value, "duration")
        except BadInput as exc:
            raise self.fail(key, str(exc).removeprefix("duration ")) from None


def parse_policy(data: bytes | str, source: str = POLICY_FILE) -> Policy:
    return policy_from_document(load_policy_document(data, source), source)


def load_policy_document(data: bytes | str, source: str = POLICY_FILE) -> dict[str, Any]:
    """The TOML document, not yet validated (tomllib is imported only here: a push whose
    policy comes from the snapshot never pays for it)."""
    return load_toml(data, source)


def policy_from_document(doc: dict[str, Any], source: str = POLICY_FILE) -> Policy:
    """Validates a policy document whole (the TOML as parsed, or its JSON copy in the snapshot)."""
    r = _Reader(source)
    for extra in sorted(set(doc) - {"gitjit", "layout", "defaults", "people", "groups", "admins", "actions"}):
        raise r.fail(extra, "unknown key")
    if type(doc.get("gitjit")) is not int or doc["gitjit"] != 1:  # 1.0 and true == 1 in Python
        raise r.fail("gitjit", f"format version must be 1, found {doc.get('gitjit')!r}")
    layout = doc.get("layout", 1)
    if type(layout) is not int or layout not in (1, 2):
        raise r.fail("layout", f"must be 1 (flat) or 2 (sharded), found {layout!r}")

    defaults = _sub(r, doc, "defaults", {"freshness", "max_ttl", "clock_skew"})
    freshness = r.duration(defaults.get("freshness", "24h"), "defaults.freshness")
    max_ttl = r.duration(defaults.get("max_ttl", "72h"), "defaults.max_ttl")
    clock_skew = r.duration(defaults.get("clock_skew", "5m"), "defaults.clock_skew")

    people: dict[str, Person] = {}
    for name, entry in _sub(r, doc, "people").items():
        key = f"people.{name}"
        if not is_valid_name(name):
            raise r.fail(key, "is not a valid person name")
        entry = _sub(r, {name: entry}, name, {"keys", "emails"}, key)
        fingerprints = []
        for fpr in r.strings(entry.get("keys", []), f"{key}.keys"):
            normal = fpr.replace(" ", "").upper()
            if not FINGERPRINT_RE.match(normal):
                raise r.fail(f"{key}.keys", f"{fpr!r} is not a fingerprint of 40 hex digits")
            fingerprints.append(normal)
        emails = r.strings(entry.get("emails", []), f"{key}.emails")
        people[name] = Person(name, tuple(fingerprints), emails)

    owner_of: dict[str, str] = {}
    for person in people.values():
        for fpr in person.keys:
            if owner_of.setdefault(fpr, person.name) != person.name:
                # one key for two people would let one signature count twice
                raise r.fail(f"people.{person.name}.keys", f"{fpr} is also listed for {owner_of[fpr]}")

    def known_person(name: str, key: str) -> str:
        if name not in people:
            raise r.fail(key, f"unknown person {name!r}")
        return name

    groups: dict[str, frozenset[str]] = {}
    for name, members in _sub(r, doc, "groups").items():
        key = f"groups.{name}"
        if not is_valid_name(name):
            raise r.fail(key, "is not a valid group name")
        groups[name] = frozenset(known_person(m, key) for m in r.strings(members, key))

    def expand(specs: tuple[str, ...], key: str) -> frozenset[str]:
        out: set[str] = set()
        for spec in specs:
            if spec.startswith("@"):
                if spec[1:] not in groups:
                    raise r.fail(key, f"unknown group {spec!r}")
                out |= groups[spec[1:]]
            else:
                out.add(known_person(spec, key))
        return frozenset(out)

    admin_table = _sub(r, doc, "admins", {"people", "threshold"})
    admins = expand(r.strings(admin_table.get("people", []), "admins.people"), "admins.people")
    if not admins:
        raise r.fail("admins.people", "names no admin")
    admin_threshold = admin_table.get("threshold", 1)
    if not isinstance(admin_threshold, int) or isinstance(admin_threshold, bool):
        raise r.fail("admins.threshold", "must be an integer")
    if not 1 <= admin_threshold <= len(admins):
        raise r.fail("admins.threshold", f"{admin_threshold} is not between 1 and the number of admins ({len(admins)})")

    def group(table: dict[str, Any], key: str, what: str) -> tuple[frozenset[str], int]:
        """The approvers and threshold of a rule, of the escalation or of the action-level shorthand."""
        if "approvers" not in table:
            raise r.fail(f"{key}.approvers", "is missing")
        approvers = expand(r.strings(table["approvers"], f"{key}.approvers"), f"{key}.approvers")
        threshold = table.get("threshold", 1)
        if not isinstance(threshold, int) or isinstance(threshold, bool):
            raise r.fail(f"{key}.threshold", "must be an integer")
        if threshold < 1:
            raise r.fail(f"{key}.threshold", f"{threshold} is below 1")
        if threshold > len(approvers):
            raise r.fail(f"{key}.threshold", f"{threshold} is above the number of {what} ({len(approvers)})")
        return approvers, threshold

    actions: dict[str, Action] = {}
    allowed = {"approvers", "threshold", "freshness", "self_approval", "requesters", "tags", "rules", "escalation",
               "break_glass", "uses"}
    for name, entry in _sub(r, doc, "actions").items():
        key = f"actions.{name}"
        if not is_valid_name(name):
            raise r.fail(key, "is not a valid action name")
        if name == POLICY_ACTION and admin_threshold > 1:
            raise r.fail(key, f"{POLICY_ACTION!r} is reserved for policy proposals where admins.threshold > 1")
        entry = _sub(r, {name: entry}, name, allowed, key)
        rules = _rules(r, entry, key, group)
        escalation = None
        if "escalation" in entry:
            table = _sub(r, entry, "escalation", {"after", "approvers", "threshold"}, f"{key}.escalation")
            if "after" not in table:
                raise r.fail(f"{key}.escalation.after", "is missing")
            after = r.duration(table["after"], f"{key}.escalation.after")
            approvers, threshold = group(table, f"{key}.escalation", "approvers")
            escalation = Escalation(after, approvers, threshold)
        self_approval = entry.get("self_approval", False)
        if not isinstance(self_approval, bool):
            raise r.fail(f"{key}.self_approval", "must be true or false")
        requester_specs = r.strings(entry.get("requesters", [ANYONE]), f"{key}.requesters")
        requesters = None if ANYONE in requester_specs else expand(requester_specs, f"{key}.requesters")
        actions[name] = Action(
            name=name,
            rules=rules,
            freshness=r.duration(entry["freshness"], f"{key}.freshness") if "freshness" in entry else freshness,
            self_approval=self_approval,
            requesters=requesters,
            tags=r.strings(entry.get("tags", []), f"{key}.tags"),
            escalation=escalation,
            break_glass=_break_glass(r, entry, key, expand),
            uses=_uses(r, entry, key),
        )

    return Policy(freshness, max_ttl, clock_skew, people, groups, admins, actions, admin_threshold, layout)


def _rules(r: _Reader, entry: dict[str, Any], key: str,
           group: Callable[[dict[str, Any], str, str], tuple[frozenset[str], int]]) -> tuple[Rule, ...]:
    """`[[actions.X.rules]]`, or the action-level approvers/threshold as one rule named `default`."""
    if "rules" not in entry:
        approvers, threshold = group(entry, key, "approvers")
        return (Rule(DEFAULT_RULE, approvers, threshold),)
    if "approvers" in entry or "threshold" in entry:
        raise r.fail(f"{key}.rules", "an action has rules or approvers/threshold, not both")
    tables = entry["rules"]
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise r.fail(f"{key}.rules", "must be an array of tables ([[...rules]])")
    if not tables:
        raise r.fail(f"{key}.rules", "names no rule")
    if len(tables) > MAX_RULES:
        raise r.fail(f"{key}.rules", f"{len(tables)} rules, the limit is {MAX_RULES}")
    rules: list[Rule] = []
    for index, table in enumerate(tables):
        where = f"{key}.rules[{index}]"
        for extra in sorted(set(table) - {"name", "approvers", "threshold"}):
            raise r.fail(f"{where}.{extra}", "unknown key")
        name = table.get("name")
        if not isinstance(name, str) or not is_valid_name(name):
            raise r.fail(f"{where}.name", "is missing or not a valid rule name")
        if any(rule.name == name for rule in rules):
            raise r.fail(f"{where}.name", f"rule {name!r} is named twice")
        approvers, threshold = group(table, f"{key}.rules.{name}", "approvers")
        rules.append(Rule(name, approvers, threshold))
    return tuple(rules)


def _break_glass(r: _Reader, entry: dict[str, Any], key: str,
                 expand: Callable[[tuple[str, ...], str], frozenset[str]]) -> BreakGlass | None:
    """`[actions.NAME.break_glass]` (docs/format.md, section 3.2.1), or None where absent."""
    if "break_glass" not in entry:
        return None
    key = f"{key}.break_glass"
    table = _sub(r, entry, "break_glass", {"people", "review_within"}, key)
    for required in ("people", "review_within"):
        if required not in table:
            raise r.fail(f"{key}.{required}", "is missing")
    people = expand(r.strings(table["people"], f"{key}.people"), f"{key}.people")
    if not people:
        raise r.fail(f"{key}.people", "names nobody")
    review_within = r.duration(table["review_within"], f"{key}.review_within")
    if review_within.total_seconds() <= 0:
        raise r.fail(f"{key}.review_within", "must be longer than 0s")
    return BreakGlass(people, review_within)


def _uses(r: _Reader, entry: dict[str, Any], key: str) -> int | None:
    """`uses = N` (docs/format.md, section 3.2.2), or None where absent (unlimited while fresh)."""
    if "uses" not in entry:
        return None
    uses = entry["uses"]
    if not isinstance(uses, int) or isinstance(uses, bool):
        raise r.fail(f"{key}.uses", "must be an integer")
    if not 1 <= uses <= MAX_USES:
        raise r.fail(f"{key}.uses", f"{uses} is outside 1 to {MAX_USES}")
    return uses


def _sub(r: _Reader, parent: dict[str, Any], name: str, allowed: set[str] | None = None, key: str | None = None) -> dict[str, Any]:
    value = parent.get(name, {})
    key = key or name
    if not isinstance(value, dict):
        raise r.fail(key, "must be a table")
    if allowed is not None:
        for extra in sorted(set(value) - allowed):
            raise r.fail(f"{key}.{extra}", "unknown key")
    return value


def render_initial_policy(admin: str, fingerprint: str, email: str | None, layout: int = 2) -> str:
    """The policy `gitjit init` writes: one admin, no actions yet, records in `layout` (model/layout.py)."""
    import tomli_w  # writing only: verification never pays for it

    version = {"gitjit": 1, **({"layout": layout} if layout != 1 else {})}
    head = tomli_w.dumps({**version, "defaults": {"freshness": "24h", "max_ttl": "72h", "clock_skew": "5m"}})
    return head + "\n" + render_person(admin, fingerprint, email) + "\n" + tomli_w.dumps({"admins": {"people": [admin]}}) + _EXAMPLE_ACTION


def render_person(name: str, fingerprint: str, email: str | None) -> str:
    """A `[people.NAME]` table to append: appending keeps the admins' comments."""
    person: dict[str, list[str]] = {"keys": [fingerprint]}
    if email:
        person["emails"] = [email]
    import tomli_w

    return tomli_w.dumps({"people": {name: person}})


_EXAMPLE_ACTION = """
# An action, for example (see the README):
# [actions.deploy-prod]
# approvers = ["@sre", "carol"]
# threshold = 2
# freshness = "1h"
# self_approval = false
# requesters = ["*"]
# tags = ["v*"]
"""
