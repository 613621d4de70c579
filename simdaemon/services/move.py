"""C-MOVE: retrieval to a trusted entity, one association, counted sub-operations (SPEC 7).

The daemon serves C-MOVE itself rather than through pynetdicom's C-MOVE service class, whose
behaviour differs from the daemon's where clients notice: it answers 0xA801 when the
destination cannot be reached (the daemon: 0xA702), offers the destination only the
contexts configured on the AE, and cannot be told how to encode text for a destination.

A move resolves the Move Destination through the trusted entities only (unknown: 0xA801,
and no connection is made), compiles the identifier with the C-FIND matcher, refuses it
(0xC000, counting what it would have moved) when its level's unique key is empty, absent or
a wildcard unless ``[quirks] move_universal_match`` allows that, opens one
association to the entity's address with, per SOP class, a presentation context for each
transfer syntax its instances are stored in and one offering Explicit and Implicit VR Little
Endian, and sends each instance with the requester's AE title and
message ID as Move Originator. A pending 0xFF00 with the four counts follows every
sub-operation; a C-CANCEL is honoured between two of them (0xFE00). The final status is
0x0000 when every sub-operation completed, else 0xB000 with the Failed SOP Instance UID
List.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import cast

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_MOVE, C_STORE
from pynetdicom.dsutils import decode, encode

from simdaemon import lookup, status
from simdaemon.budget import Budget, Cancelled, OverBudget
from simdaemon.charset import Piece, export_dataset, export_pieces
from simdaemon.config import TrustedEntity
from simdaemon.faults import FaultPlan, Stopped
from simdaemon.findings import MoveFailure, move_destination_is_requester_without_listener
from simdaemon.net.commands import send_move_pending
from simdaemon.net.direct import DirectStore
from simdaemon.net.outgoing import (
    QuickAckAE,
    keep_responses,
    no_delay,
    quiet_standard_logging,
    recover_rejection,
)
from simdaemon.part10 import dataset_offset, split, wrap
from simdaemon.query import Level, Query, QueryError, compile_query, describe, universal_key
from simdaemon.reporting import refusal_comment
from simdaemon.services.context import ServiceContext
from simdaemon.services.noticing import check_query, report_all
from simdaemon.services.peer import describe_peer

__all__ = ["answer_fault", "decode_identifier", "fail_move", "serve_move"]

LOGGER = logging.getLogger(__name__)

PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
#: Sub-operation counts are US (16 bit) in the C-MOVE response.
MAX_SUBOPERATIONS = 65535
#: How long the destination may take: to accept the connection, to answer the association
#: request, to answer one C-STORE.
CONNECT_TIMEOUT_S = 5.0
ACSE_TIMEOUT_S = 10.0
DIMSE_TIMEOUT_S = 30.0
_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
#: The finding [quirks] move_universal_match overrides: a move the configuration allows.
UNIVERSAL = "move-universal-unique-key"
#: PS3.8: an association request holds at most 128 presentation contexts.
MAX_CONTEXTS = 128


@dataclass
class _Counts:
    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)

    def fail(self, uid: str) -> None:
        self.remaining -= 1
        self.failed += 1
        self.failed_uids.append(uid)

    def describe(self) -> str:
        return f"{self.completed} completed, {self.failed} failed, {self.warning} warning"


@dataclass(frozen=True)
class _Instance:
    uid: str
    sop_class: str
    path: Path
    transfer_syntax: str


class _Responder:
    """Sends the C-MOVE responses of one request on the requester's association."""

    def __init__(self, assoc: Association, request: C_MOVE, context_id: int) -> None:
        self.assoc = assoc
        self.request = request
        self.context_id = context_id
        syntax = assoc._accepted_cx[context_id].transfer_syntax[0]
        self._implicit = syntax.is_implicit_VR
        self._little = syntax.is_little_endian

    def send(
        self,
        code: int,
        counts: _Counts | None = None,
        *,
        comment: str = "",
        final: bool = True,
    ) -> None:
        if (
            code == status.PENDING
            and counts is not None
            and not final
            and not comment
            and send_move_pending(
                self.assoc,
                self.context_id,
                int(self.request.MessageID or 0),
                str(self.request.AffectedSOPClassUID),
                (counts.remaining, counts.completed, counts.failed, counts.warning),
            )
        ):
            return  # one per sub-operation: the command set encoded by hand
        rsp = C_MOVE()
        rsp.MessageIDBeingRespondedTo = self.request.MessageID
        rsp.AffectedSOPClassUID = self.request.AffectedSOPClassUID
        rsp.Status = code
        if comment:
            rsp.ErrorComment = comment[:64]  # type: ignore[assignment]
        if counts is not None:
            if not final or code == status.CANCELLED:
                rsp.NumberOfRemainingSuboperations = counts.remaining
            rsp.NumberOfCompletedSuboperations = counts.completed
            rsp.NumberOfFailedSuboperations = counts.failed
            rsp.NumberOfWarningSuboperations = counts.warning
            if final and counts.failed_uids:
                identifier = Dataset()
                identifier.FailedSOPInstanceUIDList = counts.failed_uids
                encoded = encode(identifier, self._implicit, self._little)
                rsp.Identifier = BytesIO(cast(bytes, encoded))
        self.assoc.dimse.send_msg(rsp, self.context_id)

    def cancelled(self) -> bool:
        """Whether the requester sent a C-CANCEL for this move (consumed when seen)."""
        cancels = self.assoc.dimse.cancel_req
        if self.request.MessageID in cancels:
            del cancels[self.request.MessageID]
            return True
        return False


