"""Requests and decisions: parse, validate and render their TOML (docs/format.md, sections 3.4, 3.5).

Parsing takes untrusted bytes and returns a frozen record or raises
`BadInput` naming the file and the problem.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from gitjit.errors import BadInput
from gitjit.model.grammar import FULL_COMMIT_RE, format_time, in_time_range, is_valid_name
from gitjit.model.limits import FIRST_YEAR, LAST_YEAR, MAX_TEXT_BYTES
from gitjit.namedtuple import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

DECISIONS = ("approve", "reject")


class Request(NamedTuple):
    id: str
    action: str
    target: str
    requested_by: str
    reason: str
    created: datetime
    expires: datetime
    break_glass: bool = False  # `break_glass = true`: acted on at once, approvals due after (section 3.4.1)


class Decision(NamedTuple):
    request: str
    request_blob: str
    target: str
    decision: str
    comment: str

    @property
    def approves(self) -> bool:
        return self.decision == "approve"


def request_path(request_id: str) -> str:
    return f"requests/{request_id}.toml"


def decision_path(request_id: str, person: str) -> str:
    return f"approvals/{request_id}/{person}.toml"


def load_toml(data: bytes | str, path: str) -> dict[str, Any]:
    """A TOML document from untrusted bytes; BadInput naming `path` for anything the parser raises.

    Hostile input makes tomllib raise more than TOMLDecodeError: RecursionError
    for arrays nested thousands deep, ValueError for integers beyond Python's
    digit limit, OverflowError for some times. Each is bad input, on one line.
    """
    import tomllib  # here: a push that reads requests from the snapshot never pays for it

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        problem = _too_dotted(text)
        if problem is None:
            document = tomllib.loads(text)
            problem = _out_of_range(document)
            if problem is None:
                return document
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problem = str(exc)
    except RecursionError:
        problem = "nested too deeply"
    except Exception as exc:  # noqa: BLE001 - fail closed: whatever else the parser raises on hostile input
        problem = f"{type(exc).__name__}: {exc}".split(";")[0]  # not Python's advice on raising its limit
    raise BadInput(f"{path}: not valid TOML: {_first_line(problem)}")


MAX_KEY_DOTS = 32  # dots outside strings on one line: a dotted key or table header this deep is refused
_INT64 = 1 << 63
_QUOTES = ('"""', "'''", '"', "'")


def _too_dotted(text: str) -> str | None:
    """Refuses keys dotted deeper than MAX_KEY_DOTS before tomllib sees them.

    tomllib's time and memory grow with the square of a dotted key's depth (a
    16 KiB request of `a.a.a...` took 0.7 s and 270 MiB, a 60 KiB policy more than
    3 GiB). A key or table header sits on one line, so counting the dots outside
    strings and comments on each line bounds every key's depth; a legitimate
    gitjit file has at most a few on a line.
    """
    if text.count(".") <= MAX_KEY_DOTS:
        return None  # the common case: nothing to scan
    dots, line, i, n = 0, 1, 0, len(text)
    quote = ""  # the delimiter of the string we are in, if any
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote[0] == '"':
                i += 2  # an escape in a basic string: the next character is never a delimiter
                continue
            if text.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
            line += c == "\n"
            i += 1
            continue
        if c == "\n":
            dots, line = 0, line + 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c in "\"'":
            quote = next(q for q in _QUOTES if text.startswith(q, i))
            i += len(quote)
            continue
        elif c == ".":
            dots += 1
            if dots > MAX_KEY_DOTS:
                return f"line {line} has more than {MAX_KEY_DOTS} dots outside strings (a key nested too deeply)"
        i += 1
    return None


