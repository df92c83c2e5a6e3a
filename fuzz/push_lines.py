"""Ref-update lines for `gitjit.hook.parse_lines` (documented error: BadPushLine).

The hook reads stdin as bytes, decodes it with surrogateescape and splits
lines: inputs are made the same way from hostile bytes, beside well-formed
lines with one thing wrong (case, length, separators, odd ref names).
"""

from __future__ import annotations

from hypothesis import strategies as st

from .harness import Target

HEX = "0123456789abcdef"
ids = st.one_of(
    st.text(HEX, min_size=40, max_size=40),
    st.just("0" * 40),
    st.text(HEX + "ABCDEFg", min_size=38, max_size=42),
    st.text(HEX, min_size=64, max_size=64),  # a sha256 object id
)
refs = st.one_of(
    st.sampled_from(["refs/heads/approvals", "refs/tags/v1.0", "refs/", "refs", "refs/heads/a b",
                     "refs/tags/\udcff", "refs/heads/\u00e9", "refs/heads/x\x00y", "heads/main"]),
    st.text(max_size=60).map(lambda s: "refs/" + s),
    st.integers(1, 200_000).map(lambda n: "refs/heads/" + "a" * n),  # a very long ref name
)
separators = st.sampled_from([" ", "  ", "\t", "\u00a0", "", "\x0b"])
endings = st.sampled_from(["", "\n", "\r\n", "\r", "\n\n", " ", "\x1c", "\u2028"])


@st.composite
def ref_lines(draw) -> str:
    sep = draw(separators)
    return draw(ids) + sep + draw(ids) + draw(st.sampled_from([" ", sep])) + draw(refs) + draw(endings)


def _as_the_hook_reads(data: bytes) -> list[str]:
    return data.decode("utf-8", "surrogateescape").splitlines()


push_inputs = st.one_of(
    st.lists(ref_lines(), max_size=8),
    st.binary(max_size=400).map(_as_the_hook_reads),
    st.lists(st.text(max_size=120), max_size=6),
)


def _load():
    from gitjit.server.pre_receive import BadPushLine, parse_lines

    return parse_lines, (BadPushLine,)


TARGETS = [Target("parse_lines", 20_000, push_inputs, _load)]
