"""C-FIND: Study Root and Patient Root queries answered from the archive (SPEC section 6).

Rows stream from SQLite as the responses are sent, so a query matching a hundred thousand
instances starts answering at once and holds a batch in memory, not the result. Every pending
response is 0xFF00 (Evil DICOM takes 0xFF01 for final). A C-CANCEL is seen between two
responses and answered 0xFE00.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from typing import cast

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_FIND

from simdaemon import lookup, status
from simdaemon.archive import Archive
from simdaemon.budget import Budget, Cancelled, OverBudget
from simdaemon.faults import FaultPlan
from simdaemon.lookup import Check, IndexRow
from simdaemon.query import Query, QueryError, ReturnKey, compile_query, describe
from simdaemon.reporting import refusal_comment
from simdaemon.services.context import ServiceContext, status_answer
from simdaemon.services.noticing import check_query
from simdaemon.services.peer import describe_peer

__all__ = ["answer", "handle_find", "run_query"]

LOGGER = logging.getLogger(__name__)

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
#: The export character set of a caller that is not a trusted entity (local tools).
DEFAULT_EXPORT_CHARSET = "ISO_IR 192"

Response = tuple[int | Dataset, Dataset | None]


def _derived(stored: Dataset, keyword: str) -> DataElement | None:
    """Keys ARIA answers from elsewhere in the object than where the key itself lives.

    NumberOfBeams (300A,0080) sits in an RT Plan's Fraction Group Sequence; ARIA returns it
    at the top of the response, and Evil DICOM's FindImages reads it there.
    """
    if keyword == "NumberOfBeams":
        groups = stored.get("FractionGroupSequence")
        if groups and "NumberOfBeams" in groups[0]:
            return DataElement(0x300A0080, "IS", groups[0].NumberOfBeams)
        beams = stored.get("BeamSequence")
        if beams is not None:
            return DataElement(0x300A0080, "IS", len(beams))
    return None


def _value(key: ReturnKey, row: IndexRow) -> DataElement:
    """The element answering ``key`` for one matched row."""
    requested = key.element
    if key.source == "index":
        value = row.value(key.keyword)
        return DataElement(requested.tag, requested.VR, "" if value is None else value)
    stored = row.stored
    if key.source == "attribute" and stored is not None and requested.tag in stored:
        found = stored[requested.tag]
        if found.VR != "SQ":
            return found
        query_items = requested.value
        if not len(query_items) or not len(query_items[0]):
            return found
        wanted = [element.tag for element in query_items[0]]
        reduced = DicomSequence()
        for item in found.value:
            kept = Dataset()
            for tag in wanted:
                if tag in item:
                    kept.add(item[tag])
            reduced.append(kept)
        return DataElement(requested.tag, "SQ", reduced)
    if key.source == "attribute" and stored is not None:
        derived = _derived(stored, key.keyword)
        if derived is not None:
            return derived
    if requested.VR == "SQ":
        return DataElement(requested.tag, "SQ", DicomSequence())
    return DataElement(requested.tag, requested.VR, None)


def answer(query: Query, row: IndexRow, charset: str, retrieve_ae: str) -> Dataset:
    """One response identifier: exactly the requested keys, plus level, charset and AE."""
    identifier = Dataset()
    identifier.SpecificCharacterSet = charset
    identifier.QueryRetrieveLevel = query.level.name
    identifier.RetrieveAETitle = retrieve_ae
    for key in query.keys:
        identifier.add(_value(key, row))
    return identifier


def run_query(
    archive: Archive, query: Query, charset: str, retrieve_ae: str, check: Check | None = None
) -> Generator[Dataset, None, None]:
    """Stream the response identifiers of a query, as the archive's lookup finds its rows."""
    rows = lookup.find(archive, query, check)
    try:
        for row in rows:
            yield answer(query, row, charset, retrieve_ae)
    finally:
        rows.close()


def handle_find(event: evt.Event, context: ServiceContext, plan: FaultPlan) -> Iterator[Response]:
    """Answer a C-FIND from the archive, as the fault plan allows; record it in the audit trail.

    The plan may answer another status instead of searching, or end the association after
    ``abort_after`` matches (its unit: a match sent).
    """
    if plan.stopped:  # never answered: the association is aborted
        return iter(())
    if plan.status is not None:
        return iter([(status_answer(plan.status, plan.comment), None)])
    responses = _search(event, context, ends_in_abort=plan.abort_after is not None)
    if plan.abort_after is None:
        return responses
    return _abort_after_matches(responses, plan.abort_after, plan.abort)


