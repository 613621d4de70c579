"""What an unauthenticated peer may take from the daemon, and how a refusal is reported.

Everything a peer can do before the daemon knows who it is costs the daemon something: a
socket, two threads, a buffer for the PDU it announces. :class:`Guard` holds the numbers that
bound each of these (``[limits]`` in the configuration; this module cannot import it, the
daemon passes them in) and the daemon's callbacks that judge a DIMSE request against its
presentation context and record a refusal in the audit trail and the log.

Refusals of unauthenticated peers are what a flood produces, so :meth:`Guard.refuse` reports
the first of each kind at once and then at most one line per :data:`REPORT_INTERVAL_S` per
kind, counting the ones it left out: a peer opening thousands of connections cannot turn the
audit trail or the log into the resource it exhausts. A request refused on an accepted
association is reported one by one (:meth:`Guard.record`), like every other request.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MAX_PDU_LENGTH",
    "REPORT_INTERVAL_S",
    "Guard",
    "Incident",
    "Limits",
    "escape_title",
]

LOGGER = logging.getLogger(__name__)

#: At most one report per kind of refusal in this many seconds (the rest are counted).
REPORT_INTERVAL_S = 5.0
#: The maximum PDU length advertised by default (``[limits] max_pdu_length``). pynetdicom's
#: default is 16382 bytes, and a 512 x 512 CT slice then arrives in 33 P-DATA-TF PDUs, each a
#: pass through the state machine; at 256 KiB it is 3, and a C-STORE via DCMTK's storescu
#: went from 0.66 to 0.85 x a bare pynetdicom SCP (benchmarks/store.py). The memory an
#: association may hold for one PDU is bounded by it, so it stays far below DICOM's 4 GiB.
DEFAULT_MAX_PDU_LENGTH = 256 * 1024


@dataclass(frozen=True)
class Limits:
    """The bounds on what a peer may take; ``[limits]`` in the configuration."""

    #: Open TCP connections at once, associated or not; one more is closed at once.
    max_connections: int = 64
    #: Seconds from TCP connect to a complete A-ASSOCIATE-RQ; then the socket is closed.
    associate_request_timeout: float = 5.0
    #: Largest PDU length (the header's length field) accepted before an association exists.
    max_associate_request: int = 256 * 1024
    #: Maximum PDU length the daemon advertises; a longer PDU (beyond one 6-byte header of
    #: slack, for peers that count the header in) aborts the association.
    max_pdu_length: int = DEFAULT_MAX_PDU_LENGTH


@dataclass(frozen=True)
class Incident:
    """One refusal at the network level, as the audit trail records it."""

    operation: str
    outcome: str
    rule: str
    detail: str
    peer: str
    calling_ae: str = ""
    called_ae: str = ""
    status: int | None = None


def _accept_all(command: str, abstract_syntax: str) -> bool:
    return True


def _drop(incident: Incident) -> None:
    return None


@dataclass
class Guard:
    """The limits and the daemon's callbacks, shared by the listener and every association."""

    limits: Limits = field(default_factory=Limits)
    #: Records one (rate-limited) refusal: the daemon writes the audit line and the log line.
    report: Callable[[Incident], None] = _drop
    #: Whether a DIMSE request (``"C-FIND"``...) may be sent on a context of this syntax.
    fits: Callable[[str, str], bool] = _accept_all
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last: dict[str, float] = field(default_factory=dict, repr=False)
    _left_out: dict[str, int] = field(default_factory=dict, repr=False)

    def refuse(self, incident: Incident) -> None:
        """Report a refusal now, or count it if one of its kind was reported just before."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(incident.rule)
            if last is not None and now - last < REPORT_INTERVAL_S:
                self._left_out[incident.rule] = self._left_out.get(incident.rule, 0) + 1
                return
            self._last[incident.rule] = now
            left_out = self._left_out.pop(incident.rule, 0)
        if left_out:
            more = f" (and {left_out} more like it not reported one by one)"
            incident = dataclasses.replace(incident, detail=incident.detail + more)
        self._send(incident)

    def record(self, incident: Incident) -> None:
        """Report a refusal of a request on an accepted association: always, one by one.

        An accepted peer is a trusted one, and each of its requests is audited like any
        other; only what unauthenticated peers can repeat at will is rate-limited.
        """
        self._send(incident)

    def forget(self) -> None:
        """Start afresh (``Daemon.reset()``): no refusal counted, none recently reported."""
        with self._lock:
            self._left_out.clear()
            self._last.clear()

    def flush(self) -> None:
        """Report how many refusals were left out since each kind's last report (at stop)."""
        with self._lock:
            pending, self._left_out = self._left_out, {}
            self._last.clear()
        for rule, count in pending.items():
            self._send(
                Incident(
                    operation="associate",
                    outcome="refused",
                    rule=rule,
                    detail=f"{count} more refusals by rule '{rule}' not reported one by one",
                    peer="",
                )
            )

    def _send(self, incident: Incident) -> None:
        """Hand an incident to the daemon; a failing report never stops the refusal itself.

        The caller closes the connection whatever happens here (fail closed); a report that
        raises (a full disk under the audit trail) is logged instead.
        """
        try:
            self.report(incident)
        except Exception as error:  # noqa: BLE001 - the refusal must go on regardless
            LOGGER.error("could not record a refusal (%s): %r", incident.detail, error)


def escape_title(raw: bytes) -> str:
    """An AE title's bytes as printable ASCII: control and non-ASCII bytes as ``\\xNN``."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x5C else f"\\x{b:02x}" for b in raw)
