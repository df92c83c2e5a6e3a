"""Requests and decisions: their TOML, parsed and rendered (docs/format.md, sections 3.4, 3.5)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitjit.errors import BadInput
from gitjit.model.records import (
    Decision,
    Request,
    decision_path,
    parse_decision,
    parse_request,
    render_decision,
    render_request,
    request_path,
)

TARGET = "9b23d2bd6f98d5388fc42f61f0c3ee42c6a8f3fa"
BLOB = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
CREATED = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)

SPEC_REQUEST = b"""gitjit = 1
id = "deploy-prod-20261125-3fa9c1"      # equals the file name
action = "deploy-prod"                  # an action of the policy
target = "9b23d2bd6f98d5388fc42f61f0c3ee42c6a8f3fa"   # full commit id
requested_by = "Carol <carol@example.com>"
reason = "Release 1.4.2"
created = 2026-11-25T23:00:00Z
expires = 2026-11-26T01:00:00Z          # created < expires <= created + max_ttl
"""

SPEC_DECISION = b"""gitjit = 1
request = "deploy-prod-20261125-3fa9c1"
request_blob = "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"   # binds to the exact request
target = "9b23d2bd6f98d5388fc42f61f0c3ee42c6a8f3fa"
decision = "approve"                               # or "reject"
comment = "LGTM"
"""

REQ_PATH = "requests/deploy-prod-20261125-3fa9c1.toml"
DEC_PATH = "approvals/deploy-prod-20261125-3fa9c1/alice.toml"


def test_paths():
    assert request_path("r1") == "requests/r1.toml"
    assert decision_path("r1", "bob") == "approvals/r1/bob.toml"


def test_spec_request_parses():
    r = parse_request(SPEC_REQUEST, REQ_PATH)
    assert r == Request(
        id="deploy-prod-20261125-3fa9c1",
        action="deploy-prod",
        target=TARGET,
        requested_by="Carol <carol@example.com>",
        reason="Release 1.4.2",
        created=CREATED,
        expires=CREATED + timedelta(hours=2),
    )


def test_spec_decision_parses():
    d = parse_decision(SPEC_DECISION, DEC_PATH)
    assert d == Decision("deploy-prod-20261125-3fa9c1", BLOB, TARGET, "approve", "LGTM")
    assert d.approves
    assert not parse_decision(SPEC_DECISION.replace(b'"approve"', b'"reject"'), DEC_PATH).approves


def test_times_in_other_zones_become_utc():
    data = SPEC_REQUEST.replace(b"created = 2026-11-25T23:00:00Z", b"created = 2026-11-26T00:30:00+01:30")
    r = parse_request(data, REQ_PATH)
    assert r.created == CREATED and r.created.utcoffset() == timedelta(0)


def test_optional_fields_default_to_empty():
    r = parse_request(SPEC_REQUEST.replace(b'requested_by = "Carol <carol@example.com>"\n', b"")
                      .replace(b'reason = "Release 1.4.2"\n', b""), REQ_PATH)
    assert (r.requested_by, r.reason) == ("", "")
    assert parse_decision(SPEC_DECISION.replace(b'comment = "LGTM"\n', b""), DEC_PATH).comment == ""


def _replace(data: bytes, line_start: bytes, new_line: bytes | None) -> bytes:
    lines = data.split(b"\n")
    out = [(new_line if l.startswith(line_start) else l) for l in lines]
    return b"\n".join(l for l in out if l is not None)


@pytest.mark.parametrize(
    "start, new, problem",
    [
        (b"gitjit", None, "gitjit: format version must be 1, found None"),
        (b"gitjit", b"gitjit = 2", "gitjit: format version must be 1, found 2"),
        (b"gitjit", b"gitjit = true", "gitjit: format version must be 1"),
        (b"id", None, "id: is missing"),
        (b"id", b'id = "deploy-prod-20261125-000000"', "does not match the file name"),
        (b"id", b'id = "Deploy"', "id: 'Deploy' is not a valid name"),
        (b"id", b"id = 7", "id: must be a string"),
        (b"action", None, "action: is missing"),
        (b"action", b'action = "../x"', "action: '../x' is not a valid name"),
        (b"target", None, "target: is missing"),
        (b"target", b'target = "9b23d2b"', "target: '9b23d2b' is not a full commit id"),
        (b"target", b'target = "' + TARGET.upper().encode() + b'"', "is not a full commit id"),
        (b"target", b'target = "HEAD"', "is not a full commit id"),
        (b"created", None, "created: must be a TOML date-time with a zone"),
        (b"created", b'created = "2026-11-25T23:00:00Z"', "created: must be a TOML date-time with a zone"),
        (b"created", b"created = 2026-11-25T23:00:00", "created: must be a TOML date-time with a zone"),
        (b"created", b"created = 2026-11-25", "created: must be a TOML date-time with a zone"),
        (b"expires", b"expires = 2026-11-25T23:00:00Z", "expires: must be after created"),
        (b"expires", b"expires = 2026-11-25T22:00:00Z", "expires: must be after created"),
        (b"reason", b"reason = 1", "reason: must be a string"),
        (b"reason", b'reason = "x"\napproved = true', "approved: unknown key"),
    ],
)
def test_request_refusals_name_file_key_and_problem(start, new, problem):
    with pytest.raises(BadInput) as info:
        parse_request(_replace(SPEC_REQUEST, start, new), REQ_PATH)
    message = str(info.value)
    assert message.startswith(REQ_PATH + ": ") and problem in message, message


@pytest.mark.parametrize(
    "start, new, problem",
    [
        (b"gitjit", b"gitjit = 1.0", "gitjit: format version must be 1"),
        (b"decision", b'decision = "approved"', "decision: must be 'approve' or 'reject', found 'approved'"),
        (b"decision", b'decision = "APPROVE"', "decision: must be 'approve' or 'reject'"),
        (b"decision", None, "decision: is missing"),
        (b"request_blob", None, "request_blob: is missing"),
        (b"request_blob", b'request_blob = "3b18e51"', "request_blob: '3b18e51' is not a full blob id"),
        (b"target", b'target = "main"', "target: 'main' is not a full commit id"),
        (b"request =", None, "request: is missing"),
        (b"comment", b"comment = ['a']", "comment: must be a string"),
        (b"comment", b'comment = ""\nsignature = "x"', "signature: unknown key"),
    ],
)
def test_decision_refusals_name_file_key_and_problem(start, new, problem):
    with pytest.raises(BadInput) as info:
        parse_decision(_replace(SPEC_DECISION, start, new), DEC_PATH)
    message = str(info.value)
    assert message.startswith(DEC_PATH + ": ") and problem in message, message


@pytest.mark.parametrize("data", [b"gitjit = 1\nid = ", b"\xff\xfe", b"gitjit = 1\ngitjit = 1\n", b"<xml/>"])
def test_not_toml(data):
    for parse, path in ((parse_request, REQ_PATH), (parse_decision, DEC_PATH)):
        with pytest.raises(BadInput, match=r"^" + path + ": not valid TOML"):
            parse(data, path)


# -- rendering: the format's layout, and a faithful round trip ---------------------


def test_rendered_request_has_the_spec_layout():
    r = parse_request(SPEC_REQUEST, REQ_PATH)
    text = render_request(r).decode()
    assert text.splitlines() == [
        "gitjit = 1",
        'id = "deploy-prod-20261125-3fa9c1"',
        'action = "deploy-prod"',
        f'target = "{TARGET}"',
        'requested_by = "Carol <carol@example.com>"',
        'reason = "Release 1.4.2"',
        "created = 2026-11-25T23:00:00Z",
        "expires = 2026-11-26T01:00:00Z",
    ]


def test_rendered_decision_has_the_spec_layout():
    d = parse_decision(SPEC_DECISION, DEC_PATH)
    assert render_decision(d).decode().splitlines() == [
        "gitjit = 1",
        'request = "deploy-prod-20261125-3fa9c1"',
        f'request_blob = "{BLOB}"',
        f'target = "{TARGET}"',
        'decision = "approve"',
        'comment = "LGTM"',
    ]


free_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
hex40 = st.text(alphabet="0123456789abcdef", min_size=40, max_size=40)
names = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,40}\Z").filter(lambda n: ".." not in n)
times = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(8999, 1, 1),
                     timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=0))


@given(names, names, hex40, free_text, free_text, times, st.integers(min_value=1, max_value=10**8))
@example("r", "a", "0" * 40, 'Carol "the boss" <c@x>', 'line 1\nline 2\r\n\ttab \\ """ \'\'\' # not a comment', CREATED, 1)
@example("r", "a", "0" * 40, "\x00\x01\x7f\x1b[31m", "é日本語🙂\u2028\u200b\ufeff", CREATED, 1)
def test_request_round_trip(rid, action, target, requested_by, reason, created, lifetime):
    record = Request(rid, action, target, requested_by, reason, created, created + timedelta(seconds=lifetime))
    data = render_request(record)
    assert parse_request(data, request_path(rid)) == record
    assert tomllib.loads(data.decode())["reason"] == reason  # any TOML reader agrees


