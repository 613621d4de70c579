"""The associations the daemon accepts: event-driven DUL and association loops.

pynetdicom's DUL thread polls: when a loop finds nothing to do it sleeps 1 ms, so every PDU
a peer sends and every PDU the daemon answers waits up to a millisecond before it moves.
The association thread polls the same way for complete DIMSE messages, adding up to another
millisecond to every request; for a CT series sent slice by slice that is a fifth of the
time pynetdicom itself needs per slice.
Shortening the sleep costs more than it saves (on two cores the busy thread competes for the
GIL with the handler threads). The DUL loop here instead waits in ``select`` on the
connection's socket and on a wake-up socket that :meth:`EventDrivenDUL.send_pdu` writes to,
so it reacts at once to both directions and sleeps soundly when the association is idle; the
association loop waits on an event that its queues set whenever something is put on them.
A response does not even wait for the DUL loop: the association thread sends it itself when
nothing is queued before it (:meth:`EventDrivenDUL._send_now`).

:class:`EventDrivenRequestHandler` is what the daemon's listener hands each connection: it
builds pynetdicom's acceptor association, then swaps in these loops. Besides speed, they
release the association thread at once when a connection closes before any A-ASSOCIATE-RQ
(pynetdicom keeps it waiting for the whole ACSE timeout, holding a place under
``max_associations``), mark an association as ending before the peer can see its end, carry
out injected faults (:mod:`simdaemon.net.sabotage`) and hand the requests the daemon serves
itself (C-MOVE) to the daemon. Exactly what differs from pynetdicom, function by function,
is listed in :mod:`simdaemon.net`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import struct
import threading
import time
import types
from collections.abc import Callable
from typing import Any

from pynetdicom import evt
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import A_ABORT, A_ASSOCIATE, A_P_ABORT, A_RELEASE, P_DATA
from pynetdicom.transport import RequestHandler

from simdaemon.net.commands import hand_encode_store_responses
from simdaemon.net.guard import Guard, Incident, escape_title
from simdaemon.net.outgoing import quick_ack, quiet_standard_logging
from simdaemon.net.sabotage import EndAsFault, Saboteur

__all__ = [
    "EventDrivenDUL",
    "EventDrivenRequestHandler",
    "end_association",
    "force_close",
    "is_serving",
]

LOGGER = logging.getLogger(__name__)

#: Upper bound on one wait, so the ARTIM and idle timers and a kill request are still
#: checked on time while nothing arrives.
MAX_WAIT_S = 0.05
#: Upper bound on one wait before the A-ASSOCIATE-RQ: then only the request deadline and
#: the ARTIM timer are due (waited for exactly), and whatever else wakes the loop itself.
#: Fifty idle connections polling every 50 ms would cost a trusted client a third of its
#: echo latency on two cores.
PRE_REQUEST_MAX_WAIT_S = 1.0


#: Largest P-DATA (its values' bytes) a thread other than the reactor sends itself; a larger
#: one is queued for the reactor (see :meth:`EventDrivenDUL._send_now`). A socket Linux calls
#: writable has at least a third of its send buffer free, 5 KiB of the smallest default
#: (16 KiB), so one this size goes out without blocking: C-STORE and C-ECHO responses, C-MOVE
#: progress and most C-FIND matches.
SEND_NOW_MAX = 4 * 1024
#: Longest that thread waits for the reactor to finish its turn before queueing instead.
SEND_NOW_WAIT_S = 0.001
#: Most bytes read from a socket at once; a PDU's buffer grows by what actually arrived.
READ_CHUNK = 256 * 1024
#: ``recv`` without blocking where the platform has it; elsewhere one read per ready socket.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_PDU_TYPES = frozenset(range(0x01, 0x08))
#: A-ABORT reason "invalid PDU parameter value" (PS3.8 Table 9-26).
_INVALID_PARAMETER = 0x06
#: Status "Refused: SOP Class not supported" (PS3.7 Annex C), for a request on a context
#: of another service.
SOP_CLASS_NOT_SUPPORTED = 0x0122
_COMMANDS: dict[type, str] = {
    C_ECHO: "C-ECHO",
    C_FIND: "C-FIND",
    C_GET: "C-GET",
    C_MOVE: "C-MOVE",
    C_STORE: "C-STORE",
}


class _WakingQueue(queue.Queue[Any]):
    """A queue that sets an event whenever something is put on it."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self._wake_event = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake_event.set()