def _destination_address(entity: TrustedEntity) -> str | None:
    """The single host a trusted entity's ``ip`` names; ``None`` for a CIDR block."""
    network = entity.network
    return str(network.network_address) if network.num_addresses == 1 else None


def _contexts(instances: list[_Instance]) -> list[tuple[str, list[str]]]:
    """The presentation contexts to propose: per SOP class, the stored syntaxes and a fallback.

    Each transfer syntax an instance is stored in gets a context of its own, so a receiver
    that prefers another one (pynetdicom's defaults accept Implicit VR first) still accepts
    the stored one and the stored bytes go out as they are; one more context per SOP class
    offers Explicit and Implicit VR Little Endian, for a receiver that refuses the stored
    syntax (pydicom converts then). PS3.8 allows 128 contexts: the fallbacks come first, then
    the stored syntaxes of the SOP classes in the order they are sent, while room remains.
    """
    classes = list(dict.fromkeys(i.sop_class for i in instances))[:MAX_CONTEXTS]
    contexts = [(sop_class, [str(s) for s in _SYNTAXES]) for sop_class in classes]
    wanted = set(classes)
    for sop_class, syntax in dict.fromkeys((i.sop_class, i.transfer_syntax) for i in instances):
        if len(contexts) == MAX_CONTEXTS:
            break
        if sop_class in wanted:
            contexts.append((sop_class, [syntax]))
    return contexts


def _connect(
    context: ServiceContext, entity: TrustedEntity, contexts: list[tuple[str, list[str]]]
) -> Association:
    """Open the one association to the destination, proposing ``contexts``."""
    ae = QuickAckAE(ae_title=context.ae_title)
    ae.connection_timeout = CONNECT_TIMEOUT_S
    ae.acse_timeout = ACSE_TIMEOUT_S
    ae.dimse_timeout = DIMSE_TIMEOUT_S
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    address = _destination_address(entity)
    assert address is not None
    store = ae.associate(
        address,
        entity.port,
        ae_title=entity.ae_title,
        evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)],
    )
    return quiet_standard_logging(keep_responses(recover_rejection(store)))


def _refusal(store: Association) -> str:
    answer = store.acceptor.primitive
    if store.is_rejected and answer is not None:
        return (
            f"it rejected the association (result {answer.result}, source "
            f"{answer.result_source}, reason {answer.diagnostic})"
        )
    if store.is_aborted:
        return "it aborted the association"
    return "no association (connection refused or timed out)"


def _outgoing(instance: _Instance, entity: TrustedEntity) -> Dataset:
    """The stored object as sent: text re-encoded in the destination's export charset."""
    dataset = dcmread(instance.path)
    return export_dataset(dataset, entity.export_charset.split("\\"))


