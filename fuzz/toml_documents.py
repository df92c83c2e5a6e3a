"""Hostile TOML for the request, decision and policy readers (documented error: BadInput).

Documents start from the shape each reader expects, so inputs get past
the first checks, then one or more values are replaced by hostile ones:
deep nesting (arrays, inline tables, dotted keys, table headers up to
100,000 deep), huge integers, date-times at the calendar's edges with
every offset, huge strings and escapes, and invalid UTF-8 spliced into
the bytes. Hypothesis keeps its own inputs small, so the big ones are
built from small drawn numbers (a depth, a digit count).
"""

from __future__ import annotations

from hypothesis import strategies as st

from .harness import Target

# Mostly depths a parser must take in its stride, around Python's recursion
# limit, and now and then an extreme one: tomllib's cost grows with the square
# of a dotted key's depth, and each such input takes the whole `slow` limit.
DEPTHS = st.sampled_from([1, 2, 3, 10, 50, 100, 500, 990, 999, 1000, 1001, 2000, 5000] * 4 + [20_000, 100_000])


@st.composite
def nested(draw) -> str:
    depth = draw(DEPTHS)
    kind = draw(st.sampled_from(["array", "table", "mixed", "unclosed"]))
    if kind == "array":
        return "[" * depth + "1" + "]" * depth
    if kind == "table":
        return "{a = " * depth + "1" + "}" * depth
    if kind == "mixed":
        return "[{a = " * depth + "1" + "}]" * depth
    return "[" * depth


@st.composite
def huge_integers(draw) -> str:
    digits = draw(st.one_of(st.integers(1, 30), st.sampled_from([4299, 4300, 4301, 10_000, 100_000])))
    form = draw(st.sampled_from(["dec", "neg", "hex", "oct", "bin", "underscored"]))
    if form == "hex":
        return "0x" + "f" * digits
    if form == "oct":
        return "0o" + "7" * digits
    if form == "bin":
        return "0b" + "1" * digits
    if form == "underscored":
        return "1" + "_1" * digits
    return ("-" if form == "neg" else "") + "9" * digits


floats = st.sampled_from(["1e400", "-1e400", "inf", "-inf", "nan", "+nan", "1e-400", "1." + "0" * 5000,
                          "0.1e99999999999999999999"])


zones = st.one_of(
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+23:59", "-23:59", "+24:00", "+99:99", "+0000"]),
    st.builds(lambda sign, h, m: f"{sign}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 23),
              st.integers(0, 59)),
)
# The calendar's first and last moments, with an offset, move past its ends once made UTC.
calendar_edges = st.builds(
    lambda moment, zone: moment + zone,
    st.sampled_from(["0001-01-01T00:00:00", "9999-12-31T23:59:59", "1970-01-01T00:00:00", "2000-02-29T12:00:00",
                     "8999-12-31T23:59:59", "9000-01-01T00:00:00"]),
    zones,
)


@st.composite
def calendar(draw) -> str:
    year = draw(st.one_of(st.sampled_from([0, 1, 1969, 1970, 2026, 8999, 9000, 9999]), st.integers(0, 9999)))
    month = draw(st.one_of(st.integers(1, 12), st.sampled_from([0, 13])))
    day = draw(st.one_of(st.integers(1, 28), st.sampled_from([0, 29, 30, 31, 32])))
    hour, minute = draw(st.integers(0, 24)), draw(st.integers(0, 60))
    second = draw(st.sampled_from(["00", "59", "60", "61"]))
    fraction = draw(st.sampled_from(["", ".5", ".999999", ".9999999", "." + "9" * 5000]))
    zone = draw(zones)
    separator = draw(st.sampled_from(["T", "t", " "]))
    form = draw(st.sampled_from(["datetime", "datetime", "date", "time"]))
    date = f"{year:04d}-{month:02d}-{day:02d}"
    time = f"{hour:02d}:{minute:02d}:{second}{fraction}"
    return {"datetime": date + separator + time + zone, "date": date, "time": time}[form]


