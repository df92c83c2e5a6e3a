"""The shape of a commit signature, checked before GnuPG sees it (SPEC s.2).

A commit signature counts only as one ASCII-armored OpenPGP signature
packet of bounded size, nothing else. GnuPG will happily decompress,
unwrap and verify far more than that (a nested compressed stream kept it
busy for half a minute), so `check_signature_block` refuses anything else
in bounded, linear time, in pure Python, and never decompresses:

1. Armor (RFC 4880 s.6.2): at most `MAX_ARMORED` bytes of ASCII; the
   `BEGIN PGP SIGNATURE` line; only `Version:`/`Comment:` headers (what gpg
   writes); a blank line; base64 lines of at most 76 characters; an
   optional `=XXXX` CRC24 that must match; the `END PGP SIGNATURE` line;
   nothing after it.
2. Packets (RFC 4880 s.4.2): exactly one, of tag 2 (signature), in the old
   or new format with a definite length that ends exactly where the data
   ends (no partial or indeterminate lengths, nothing after it).
3. Signature (RFC 4880 s.5.2.3): version 4 only (what git and GnuPG make;
   v3 is obsolete, v5/v6 are not made by the GnuPG versions git drives),
   hashed and unhashed subpacket areas that fit and whose subpackets fit,
   then the two-byte hash prefix and one or two MPIs that fill the packet.

Whether the algorithms are strong enough is GnuPG's report to judge
(`signatures.judge_status`); this module only bounds the input.
"""

from __future__ import annotations

import binascii

from gitjit.reasons import MALFORMED_SIGNATURE
from gitjit.trust.signatures import MalformedCommit

MAX_ARMORED = 8192  # an RSA-4096 signature with gpg's usual subpackets is under 1 KiB armored
_BEGIN = "-----BEGIN PGP SIGNATURE-----"
_END = "-----END PGP SIGNATURE-----"
_HEADERS = ("Version", "Comment")
_MAX_LINE = 76  # RFC 4880 s.6.3
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_SIGNATURE_TAG = 2
_PREFIX = "signature is not one OpenPGP signature packet: "


class MalformedSignature(MalformedCommit):
    """A commit signature that is not one armored OpenPGP signature packet."""

    code = MALFORMED_SIGNATURE


def _bad(detail: str) -> MalformedSignature:
    return MalformedSignature(_PREFIX + detail)


def check_signature_block(armored: bytes) -> bytes:
    """The one signature packet in `armored`, or MalformedSignature saying what is wrong."""
    packet = _dearmor(armored)
    _check_packet(packet)
    return packet


# -- armor ---------------------------------------------------------------------


def _dearmor(armored: bytes) -> bytes:
    if len(armored) > MAX_ARMORED:
        raise _bad(f"{len(armored)} bytes of armor, more than {MAX_ARMORED}")
    try:
        text = armored.decode("ascii")
    except UnicodeDecodeError:
        raise _bad("armor holds non-ASCII bytes") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()  # the final newline, and the empty line libgit2 (pygit2) leaves after the signature
    if not lines or lines[0] != _BEGIN:
        raise _bad(f"armor does not start with {_BEGIN}")
    if lines[-1] != _END:
        raise _bad(f"armor does not end with {_END}")
    body = lines[1:-1]
    blank = body.index("") if "" in body else -1
    if blank < 0:
        raise _bad("armor has no blank line after its headers")
    for header in body[:blank]:
        name, sep, _ = header.partition(": ")
        if not sep or name not in _HEADERS:
            raise _bad(f"unexpected armor header {header[:40]!r}")
    data = body[blank + 1:]
    checksum = None
    if data and data[-1].startswith("="):
        checksum = data.pop()
    if not data:
        raise _bad("armor holds no data")
    for number, line in enumerate(data):
        if not line or len(line) > _MAX_LINE or not _BASE64.issuperset(line):
            raise _bad("armor holds a line that is not base64")
        if "=" in line.rstrip("=") or ("=" in line and number != len(data) - 1):
            raise _bad("base64 padding in the middle of the armor")
    try:
        packet = binascii.a2b_base64("".join(data), strict_mode=True)
    except binascii.Error:
        raise _bad("armor does not decode as base64") from None
    if checksum is not None:
        _check_crc(packet, checksum)
    return packet


