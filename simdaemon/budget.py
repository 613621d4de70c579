"""A query's time budget and its C-CANCEL, checked between rows: what can stop a running query.

A C-FIND whose rows are filtered in Python (stored RT keys, sequences, derived keys) can read
many rows before it has a response to send, so neither the time it takes nor a C-CANCEL
would be seen between two responses. The archive's lookup calls :meth:`Budget.check` for
every row it reads (and SQLite's progress handler calls it while a statement runs), and
the check raises :class:`Stopped` once the query should end. Pure: the clock and the
cancel test are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Budget", "Cancelled", "OverBudget", "Stopped"]


class Stopped(Exception):
    """A query ended before its last row; the message says why, in an Error Comment's words."""


class Cancelled(Stopped):
    """The peer sent a C-CANCEL for the query."""


class OverBudget(Stopped):
    """The query ran past its time budget (``[limits] query_budget_s``)."""


def _never() -> bool:
    return False


@dataclass
class Budget:
    """The seconds a query may run and how to tell that it was cancelled.

    ``cancelled`` is asked at most every :attr:`CANCEL_EVERY` seconds (it may be costlier
    than the clock); the clock is read on every check.
    """

    seconds: float
    cancelled: Callable[[], bool] = _never
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    _asked: float = field(init=False)

    #: Seconds between two calls of ``cancelled``.
    CANCEL_EVERY = 0.05

    def __post_init__(self) -> None:
        self.started = self._asked = self.clock()

    def check(self) -> None:
        """Raise :class:`Cancelled` or :class:`OverBudget` when the query should stop."""
        now = self.clock()
        if now - self._asked >= self.CANCEL_EVERY:
            self._asked = now
            if self.cancelled():
                raise Cancelled("query cancelled by C-CANCEL")
        if now - self.started > self.seconds:
            raise OverBudget(f"query stopped after its {self.seconds:g} s budget")