def _abort_after_matches(
    results: Iterator[Response], limit: int, abort: Callable[[], None]
) -> Iterator[Response]:
    """Pass on ``limit`` pending responses, then end the association as the fault plan says.

    With fewer matches the abort replaces the final response; either way the client never
    hears that its query finished. The search is closed first, so its audit event (outcome
    ``aborted``) is recorded before the peer can see the abort.
    """
    try:
        for _ in range(limit):
            item = next(results, None)
            if item is None or int(getattr(item[0], "Status", item[0])) != status.PENDING:
                break
            yield item
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    abort()


def _search(
    event: evt.Event, context: ServiceContext, *, ends_in_abort: bool
) -> Generator[Response, None, None]:
    """Stream the answers of a C-FIND from the archive; record it in the audit trail.

    ``ends_in_abort``: an injected fault will abort the association instead of sending the
    final response, so the search is recorded as aborted however it ends.
    """
    started = time.perf_counter()
    peer = describe_peer(event.assoc)
    request = cast(C_FIND, event.request)
    model = "patient" if request.AffectedSOPClassUID == PATIENT_ROOT_FIND else "study"
    outcome_status, detail, matched = status.SUCCESS, "", 0
    abandoned = ends_in_abort  # the association ends before the final response

    def record() -> None:
        context.audit.record(
            "find",
            **peer.audit_fields(),
            outcome="aborted" if abandoned else status.outcome(outcome_status),
            detail=detail,
            rule="query",
            status=None if abandoned else outcome_status,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    try:
        identifier = event.identifier
        summary = describe(identifier)
        query = compile_query(identifier, model, context.shape)
    except QueryError as error:
        outcome_status, detail = status.UNABLE_TO_PROCESS, f"{model} root query refused: {error}"
        LOGGER.warning("C-FIND from '%s' refused: %s", peer.calling_ae, error)
        record()
        yield status_answer(status.UNABLE_TO_PROCESS, str(error)), None
        return
    except Exception as error:  # noqa: BLE001 - a malformed identifier is the peer's data
        outcome_status = status.UNABLE_TO_PROCESS
        detail = f"identifier cannot be decoded: {type(error).__name__}: {error}"
        LOGGER.warning("C-FIND from '%s': %s", peer.calling_ae, detail)
        record()
        yield status_answer(status.UNABLE_TO_PROCESS, "identifier cannot be decoded"), None
        return

    refusing = check_query(context, "find", identifier, query, peer, request.MessageID)
    if refusing is not None:  # [findings] fail_on: refused before any match is sent
        outcome_status = status.UNABLE_TO_PROCESS
        detail = f"{model} root query refused: finding {refusing.sentence()}"
        record()
        yield status_answer(status.UNABLE_TO_PROCESS, refusal_comment(refusing)), None
        return

    source = context.entity(peer.calling_ae)
    charset = source.export_charset if source is not None else DEFAULT_EXPORT_CHARSET
    root = "Patient Root" if model == "patient" else "Study Root"
    ignored = f"; ignored {', '.join(query.ignored)}" if query.ignored else ""
    budget = Budget(context.limits.query_budget_s, lambda: bool(event.is_cancelled))
    responses = run_query(context.archive(), query, charset, context.ae_title, budget.check)
    stopped = ""  # why the budget ended the query
    try:
        for response in responses:
            if event.is_cancelled:
                outcome_status = status.CANCELLED
                break
            matched += 1
            yield status.PENDING, response
        else:
            if event.is_cancelled:
                outcome_status = status.CANCELLED
    except Cancelled:
        outcome_status = status.CANCELLED
    except OverBudget as reason:
        outcome_status, stopped = status.UNABLE_TO_PROCESS, str(reason)
        LOGGER.warning("C-FIND from '%s': %s", peer.calling_ae, reason)
    except GeneratorExit:  # closed early: the association was aborted or released under it
        abandoned = True
        raise
    finally:
        responses.close()
        cancelled = " (cancelled)" if outcome_status == status.CANCELLED else ""
        ended = " (association ended before the final response)" if abandoned else ""
        ended += f" ({stopped})" if stopped else ""
        detail = (
            f"{query.level.name} {root}: {summary}{ignored}: {matched} match(es){cancelled}{ended}"
        )
        record()
    if outcome_status == status.CANCELLED:
        yield status.CANCELLED, None
    elif stopped:
        yield status_answer(status.UNABLE_TO_PROCESS, stopped), None