def _check_crc(packet: bytes, line: str) -> None:
    if len(line) != 5 or not _BASE64.issuperset(line[1:]) or "=" in line[1:]:
        raise _bad("malformed armor checksum line")
    expected = binascii.a2b_base64(line[1:])
    if int.from_bytes(expected, "big") != crc24(packet):
        raise _bad("armor checksum does not match its data")


def _crc24_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()  # built whole at import: verifications run in several threads


def crc24(data: bytes) -> int:
    """The armor checksum of RFC 4880 s.6.1."""
    crc = 0xB704CE
    table = _CRC24_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[(crc >> 16) ^ byte]
    return crc


# -- the packet ------------------------------------------------------------------


def _check_packet(packet: bytes) -> None:
    first = _need(packet, 0, 1)[0]
    if not first & 0x80:
        raise _bad("the data does not start with a packet header")
    if first & 0x40:  # new format: tag in the low six bits, then a length of 1, 2 or 5 octets
        tag, octet = first & 0x3F, _need(packet, 1, 1)[0]
        if octet < 192:
            start, length = 2, octet
        elif octet < 224:
            start, length = 3, ((octet - 192) << 8) + _need(packet, 2, 1)[0] + 192
        elif octet == 255:
            start, length = 6, int.from_bytes(_need(packet, 2, 4), "big")
        else:
            raise _bad("a partial-length packet")
    else:  # old format: tag in bits 5-2, the length's size in bits 1-0
        tag, size = (first >> 2) & 0x0F, first & 0x03
        if size == 3:
            raise _bad("a packet of indeterminate length")
        width = (1, 2, 4)[size]
        start, length = 1 + width, int.from_bytes(_need(packet, 1, width), "big")
    if tag != _SIGNATURE_TAG:
        raise _bad(f"a packet of tag {tag}, not a signature (tag 2)")
    if start + length < len(packet):
        raise _bad(f"{len(packet) - start - length} bytes after the signature packet")
    if start + length > len(packet):
        raise _bad("the packet is longer than the data")
    _check_signature(packet[start:])


def _check_signature(body: bytes) -> None:
    version = _need(body, 0, 1)[0]
    if version != 4:
        raise _bad(f"a version {version} signature, not version 4")
    # version, signature type, public-key algorithm, hash algorithm, then the hashed area
    at = 4
    for area in ("hashed", "unhashed"):
        size = int.from_bytes(_need(body, at, 2), "big")
        _check_subpackets(_need(body, at + 2, size), area)
        at += 2 + size
    at += len(_need(body, at, 2))  # the left 16 bits of the hash
    mpis = 0
    while at < len(body):
        bits = int.from_bytes(_need(body, at, 2), "big")
        at += 2 + len(_need(body, at + 2, (bits + 7) // 8))
        mpis += 1
    if mpis not in (1, 2):
        raise _bad(f"{mpis} signature values, not one or two")


def _check_subpackets(area: bytes, name: str) -> None:
    at = 0
    while at < len(area):
        first = area[at]
        if first < 192:
            start, length = at + 1, first
        elif first < 255:
            start, length = at + 2, ((first - 192) << 8) + _need(area, at + 1, 1)[0] + 192
        else:
            start, length = at + 5, int.from_bytes(_need(area, at + 1, 4), "big")
        if length == 0:
            raise _bad(f"an empty subpacket in the {name} area")
        _need(area, start, length)
        at = start + length


def _need(data: bytes, at: int, count: int) -> bytes:
    """`count` bytes of `data` from `at`, or MalformedSignature where there are fewer."""
    if at + count > len(data):
        raise _bad("a length field points past the end of the packet")
    return data[at:at + count]
