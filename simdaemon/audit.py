"""The audit trail: every association decision and every DIMSE request the daemon saw.

Tests assert on it ("the daemon rejected STRANGER because ..."), and trainees read it, so each
event carries a sentence in words besides its fields. Recording is thread-safe: associations
run on their own threads and all record into one trail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["AuditEvent", "AuditTrail"]


@dataclass(frozen=True)
class AuditEvent:
    """One thing the daemon decided or answered.

    ``operation`` is ``"associate"`` or the DIMSE service (``"echo"``, ...). ``outcome`` is
    ``"accepted"``/``"rejected"`` for associations and ``"success"``/``"warning"``/``"failure"``
    for requests; ``status`` is the DIMSE status, when there is one. ``rule`` names the
    configuration rule that decided, and ``detail`` says it in words.
    """

    time: datetime
    operation: str
    calling_ae: str
    called_ae: str
    peer: str
    outcome: str
    detail: str
    rule: str = ""
    status: int | None = None
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """The event as JSON-ready values (time in ISO 8601, UTC)."""
        return {
            "time": self.time.isoformat(),
            "operation": self.operation,
            "calling_ae": self.calling_ae,
            "called_ae": self.called_ae,
            "peer": self.peer,
            "outcome": self.outcome,
            "status": self.status,
            "rule": self.rule,
            "detail": self.detail,
            "duration_ms": round(self.duration_ms, 3),
        }

    def describe(self) -> str:
        """Return the event as one line a trainee can read."""
        status = f" status 0x{self.status:04X}" if self.status is not None else ""
        return (
            f"{self.time:%H:%M:%S.%f} {self.operation} from '{self.calling_ae}' at {self.peer}: "
            f"{self.outcome}{status} ({self.duration_ms:.1f} ms) - {self.detail}"
        )


class AuditTrail:
    """A thread-safe, append-only list of :class:`AuditEvent` with simple queries.

    ``sink``, when set, receives every event too: the daemon points it at the archive so
    the trail outlives the process.
    """

    def __init__(self, sink: Callable[[AuditEvent], None] | None = None) -> None:
        self._events: list[AuditEvent] = []
        self._lock = threading.Lock()
        self.sink = sink

    def record(
        self,
        operation: str,
        *,
        calling_ae: str,
        called_ae: str,
        peer: str,
        outcome: str,
        detail: str,
        rule: str = "",
        status: int | None = None,
        duration_ms: float = 0.0,
    ) -> AuditEvent:
        """Append an event stamped with the current UTC time and return it."""
        event = AuditEvent(
            time=datetime.now(UTC),
            operation=operation,
            calling_ae=calling_ae,
            called_ae=called_ae,
            peer=peer,
            outcome=outcome,
            detail=detail,
            rule=rule,
            status=status,
            duration_ms=duration_ms,
        )
        with self._lock:
            self._events.append(event)
        sink = self.sink
        if sink is not None:
            sink(event)
        return event

    def events(
        self,
        operation: str | None = None,
        *,
        calling_ae: str | None = None,
        outcome: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """Return the events so far, oldest first, filtered by the given fields.

        ``outcome`` is the status class for requests (``"success"``, ``"warning"``,
        ``"failure"``, ``"cancel"``) and ``"accepted"``/``"rejected"`` for associations;
        ``since`` keeps events at or after that (timezone-aware) time.
        """
        with self._lock:
            snapshot = list(self._events)
        return [
            e
            for e in snapshot
            if (operation is None or e.operation == operation)
            and (calling_ae is None or e.calling_ae == calling_ae)
            and (outcome is None or e.outcome == outcome)
            and (status is None or e.status == status)
            and (since is None or e.time >= since)
        ]

    def assert_stored(self, sop_instance_uid: str) -> AuditEvent:
        """Return the C-STORE that stored this instance; fail with the trail in words if none."""
        for event in self.events("store"):
            if event.outcome in ("success", "warning") and sop_instance_uid in event.detail:
                return event
        raise AssertionError(
            f"the daemon did not store SOP Instance {sop_instance_uid}; what it saw:\n"
            + self.describe()
        )

    def assert_rejected(self, calling_ae: str) -> AuditEvent:
        """Return the rejected association of ``calling_ae``; fail with the trail if none."""
        rejected = self.events("associate", calling_ae=calling_ae, outcome="rejected")
        if not rejected:
            raise AssertionError(
                f"the daemon rejected no association from '{calling_ae}'; what it saw:\n"
                + self.describe()
            )
        return rejected[-1]

    def clear(self) -> None:
        """Forget every event (a fresh trail for the next test)."""
        with self._lock:
            self._events.clear()

    def describe(self) -> str:
        """Return the whole trail in words, one event per line."""
        return "\n".join(e.describe() for e in self.events()) or "(no events)"

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self.events())

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
