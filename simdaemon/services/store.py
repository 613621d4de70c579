"""C-STORE: each object received runs through the import pipeline (SPEC section 5).

The answer is given only after the importer returns, which is after the file is in place
and its rows are committed: an acknowledged object is in the archive.
"""

from __future__ import annotations

import logging
import time
from io import BytesIO
from typing import cast

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_STORE

from simdaemon import status
from simdaemon.faults import FaultPlan
from simdaemon.importer import Received
from simdaemon.services.context import ServiceContext, status_answer
from simdaemon.services.noticing import report_all
from simdaemon.services.peer import describe_peer

__all__ = ["handle_store"]

LOGGER = logging.getLogger(__name__)


def handle_store(event: evt.Event, context: ServiceContext, plan: FaultPlan) -> Dataset | int:
    """Import the object of a C-STORE request; answer its status with an Error Comment.

    The fault plan may answer another status instead of importing, or end the association
    before the import (``abort_after`` 0) or after it, instead of the answer (1).
    """
    if plan.status is not None:
        return status_answer(plan.status, plan.comment)
    if plan.stopped or plan.aborts(0):
        plan.abort()
        return status.SUCCESS  # never sent: pynetdicom sees the association is no longer up
    answer = _store(event, context)
    if plan.aborts(1):
        plan.abort()
        return status.SUCCESS  # imported, then aborted instead of answered
    return answer


def _store(event: evt.Event, context: ServiceContext) -> Dataset:
    """Run the request's object through the import pipeline and record the outcome."""
    started = time.perf_counter()
    peer = describe_peer(event.assoc)
    request = cast(C_STORE, event.request)
    received = Received(
        dataset=cast(BytesIO, request.DataSet).getvalue(),
        transfer_syntax=str(event.context.transfer_syntax),
        calling_ae=peer.calling_ae,
        peer=peer.address,
        sop_class_uid=str(request.AffectedSOPClassUID or ""),
        sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
        context_sop_class=str(event.context.abstract_syntax),
    )
    result = context.importer().run(received, context.entity(peer.calling_ae))
    if result.findings:  # refused by the importer already when [findings] fail_on says so
        report_all(context, result.findings, peer, request.MessageID)
    context.audit.record(
        "store",
        **peer.audit_fields(),
        detail=f"SOP Instance {result.sop_instance_uid or '(none)'}: {result.detail}",
        duration_ms=(time.perf_counter() - started) * 1000,
        **result.audit_fields(),
    )
    if result.stored:
        LOGGER.debug("stored %s from '%s'", result.sop_instance_uid, peer.calling_ae)
    else:
        LOGGER.warning(
            "import from '%s' failed with 0x%04X: %s", peer.calling_ae, result.status, result.detail
        )
    failed = result.answered != status.SUCCESS
    return status_answer(result.answered, result.comment if failed else "")
