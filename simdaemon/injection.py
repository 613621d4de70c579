"""Where injected faults meet the protocol: firing rules on requests, and carrying them out.

:mod:`simdaemon.faults` says which rule fires; this module gathers what a rule may match on
from each request, records every firing in the audit trail, waits injected delays (cut short
by ``stop()``), answers injected statuses and ends associations through
:mod:`simdaemon.net.sabotage`. Every request gets one :class:`~simdaemon.faults.FaultPlan` from
:meth:`Injector.plan`: :meth:`Injector.wrap` hands it to the DIMSE services beside their
:class:`~simdaemon.services.context.ServiceContext`, :meth:`Injector.move_plan` to C-MOVE, and
the association decision asks for its own. The services carry the plan out; nothing here
knows what an operation's units of work are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_MOVE

from simdaemon.archive import Archive
from simdaemon.audit import AuditTrail
from simdaemon.faults import NO_FAULTS, FaultPlan, Faults, Firing, Stopped
from simdaemon.net.sabotage import fail_association
from simdaemon.services.context import ServiceContext
from simdaemon.services.peer import describe_peer

__all__ = ["Injector", "identifier_facts"]

LOGGER = logging.getLogger(__name__)

_R = TypeVar("_R", covariant=True)


class Service(Protocol[_R]):
    """A DIMSE service as the daemon wires it: the request, the daemon's parts, the plan."""

    def __call__(self, event: evt.Event, context: ServiceContext, plan: FaultPlan, /) -> _R: ...


def identifier_facts(identifier: Dataset) -> dict[str, str]:
    """The level and patient ID of a query or move identifier, for fault rules to match."""
    facts = {"level": str(identifier.get("QueryRetrieveLevel", "") or "")}
    if "PatientID" in identifier:
        facts["patient_id"] = str(identifier.PatientID or "")
    return facts


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

    def plan(self, operation: str, assoc: Association, what: dict[str, str]) -> FaultPlan:
        """Fire a fault for one request and say, as a plan, what the request must suffer.

        The plan's delay is already waited; when ``stop()`` cut it short the association is
        aborted and the plan says ``stopped``. A move's plan also carries the sub-operation
        hook, whether or not a ``move`` rule fired.
        """
        plan = NO_FAULTS
        if self.faults.covers(operation):
            try:
                firing = self.fire(operation, assoc, what)
            except Stopped:
                return FaultPlan(stopped=True)
            if firing is not None:
                plan = FaultPlan(
                    status=firing.status,
                    comment=firing.comment,
                    refuse=firing.refuse,
                    abort_after=firing.abort_after,
                    close=firing.close,
                    abort=functools.partial(fail_association, assoc, firing.close),
                    record=functools.partial(self.record, assoc, firing),
                    drops=firing.drops,
                    drops_counted_failed=firing.fault.drop_as == "failed",
                    described=firing.fault.describe(),
                )
        if operation == "move" and self.faults.covers("suboperation"):
            hook = functools.partial(self.suboperation, assoc, what)
            plan = dataclasses.replace(plan, suboperation=hook)
        return plan

    def wrap(
        self, operation: str, handler: Service[_R], context: ServiceContext
    ) -> Callable[[evt.Event], _R]:
        """The event handler serving ``operation``: the service, its context and its plan."""

        def serve(event: evt.Event) -> _R:
            return handler(
                event, context, self.plan(operation, event.assoc, self.facts(operation, event))
            )

        serve.__name__ = getattr(handler, "__name__", "handler")
        return serve

    def move_plan(self, assoc: Association, request: C_MOVE, context_id: int) -> FaultPlan:
        """The fault plan of a C-MOVE (served outside pynetdicom's event handlers)."""
        facts = {
            "calling_ae": describe_peer(assoc).calling_ae,
            "sop_class_uid": str(request.AffectedSOPClassUID or ""),
        }
        if self.faults.covers("move") or self.faults.covers("suboperation"):
            from simdaemon.services.move import decode_identifier  # loaded by the move anyway

            with contextlib.suppress(Exception):  # a bad identifier is the move's to answer
                facts.update(identifier_facts(decode_identifier(assoc, request, context_id)))
        return self.plan("move", assoc, facts)

    def facts(self, operation: str, event: evt.Event) -> dict[str, str]:
        """What a fault rule for ``operation`` may match on in this request."""
        if not self.faults.covers(operation):
            return {}
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
