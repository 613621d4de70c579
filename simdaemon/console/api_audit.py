"""``/api/audit`` and ``/api/audit/stream``: what the daemon decided, filtered, and live.

``/api/findings`` lists the findings (:mod:`simdaemon.findings`) as
``daemon.audit.findings(rule=..., severity=...)`` does: audit events of operation
``finding``, whose ``outcome`` is the severity and whose ``advice`` is the finding's fix.

The stream is server-sent events (``text/event-stream``): one ``audit`` event per audit
event, its data the same JSON object ``/api/audit`` lists. ``?after=N`` starts after the
N-th event recorded (``/api/status``' ``audit_events``), so a page that rendered the trail
up to N misses nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import anyio.to_thread
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from simdaemon.audit import SEVERITIES, AuditEvent
from simdaemon.console.advice import advice
from simdaemon.console.control import Control

__all__ = ["OUTCOMES", "event_json", "router"]

#: Every ``outcome`` an event can have: a finding's is its severity.
OUTCOMES = ("accepted", "rejected", "refused", "aborted", "success", "warning", "failure",
            "cancel", "fired", *SEVERITIES)  # fmt: skip
_Severity = Literal["style", "portability", "nonconformant", "danger"]
if get_args(_Severity) != SEVERITIES:  # one list of severities, checked at import
    raise ImportError(f"the API's severities {get_args(_Severity)} differ from {SEVERITIES}")
_LEAST = "the least severity listed: " + ", ".join(SEVERITIES)
_OPERATIONS = "associate, echo, find, store, move, import, fault or finding"
#: How long one wait for new events lasts before the stream checks it is still wanted.
_WAIT_S = 0.25
#: Events one ``/api/audit`` answer holds at most (the newest).
MAX_LISTED = 10_000


def event_json(event: AuditEvent) -> dict[str, Any]:
    """An event as the API shows it: its fields, the line the log writes, what to change."""
    tip = advice(event.operation, event.outcome, event.rule, event.detail)
    return {**event.as_dict(), "text": event.describe(), "advice": tip}


def _aware(since: datetime | None) -> datetime | None:
    if since is not None and since.tzinfo is None:
        return since.replace(tzinfo=UTC)
    return since


def router(control: Control, closing: threading.Event) -> APIRouter:
    """The routes, bound to ``control``; the stream ends when ``closing`` is set."""
    api = APIRouter(prefix="/api")

    @api.get("/audit", summary="The audit trail kept in memory, oldest first, filtered")
    def get_audit(
        operation: str | None = Query(None, description=_OPERATIONS),
        calling_ae: str | None = Query(None, description="the peer's AE title"),
        outcome: str | None = Query(None, description=", ".join(OUTCOMES)),
        status: int | None = Query(None, ge=0, le=0xFFFF, description="DIMSE status"),
        since: datetime | None = Query(None, description="ISO 8601 time; UTC when no offset"),
        limit: int = Query(1000, ge=1, le=MAX_LISTED, description="the newest this many"),
    ) -> list[dict[str, Any]]:
        events = control.audit.events(
            operation, calling_ae=calling_ae, outcome=outcome, status=status, since=_aware(since)
        )
        return [event_json(e) for e in events[-limit:]]

    @api.get("/findings", summary="Findings, oldest first, of a rule, at least a severity")
    def get_findings(
        rule: str | None = Query(None, description="a rule's name, e.g. overlapping-dimse"),
        severity: _Severity | None = Query(None, description=_LEAST),
        calling_ae: str | None = Query(None, description="the peer's AE title"),
    ) -> list[dict[str, Any]]:
        found = control.audit.findings(rule, severity)
        return [event_json(e) for e in found if calling_ae in (None, e.calling_ae)][-MAX_LISTED:]

    @api.get(
        "/audit/stream",
        summary="New audit events as server-sent events (event: audit, data: JSON)",
        response_class=StreamingResponse,
    )
    async def stream_audit(
        after: int | None = Query(None, ge=0, description="start after this many events"),
        calling_ae: str | None = Query(None),
        outcome: str | None = Query(None),
    ) -> StreamingResponse:
        trail = control.audit
        seen = trail.recorded if after is None else after

        async def events() -> AsyncIterator[str]:
            nonlocal trail, seen
            yield ": simdaemon audit stream\n\n"
            while not closing.is_set():
                if control.audit is not trail:  # a restart made a new trail
                    trail, seen = control.audit, 0
                seen, new = await anyio.to_thread.run_sync(trail.wait_recorded, seen, _WAIT_S)
                for event in new:
                    if calling_ae is not None and event.calling_ae != calling_ae:
                        continue
                    if outcome is not None and event.outcome != outcome:
                        continue
                    data = json.dumps(event_json(event), ensure_ascii=False)
                    yield f"event: audit\ndata: {data}\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return api
