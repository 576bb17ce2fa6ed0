"""The protocol every streaming stage follows.

A stage is built from its configuration (kept verbatim and never mutated),
builds its carried state in :meth:`Stage.reset`, and maps one chunk
``(n_samples, n_channels)`` to the next with :meth:`Stage.process`. Feeding a
stage one chunk or the same samples split anywhere gives identical output and
identical final state: that is what makes the live path and the offline path
one path.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Stage"]


@runtime_checkable
class Stage(Protocol):
    """A streaming stage: ``process(chunk)`` and ``reset()``."""

    def process(self, chunk: Any) -> Any:
        """Consume one chunk and return this stage's output for it."""
        ...

    def reset(self) -> None:
        """Forget all carried state, as if freshly constructed."""
        ...
