"""Pure decoders: notification bytes + firmware profile -> samples and counter.

No I/O happens here. Build a decoder with :func:`make_decoder` and feed it
every notification::

    decoder = make_decoder(load_profile("ganglion"), variant="fw3")
    packet = decoder.decode(payload, characteristic=uuid)   # DecodedPacket
    packet.samples   # float64 (n, n_channels), µV or counts
    packet.seq       # board counter (or None); packet.span ticks it covers

Every input gives a :class:`DecodedPacket` or raises
:class:`~emg_pipeline.errors.DecodeError`. Stateful decoders (Ganglion
firmware 2 delta chain, gForce fragments) are cleared with ``reset()``.
:class:`SequenceTracker` turns successive counters into loss counts.
"""

from emg_pipeline.decode.base import DecodedPacket, Decoder, PacketKind
from emg_pipeline.decode.factory import DECODERS, check_profile, make_decoder
from emg_pipeline.decode.sequence import SeqEvent, SequenceStatus, SequenceTracker

__all__ = [
    "DECODERS",
    "DecodedPacket",
    "Decoder",
    "PacketKind",
    "SeqEvent",
    "SequenceStatus",
    "SequenceTracker",
    "check_profile",
    "make_decoder",
]
