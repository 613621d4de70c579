"""C-ECHO: success for every accepted association (SPEC section 4)."""

from __future__ import annotations

import time

from pynetdicom import evt

from simdaemon import status
from simdaemon.audit import AuditTrail
from simdaemon.services.peer import describe_peer

__all__ = ["handle_echo"]


def handle_echo(event: evt.Event, audit: AuditTrail) -> int:
    """Answer a C-ECHO with success and record it in the audit trail."""
    started = time.perf_counter()
    peer = describe_peer(event.assoc)
    audit.record(
        "echo",
        **peer.audit_fields(),
        outcome="success",
        detail="verification answered",
        status=status.SUCCESS,
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    return status.SUCCESS