#: States after an abort or a closed connection: nothing from the user has a place there.
_ENDED = frozenset({"Sta1", "Sta13"})


class EventDrivenDUL(DULServiceProvider):
    """A DUL service provider that waits on its socket instead of sleeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Set when the association thread has something to look at.
        self.user_wake = threading.Event()
        self.to_user_queue = _WakingQueue(self.user_wake)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._gave_up = False
        self.ending = False
        #: Carries out injected faults (:mod:`simdaemon.net.sabotage`).
        self.saboteur = Saboteur(self, self._mark_ending)
        #: The limits and the daemon's reporting (replaced by the request handler).
        self.guard = Guard()
        #: The PDU being received: its bytes so far, and its full size once the header is in.
        self._incoming = bytearray()
        self._pdu_size: int | None = None
        self._request_received = False
        #: When the A-ASSOCIATE-RQ must be complete (set by the request handler).
        self.request_deadline: float | None = None
        #: Held by the reactor for each turn of the state machine, and by another thread
        #: sending a P-DATA itself (:meth:`_send_now`): one of them acts at a time.
        self._machine = threading.Lock()
        #: Set (under that lock) when the reactor has stopped, whatever stopped it.
        self._ended = False

    def give_up_waiting_for_request(self) -> None:
        """Release an association thread still waiting for its A-ASSOCIATE-RQ.

        pynetdicom's acceptor treats ``None`` from the DUL as "no request within the ACSE
        timeout": it closes the connection and ends the thread. Does nothing once a request
        has arrived.
        """
        if self._gave_up or self.assoc.requestor.primitive is not None:
            return
        self._gave_up = True
        self.to_user_queue.put(None)  # type: ignore[arg-type]

    def send_pdu(self, primitive: Any) -> None:
        """Queue a primitive for the peer and wake the reactor to send it.

        A primitive that ends the association (release response, abort, reject) marks it
        :attr:`ending` *before* the peer can see it, so a peer that reconnects at once is
        never counted against the limit by its previous, still-closing association.
        """
        if type(primitive) is P_DATA and self._send_now(primitive):
            return
        if isinstance(primitive, (A_ABORT, A_P_ABORT, EndAsFault)) or (
            isinstance(primitive, (A_RELEASE, A_ASSOCIATE)) and primitive.result not in (None, 0x00)
        ):
            self.ending = True
        super().send_pdu(primitive)
        self._wake()

    def _send_now(self, primitive: P_DATA) -> bool:
        """Send a P-DATA from the calling thread, as the reactor would; False if it may not.

        Queueing it and waking the reactor costs two thread switches, about 0.3 ms of every
        response on two cores (a C-STORE-RSP to storescu, which waits for each). The state
        machine's own action runs here instead (Sta6 + Evt9, DT-1: send the P-DATA-TF; the
        state stays Sta6), under the lock the reactor holds for each of its turns, and only
        when the reactor would run it next itself: established, no event waiting, nothing
        queued before it (checked and queued at once, under the queue's own lock, against
        another thread's A-ABORT). Otherwise the caller queues it, as upstream, when:

        - it runs on the reactor's thread;
        - the socket would not take the bytes at once, or something is queued: a peer that
          reads slowly holds back the reactor, as upstream, not the thread producing
          responses (a C-FIND's query budget keeps counting the query, not the peer);
        - the reactor's turn lasts longer than :data:`SEND_NOW_WAIT_S` (one is a few
          microseconds unless it is blocked in a send), or the lock is this thread's own
          (an event handler sending from inside a send);
        - the P-DATA is larger than :data:`SEND_NOW_MAX`.

        A send that fails on a closed connection queues Evt17 (pynetdicom's socket), for the
        reactor, which is woken; an exception in the action is logged and aborts the
        association (reason 0x00), as the reactor does for one outside the state machine.
        It is not reported as the peer's malformed PDU: it is not the peer's bytes.
        """
        if threading.current_thread() is self or not self._small(primitive):
            return False
        if self.to_provider_queue.queue or not self._writable():
            return False  # the reactor is behind, or the peer is: no waiting for either
        if not self._machine.acquire(timeout=SEND_NOW_WAIT_S):
            return False
        try:
            if self._kill_thread or self._ended or self.state_machine.current_state != "Sta6":
                return False
            if not self.event_queue.empty():
                return False
            waiting = self.to_provider_queue
            with waiting.mutex:
                if waiting.queue:
                    return False
                waiting.queue.append(primitive)
            try:
                self.state_machine.do_action("Evt9")
            except Exception as exc:  # noqa: BLE001 - as on the reactor: abort, never corrupt state
                LOGGER.error("exception sending a P-DATA, aborting association: %r", exc)
                self._abort_after_exception(0x00)
                self._wake()  # the reactor sees it is killed
                return True
            if not self.event_queue.empty():  # the send failed (Evt17): the reactor acts on it
                self._wake()
            return True
        finally:
            self._machine.release()

    @staticmethod
    def _small(primitive: P_DATA) -> bool:
        """Whether a P-DATA is a response-sized one (what the daemon sends most)."""
        return (
            sum(len(value) for _, value in primitive.presentation_data_value_list) <= SEND_NOW_MAX
        )

    def _writable(self) -> bool:
        """Whether the connection's socket would take bytes now, without waiting."""
        raw = self.socket.socket if self.socket is not None else None
        if raw is None or raw.fileno() < 0:
            return False
        try:
            _, ready, _ = select.select([], [raw], [], 0)
        except (OSError, ValueError):
            return False
        return bool(ready)

    def kill_dul(self) -> None:
        """Stop the reactor without waiting for its next timeout."""
        super().kill_dul()
        self._wake()
        self.user_wake.set()

    def _process_recv_primitive(self) -> bool:
        """Hand the next primitive to the state machine; carry out an :class:`EndAsFault` here.

        Once the association has been aborted or its connection closed (Sta13, Sta1), what
        the association thread still queued - responses, a second abort, a release response
        racing ``stop()`` - has no place in the state machine (pynetdicom would raise on it
        and end this thread): it is dropped.
        """
        try:
            primitive = self.to_provider_queue.queue[0]
        except IndexError:
            return False
        if self.state_machine.current_state in _ENDED:
            self.to_provider_queue.get(block=False)
            return True
        if not isinstance(primitive, EndAsFault):
            return bool(super()._process_recv_primitive())
        self.to_provider_queue.get(block=False)
        self.saboteur.end(primitive.close)
        return True

    def _read_pdu_data(self) -> None:
        """Read what the peer sent, without blocking; queue the PDU's event once it is whole.

        Replaces pynetdicom's reader, which blocks in ``recv`` until the whole PDU is in (a
        peer that stops mid-PDU holds the thread forever, out of reach of every timer) and
        trusts the header's length (pynetdicom's buffer grows with the data, ours allocated
        the claim). Here each call reads what has arrived, up to the end of the current
        PDU, into a buffer grown by what arrived; the header's length is checked against
        the limit for the association's phase first (:meth:`_limit`), and a PDU over it
        aborts the association. As upstream: an unknown PDU type is Evt19, a closed
        connection Evt17, a PDU that fails to decode Evt19.
        """
        raw = self.socket.socket if self.socket is not None else None
        if raw is None:
            self.event_queue.put("Evt17")
            return
        while True:
            have = len(self._incoming)
            want = 6 - have if self._pdu_size is None else self._pdu_size - have
            try:
                chunk = raw.recv(min(want, READ_CHUNK), _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return  # nothing more yet; the loop waits in select for the rest
            except OSError:  # reset by the peer, or closed under us
                self._discard_incoming()
                self.event_queue.put("Evt17")
                return
            if not chunk:
                if self._incoming:
                    LOGGER.info("the connection closed in the middle of a PDU")
                self._discard_incoming()
                self.event_queue.put("Evt17")
                return
            self._incoming += chunk
            if self._pdu_size is None and len(self._incoming) >= 6:
                pdu_type, _, length = struct.unpack(">BBL", self._incoming[:6])
                if pdu_type not in _PDU_TYPES:
                    LOGGER.error("unknown PDU type received: 0x%02X", pdu_type)
                    self._discard_incoming()
                    self.event_queue.put("Evt19")
                    return
                limit, setting = self._limit()
                if length > limit:
                    self._refuse_oversized(pdu_type, length, limit, setting)
                    return
                self._pdu_size = 6 + length
            if self._pdu_size is not None and len(self._incoming) >= self._pdu_size:
                self._take_pdu()
                return
            if not _DONTWAIT:
                return

    def _limit(self) -> tuple[int, str]:
        """The longest PDU the peer may announce now, and the setting that says so."""
        limits = self.guard.limits
        if not self._request_received:
            return limits.max_associate_request, "max_associate_request"
        return limits.max_pdu_length + 6, "max_pdu_length"

    def _discard_incoming(self) -> None:
        self._incoming = bytearray()
        self._pdu_size = None

    def _take_pdu(self) -> None:
        """Decode the complete PDU in the buffer and queue its event (pynetdicom's last part)."""
        data = self._incoming
        self._discard_incoming()
        if data[0] == 0x01 and not self._request_received:
            self._request_received = True
            if self._refuse_bad_titles(data):
                return
        try:
            pdu, event = self._decode_pdu(data)
        except Exception as exc:  # noqa: BLE001 - as pynetdicom: an undecodable PDU is Evt19
            LOGGER.error("unable to decode the received PDU: %r", exc)
            self.event_queue.put("Evt19")
            return
        self.event_queue.put(event)
        self._recv_pdu.put(pdu)

    def _refuse_bad_titles(self, data: bytearray) -> bool:
        """Reject an A-ASSOCIATE-RQ whose AE titles hold control, backslash or non-ASCII bytes.

        pynetdicom would fail to decode such a title and abort without a word; the peer
        gets an A-ASSOCIATE-RJ (permanent, service user, the title's reason) instead, and
        the audit trail a line naming the title with its bad bytes escaped.
        """
        called, calling = bytes(data[10:26]), bytes(data[26:42])
        bad = [
            (name, raw)
            for name, raw in (("calling", calling), ("called", called))
            if _bad_title(raw)
        ]
        if not bad:
            return False
        name, raw = bad[0]
        reason = 0x03 if name == "calling" else 0x07
        shown = escape_title(raw.rstrip(b" "))
        self._report(
            "rejected",
            "ae-title",
            f"{name} AE title '{shown}' holds a control, backslash or non-ASCII byte; AE "
            "titles are 1 to 16 printable ASCII characters without backslash",
            calling=escape_title(calling.strip(b" ")),
            called=escape_title(called.strip(b" ")),
        )
        self._close(struct.pack(">BBLBBBB", 0x03, 0, 4, 0, 0x01, 0x01, reason))
        return True

    def _refuse_oversized(self, pdu_type: int, length: int, limit: int, setting: str) -> None:
        phase = "after" if self._request_received else "before"
        self._report(
            "aborted",
            "pdu-size",
            f"PDU of type 0x{pdu_type:02X} {phase} association claims {length} bytes; at most "
            f"{limit} allowed ([limits] {setting})",
        )
        abort = A_ABORT_RQ()
        abort.source = 0x02
        abort.reason_diagnostic = _INVALID_PARAMETER
        self._close(abort.encode())

    def check_request_deadline(self) -> None:
        """Close the connection of a peer that has not completed its A-ASSOCIATE-RQ in time."""
        deadline = self.request_deadline
        if deadline is None or self._request_received or time.monotonic() < deadline:
            return
        self.request_deadline = None
        received = len(self._incoming)
        timeout = self.guard.limits.associate_request_timeout
        self._report(
            "refused",
            "request-timeout",
            f"no complete A-ASSOCIATE-RQ {timeout:g} s after connecting ({received} bytes of "
            "it received); connection closed ([limits] associate_request_timeout)",
        )
        self._close(b"")

    def _report(
        self, outcome: str, rule: str, detail: str, calling: str = "", called: str = ""
    ) -> None:
        requestor = self.assoc.requestor
        self.guard.refuse(
            Incident(
                operation="associate",
                outcome=outcome,
                rule=rule,
                detail=detail,
                peer=f"{requestor.address}:{requestor.port}",
                calling_ae=calling,
                called_ae=called,
            )
        )

    def _close(self, last_words: bytes) -> None:
        """Send ``last_words`` (an abort or reject PDU, or nothing) and close the connection.

        Closing queues Evt17 (transport closed): the state machine ends the association as
        for any lost connection, and an association thread still waiting for its request
        is released.
        """
        self.ending = True
        self._discard_incoming()
        if self.socket is None:
            return
        raw = self.socket.socket
        if last_words and raw is not None:
            with contextlib.suppress(OSError):
                raw.sendall(last_words)
        self.socket.close()
        if raw is not None:  # pynetdicom skips the close when shutdown fails (a reset peer)
            raw.close()

    def _mark_ending(self) -> None:
        self.ending = True

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already awake (buffer full), or shutting down
            self._wake_w.send(b"\0")

    def _wait(self) -> None:
        """Block until the peer sends data, a primitive is queued, or MAX_WAIT_S passes."""
        watched: list[Any] = [self._wake_r]
        raw = self.socket.socket if self.socket is not None else None
        if raw is not None and raw.fileno() >= 0:
            watched.append(raw)
        try:
            ready, _, _ = select.select(watched, [], [], self._wait_limit())
        except (OSError, ValueError):
            return  # the socket closed under us; the state machine notices next loop
        if raw is not None and raw in ready:
            quick_ack(raw)
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass

    def _wait_limit(self) -> float:
        """How long one wait may last: MAX_WAIT_S, or until the next deadline before a request."""
        deadline = self.request_deadline
        if self._request_received or deadline is None:
            return MAX_WAIT_S
        due = min(deadline - time.monotonic(), PRE_REQUEST_MAX_WAIT_S)
        if not self.artim_timer.expired:  # once expired, the loop has already acted on it
            due = min(due, self.artim_timer.remaining)
        return max(due, 0.0)

    def run_reactor(self) -> None:
        """Run the DUL state machine until killed (pynetdicom's loop, event-driven)."""
        self._idle_timer.start()
        springs = self.saboteur.springs
        idle = False
        try:
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                if idle:
                    self._wait()
                with self._machine:
                    if self._kill_thread:
                        break
                    turned = self._turn(springs)
                if turned is None:
                    return
                idle = turned
        finally:
            with self._machine:
                self._ended = True  # nothing is sent past a reactor that is gone
            self._wake_r.close()
            self._wake_w.close()
            self.user_wake.set()  # the association thread notices the DUL has ended

    def _turn(self, springs: Callable[[str], bool]) -> bool | None:
        """One turn of the state machine: True if it found nothing to do, None to stop."""
        self.check_request_deadline()
        if self.artim_timer.expired:
            self.event_queue.put("Evt18")
        try:
            # pynetdicom reads the socket only when it has nothing to send, so a C-CANCEL
            # waits behind every pending C-FIND response queued before it. Both are looked
            # at, but only once the previous events are handled: a queued primitive is only
            # peeked at, and must not be queued twice.
            if self.event_queue.empty():
                self._process_recv_primitive()
                if self._is_transport_event():
                    self._idle_timer.restart()
        except Exception as exc:  # noqa: BLE001 - as pynetdicom: abort, never corrupt state
            LOGGER.error("exception in the DUL reactor, aborting association: %r", exc)
            self._abort_after_exception(0x00)
            return None
        try:
            event = self.event_queue.get(block=False)
        except queue.Empty:
            return True
        if springs(event):  # ended as an injected fault, never acted on
            return False
        try:
            self.state_machine.do_action(event)
        except Exception as exc:  # noqa: BLE001 - a peer's bytes it cannot act on
            self._report(
                "aborted",
                "malformed-pdu",
                f"the DICOM state machine could not act on {event} "
                f"({type(exc).__name__}: {str(exc)[:120]}); association aborted",
            )
            self._abort_after_exception(_INVALID_PARAMETER)
            return None
        if self.state_machine.current_state == "Sta1":  # the transport is closed
            self.give_up_waiting_for_request()
        return False

    def _abort_after_exception(self, reason: int) -> None:
        """End the association at once after an exception: an A-ABORT, then stop the loop.

        As upstream does for an exception while reading; also for one in the state machine
        (a P-DATA whose command set cannot be decoded), which upstream lets end the thread
        with a traceback while the connection stays open.
        """
        abort = A_ABORT_RQ()
        abort.source = 0x02
        abort.reason_diagnostic = reason
        if self.socket is not None:
            with contextlib.suppress(OSError):
                self.socket.send(abort.encode())
            with contextlib.suppress(OSError):
                self.socket.close()
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True


def _bad_title(raw: bytes) -> bool:
    """Whether an AE title field holds a control byte (NUL included), a backslash or a
    non-ASCII byte: PS3.5 forbids them, and pynetdicom could not decode the request."""
    return any(b < 0x20 or b > 0x7E or b == 0x5C for b in raw)


class EventDrivenRequestHandler(RequestHandler):
    """pynetdicom's request handler, giving each association an :class:`EventDrivenDUL`."""

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        replaced = assoc.dul
        dul = EventDrivenDUL(assoc)
        dul.socket = replaced.socket
        # The socket already queued "transport connection open" (Evt5) on the replaced DUL.
        dul.event_queue = replaced.event_queue
        assoc.dul = dul
        assoc.dimse.msg_queue = _WakingQueue(dul.user_wake)
        guard = getattr(self.server, "guard", None)
        if isinstance(guard, Guard):
            dul.guard = guard
        dul.request_deadline = time.monotonic() + dul.guard.limits.associate_request_timeout
        quiet_standard_logging(assoc)
        hand_encode_store_responses(assoc)
        assoc._run_reactor = types.MethodType(_association_reactor, assoc)  # type: ignore[method-assign]
        # DIMSE services the daemon serves itself, by request type (see Daemon.start()).
        assoc.simdaemon_services = dict(getattr(self.server, "services", {}))  # type: ignore[attr-defined]
        # The timeouts live in the DUL's timers; push them into the new one.
        assoc.acse_timeout = assoc.acse_timeout
        assoc.network_timeout = assoc.network_timeout
        return assoc


def _association_reactor(self: Any) -> None:
    """pynetdicom 3.0's acceptor loop, waiting on ``dul.user_wake`` instead of sleeping."""
    wake: threading.Event = self.dul.user_wake
    self._is_paused = False
    while not self._kill:
        wake.wait(MAX_WAIT_S)
        wake.clear()
        self._is_paused = True
        self._reactor_checkpoint.wait()
        self._is_paused = False

        context_id, msg = self.dimse.get_msg(block=False)
        if msg and _refuse_out_of_context(self, msg, context_id):
            wake.set()
        elif msg:
            own = self.simdaemon_services.get(type(msg))
            if own is None:
                self._serve_request(msg, context_id)
            elif not self._sent_release:
                # Served by the daemon itself, as pynetdicom's _serve_request would call a
                # service class: paused reactor, cancel requests collected meanwhile.
                self.dimse.cancel_req = {}
                self._is_paused = True
                try:
                    own(self, msg, context_id)
                finally:
                    self._is_paused = False
                    self.dimse.cancel_req = {}
            wake.set()  # more may have arrived while serving; look again at once

        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            LOGGER.info("Association Released")
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return

        if self.acse.is_aborted():
            LOGGER.info("Association Aborted")
            self.dul.receive_pdu(wait=False)  # so EVT_ACSE_RECV fires for subscribers
            self.is_aborted = True
            self.is_established = False
            self.simdaemon_peer_aborted = True  # the peer's A-ABORT, not one of the daemon's
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return

        if not self.dul.is_alive():
            self.kill()
            return

        if self.dul.idle_timer_expired():
            LOGGER.error("Network timeout reached")
            if self.network_timeout_response == "A-RELEASE":
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return


def _refuse_out_of_context(assoc: Any, msg: Any, context_id: int | None) -> bool:
    """Answer a request sent on a presentation context of another service; True if refused.

    pynetdicom picks the service class by the context's abstract syntax and the daemon's
    C-MOVE by the request's type, so a C-MOVE on a FIND context (or a C-FIND on a MOVE one)
    would be served. Such a request is answered 0x0122 "SOP Class not supported" with a
    comment, and reported. A context the association does not have is left to upstream.
    """
    command = _COMMANDS.get(type(msg))
    context = next((c for c in assoc.accepted_contexts if c.context_id == context_id), None)
    if command is None or context is None:
        return False
    guard: Guard = assoc.dul.guard
    syntax = str(context.abstract_syntax)
    if guard.fits(command, syntax):
        return False
    comment = f"{command} not allowed on context {context_id} ({syntax})"
    response = type(msg)()
    response.MessageIDBeingRespondedTo = msg.MessageID
    if msg.AffectedSOPClassUID:
        response.AffectedSOPClassUID = msg.AffectedSOPClassUID
    if isinstance(msg, C_STORE) and msg.AffectedSOPInstanceUID:
        response.AffectedSOPInstanceUID = msg.AffectedSOPInstanceUID
    response.Status = SOP_CLASS_NOT_SUPPORTED
    response.ErrorComment = comment[:64]
    request = assoc.requestor.primitive
    guard.record(
        Incident(
            operation=command.removeprefix("C-").lower(),
            outcome="refused",
            rule="context",
            detail=(
                f"{command} request sent on presentation context {context_id}, whose abstract "
                f"syntax {syntax} belongs to another service; answered 0x0122"
            ),
            peer=f"{assoc.requestor.address}:{assoc.requestor.port}",
            calling_ae=str(request.calling_ae_title) if request is not None else "",
            called_ae=str(request.called_ae_title) if request is not None else "",
            status=SOP_CLASS_NOT_SUPPORTED,
        )
    )
    assoc.dimse.send_msg(response, context_id)
    return True


def end_association(assoc: Any) -> None:
    """Start ending an association the daemon serves, whatever its state; do not block.

    An established association is aborted (A-ABORT to the peer); one still waiting for its
    request is released. The caller joins the thread.
    """
    if assoc.is_established:
        assoc.abort(block=False)
    elif isinstance(assoc.dul, EventDrivenDUL):
        assoc.dul.give_up_waiting_for_request()


def force_close(assoc: Any) -> None:
    """Close an association's socket, for a peer that ignored :func:`end_association`."""
    socket_ = assoc.dul.socket
    if socket_ is not None:
        with contextlib.suppress(OSError):
            socket_.close()


def is_serving(assoc: Any) -> bool:
    """Whether an association counts against ``max_associations``.

    It must have sent its A-ASSOCIATE-RQ (so it is being decided, or accepted), be alive,
    and not be ending. A connection that has sent nothing, or part of a request, takes no
    association slot: it is bounded by ``[limits]`` instead.
    """
    return bool(
        assoc.requestor.primitive is not None
        and assoc.is_alive()
        and not (assoc.is_released or assoc.is_aborted or assoc.is_rejected)
        and not getattr(assoc.dul, "ending", False)
    )
