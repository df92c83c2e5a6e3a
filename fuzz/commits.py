"""Raw commit objects for `gitjit.trust.signatures.split_commit` (documented error: MalformedCommit).

Three kinds of input: commit objects assembled from real and hostile
header lines (odd identities and timestamps, repeated and continued
headers, signature headers in every place), real-looking commits with a
few bytes flipped, inserted or cut, and plain random bytes.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .harness import Target

HEX = "0123456789abcdef"
object_ids = st.text(HEX, min_size=40, max_size=40).map(str.encode)

timestamps = st.one_of(
    st.integers(0, 2**31).map(lambda n: str(n).encode()),
    st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),  # beyond any calendar
    st.integers(1, 6000).map(lambda n: b"9" * n),  # beyond int()'s digit limit
    st.sampled_from([b"", b"0", b"-0", b"00001", b"1e9", b"0x10", b" 1", b"\xd9\xa1"]),  # \xd9\xa1: Arabic-Indic 1
)
zones = st.one_of(st.sampled_from([b"+0000", b"-0000", b"+1400", b"-1200", b"+9999", b"+00", b"Z", b""]),
                  st.binary(max_size=6))
names = st.one_of(st.sampled_from([b"A U Thor", b"", b"<", b">", b"a <b> c", b"\xff\xfe"]), st.binary(max_size=12))
emails = st.one_of(st.sampled_from([b"a@example.com", b"", b"<a>", b"\xff@\xfe", b"a\nb"]), st.binary(max_size=12))


@st.composite
def identities(draw) -> bytes:
    return b"%s <%s> %s %s" % (draw(names), draw(emails), draw(timestamps), draw(zones))


armor_lines = st.lists(st.one_of(st.sampled_from([b"-----BEGIN PGP SIGNATURE-----", b"", b"=abcd",
                                                  b"-----END PGP SIGNATURE-----"]),
                                 st.binary(max_size=80)), max_size=8)


@st.composite
def signature_headers(draw) -> list[bytes]:
    """A `gpgsig`-like header with continuation lines (each starts with one space)."""
    name = draw(st.sampled_from([b"gpgsig", b"gpgsig-sha256", b"gpgsig ", b"GPGSIG", b"mergetag"]))
    body = draw(armor_lines)
    return [name + b" " + (body[0] if body else b"")] + [b" " + line for line in body[1:]]


@st.composite
def header_blocks(draw) -> list[bytes]:
    kind = draw(st.sampled_from(["tree", "parent", "author", "committer", "signature", "encoding",
                                 "continuation", "random"]))
    if kind in ("tree", "parent"):
        return [kind.encode() + b" " + draw(st.one_of(object_ids, st.binary(max_size=44)))]
    if kind in ("author", "committer"):
        return [kind.encode() + b" " + draw(identities())]
    if kind == "signature":
        return draw(signature_headers())
    if kind == "encoding":
        return [b"encoding " + draw(st.sampled_from([b"UTF-8", b"ISO-8859-1", b"\xff"]))]
    if kind == "continuation":
        return [b" " + draw(st.binary(max_size=40))]
    return [draw(st.binary(max_size=40).filter(lambda b: b"\n" not in b))]


@st.composite
def assembled_commits(draw) -> bytes:
    """Mostly well-formed headers, in any order and number, then a message."""
    lines = [b"tree " + draw(object_ids)]
    if draw(st.booleans()):
        lines.append(b"parent " + draw(object_ids))
    lines += [b"author " + draw(identities()), b"committer " + draw(identities())]
    if draw(st.booleans()):
        lines += draw(signature_headers())
    for block in draw(st.lists(header_blocks(), max_size=6)):
        lines.insert(draw(st.integers(0, len(lines))), b"\n".join(block))
    separator = draw(st.sampled_from([b"\n\n", b"\n", b"", b"\r\n\r\n", b"\n\n\n"]))
    message = draw(st.one_of(st.binary(max_size=200), st.sampled_from([b"gpgsig x\n", b"\n\ntree x\n"])))
    return b"\n".join(lines) + separator + message


GOOD = (b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"parent 9b23d2bd6f98d5388fc42f61f0c3ee42c6a8f3fa\n"
        b"author Alice <alice@example.com> 1764111600 +0000\n"
        b"committer Alice <alice@example.com> 1764111600 +0000\n"
        b"gpgsig -----BEGIN PGP SIGNATURE-----\n \n iHUEABYKAB0WIQQAsY90=\n =Ab1c\n"
        b" -----END PGP SIGNATURE-----\n"
        b"\ngitjit: approve deploy-prod-20261125-3fa9c1\n")


@st.composite
def mutated_commits(draw) -> bytes:
    """A real-looking signed commit with a few bytes replaced, inserted or cut."""
    data = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        piece = draw(st.sampled_from([b"\0", b"\n", b" ", b"\n ", b"\n\n", b"-", b"<", b">", b"9" * 20,
                                      b"gpgsig ", b"tree ", b"author "]) | st.binary(min_size=1, max_size=4))
        how = draw(st.sampled_from(["insert", "replace", "cut"]))
        if how == "insert":
            data[at:at] = piece
        elif how == "replace":
            data[at:at + len(piece)] = piece
        else:
            del data[at:at + draw(st.integers(1, 30))]
    return bytes(data)


commit_objects = st.one_of(assembled_commits(), mutated_commits(), st.binary(max_size=300))


def _load():
    from gitjit.trust.signatures import MalformedCommit, split_commit

    return split_commit, (MalformedCommit,)


TARGETS = [Target("split_commit", 25_000, commit_objects, _load)]