def _as_file(dataset: Dataset) -> bytes:
    out = DicomBytesIO()
    dcmwrite(out, dataset, enforce_file_format=True)
    return out.getvalue()


class _Move:
    """One C-MOVE request being served: who asked, where to, and how it is answered.

    Holds no progress of its own: the steps pass counts along, and :meth:`finish` answers
    (unless the association is ending) and records the move's one audit event.
    """

    def __init__(self, context: ServiceContext, plan: FaultPlan, respond: _Responder) -> None:
        self.started = time.perf_counter()
        self.context = context
        self.plan = plan
        self.respond = respond
        self.assoc = respond.assoc
        self.request = respond.request
        self.context_id = respond.context_id
        self.peer = describe_peer(respond.assoc)
        self.destination_ae = str(respond.request.MoveDestination or "").strip()
        from_patient_root = respond.request.AffectedSOPClassUID == PATIENT_ROOT_MOVE
        self.model = "patient" if from_patient_root else "study"

    def finish(
        self,
        summary: str,
        code: int | None,
        detail: str,
        counts: _Counts | None = None,
        *,
        comment: str = "",
        rule: str = "move",
    ) -> None:
        """Answer ``code`` and record the move; ``code`` None: aborted, no answer."""
        if code is not None:
            self.respond.send(code, counts, comment=comment)
        outcome = status.outcome(code) if code is not None else "aborted"
        log = LOGGER.info if outcome in ("success", "cancel") else LOGGER.warning
        log("C-MOVE from '%s' to '%s': %s", self.peer.calling_ae, self.destination_ae, detail)
        self.context.audit.record(
            "move",
            **self.peer.audit_fields(),
            outcome=outcome,
            detail=f"{summary} to '{self.destination_ae}': {detail}",
            rule=rule,
            status=code,
            duration_ms=(time.perf_counter() - self.started) * 1000,
        )

    def interrupted(self, summary: str, counts: _Counts, at_the_end: bool = False) -> bool:
        """Whether the fault plan ends the association now (at the end: whatever the count)."""
        done = counts.completed + counts.failed + counts.warning
        if self.plan.abort_after is None or not (at_the_end or self.plan.aborts(done)):
            return False
        self.finish(summary, None, f"association ended by an injected fault after "
                    f"{counts.describe()}")  # fmt: skip
        self.plan.abort()  # recorded first: a client that sees the abort can read the audit
        return True


@dataclass(frozen=True)
class _Resolved:
    """What a move is about: its destination and the instances its identifier names."""

    summary: str
    entity: TrustedEntity
    instances: list[_Instance]


@dataclass(frozen=True)
class _Planned:
    """What a move will do: the instances to send, those counted failed unsent, the address."""

    summary: str
    entity: TrustedEntity
    address: str
    instances: list[_Instance]
    dropped: frozenset[str]


def serve_move(
    context: ServiceContext,
    plan: FaultPlan,
    assoc: Association,
    request: C_MOVE,
    context_id: int,
) -> None:
    """Serve one C-MOVE request on the association that received it, as the fault plan says.

    Three steps: resolve (identifier, destination, matching instances), plan (what to send,
    what a fault drops), send (the sub-operations, their counts, the final response). Each
    step answers and records the move itself when it ends it, and returns None then.
    """
    if plan.stopped:  # never answered: the association is aborted
        return
    if plan.status is not None:
        answer_fault(assoc, request, context_id, plan.status, plan.comment)
        return
    move = _Move(context, plan, _Responder(assoc, request, context_id))
    resolved = _resolve(move)
    if resolved is None:
        return
    planned = _plan(move, resolved)
    if planned is not None:
        _send_all(move, planned)


