"""What every live source shares: ``async with source:`` and ``async for chunk in source:``.

A live source (a BLE board, an LSL stream) implements :meth:`LiveSource.connect`,
:meth:`LiveSource.close` and :meth:`LiveSource.chunks`; this base turns them into
the async context manager and async iterator that :func:`~emg_pipeline.run.run_async`
and the commands use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from emg_pipeline.chunk import Chunk

__all__ = ["LiveSource"]


class LiveSource:
    """Base of the live sources: connect on entry, close on exit, iterate the chunks."""

    async def connect(self) -> None:
        """Open the link and start streaming."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop streaming and release the link (safe to call twice)."""
        raise NotImplementedError

    def chunks(self) -> AsyncIterator[Chunk]:
        """The stream's chunks, in order, until it ends or is closed."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self.chunks()
