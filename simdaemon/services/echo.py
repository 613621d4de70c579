"""C-ECHO: success for every accepted association (SPEC section 4)."""

from __future__ import annotations

import time

from pydicom.dataset import Dataset
from pynetdicom import evt

from simdaemon import status
from simdaemon.faults import FaultPlan
from simdaemon.services.context import ServiceContext, status_answer
from simdaemon.services.peer import describe_peer

__all__ = ["handle_echo"]


def handle_echo(event: evt.Event, context: ServiceContext, plan: FaultPlan) -> int | Dataset:
    """Answer a C-ECHO with success and record it in the audit trail.

    The fault plan may answer another status instead, or end the association (its one
    unit: the answer); either way no echo is recorded, only the fault.
    """
    if plan.status is not None:
        return status_answer(plan.status, plan.comment)
    if plan.stopped or plan.aborts(0):
        plan.abort()
        return status.SUCCESS  # never sent: pynetdicom sees the association is no longer up
    started = time.perf_counter()
    peer = describe_peer(event.assoc)
    context.audit.record(
        "echo",
        **peer.audit_fields(),
        outcome="success",
        detail="verification answered",
        status=status.SUCCESS,
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    return status.SUCCESS
