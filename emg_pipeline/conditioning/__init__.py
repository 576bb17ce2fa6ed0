"""Conditioning stages: gap bridging, band-pass, mains removal, artefact gating."""

from .artefacts import ArtefactGate
from .ecg import EcgSuppressor
from .filters import SosFilter, bandpass_sos, effective_band
from .gaps import FlatLine, NanBridge
from .mains import MainsCanceller
from .notch import MainsNotch

__all__ = [
    "ArtefactGate",
    "EcgSuppressor",
    "FlatLine",
    "MainsCanceller",
    "MainsNotch",
    "NanBridge",
    "SosFilter",
    "bandpass_sos",
    "effective_band",
]