def _resolve(move: _Move) -> _Resolved | None:
    """Decode the identifier, check the destination and the quirks, find the instances."""
    try:
        identifier = decode_identifier(move.assoc, move.request, move.context_id)
    except Exception as error:  # noqa: BLE001 - a malformed identifier is the peer's data
        move.finish("(identifier not decoded)", status.IDENTIFIER_MISMATCH,
                    f"identifier cannot be decoded: {error}",
                    comment="identifier cannot be decoded")  # fmt: skip
        return None
    summary = describe(identifier)
    entity = move.context.entity(move.destination_ae)
    if entity is None:
        move.finish(
            summary,
            status.DESTINATION_UNKNOWN,
            f"'{move.destination_ae}' is not a trusted entity, so its address is unknown; "
            "no connection was made",
            comment="Move Destination is not a trusted entity",
        )
        return None
    try:
        query = compile_query(identifier, move.model, move.context.shape)
    except QueryError as error:
        move.finish(summary, status.UNABLE_TO_PROCESS, f"refused: {error}", comment=str(error))
        return None

    try:
        return _match(move, identifier, query, summary, entity)
    except Cancelled as stop:
        move.finish(summary, status.CANCELLED, f"{stop} before any sub-operation")
    except OverBudget as stop:
        move.finish(summary, status.UNABLE_TO_PROCESS, f"{stop}", comment=str(stop))
    return None


def _match(
    move: _Move, identifier: Dataset, query: Query, summary: str, entity: TrustedEntity
) -> _Resolved | None:
    """Find what the move sends, within the query budget (C-CANCEL and time end it)."""
    budget = Budget(move.context.limits.query_budget_s, move.respond.cancelled)
    quirks = move.context.quirks
    archive = move.context.archive()
    universal = universal_key(identifier, query.level)
    # Counted, never listed: the refusal (and its finding) cost one SQL count, not a matching.
    extent = lookup.extent(archive, query, budget.check) if universal is not None else None
    would_move = extent.describe(series=True) if extent is not None else ""
    refusing = check_query(move.context, "move", identifier, query, move.peer,
                           move.request.MessageID, would_move)  # fmt: skip
    if universal is not None and extent is not None and not quirks.move_universal_match:
        move.finish(
            summary,
            status.UNABLE_TO_PROCESS,
            f"refused: {universal.sentence(extent)}; no connection was made. Name the "
            f"objects by {universal.keyword}, or set [quirks] move_universal_match = true",
            comment=universal.comment(extent),
            rule="move_universal_match",
        )
        return None
    if refusing is not None and not (universal is not None and refusing.rule == UNIVERSAL):
        # [findings] fail_on refuses it (a universal key the quirk allows is moved, as asked).
        move.finish(summary, status.UNABLE_TO_PROCESS, f"refused: finding {refusing.sentence()}",
                    comment=refusal_comment(refusing), rule=refusing.rule)  # fmt: skip
        return None
    if universal is not None:  # the quirk allows it: say so wherever the move ends
        summary += (
            f" ({universal.keyword} {universal.how}: universal match allowed by [quirks] "
            "move_universal_match)"
        )
    instances = [
        _Instance(found.sop_instance_uid, found.sop_class_uid, found.path, found.transfer_syntax)
        for found in lookup.instances(archive, query, budget.check)
    ]
    if (
        quirks.image_move_requires_series_uid
        and query.level is Level.IMAGE
        and "SeriesInstanceUID" not in query.matched
        and any(i.sop_class != RT_PLAN_STORAGE for i in instances)
    ):
        move.finish(
            summary,
            status.QUIRK_REFUSED,
            "IMAGE-level move without SeriesInstanceUID refused for objects other than "
            "plans ([quirks] image_move_requires_series_uid)",
            comment="IMAGE move needs SeriesInstanceUID",
        )
        return None
    return _Resolved(summary, entity, instances)


