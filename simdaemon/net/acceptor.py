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
import threading
import types
from typing import Any

from pynetdicom import evt
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import A_ABORT, A_ASSOCIATE, A_P_ABORT, A_RELEASE
from pynetdicom.transport import RequestHandler

from simdaemon.net.outgoing import quiet_standard_logging
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


def _recv_exactly(self: Any, nr_bytes: int) -> bytearray:
    """``AssociationSocket.recv`` reading straight into one buffer of the PDU's size.

    pynetdicom reads 4 KiB at a time and appends each piece to a growing bytearray: a CT
    slice arrives as hundreds of reads and copies. Like the original, returns what it has
    when the peer closes the connection.
    """
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    received = 0
    while received < nr_bytes:
        count = self.socket.recv_into(view[received:], nr_bytes - received)
        if not count:
            view.release()
            del buffer[received:]
            return buffer
        received += count
    view.release()
    return buffer


def _quick_ack(raw: socket.socket) -> None:
    """Acknowledge the peer's segments at once instead of delaying the ACK.

    DCMTK 3.6.2 and later leave Nagle's algorithm on: the last, partial segment of a P-DATA
    waits until everything before it is acknowledged, and a receiver delaying its ACK then
    stalls the transfer 40 ms - every few slices of a CT series. Linux leaves quick-ACK mode
    by itself, so it is asked for again each time data arrives.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or already closed
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


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
        if isinstance(primitive, (A_ABORT, A_P_ABORT, EndAsFault)) or (
            isinstance(primitive, (A_RELEASE, A_ASSOCIATE)) and primitive.result not in (None, 0x00)
        ):
            self.ending = True
        super().send_pdu(primitive)
        self._wake()

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
            ready, _, _ = select.select(watched, [], [], MAX_WAIT_S)
        except (OSError, ValueError):
            return  # the socket closed under us; the state machine notices next loop
        if raw is not None and raw in ready:
            _quick_ack(raw)
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass

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
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    # pynetdicom reads the socket only when it has nothing to send, so a
                    # C-CANCEL waits behind every pending C-FIND response queued before it.
                    # Both are looked at, but only once the previous events are handled:
                    # a queued primitive is only peeked at, and must not be queued twice.
                    if self.event_queue.empty():
                        self._process_recv_primitive()
                        if self._is_transport_event():
                            self._idle_timer.restart()
                except Exception as exc:  # noqa: BLE001 - as pynetdicom: abort, never corrupt state
                    LOGGER.error("exception in the DUL reactor, aborting association: %r", exc)
                    abort = A_ABORT_RQ()
                    abort.source = 0x02
                    abort.reason_diagnostic = 0x00
                    if self.socket is not None:
                        self.socket.send(abort.encode())
                    self.assoc.is_aborted = True
                    self.assoc.is_established = False
                    self.assoc._kill = True
                    self._kill_thread = True
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    idle = True
                    continue
                if springs(event):  # ended as an injected fault, never acted on
                    continue
                self.state_machine.do_action(event)
                idle = False
                if self.state_machine.current_state == "Sta1":  # the transport is closed
                    self.give_up_waiting_for_request()
        finally:
            self._wake_r.close()
            self._wake_w.close()
            self.user_wake.set()  # the association thread notices the DUL has ended


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
        if dul.socket is not None:
            dul.socket.recv = types.MethodType(_recv_exactly, dul.socket)  # type: ignore[method-assign]
        quiet_standard_logging(assoc)
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
        if msg:
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
    """Whether an association counts against ``max_associations``: alive and not ending."""
    return bool(
        assoc.is_alive()
        and not (assoc.is_released or assoc.is_aborted or assoc.is_rejected)
        and not getattr(assoc.dul, "ending", False)
    )
