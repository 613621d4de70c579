"""An event-driven DUL reactor for the daemon's connections.

pynetdicom's DUL thread polls: when a loop finds nothing to do it sleeps 1 ms, so every PDU
a peer sends and every PDU the daemon answers waits up to a millisecond before it moves.
Shortening the sleep costs more than it saves (on two cores the busy thread competes for the
GIL with the handler threads). This reactor instead waits in ``select`` on the connection's
socket and on a wake-up socket that :meth:`send_pdu` writes to, so it reacts at once to both
directions and sleeps soundly when the association is idle.

The loop is pynetdicom 3.0's ``DULServiceProvider.run_reactor`` with the sleep replaced by
that wait; its state machine, timers and error handling are untouched. One thing is added: a
connection that closes (or is aborted for sending garbage) before any A-ASSOCIATE-RQ releases
the association thread at once, where pynetdicom would keep it waiting for the whole ACSE
timeout — so such peers do not hold a place under ``max_associations`` for 30 s.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
from typing import Any

from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import A_ABORT, A_ASSOCIATE, A_P_ABORT, A_RELEASE
from pynetdicom.transport import RequestHandler

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


class EventDrivenDUL(DULServiceProvider):
    """A DUL service provider that waits on its socket instead of sleeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._gave_up = False
        self.ending = False

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
        if isinstance(primitive, (A_ABORT, A_P_ABORT)) or (
            isinstance(primitive, (A_RELEASE, A_ASSOCIATE)) and primitive.result not in (None, 0x00)
        ):
            self.ending = True
        super().send_pdu(primitive)
        self._wake()

    def kill_dul(self) -> None:
        """Stop the reactor without waiting for its next timeout."""
        super().kill_dul()
        self._wake()

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
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass

    def run_reactor(self) -> None:
        """Run the DUL state machine until killed (pynetdicom's loop, event-driven)."""
        self._idle_timer.start()
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
                    if self._process_recv_primitive():
                        pass
                    elif self._is_transport_event():
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
                self.state_machine.do_action(event)
                idle = False
                if self.state_machine.current_state == "Sta1":  # the transport is closed
                    self.give_up_waiting_for_request()
        finally:
            self._wake_r.close()
            self._wake_w.close()


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
        # The timeouts live in the DUL's timers; push them into the new one.
        assoc.acse_timeout = assoc.acse_timeout
        assoc.network_timeout = assoc.network_timeout
        return assoc


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
