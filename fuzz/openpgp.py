"""OpenPGP packets and ASCII armor, built by hand for fuzzing (RFC 4880 s.4, s.5.2, s.6).

Honest encodings and lying ones: every length form (old and new packet
headers, one-, two- and five-octet and partial body lengths) with the
length right or wrong, signature packets of every version with random
subpackets, compressed packets nested inside one another, and the armor
around them with a right or wrong checksum.
"""

from __future__ import annotations

import base64
import bz2
import functools
import zlib

from hypothesis import strategies as st

SIGNATURE, COMPRESSED, LITERAL, MARKER, ONE_PASS, PUBLIC_KEY, USER_ID = 2, 8, 11, 10, 4, 6, 13


def _crc24_step(value: int) -> int:
    crc = value << 16
    for _ in range(8):
        crc <<= 1
        if crc & 0x1000000:
            crc ^= 0x1864CFB
    return crc & 0xFFFFFF


_CRC24 = [_crc24_step(byte) for byte in range(256)]


def crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ _CRC24[(crc >> 16) ^ byte]
    return crc


def new_length(n: int) -> bytes:
    if n < 192:
        return bytes([n])
    if n < 8384:
        n -= 192
        return bytes([(n >> 8) + 192, n & 0xFF])
    return b"\xff" + n.to_bytes(4, "big")


def new_header(tag: int, length: int) -> bytes:
    return bytes([0xC0 | (tag & 0x3F)]) + new_length(length)


def old_header(tag: int, length: int | None) -> bytes:
    """Old format; `length` None is the indeterminate form (to the end of the data)."""
    first = 0x80 | ((tag & 0x0F) << 2)
    if length is None:
        return bytes([first | 3])
    if length < 256:
        return bytes([first, length])
    if length < 65536:
        return bytes([first | 1]) + length.to_bytes(2, "big")
    return bytes([first | 2]) + (length & 0xFFFFFFFF).to_bytes(4, "big")


def partial_body(tag: int, body: bytes, power: int) -> bytes:
    """New format with partial body lengths: chunks of 2**power, then a last definite length."""
    size = 1 << power
    out = bytes([0xC0 | tag])
    while len(body) > size:
        out += bytes([0xE0 | power]) + body[:size]
        body = body[size:]
    return out + new_length(len(body)) + body


@st.composite
def packet(draw, tag: int, body: bytes) -> bytes:
    """`body` as a packet, its header in any form, its length honest most of the time."""
    length = len(body)
    if draw(st.integers(0, 4)) == 0:
        length = draw(st.one_of(st.integers(0, 300), st.sampled_from([2**31 - 1, 2**32 - 1, length + 1])))
    form = draw(st.sampled_from(["new", "new", "old", "old-indeterminate", "partial"]))
    if form == "new":
        return new_header(tag, min(length, 2**32 - 1)) + body
    if form == "old":
        return old_header(tag, length) + body
    if form == "old-indeterminate":
        return old_header(tag, None) + body
    return partial_body(tag, body, draw(st.integers(0, 12)))


@st.composite
def subpackets(draw) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from([2, 16, 33, 3, 27, 32, 0, 127]))  # creation time, issuer, issuer fpr, ...
        critical = 0x80 if draw(st.integers(0, 5)) == 0 else 0
        data = draw(st.binary(max_size=24))
        if kind == 2:
            data = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
        elif kind == 33:
            data = b"\x04" + draw(st.binary(min_size=20, max_size=20))
        out += new_length(len(data) + 1) + bytes([kind | critical]) + data
    if draw(st.integers(0, 6)) == 0:
        out += draw(st.binary(max_size=6))  # a truncated or over-long subpacket
    return out


@st.composite
def signature_body(draw) -> bytes:
    version = draw(st.sampled_from([4, 4, 4, 3, 5, 6, 0, 255]))
    if version == 3:
        return (bytes([3, 5, draw(st.integers(0, 255))]) + draw(st.binary(min_size=12, max_size=12))
                + bytes([draw(st.sampled_from([1, 17, 22])), draw(st.sampled_from([2, 8, 10]))])
                + draw(st.binary(max_size=40)))
    sig_type = draw(st.sampled_from([0x00, 0x01, 0x10, 0x13, 0x18, 0x1F, 0x20, 0x40, 0xFF]))
    pk_algo = draw(st.sampled_from([1, 17, 19, 22, 27, 0, 255]))
    hash_algo = draw(st.sampled_from([2, 8, 9, 10, 11, 1, 3, 0, 255]))
    hashed, unhashed = draw(subpackets()), draw(subpackets())
    width = 4 if version in (5, 6) else 2
    hashed_len = len(hashed) if draw(st.integers(0, 5)) else draw(st.integers(0, 2 ** (8 * width) - 1))
    mpis = b""
    for _ in range(draw(st.integers(0, 3))):
        bits = draw(st.one_of(st.integers(0, 4096), st.just(65535)))
        mpis += bits.to_bytes(2, "big") + draw(st.binary(max_size=64))
    return (bytes([version, sig_type, pk_algo, hash_algo]) + hashed_len.to_bytes(width, "big") + hashed
            + len(unhashed).to_bytes(width, "big") + unhashed + draw(st.binary(min_size=2, max_size=2)) + mpis)