def _plan(move: _Move, resolved: _Resolved) -> _Planned | None:
    """Choose what to send: a fault's drops, the 16-bit limit, nothing, an address to send to."""
    summary, entity, instances = resolved.summary, resolved.entity, resolved.instances
    dropped: frozenset[str] = frozenset()
    if move.plan.drops is not None:
        chosen = move.plan.drops(len(instances))
        dropped = frozenset(i.uid for i, drop in zip(instances, chosen, strict=True) if drop)
        if not move.plan.drops_counted_failed:  # "sometimes only sends a partial list"
            instances = [i for i in instances if i.uid not in dropped]
            dropped = frozenset()
    counts = _Counts(remaining=len(instances))
    if len(instances) > MAX_SUBOPERATIONS:
        move.finish(
            summary,
            status.UNABLE_TO_COUNT,
            f"{len(instances)} objects match; a move's counts are 16-bit, so at most "
            f"{MAX_SUBOPERATIONS} can be moved at once: move series by series",
            comment="more than 65535 sub-operations",
        )
        return None
    if not instances:
        if move.plan.abort_after is not None:
            move.finish(summary, None, "association ended by an injected fault; nothing matched")
            move.plan.abort()  # recorded first: a client that sees the abort can read the audit
            return None
        move.finish(summary, status.SUCCESS, "nothing matched: 0 sub-operations", counts)
        return None
    address = _destination_address(entity)
    if address is None:
        move.finish(
            summary,
            status.UNABLE_TO_PERFORM,
            f"trusted entity '{entity.ae_title}' has ip = '{entity.ip}', a network, not a "
            "host; set its ip to the address of its storage SCP",
            counts,
            comment="destination has no single address",
        )
        return None
    return _Planned(summary, entity, address, instances, dropped)


def _send_all(move: _Move, planned: _Planned) -> None:
    """Send the planned instances over one association; count them; answer the final status."""
    summary, entity, instances = planned.summary, planned.entity, planned.instances
    counts = _Counts(remaining=len(instances))
    store = _connect(move.context, entity, _contexts(instances))
    where = f"'{entity.ae_title}' at {planned.address}:{entity.port}"
    if not store.is_established:
        for instance in instances:
            counts.fail(instance.uid)
        _no_listener(move, planned, refused=store.acceptor.primitive is None)
        move.finish(
            summary,
            status.UNABLE_TO_PERFORM,
            f"cannot reach {where}: {_refusal(store)}",
            counts,
            comment="cannot associate with the Move Destination",
        )
        return
    accepted = {str(cx.abstract_syntax) for cx in store.accepted_contexts}
    direct = DirectStore(store, DIMSE_TIMEOUT_S)
    reader = _Reader()
    assoc = move.assoc
    # The pending response of a sub-operation goes out while the receiver stores the next
    # one, as does the reading of the slice after it: the daemon works while it waits. The
    # requester sees the same responses in the same order, each a sub-operation later.
    unreported: list[_Counts] = []

    def report() -> None:
        if unreported:
            move.respond.send(status.PENDING, unreported.pop(), final=False)

    try:
        for index, instance in enumerate(instances):
            if move.interrupted(summary, counts):
                return
            # The requester went away: stop sending. While the daemon serves a request, the
            # association's loop is paused, so a peer's abort is only seen in the ACSE queue.
            if not assoc.is_established or assoc.acse.is_aborted():
                move.finish(summary, None, f"the requester left after {counts.describe()}; "
                            "move stopped")  # fmt: skip
                return
            if move.respond.cancelled():
                report()
                move.finish(summary, status.CANCELLED, f"cancelled after {counts.describe()}",
                            counts)  # fmt: skip
                return
            injected = ""  # the outcome of an injected sub-operation status, if any
            if instance.uid not in planned.dropped:
                code = move.plan.suboperation(instance.uid, instance.sop_class)
                injected = status.outcome(code) if code is not None else ""
            if instance.uid in planned.dropped or injected == "failure":
                counts.fail(instance.uid)  # an injected fault: counted failed, never sent
            else:
                following = instances[index + 1] if index + 1 < len(instances) else None

                def meanwhile(following: _Instance | None = following) -> None:
                    report()
                    if following is not None:
                        reader.prefetch(following, entity)

                originator = (move.peer.calling_ae, int(move.request.MessageID or 1))
                _suboperation(move.context, direct, reader, instance, entity, accepted,
                              counts, originator, warn=injected == "warning",
                              meanwhile=meanwhile)  # fmt: skip
            report()  # the previous one's, unless it went out meanwhile
            unreported.append(dataclasses.replace(counts, failed_uids=[]))
            if move.plan.abort_after is not None:
                report()  # an injected abort counts sub-operations: each answered before it
        report()
    except Stopped:  # stop() ended an injected sub-operation delay and aborted the requester
        move.finish(summary, None, f"the daemon stopped after {counts.describe()}")
        raise
    finally:
        if store.is_established:
            store.release()
    if move.interrupted(summary, counts, at_the_end=True):  # fewer sub-operations than its count
        return
    code = status.SUCCESS if not (counts.failed or counts.warning) else status.SUBOPERATIONS_FAILED
    move.finish(summary, code, f"{len(instances)} sub-operation(s) to {where}: "
                f"{counts.describe()}", counts)  # fmt: skip