@given(names, hex40, hex40, st.sampled_from(["approve", "reject"]), free_text)
@example("r", "0" * 40, "1" * 40, "approve", 'LGTM "quoted"\nsecond line\n\\n not a newline')
def test_decision_round_trip(rid, blob, target, decision, comment):
    record = Decision(rid, blob, target, decision, comment)
    data = render_decision(record)
    assert parse_decision(data, decision_path(rid, "bob")) == record
    assert data.startswith(b"gitjit = 1\n")


@given(st.binary(max_size=300))
def test_parsers_raise_only_bad_input_on_arbitrary_bytes(data):
    for parse, path in ((parse_request, REQ_PATH), (parse_decision, DEC_PATH)):
        try:
            parse(data, path)
        except BadInput:
            pass


@given(st.dictionaries(st.sampled_from(["gitjit", "id", "action", "target", "requested_by", "reason", "created",
                                        "expires", "request", "request_blob", "decision", "comment"]),
                       st.one_of(st.integers(), st.text(max_size=50), st.booleans(), times, hex40,
                                 st.lists(st.integers(), max_size=2)), max_size=9))
def test_parsers_raise_only_bad_input_on_arbitrary_documents(doc):
    import tomli_w

    data = tomli_w.dumps(doc).encode()
    for parse, path in ((parse_request, REQ_PATH), (parse_decision, DEC_PATH)):
        try:
            parse(data, path)
        except BadInput:
            pass
