"""One ``with`` protocol for everything that holds a file, a device or a terminal."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """Base of objects used as ``with obj: ...``: the block's end calls :meth:`close`.

    Whether the block ended normally or by an exception (Ctrl-C included), the
    resource is released; subclasses make :meth:`close` idempotent.
    """

    def close(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
