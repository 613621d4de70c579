"""How much of the audit trail is kept: coalescing repeated rejections, and trimming (pure).

A peer that is refused again and again (an untrusted AE retrying, a flood of unknown
callers) must not grow the archive by a row per attempt: ~350 bytes each, 200 MB an hour at
150 rejections a second. :class:`Coalescer` decides when a rejected association repeats a
recent one - same host (any port), calling and called AE title, rule and explanation -
within ``[audit] coalesce_s`` of the first of them; the archive then counts it on that
first row (``repeats``, ``last_time``) instead of adding one. Accepted associations and
DIMSE requests are never coalesced. :func:`trim_before` and :func:`first_kept` say what
``[audit] retention_days`` and ``max_events`` delete. The archive runs the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from simdaemon.audit import AuditEvent
from simdaemon.config import AuditSettings

__all__ = ["TRIM_EVERY", "Coalescer", "coalescing_key", "first_kept", "trim_before"]

#: Events persisted between two trims of the stored trail.
TRIM_EVERY = 256

Key = tuple[str, str, str, str, str]


def _host(peer: str) -> str:
    """The address of ``ip:port`` (IPv6 addresses contain colons too: cut at the last)."""
    host, colon, port = peer.rpartition(":")
    return host if colon and port.isdigit() else peer


def coalescing_key(event: AuditEvent) -> Key | None:
    """What a repeat of ``event`` has in common with it; ``None`` when it never coalesces."""
    if event.operation != "associate" or event.outcome != "rejected":
        return None
    return (_host(event.peer), event.calling_ae, event.called_ae, event.rule, event.detail)


@dataclass
class Coalescer:
    """Remembers the stored row of each recent rejection, to count its repeats there.

    At most :attr:`LIMIT` rows are remembered (then all are forgotten: memory stays flat
    whoever calls); forgetting only costs a new row, never a wrong count.
    """

    settings: AuditSettings
    _rows: dict[Key, tuple[int, datetime]] = field(default_factory=dict)

    LIMIT = 1024

    def repeat_of(self, event: AuditEvent) -> int | None:
        """The stored row ``event`` repeats, or ``None`` when it needs a row of its own."""
        key = coalescing_key(event)
        if key is None or self.settings.coalesce_s <= 0:
            return None
        found = self._rows.get(key)
        if found is None:
            return None
        row, first = found
        if event.time - first > timedelta(seconds=self.settings.coalesce_s):
            del self._rows[key]
            return None
        return row

    def stored(self, event: AuditEvent, row: int) -> None:
        """``event`` was stored as row ``row``: later repeats may be counted on it."""
        key = coalescing_key(event)
        if key is None or self.settings.coalesce_s <= 0:
            return
        if len(self._rows) >= self.LIMIT:
            self._rows.clear()
        self._rows[key] = (row, event.time)

    def forget(self) -> None:
        """Forget every row (the trail was trimmed or cleared under them)."""
        self._rows.clear()


def trim_before(settings: AuditSettings, now: datetime) -> datetime | None:
    """Events older than this are deleted (``retention_days``); ``None``: kept for ever."""
    if settings.retention_days <= 0:
        return None
    return now - timedelta(days=settings.retention_days)


def first_kept(settings: AuditSettings, last_row: int) -> int | None:
    """The lowest row ``max_events`` keeps when the newest is ``last_row``; ``None``: all."""
    if settings.max_events <= 0:
        return None
    return last_row - settings.max_events + 1
