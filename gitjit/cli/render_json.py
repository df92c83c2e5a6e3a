"""Every `--json` output, built from the values the core returns (fields: docs/json.md).

`plain` turns a value into JSON generically: the fields of a named tuple or
a dataclass in order, times as `2026-11-25T23:00:00Z`, durations as `1h`,
tuples and sets as lists. A field added to a verdict therefore shows up in
the JSON without a line here. What is not a plain field is said once per
type in `_SHAPES`: a renamed field, a derived one (`approved`), an empty
reason shown as null.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from gitjit.model.grammar import format_duration, format_time
from gitjit.namedtuple import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


def plain(value: object) -> Any:
    """`value` as JSON data (a dict, list, str, number, bool or None): see the module docstring."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    fields = _fields(value)
    if fields is not None:
        shape = _SHAPES.get(type(value).__name__)
        return shape(value, fields) if shape else {k: plain(v) for k, v in fields.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _fields(value: object) -> dict | None:
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return dict(zip(value._fields, value, strict=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if not f.name.startswith("_")}
    return None


def _data(fields: dict, rename: dict[str, str] | None = None, null_if_empty: tuple[str, ...] = ()) -> dict:
    out = {}
    for name, value in fields.items():
        out[(rename or {}).get(name, name)] = None if name in null_if_empty and not value else plain(value)
    return out


def _decision(v, fields: dict) -> dict:
    return _data(fields, null_if_empty=("reason", "code"))


_ONLY_WHERE_THEY_APPLY = ("break_glass", "uses", "uses_left", "use_records")


def _request(v, fields: dict) -> dict:
    data = {**_data({k: x for k, x in fields.items() if k not in _ONLY_WHERE_THEY_APPLY},
                    rename={"reason_text": "reason"}, null_if_empty=("unapprovable",)),
            "approved": v.approved}
    if "unapprovable" in fields:  # approval rules (docs/json.md): whether any rule set can still hold
        data["approvable"] = not fields["unapprovable"]
    # break-glass and single use (docs/json.md): present only where they apply, so a
    # request of an action without them prints as it always did
    if v.break_glass is not None:
        data["break_glass"] = plain(v.break_glass)
    if v.uses is not None or v.use_records:
        data.update(uses=v.uses, uses_left=v.uses_left, use_records=plain(v.use_records))
    return data


def _break_glass(b, fields: dict) -> dict:
    return {**_data(fields), "late": bool(b.reviewed_at and b.reviewed_at > b.review_due)}


def _use(u, fields: dict) -> dict:
    return _data(fields, rename={"number": "use"}, null_if_empty=("tag", "reason", "code"))


def _rule(t, fields: dict) -> dict:
    """A rule's tally: how many it has and needs, whether it holds or still can, who can still sign."""
    return {"name": t.name, "have": len(t.approvals), "need": t.threshold, "holds": t.holds,
            "approvals": plain(t.approvals), "candidates": plain(t.candidates), "possible": t.possible,
            "opens": plain(t.opens)}


def _verdict(v, fields: dict) -> dict:
    return {**_data(fields), "approved": v.approved}


def _decision_audit(d, fields: dict) -> dict:
    return {**plain(d.verdict), **_data({k: v for k, v in fields.items() if k != "verdict"})}


def _request_audit(r, fields: dict) -> dict:
    return {**plain(r.verdict), **_data({k: v for k, v in fields.items() if k != "verdict"})}


def _not_trusted(n, fields: dict) -> dict:
    return _data(fields, rename={"unchecked": "unchecked_commits"})


def _audit(report, fields: dict) -> dict:
    from gitjit.commands.audit import SCHEMA

    data = _data(fields)
    return {
        "schema": SCHEMA, **{k: data[k] for k in ("at", "since", "ref", "tip", "root", "root_pinned")},
        "trusted": report.trusted, "not_trusted": data["not_trusted"], "ok": report.ok,
        "counts": {
            "commits": report.commits,
            "policy_changes": len(report.policy_changes),
            "requests": len(report.requests),
            "decisions": sum(len(r.decisions) for r in report.requests),
            "refusals": len(report.refusals),
        },
        **{k: v for k, v in data.items() if k not in ("at", "since", "ref", "tip", "root", "root_pinned",
                                                      "not_trusted", "commits")},
        "break_glass_overdue": [r.verdict.id for r in report.overdue],
    }


_SHAPES = {
    "DecisionVerdict": _decision,
    "RequestVerdict": _request,
    "RuleTally": _rule,
    "BreakGlassReview": _break_glass,
    "UseVerdict": _use,
    "Verdict": _verdict,
    "DecisionAudit": _decision_audit,
    "RequestAudit": _request_audit,
    "NotTrustedAt": _not_trusted,
    "AuditReport": _audit,
}


# -- the outputs ------------------------------------------------------------------

def status(at: datetime, verdicts: list) -> dict:
    """`gitjit status --json`."""
    return {"at": format_time(at), "requests": [plain(v) for v in verdicts]}


def verdict(value) -> dict:
    """`gitjit verify --json`."""
    return plain(value)


def tag_verdicts(tag: str, target: str, approved: bool, verdicts: list) -> dict:
    """`gitjit verify-tag --json`: one shape whatever the number of actions the tag matches."""
    return {"tag": tag, "target": target, "approved": approved, "actions": [plain(v) for v in verdicts]}


def audit(report) -> dict:
    """`gitjit audit --json`."""
    return plain(report)
