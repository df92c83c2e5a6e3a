"""Signature blocks for `gitjit.trust.sigpacket.check_signature_block` (documented error: MalformedSignature).

That module comes from another branch: the target imports it lazily and
is skipped, saying so, where it is not there yet.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .harness import Target, Unavailable
from .openpgp import armored, packet_streams

_armored = packet_streams.flatmap(armored)
signature_blocks = st.one_of(
    _armored, _armored, _armored, _armored,  # one_of picks branches evenly: mostly armored packets
    packet_streams,  # not armored at all
    st.binary(max_size=300),
)


def _load():
    import importlib

    try:
        module = importlib.import_module("gitjit.trust.sigpacket")
    except ModuleNotFoundError as exc:
        if exc.name != "gitjit.trust.sigpacket":
            raise  # the module is there but something it imports is not: that is a failure
        raise Unavailable("gitjit.trust.sigpacket not available") from None
    return module.check_signature_block, (module.MalformedSignature,)


TARGETS = [Target("check_signature_block", 20_000, signature_blocks, _load)]