def _out_of_range(document: object) -> str | None:
    """TOML integers are 64-bit: a larger one (hex of thousands of digits parses) is refused,
    so that no message ever has to print it (Python refuses to print an int that long)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif type(value) is int and not -_INT64 <= value < _INT64:
            return "an integer beyond 64 bits"
    return None


def _first_line(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= 200 else line[:200] + "..."


def _load(data: bytes, path: str, allowed: set[str]) -> dict[str, Any]:
    doc = load_toml(data, path)
    if type(doc.get("gitjit")) is not int or doc["gitjit"] != 1:  # 1.0 and true == 1 in Python
        raise BadInput(f"{path}: gitjit: format version must be 1, found {doc.get('gitjit')!r}")
    for extra in sorted(set(doc) - allowed - {"gitjit"}):
        raise BadInput(f"{path}: {extra}: unknown key")
    return doc


def _string(doc: dict[str, Any], key: str, path: str, required: bool = True) -> str:
    value = doc.get(key, None if required else "")
    if not isinstance(value, str):
        raise BadInput(f"{path}: {key}: {'is missing' if value is None else 'must be a string'}")
    return value


def _text(doc: dict[str, Any], key: str, path: str) -> str:
    """A free-text field (`reason`, `comment`): optional, at most MAX_TEXT_BYTES of UTF-8."""
    value = _string(doc, key, path, required=False)
    problem = text_size_problem(value, key)
    if problem:
        raise BadInput(f"{path}: {problem}")
    return value


def text_size_problem(value: str, what: str) -> str | None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        return f"{what} is {size} bytes, the limit is {MAX_TEXT_BYTES}"
    return None


def _commit_id(doc: dict[str, Any], key: str, path: str) -> str:
    value = _string(doc, key, path)
    if not FULL_COMMIT_RE.match(value):
        raise BadInput(f"{path}: {key}: {value!r} is not a full commit id (40 lower-case hex digits)")
    return value


def _time(doc: dict[str, Any], key: str, path: str) -> datetime:
    value = doc.get(key)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise BadInput(f"{path}: {key}: must be a TOML date-time with a zone, like 2026-11-25T23:00:00Z")
    try:
        value = value.astimezone(UTC)  # 9999-12-31T23:59:59-23:59 overflows here
    except (OverflowError, ValueError):
        value = None
    if value is None or not in_time_range(value):
        raise BadInput(f"{path}: {key}: {doc[key]} is outside years {FIRST_YEAR} to {LAST_YEAR}")
    return value


def parse_request(data: bytes, path: str) -> Request:
    doc = _load(data, path, {"id", "action", "target", "requested_by", "reason", "created", "expires", "break_glass"})
    request_id = _string(doc, "id", path)
    if not is_valid_name(request_id):
        raise BadInput(f"{path}: id: {request_id!r} is not a valid name")
    if path.rsplit("/", 1)[-1] != f"{request_id}.toml":  # the layout placed the path (model/layout.py)
        raise BadInput(f"{path}: id: {request_id!r} does not match the file name")
    action = _string(doc, "action", path)
    if not is_valid_name(action):
        raise BadInput(f"{path}: action: {action!r} is not a valid name")
    created, expires = _time(doc, "created", path), _time(doc, "expires", path)
    if not created < expires:
        raise BadInput(f"{path}: expires: must be after created")
    break_glass = doc.get("break_glass", False)
    if not isinstance(break_glass, bool):
        raise BadInput(f"{path}: break_glass: must be true or false")
    return Request(
        id=request_id,
        action=action,
        target=_commit_id(doc, "target", path),
        requested_by=_string(doc, "requested_by", path, required=False),
        reason=_text(doc, "reason", path),
        created=created,
        expires=expires,
        break_glass=break_glass,
    )


def parse_decision(data: bytes, path: str) -> Decision:
    doc = _load(data, path, {"request", "request_blob", "target", "decision", "comment"})
    decision = _string(doc, "decision", path)
    if decision not in DECISIONS:
        raise BadInput(f"{path}: decision: must be 'approve' or 'reject', found {decision!r}")
    blob = _string(doc, "request_blob", path)
    if not FULL_COMMIT_RE.match(blob):
        raise BadInput(f"{path}: request_blob: {blob!r} is not a full blob id")
    return Decision(
        request=_string(doc, "request", path),
        request_blob=blob,
        target=_commit_id(doc, "target", path),
        decision=decision,
        comment=_text(doc, "comment", path),
    )


def _render(fields: dict[str, Any]) -> bytes:
    """TOML in the layout of the format's examples: times as 2026-11-25T23:00:00Z."""
    lines = ["gitjit = 1"]
    for key, value in fields.items():
        if isinstance(value, datetime):
            lines.append(f"{key} = {format_time(value)}")
        else:
            import tomli_w  # writing only: verification never pays for it

            lines.append(tomli_w.dumps({key: value}).rstrip("\n"))
    return ("\n".join(lines) + "\n").encode()


def render_request(request: Request) -> bytes:
    fields = {
        "id": request.id,
        "action": request.action,
        "target": request.target,
        "requested_by": request.requested_by,
        "reason": request.reason,
        "created": request.created,
        "expires": request.expires,
    }
    if request.break_glass:  # written only when true: an ordinary request reads as it always did
        fields["break_glass"] = True
    return _render(fields)


def render_decision(decision: Decision) -> bytes:
    return _render(
        {
            "request": decision.request,
            "request_blob": decision.request_blob,
            "target": decision.target,
            "decision": decision.decision,
            "comment": decision.comment,
        }
    )


# -- use records (docs/format.md, section 3.6) ---------------------------------------

USES_DIR = "uses"
_USE_NUMBER_RE = re.compile(r"^[1-9][0-9]{0,6}\Z")
_TAG_NAME_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/+@-]{0,254}\Z")


class Use(NamedTuple):
    """One use of a single-use request, recorded (and signed) before it happens."""

    request: str
    request_blob: str
    target: str
    use: int  # 1 for the first use; equals the file name
    tag: str = ""  # the protected tag this use is for, if any (a name, without refs/tags/)


def use_path(request_id: str, number: int) -> str:
    return f"{USES_DIR}/{request_id}/{number}.toml"


def use_number(file_name: str) -> int | None:
    """The use number a file name `<n>.toml` gives, or None (no leading zeros, no signs)."""
    stem = file_name.removesuffix(".toml")
    if stem == file_name or not _USE_NUMBER_RE.match(stem):
        return None
    return int(stem)


def is_tag_name(name: str) -> bool:
    return bool(_TAG_NAME_RE.match(name)) and ".." not in name and not name.endswith((".lock", "/", "."))


def parse_use(data: bytes, path: str) -> Use:
    doc = _load(data, path, {"request", "request_blob", "target", "use", "tag"})
    blob = _string(doc, "request_blob", path)
    if not FULL_COMMIT_RE.match(blob):
        raise BadInput(f"{path}: request_blob: {blob!r} is not a full blob id")
    number = doc.get("use")
    if type(number) is not int or not 1 <= number <= 9_999_999:
        raise BadInput(f"{path}: use: must be a whole number from 1, found {number!r}")
    tag = _string(doc, "tag", path, required=False)
    if tag and not is_tag_name(tag):
        raise BadInput(f"{path}: tag: {tag[:80]!r} is not a tag name")
    return Use(
        request=_string(doc, "request", path),
        request_blob=blob,
        target=_commit_id(doc, "target", path),
        use=number,
        tag=tag,
    )


def render_use(use: Use) -> bytes:
    fields: dict[str, Any] = {"request": use.request, "request_blob": use.request_blob, "target": use.target, "use": use.use}
    if use.tag:
        fields["tag"] = use.tag
    return _render(fields)