@st.composite
def huge_strings(draw) -> str:
    size = draw(st.sampled_from([0, 1, 10, 100, 4096, 65_536] * 3 + [1_000_000]))
    form = draw(st.sampled_from(["basic", "literal", "multiline", "escapes"]))
    if form == "literal":
        return "'" + "x" * size + "'"
    if form == "multiline":
        return '"""' + "line\n" * (size // 5) + '"""'
    if form == "escapes":
        return '"' + "\\u00e9" * (size // 6) + '"'
    return '"' + "x" * size + '"'


odd_strings = st.sampled_from(['"\\uD800"', '"\\UFFFFFFFF"', '"\\U0010FFFF"', '"\\x41"', '"\\0"', '"\x00"',
                               '"a\nb"', '"""\\\n"""', "'''a'''", '"\\"', '"\u202e"'])

datetimes = st.one_of(calendar(), calendar_edges)
hostile_values = st.one_of(nested(), huge_integers(), floats, datetimes, huge_strings(), odd_strings,
                           st.sampled_from(["true", "1", "1.0", "[]", "{}", '""', "[1, 'a']"]))


@st.composite
def deep_keys(draw) -> str:
    """A dotted key or table header many levels deep."""
    depth = draw(DEPTHS)
    if draw(st.booleans()):
        return "a." * depth + "b = 1"
    return "[" + ".".join(["t"] * depth) + "]\nx = 1"


deep_key_lines = deep_keys()


def _line(key: str, value: str) -> str:
    return f"{key} = {value}"


TIMES = ["2026-11-25T23:00:00Z", "2026-11-26T01:00:00Z", "2026-11-25T23:00:00+01:00", "2026-11-25T23:00:00",
         "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
COMMIT = ['"9b23d2bd6f98d5388fc42f61f0c3ee42c6a8f3fa"', '"9B23D2BD6F98D5388FC42F61F0C3EE42C6A8F3FA"', '""']
REQUEST_FIELDS = {
    "id": ['"deploy-prod-1"'] * 6 + ['"Deploy"', '"a..b"', '"' + "a" * 64 + '"'],
    "action": ['"deploy-prod"', '"deploy prod"'],
    "target": COMMIT,
    "requested_by": ['"Carol <carol@example.com>"'],
    "reason": ['"Release 1.4.2"', '""'],
    "created": TIMES,
    "expires": TIMES,
}
DECISION_FIELDS = {
    "request": ['"deploy-prod-1"'],
    "request_blob": COMMIT,
    "target": COMMIT,
    "decision": ['"approve"', '"reject"', '"APPROVE"'],
    "comment": ['"LGTM"', '""'],
}
DURATIONS = ['"24h"', '"1h"', '"999999999d"', '"0s"', '"5m"', '"-1h"', '"1h\\n"']
FPR = '"00B18F74E569CDA5FB95D869AE92A75EFF38033E"'
tables_text = {
    "defaults": ["[defaults]\nfreshness = " + d + "\nmax_ttl = " + d + "\nclock_skew = " + d for d in DURATIONS],
    "people": ["[people.alice]\nkeys = [" + FPR + "]\nemails = [\"alice@example.com\"]",
               "[people.alice]\nkeys = [" + FPR + "]\n[people.bob]\nkeys = [" + FPR + "]",
               "[people.Alice]\nkeys = []", "[people]\nalice = 1", "[people.alice]\nkeys = [\"00 b1\"]"],
    "groups": ["[groups]\nsre = [\"alice\"]", "[groups]\nsre = [\"nobody\"]", "[groups]\nsre = \"alice\""],
    "admins": ["[admins]\npeople = [\"alice\"]", "[admins]\npeople = [\"@sre\"]", "[admins]\npeople = []",
               "[admins]\npeople = [\"@\"]"],
    "actions": ["[actions.deploy-prod]\napprovers = [\"alice\"]\nthreshold = " + t + "\ntags = [\"v*\"]"
                for t in ["1", "0", "2", "true", "1.0", "9" * 30, "-9" + "9" * 30]]
               + ["[actions.deploy-prod]\napprovers = [\"@sre\"]\nfreshness = " + d for d in DURATIONS]
               + ["[actions.x]\napprovers = [\"alice\"]\nself_approval = 1\nrequesters = [\"*\", 1]",
                  "[[actions.x]]\napprovers = []"],
}


# Weighted towards documents that pass the first checks, so that the later ones
# (times, ids, bindings) see hostile values too. one_of picks its branches evenly.
_version_one = st.just("gitjit = 1")
versions = st.one_of(_version_one, _version_one, _version_one, _version_one,
                     st.sampled_from(["gitjit = 1.0", "gitjit = true", ""]),
                     huge_integers().map(lambda n: "gitjit = " + n))
field_choices = st.sampled_from(["plausible"] * 4 + ["hostile", "absent"])
odd_keys = st.text(max_size=8)
endings = st.sampled_from(["\n", "", "\r\n"])
bad_bytes = st.sampled_from([b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", b"\xef\xbb\xbf", b"\xf4\x90\x80\x80",
                             b"\xe2\x82"])


def documents(fields: dict[str, list[str]], tables: tuple[str, ...] = ()) -> st.SearchStrategy[bytes]:
    """Documents with `fields` (name -> plausible values), some made hostile, as UTF-8 bytes
    with now and then an invalid sequence spliced in (lone continuation, overlong, surrogate, BOM)."""
    plausible = {key: st.sampled_from(values) for key, values in fields.items()}
    table_texts = [st.sampled_from(tables_text[table]) for table in tables]

    @st.composite
    def build(draw) -> bytes:
        lines = [draw(versions)]
        for key, values in plausible.items():
            choice = draw(field_choices)
            if choice == "plausible":
                lines.append(_line(key, draw(values)))
            elif choice == "hostile":
                lines.append(_line(key, draw(hostile_values)))
        for texts in table_texts:
            if draw(st.booleans()):
                lines.append(draw(texts))
        if draw(st.sampled_from(range(20))) == 0:
            lines.insert(draw(st.integers(0, len(lines))), draw(deep_key_lines))
        if draw(st.sampled_from(range(10))) == 0:
            lines.insert(draw(st.integers(0, len(lines))), _line(draw(odd_keys), draw(hostile_values)))
        data = ("\n".join(lines) + draw(endings)).encode("utf-8", "surrogatepass")
        if draw(st.sampled_from(range(8))) == 0:
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(bad_bytes) + data[at:]
        return data

    return build()


_request_path = st.just("requests/deploy-prod-1.toml")
request_paths = st.one_of(_request_path, _request_path, _request_path,
                          st.sampled_from(["requests/Deploy.toml", "requests/.toml", ""]), st.text(max_size=30))
_decision_path = st.just("approvals/deploy-prod-1/bob.toml")
decision_paths = st.one_of(_decision_path, _decision_path, _decision_path, st.text(max_size=30))
requests = st.tuples(documents(REQUEST_FIELDS), request_paths)
decisions = st.tuples(documents(DECISION_FIELDS), decision_paths)
policies = documents({}, tuple(tables_text))


def _load_request():
    from gitjit.errors import BadInput
    from gitjit.model.records import parse_request

    return (lambda args: parse_request(*args)), (BadInput,)


def _load_decision():
    from gitjit.errors import BadInput
    from gitjit.model.records import parse_decision

    return (lambda args: parse_decision(*args)), (BadInput,)


def _load_policy():
    from gitjit.errors import BadInput, BadPolicy
    from gitjit.model.policy import load_policy_document, policy_from_document

    def load(data: bytes) -> object:
        return policy_from_document(load_policy_document(data, "policy.toml"), "policy.toml")

    # BadPolicy is the branch's own form of a bad policy (a NotTrusted, not a BadInput)
    return load, (BadInput, BadPolicy)


TARGETS = [
    Target("parse_request", 20_000, requests, _load_request),
    Target("parse_decision", 15_000, decisions, _load_decision),
    Target("policy", 20_000, policies, _load_policy),
]
