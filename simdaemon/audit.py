"""The audit trail: every association decision and every DIMSE request the daemon saw.

Tests assert on it ("the daemon rejected STRANGER because ..."), and trainees read it, so each
event carries a sentence in words besides its fields. Recording is thread-safe: associations
run on their own threads and all record into one trail.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from simdaemon.printable import printable

__all__ = ["SEVERITIES", "AuditEvent", "AuditTrail"]

#: Finding severities, least serious first (the names of :class:`simdaemon.findings.Severity`,
#: which this lower layer does not import).
SEVERITIES = ("style", "portability", "nonconformant", "danger")


@dataclass(frozen=True)
class AuditEvent:
    """One thing the daemon decided or answered.

    ``operation`` is ``"associate"``, the DIMSE service (``"echo"``, ...), ``"import"`` or
    ``"fault"``. ``outcome`` is ``"accepted"``/``"rejected"``/``"aborted"`` for associations,
    ``"success"``/``"warning"``/``"failure"``/``"cancel"`` for requests (``"aborted"`` when the
    association ended before the answer) and ``"fired"`` for an injected fault; ``status`` is
    the DIMSE status, when there is one. ``rule`` names the
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
    #: The object the event is about (a C-STORE's or an import's SOP Instance UID), so a test
    #: finds it by value, not by searching the detail's prose.
    sop_instance_uid: str = ""

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
            "sop_instance_uid": self.sop_instance_uid,
        }

    def describe(self) -> str:
        """Return the event as one line a trainee can read: control characters escaped.

        What a peer sent (AE titles, Patient IDs, names in the detail) may hold a newline or
        an ANSI escape; :meth:`as_dict` keeps the exact values for JSON.
        """
        status = f" status 0x{self.status:04X}" if self.status is not None else ""
        return printable(
            f"{self.time:%H:%M:%S.%f} {self.operation} from '{self.calling_ae}' at {self.peer}: "
            f"{self.outcome}{status} ({self.duration_ms:.1f} ms) - {self.detail}"
        )


class AuditTrail:
    """A thread-safe trail of the most recent :class:`AuditEvent` values, with simple queries.

    ``sink``, when set, receives every event too: the daemon points it at the archive so
    the trail outlives the process. In memory only the latest ``limit`` events are kept
    (``[audit] memory_events``), so a flood of rejected peers cannot grow the process;
    :attr:`recorded` counts every event ever recorded.
    """

    #: Events kept in memory unless told otherwise.
    LIMIT = 1000

    def __init__(
        self, sink: Callable[[AuditEvent], None] | None = None, *, limit: int = LIMIT
    ) -> None:
        self._events: deque[AuditEvent] = deque(maxlen=limit)
        #: Every event recorded since the start (or the last :meth:`clear`), kept or not.
        self.recorded = 0
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
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
        sop_instance_uid: str = "",
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
            sop_instance_uid=sop_instance_uid,
        )
        with self._lock:
            self._events.append(event)
            self.recorded += 1
            self._recorded.notify_all()
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
        """Return the events kept in memory, oldest first, filtered by the given fields.

        ``outcome`` is the status class for requests (``"success"``, ``"warning"``,
        ``"failure"``, ``"cancel"``, or ``"aborted"``), ``"accepted"``/``"rejected"``/
        ``"aborted"`` for associations and ``"fired"`` for faults;
        ``since`` keeps events at or after that (timezone-aware) time.
        """
        with self._lock:
            snapshot = list(self._events)
        return _select(snapshot, operation, calling_ae, outcome, status, since)

    def wait_for(
        self,
        operation: str,
        *,
        calling_ae: str | None = None,
        outcome: str | None = None,
        status: int | None = None,
        timeout: float = 10.0,
    ) -> AuditEvent:
        """Block until an event :meth:`events` would return is recorded; return the first.

        For a test whose client runs on another thread: "wait until the daemon has seen the
        fault fire" without sleeping. Raises :class:`TimeoutError` with the trail in words.
        """
        deadline = time.monotonic() + timeout
        with self._recorded:
            while not (found := _select(self._events, operation, calling_ae, outcome, status)):
                left = deadline - time.monotonic()
                if left <= 0:
                    trail = "\n".join(e.describe() for e in self._events) or "(no events)"
                    raise TimeoutError(
                        f"no {operation} event within {timeout} s; what the daemon saw:\n{trail}"
                    )
                self._recorded.wait(left)
        return found[0]

    def wait_recorded(self, seen: int, timeout: float) -> tuple[int, list[AuditEvent]]:
        """Wait until the count of recorded events is not ``seen`` (or ``timeout``).

        Return the count and the events recorded since ``seen`` that memory still keeps,
        read together under the lock, so a follower (the console's live stream) neither
        misses nor repeats one. A :meth:`clear` since then counts from zero again.
        """
        with self._recorded:
            self._recorded.wait_for(lambda: self.recorded != seen, timeout)
            count = self.recorded
            new = count - seen if count >= seen else count
            return count, list(self._events)[-new:] if new else []

    def assert_stored(self, sop_instance_uid: str) -> AuditEvent:
        """Return the C-STORE that stored this instance; fail with the trail in words if none."""
        for event in self.events("store"):
            if (
                event.outcome in ("success", "warning")
                and event.sop_instance_uid == sop_instance_uid
            ):
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

    def findings(self, rule: str | None = None, severity: str | None = None) -> list[AuditEvent]:
        """The findings recorded (operation ``finding``), of ``rule``, at least ``severity``.

        Each event's ``rule`` is the rule's name, ``outcome`` its severity and ``detail`` the
        request's message ID, the evidence and the fix.
        """
        least = _severity_rank(severity) if severity is not None else 0
        return [
            e
            for e in self.events("finding")
            if (rule is None or e.rule == rule) and _severity_rank(e.outcome) >= least
        ]

    def assert_no_findings(self, min_severity: str = "portability") -> None:
        """Fail, naming every finding in words, if one at least ``min_severity`` was recorded."""
        found = self.findings(severity=min_severity)
        if found:
            raise AssertionError(
                f"the daemon recorded {len(found)} finding(s) at least {min_severity}:\n"
                + "\n".join(
                    printable(f"{e.rule} ({e.outcome}) from '{e.calling_ae}': {e.detail}")
                    for e in found
                )
            )

    def clear(self) -> None:
        """Forget every event (a fresh trail for the next test)."""
        with self._lock:
            self._events.clear()
            self.recorded = 0
            self._recorded.notify_all()

    def describe(self) -> str:
        """Return the whole trail in words, one event per line."""
        return "\n".join(e.describe() for e in self.events()) or "(no events)"

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self.events())

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def _severity_rank(name: str) -> int:
    """A severity's rank (1 = style); :class:`ValueError` names the severities."""
    try:
        return SEVERITIES.index(name.strip().lower()) + 1
    except ValueError:
        raise ValueError(f"{name!r} is not a severity; one of {', '.join(SEVERITIES)}") from None


def _select(
    events: Iterable[AuditEvent],
    operation: str | None = None,
    calling_ae: str | None = None,
    outcome: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
) -> list[AuditEvent]:
    """The events with these fields (None: any), in order."""
    return [
        e
        for e in events
        if (operation is None or e.operation == operation)
        and (calling_ae is None or e.calling_ae == calling_ae)
        and (outcome is None or e.outcome == outcome)
        and (status is None or e.status == status)
        and (since is None or e.time >= since)
    ]