@st.composite
def compressed_body(draw, inner: bytes) -> bytes:
    algo = draw(st.sampled_from([0, 1, 2, 3, 110]))
    if algo == 0:
        data = inner
    elif algo == 1:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = compressor.compress(inner) + compressor.flush()
    elif algo == 2:
        data = zlib.compress(inner, 9)
    elif algo == 3:
        data = bz2.compress(inner, 9)
    else:
        data = inner
    if draw(st.integers(0, 6)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # a stream cut short
    return bytes([algo]) + data


@functools.cache
def _deflated_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(b"\0" * size) + compressor.flush()


@st.composite
def bomb(draw) -> bytes:
    """A compressed packet that inflates to megabytes of zeros (bounded here: 8 MiB)."""
    size = draw(st.sampled_from([1 << 16, 1 << 20, 1 << 23]))
    return draw(packet(COMPRESSED, b"\x01" + _deflated_zeros(size)))


def packets(depth: int = 4):
    """One packet of any kind; compressed ones hold further packets, up to `depth` levels."""
    signatures = signature_body().flatmap(lambda body: packet(SIGNATURE, body))
    leaves = st.one_of(
        signatures, signatures, signatures,  # one_of picks branches evenly: mostly signature packets
        st.sampled_from([LITERAL, MARKER, ONE_PASS, PUBLIC_KEY, USER_ID, 0, 14, 17, 60, 63]).flatmap(
            lambda tag: st.binary(max_size=40).flatmap(lambda body: packet(tag, body))),
    )
    if depth == 0:
        return leaves
    return st.one_of(
        leaves,
        leaves,
        st.lists(packets(depth - 1), min_size=1, max_size=3).map(b"".join)
        .flatmap(compressed_body).flatmap(lambda body: packet(COMPRESSED, body)),
    )


@st.composite
def deep_compression(draw) -> bytes:
    """A signature packet wrapped in compressed packets many levels deep."""
    data = draw(signature_body().flatmap(lambda body: packet(SIGNATURE, body)))
    algo = draw(st.sampled_from([0, 1, 2]))  # the same at every level: uncompressed, ZIP or ZLIB
    # Compressing at every level costs the generator more than the checker: only
    # uncompressed levels go thousands deep.
    depths = [2, 8, 32, 200] + ([1000, 5000] if algo == 0 else [])
    for _ in range(draw(st.sampled_from(depths))):
        if algo == 1:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = compressor.compress(data) + compressor.flush()
        else:
            body = zlib.compress(data) if algo == 2 else data
        data = new_header(COMPRESSED, len(body) + 1) + bytes([algo]) + body
    return data


_one = packets()
_lists = st.one_of(_one, _one, st.lists(_one, min_size=2, max_size=4).map(b"".join))
packet_streams = st.one_of(
    _lists, _lists, _lists,  # one_of picks branches evenly: this weights the structured streams
    deep_compression(),
    st.tuples(_lists, bomb()).map(b"".join),
    st.binary(max_size=200),
)

BEGIN, END = b"-----BEGIN PGP SIGNATURE-----", b"-----END PGP SIGNATURE-----"


FLAWS = ["none"] * 8 + ["checksum", "no checksum", "line width", "headers", "label", "no end", "crlf",
                        "surrounded", "twice"]


@st.composite
def armored(draw, body: bytes) -> bytes:
    """`body` in ASCII armor, right in every way but at most one (so most inputs reach the packets)."""
    flaw = draw(st.sampled_from(FLAWS))
    encoded = base64.b64encode(body)
    width = draw(st.sampled_from([1, 63, 65, 77, 1000])) if flaw == "line width" else 64
    lines = [encoded[i:i + width] for i in range(0, len(encoded), width)]
    checksum = b"=" + base64.b64encode(crc24(body).to_bytes(3, "big"))
    if flaw == "checksum":
        checksum = draw(st.sampled_from([b"=", b"=AAAA==", b"=" + base64.b64encode((crc24(body) ^ 1).to_bytes(3, "big"))]))
    headers = [b"Version: GnuPG v2"] if draw(st.booleans()) else []
    if flaw == "headers":
        headers = draw(st.lists(st.sampled_from([b"Comment: x", b"Hash: SHA1", b"Charset: UTF-8", b"NoColon",
                                                 b"\xff: \xfe", b"Version:"]), min_size=1, max_size=3))
    begin, end = BEGIN, END
    if flaw == "label":
        begin = draw(st.sampled_from([b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN PGP SIGNATURE----",
                                      b"-----BEGIN PGP SIGNATURE-----  "]))
    parts = [begin, *headers, b"", *lines] + ([] if flaw == "no checksum" else [checksum])
    parts += [] if flaw == "no end" else [end]
    newline = b"\r\n" if flaw == "crlf" else b"\n"
    text = newline.join(parts) + newline
    if flaw == "surrounded":
        text = draw(st.sampled_from([b"junk before\n", b"\n"])) + text + draw(st.sampled_from([b"junk after\n", b"\0"]))
    if flaw == "twice":
        text += text
    return text
