"""Where injected faults meet the protocol: firing rules on requests, and carrying them out.

:mod:`simdaemon.faults` says which rule fires; this module gathers what a rule may match on
from each request, records every firing in the audit trail, waits injected delays (cut short
by ``stop()``), answers injected statuses and ends associations through
:mod:`simdaemon.net.sabotage`. The daemon wraps its DIMSE handlers with :meth:`Injector.wrap`
and asks :meth:`Injector.fire` itself where it serves the protocol directly (associations,
C-MOVE and its sub-operations).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association

from simdaemon.archive import Archive
from simdaemon.audit import AuditTrail
from simdaemon.faults import Faults, Firing, Stopped
from simdaemon.net.sabotage import fail_association
from simdaemon.services.peer import describe_peer

__all__ = ["Injector", "identifier_facts"]

LOGGER = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


def identifier_facts(identifier: Dataset) -> dict[str, str]:
    """The level and patient ID of a query or move identifier, for fault rules to match."""
    facts = {"level": str(identifier.get("QueryRetrieveLevel", "") or "")}
    if "PatientID" in identifier:
        facts["patient_id"] = str(identifier.PatientID or "")
    return facts


def _abort_after_matches(
    results: Iterator[Any], limit: int, fail: Callable[[], None]
) -> Iterator[Any]:
    """Pass on ``limit`` pending C-FIND responses, then end the association as a fault.

    With fewer matches the abort replaces the final response; either way the client never
    hears that its query finished. The search is closed first, so its audit event (outcome
    ``aborted``) is recorded before the peer can see the abort.
    """
    try:
        for _ in range(limit):
            item = next(results, None)
            if item is None or int(getattr(item[0], "Status", item[0])) not in (0xFF00, 0xFF01):
                break
            yield item
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    fail()


class Injector:
    """Fires a daemon's faults on its requests and carries them out."""

    def __init__(
        self,
        faults: Faults,
        audit: AuditTrail,
        archive: Callable[[], Archive],
        stopping: threading.Event,
    ) -> None:
        self.faults = faults
        self.audit = audit
        self._archive = archive
        self._stopping = stopping

    def fire(self, operation: str, assoc: Association, what: dict[str, str]) -> Firing | None:
        """Fire a matching fault: record it, wait its delay; the caller does the rest.

        An association trap (``associate`` with ``abort_after`` > 0) is recorded when it
        springs (the caller passes :meth:`record` on), not when it is set. A delay ends at
        once when the daemon stops: the association is then aborted and :class:`Stopped`
        raised, so the request is never served.
        """
        firing = self.faults.fire(operation, what)
        if firing is None:
            return None
        if not (operation == "associate" and firing.abort_after):
            self.record(assoc, firing)
        if firing.delay_s and self._stopping.wait(firing.delay_s):
            fail_association(assoc)
            raise Stopped
        return firing

    def record(self, assoc: Association, firing: Firing) -> None:
        """Record a firing as an audit event (outcome ``fired``) and a log line."""
        peer = describe_peer(assoc)
        self.audit.record(
            "fault",
            **peer.audit_fields(),
            outcome="fired",
            detail=f"injected: {firing.fault.describe()}",
            rule=firing.fault.operation,
            status=firing.status,
        )
        LOGGER.warning("injected fault fired: %s", firing.fault.describe())

    def wrap(self, operation: str, handler: _F) -> _F:
        """Wrap a DIMSE handler so faults for ``operation`` can delay, answer or abort it."""

        def faulty(event: evt.Event, *args: Any) -> Any:
            if not self.faults.covers(operation):
                return handler(event, *args)
            try:
                firing = self.fire(operation, event.assoc, self.facts(operation, event))
            except Stopped:  # never answered: the association is aborted
                return iter(()) if operation == "find" else 0x0000
            if firing is None:
                return handler(event, *args)
            if firing.status is not None:
                answer = Dataset()
                answer.Status = firing.status
                if firing.comment:
                    answer.ErrorComment = firing.comment[:64]
                return iter([(answer, None)]) if operation == "find" else answer
            if firing.abort_after is None:
                return handler(event, *args)
            fail = functools.partial(fail_association, event.assoc, firing.close)
            if operation == "find":
                results = handler(event, *args, ends_in_abort=True)
                return _abort_after_matches(results, firing.abort_after, fail)
            if firing.abort_after > 0:  # store: imported, then aborted instead of answered
                handler(event, *args)
            fail()
            return 0x0000  # never sent: pynetdicom sees the association is no longer up

        faulty.__name__ = getattr(handler, "__name__", "handler")
        return faulty  # type: ignore[return-value]

    def facts(self, operation: str, event: evt.Event) -> dict[str, str]:
        """What a fault rule for ``operation`` may match on in this request."""
        request = event.request
        facts = {
            "calling_ae": describe_peer(event.assoc).calling_ae,
            "sop_class_uid": str(getattr(request, "AffectedSOPClassUID", "") or ""),
        }
        with contextlib.suppress(Exception):  # bad data is the operation's to answer
            if operation == "find":
                facts.update(identifier_facts(event.identifier))
            elif operation == "store" and self.faults.covers("store", "patient_id"):
                facts["patient_id"] = str(event.dataset.get("PatientID", ""))
        return facts

    def suboperation(
        self, assoc: Association, facts: dict[str, str], sop_instance_uid: str, sop_class_uid: str
    ) -> int | None:
        """Fire a sub-operation fault for one object of a move: wait its delay, give its status.

        ``facts`` are the move's; the object's SOP class and (when a rule asks) its archived
        patient replace the move's own.
        """
        if not self.faults.covers("suboperation"):
            return None
        what = {**facts, "sop_class_uid": sop_class_uid}
        if self.faults.covers("suboperation", "patient_id"):
            row = self._archive().instance(sop_instance_uid)
            what["patient_id"] = row.patient_id if row is not None else ""
        firing = self.fire("suboperation", assoc, what)
        return firing.status if firing is not None else None
