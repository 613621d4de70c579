"""A one-line progress bar for long local operations, drawn only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``label [#####.....] done/total  N failed``, redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.failed = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty()
        self._drawn = 0.0

    def advance(self, *, failed: bool = False) -> None:
        """Count one item; redraw when due."""
        self.done += 1
        self.failed += failed
        now = time.monotonic()
        if self._enabled and (now - self._drawn >= 0.1 or self.done == self.total):
            self._drawn = now
            self._draw()

    def _draw(self) -> None:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        failed = f"  {self.failed} failed" if self.failed else ""
        self._stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}{failed}")
        self._stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._enabled and self.done:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