def _no_listener(move: _Move, planned: _Planned, *, refused: bool) -> None:
    """Report a move to the requester itself whose storage port nobody listens on."""
    if not move.context.findings.enabled:
        return
    where = f"{planned.address}:{planned.entity.port}"
    failure = MoveFailure(move.peer.calling_ae, planned.entity.ae_title, where, refused)
    finding = move_destination_is_requester_without_listener(failure)
    if finding is not None:
        report_all(move.context, [finding], move.peer, move.request.MessageID)


def answer_fault(
    assoc: Association, request: C_MOVE, context_id: int, code: int, comment: str
) -> None:
    """Answer a C-MOVE with an injected fault's status, before any sub-operation."""
    _Responder(assoc, request, context_id).send(code, _Counts(remaining=0), comment=comment)


def fail_move(assoc: Association, request: C_MOVE, context_id: int) -> None:
    """Answer 0xC511 after a failure of the daemon itself, so the requester is not left waiting."""
    _Responder(assoc, request, context_id).send(
        status.INTERNAL_FAILURE, comment="the daemon failed; see its log"
    )


def decode_identifier(assoc: Association, request: C_MOVE, context_id: int) -> Dataset:
    """The request's identifier, decoded in its presentation context's transfer syntax."""
    syntax = assoc._accepted_cx[context_id].transfer_syntax[0]
    return decode(
        cast(BytesIO, request.Identifier),
        syntax.is_implicit_VR,
        syntax.is_little_endian,
        syntax.is_deflated,
    )


def _send(
    context: ServiceContext,
    direct: DirectStore,
    reader: _Reader,
    instance: _Instance,
    entity: TrustedEntity,
    originator: tuple[str, int],
    meanwhile: Callable[[], None] | None = None,
) -> Dataset | None:
    """C-STORE one instance; return the response's status data set (None: no response).

    The stored bytes go out as they are - no parsing, no encoding - when the destination
    accepted the stored transfer syntax and the text needs no new character set (at most a
    new Specific Character Set element, for ASCII text): straight on the association's
    socket (:class:`DirectStore`), which runs ``meanwhile`` while the receiver works.
    Otherwise pydicom re-encodes and pynetdicom sends (``meanwhile`` is not run).
    """
    store = direct.assoc
    presentation = next(
        (
            cx
            for cx in store.accepted_contexts
            if cx.abstract_syntax == instance.sop_class
            and cx.transfer_syntax[0] == instance.transfer_syntax
        ),
        None,
    )
    pieces = _raw_pieces(instance, entity, reader) if presentation is not None else None
    if presentation is None or pieces is None:
        dataset = _outgoing(instance, entity)
        if context.investigator.settings.save_all_iods:
            context.investigator.save_iod("out", entity.ae_title, instance.uid, _as_file(dataset))
        return store.send_c_store(
            dataset, originator_aet=originator[0], originator_id=originator[1]
        )
    if context.investigator.settings.save_all_iods:
        context.investigator.save_iod(
            "out", entity.ae_title, instance.uid,
            wrap(b"".join(pieces), sop_class_uid=instance.sop_class,
                 sop_instance_uid=instance.uid, transfer_syntax=instance.transfer_syntax,
                 source_ae=context.ae_title),
        )  # fmt: skip
    context_id = cast(int, presentation.context_id)
    if direct.usable:
        code = direct.store(
            context_id, instance.sop_class, instance.uid, pieces, originator, meanwhile
        )
    else:  # not plain TCP, or something pending on the association: through pynetdicom
        request = C_STORE()
        request.MessageID = 1
        request.AffectedSOPClassUID = instance.sop_class
        request.AffectedSOPInstanceUID = instance.uid
        request.Priority = 2
        request.MoveOriginatorApplicationEntityTitle = originator[0]
        request.MoveOriginatorMessageID = originator[1]
        request.DataSet = BytesIO(b"".join(pieces))
        store.dimse.send_msg(request, context_id)
        _, response = store.dimse.get_msg(block=True)
        if response is None:
            store.abort()  # the DIMSE timeout passed: as send_c_store does
        code = None if response is None else cast(int, response.Status)
    if code is None:
        return None
    answer = Dataset()
    answer.Status = code
    return answer


