"""An event as the body an endpoint receives: `json` (the event itself) or `slack`.

`slack` is an incoming-webhook message: `text` carries the whole message
(Mattermost and Rocket.Chat read only that) and `blocks` lay it out for
Slack. Everything that comes from the branch (reason, requester, comment)
is untrusted text: control and bidi-override characters are dropped, `&`,
`<` and `>` are escaped as Slack's mrkdwn requires (so no `<!channel>` or
link can be smuggled in), `@` gets a zero-width space after it (no
`@channel` on Mattermost or Rocket.Chat), and long text is cut to fit
Slack's limits, saying how much was left out.
"""

from __future__ import annotations

import json
import re

CHAT_REASON_LIMIT = 1000  # characters of a reason shown in a chat message
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SECTION_LIMIT = 3000  # Slack: a section's text


def render(event: dict, fmt: str) -> bytes:
    if fmt == "slack":
        return _dumps(slack(event))
    return _dumps(event)


def _dumps(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def escape(text: str, limit: int | None = None, one_line: bool = False) -> str:
    """Untrusted text made inert for Slack-style mrkdwn."""
    text = _UNSAFE.sub("", text.replace("\t", " "))
    if one_line:
        text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("@", "@\u200b")


_HEADLINES = {
    "request": "New request",
    "approve": "Approval",
    "reject": "Veto",
    "approved": "Approved",
    "rejected": "Rejected",
    "expired": "Expired",
}


def headline(event: dict) -> str:
    request = event["request"]
    what = _HEADLINES.get(event["event"], escape(event["event"], 40, True))
    repo = escape(event.get("repository") or "", 100, True)
    where = f"[{repo}] " if repo else ""
    by = ""
    if event.get("decision"):
        decision = event["decision"]
        by = f" by {escape(decision['person'], 64, True)}"
        if not decision["counts"]:
            by += f" (does not count: {escape(decision['reason'] or '', 200, True)})"
    return (f"{where}{what}{by}: `{escape(request['action'], 64, True)}` on `{request['target'][:12]}`, "
            f"request `{escape(request['id'], 64, True)}`")


def needed(event: dict) -> str:
    if event["state"] != "pending":
        approvals = sorted({p for rule in event.get("rules", []) for p in rule["approvals"]})
        by = f" (approvals: {', '.join(escape(p, 64, True) for p in approvals)})" if approvals else ""
        return f"State: {escape(event['state'], 40, True)}{by}"
    parts = []
    for rule in event.get("rules", []):
        who = ", ".join(escape(c, 64, True) for c in rule["candidates"]) or "nobody left who may approve"
        parts.append(f"{rule['have']} of {rule['need']} approvals; can approve: {who}")
    return "Pending: " + ("; ".join(parts) if parts else "not approved")


def commands_line(event: dict) -> str:
    commands = event["commands"]
    return f"Approve: `{commands['approve']}`  Veto: `{commands['reject']}`"


def slack(event: dict) -> dict:
    request = event["request"]
    reason = escape(request["reason"], CHAT_REASON_LIMIT) or "(no reason given)"
    requester = escape(request["requested_by"], 200, True) or ", ".join(request["requesters"]) or "unknown"
    comment = ""
    if event.get("decision") and event["decision"]["comment"]:
        comment = escape(event["decision"]["comment"], CHAT_REASON_LIMIT)
    lines = [headline(event), f"Requested by: {requester}", f"Reason: {reason}"]
    if comment:
        lines.append(f"Comment: {comment}")
    pending = event["state"] == "pending"
    lines.append(needed(event))
    if pending:  # what to run, only while there is something to decide
        lines += [commands_line(event), f"By hand: {escape(event['commands']['by_hand'])}"]
    text = "\n".join(lines)
    blocks = [
        _section(f"*{headline(event)}*"),
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Requested by*\n{requester}"},
            {"type": "mrkdwn", "text": f"*Expires*\n{request['expires']}"},
        ]},
        _section(f"*Reason*\n{reason}"),
    ]
    if comment:
        blocks.append(_section(f"*Comment*\n{comment}"))
    blocks.append(_section(needed(event)))
    if pending:
        blocks.append(_section(commands_line(event)))
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _cut(f"By hand: {escape(event['commands']['by_hand'])}", 2000)}]})
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_LIMIT)}}


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp > cut.rfind(";"):  # never leave half an entity such as "&am"
        cut = cut[:amp]
    return cut + "…"
