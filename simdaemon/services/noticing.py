"""The findings rules a service runs on a request, and their reports (see simdaemon.findings).

The services call these at the points where they can still refuse a request: a C-FIND or
C-MOVE once its identifier is compiled, before any answer is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from simdaemon.findings import Finding, QueryRequest, query_findings
from simdaemon.services.context import ServiceContext
from simdaemon.services.peer import Peer

if TYPE_CHECKING:  # the query rules load with the first C-FIND or C-MOVE, not with the watch
    from simdaemon.query import Query

__all__ = ["check_query", "report_all"]


def report_all(
    context: ServiceContext, found: Iterable[Finding], peer: Peer, message_id: int | None
) -> Finding | None:
    """Record every finding; return the first one ``[findings] fail_on`` refuses, if any."""
    refusing: Finding | None = None
    for finding in found:
        refused = context.findings.report(finding, **peer.audit_fields(), message_id=message_id)
        if refused and refusing is None:
            refusing = finding
    return refusing


def check_query(
    context: ServiceContext,
    operation: str,
    identifier: Dataset,
    query: Query,
    peer: Peer,
    message_id: int | None,
    would_move: str = "",
) -> Finding | None:
    """Run the query rules on a compiled C-FIND/C-MOVE; return a refusing finding, if any."""
    from simdaemon.query import sent_values

    if not context.findings.enabled:
        return None
    request = QueryRequest(
        operation,
        query.model,
        query.level.name,
        sent_values(identifier),
        query.ignored,
        would_move,
    )
    return report_all(context, query_findings(request), peer, message_id)