class _Reader:
    """Reads stored files into one buffer that every file of a move reuses.

    A fresh 512 KiB buffer per slice costs its page faults on every read (a fifth of the
    daemon's CPU per moved slice); a reused one is faulted in once. What :meth:`read`
    returns is valid until the next call: the slice is sent before the next is read.

    :meth:`prefetch` prepares the next slice while the receiver stores the current one (the
    current one is out of the buffer by then: the kernel holds it); :func:`_raw_pieces` takes
    what was prepared for its instance instead of reading again.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._prepared: tuple[str, list[Piece] | None] | None = None

    def prefetch(self, instance: _Instance, entity: TrustedEntity) -> None:
        """Prepare ``instance``'s pieces now; an error is left for the real attempt to meet."""
        self._prepared = None
        try:
            self._prepared = (instance.uid, _raw_pieces(instance, entity, self))
        except Exception:  # noqa: BLE001 - read again when its turn comes, and met there
            self._prepared = None

    def take(self, uid: str) -> tuple[bool, list[Piece] | None]:
        """(True, pieces) when :meth:`prefetch` prepared ``uid``'s; (False, None) otherwise."""
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared[0] != uid:
            return False, None
        return True, prepared[1]

    def read(self, path: Path) -> memoryview:
        with open(path, "rb", buffering=0) as stored:
            size = os.fstat(stored.fileno()).st_size
            if size > len(self._buffer):
                self._buffer = bytearray(size)  # a new one: views of the old stay valid
            view = memoryview(self._buffer)[:size]
            done = 0
            while done < size:
                count = stored.readinto(view[done:])
                if not count:
                    break  # shorter than it was a moment ago: what is there
                done += count
            return view[:done]


def _raw_pieces(instance: _Instance, entity: TrustedEntity, reader: _Reader) -> list[Piece] | None:
    """The stored data set, fit to send as it is, in pieces; ``None`` if text must change."""
    found, pieces = reader.take(instance.uid)
    if found:
        return pieces
    syntax = UID(instance.transfer_syntax)
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        return None
    content = reader.read(instance.path)
    offset = dataset_offset(content)
    data = content[offset:] if offset is not None else split(bytes(content))[1]
    return export_pieces(data, syntax.is_implicit_VR, entity.export_charset.split("\\"))


def _suboperation(
    context: ServiceContext,
    direct: DirectStore,
    reader: _Reader,
    instance: _Instance,
    entity: TrustedEntity,
    accepted: set[str],
    counts: _Counts,
    originator: tuple[str, int],
    warn: bool = False,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Send one instance; count it completed, warning or failed (``warn``: no better).

    ``meanwhile`` runs while the receiver stores it, when it goes out as stored."""
    if not direct.assoc.is_established:
        counts.fail(instance.uid)
        return
    if instance.sop_class not in accepted:
        LOGGER.warning(
            "'%s' did not accept SOP class %s: %s counted failed",
            entity.ae_title,
            instance.sop_class,
            instance.uid,
        )
        counts.fail(instance.uid)
        return
    try:
        answer = _send(context, direct, reader, instance, entity, originator, meanwhile)
    except (OSError, ValueError) as error:
        LOGGER.error("cannot read %s from the archive: %r", instance.uid, error)
        counts.fail(instance.uid)
        return
    code = answer.get("Status") if answer else None
    if code is None:
        counts.fail(instance.uid)
        return
    kind = status.outcome(int(code))
    if warn and kind == "success":  # an injected warning
        kind = "warning"
    counts.remaining -= 1
    if kind == "success":
        counts.completed += 1
    elif kind == "warning":
        counts.warning += 1
    else:
        counts.failed += 1
        counts.failed_uids.append(instance.uid)
