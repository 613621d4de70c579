"""Making pynetdicom associations quick and reliable: the helpers each association needs.

Every association this project opens - the daemon's own to a C-MOVE destination, the tests'
and the benchmarks' clients - goes through :func:`keep_responses` and :func:`no_delay`, and
those that must tell a rejection from an abort through :func:`recover_rejection`; the
daemon's acceptor (:mod:`simdaemon.net.acceptor`) applies :func:`no_delay` and
:func:`quiet_standard_logging` to the associations it serves as well, and asks for
:func:`quick_ack` whenever data arrived. The daemon's own association to a C-MOVE destination
is requested by a :class:`QuickAckAE`, whose socket does the same. The client library keeps
its own copies (``dbdaemon_client.transport``), since it never imports simdaemon.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import threading
import types
from collections.abc import Iterator
from typing import Any

from pynetdicom import AE, evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.transport import AddressInformation, AssociationSocket

__all__ = [
    "QuickAckAE",
    "QuickAckSocket",
    "WakingDUL",
    "keep_responses",
    "no_delay",
    "quick_ack",
    "quiet_standard_logging",
    "recover_rejection",
]

#: The most :meth:`QuickAckSocket.recv` asks the kernel for at once (upstream: 4 KiB).
_RECV_CHUNK = 65536
#: The longest a requested association's loops wait without looking at their timers (ARTIM,
#: network timeout) and, for the association loop, at requests from the peer.
MAX_WAIT_S = 0.05

LOGGER = logging.getLogger(__name__)

_STANDARD_LOG_HANDLERS = (
    (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
)


def quiet_standard_logging(assoc: Association) -> Association:
    """Unbind pynetdicom's standard log handlers while its log is quiet; return ``assoc``.

    They describe every PDU and DIMSE message for pynetdicom's log; with that log below INFO
    nothing prints, and they are pure cost on every PDU of every slice.
    """
    if not logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        for event, handler in _STANDARD_LOG_HANDLERS:
            assoc.unbind(event, handler)
    return assoc


def no_delay(event: evt.Event) -> None:
    """An EVT_CONN_OPEN handler: send each PDU at once, not after Nagle's algorithm's wait.

    Small PDUs (responses, command sets) would otherwise wait for the peer's delayed ACK.
    """
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def recover_rejection(assoc: Association) -> Association:
    """Report an association the peer rejected as rejected, not aborted; return ``assoc``.

    pynetdicom 3.0's requestor thread, once the DUL thread has connected, checks that the
    socket is still connected before it waits for the answer. On a loaded machine the DUL
    thread can send the A-ASSOCIATE-RQ, read the peer's A-ASSOCIATE-RJ and close the
    connection (as PS3.8 has it do) before that check runs; the requestor then finds the
    socket closed, aborts, and the rejection stays unread in the DUL's queue for the user.
    One such run in a thousand under load was enough to turn "called AE title not
    recognized" into "the association was aborted". The rejection is taken from there.
    """
    if assoc.is_established or assoc.is_rejected:
        return assoc
    with assoc.dul.to_user_queue.mutex:
        waiting = list(assoc.dul.to_user_queue.queue)
    for primitive in waiting:
        if isinstance(primitive, A_ASSOCIATE) and primitive.result in (0x01, 0x02):
            assoc.acceptor.primitive = primitive
            assoc.is_rejected = True
            assoc.is_aborted = False
            break
    return assoc


def keep_responses(assoc: Association) -> Association:
    """Stop pynetdicom's requestor loop from discarding the response a ``send_*`` awaits.

    ``send_c_store`` and its siblings pause the association's loop before sending, but the
    pause can land just after the loop has passed its checkpoint: the loop then takes the
    response off the DIMSE queue itself, finds it is not a request, logs "Received unexpected
    C-STORE-RSP service message" and drops it, and ``send_c_store`` waits out the DIMSE
    timeout (pynetdicom issue #875). A peer that answers within microseconds - this daemon,
    on a loaded machine - makes the window real. Responses the loop takes are put back for the
    ``send_*`` call waiting on the queue, in front of any that came after them. Returns
    ``assoc``.
    """
    serve = assoc._serve_request

    def serve_or_put_back(msg: Any, context_id: int) -> None:
        if msg.is_valid_response:
            waiting = assoc.dimse.msg_queue
            with waiting.mutex:  # back at the front: responses stay in the order they came
                waiting.queue.appendleft((context_id, msg))
                waiting.not_empty.notify()
            return
        serve(msg, context_id)

    assoc._serve_request = serve_or_put_back  # type: ignore[method-assign]
    return assoc


def quick_ack(raw: socket.socket) -> None:
    """Acknowledge the peer's segments at once instead of delaying the ACK (Linux only).

    DCMTK (3.6.2 and later) and Orthanc leave Nagle's algorithm on: the last, partial segment
    of what they send - a P-DATA, or the second piece of a C-STORE-RSP they write in two -
    waits until everything before it is acknowledged, and a receiver delaying its ACK then
    stalls the exchange 40 ms. Linux leaves quick-ACK mode by itself, so it is asked for again
    each time data arrives. Elsewhere (no ``TCP_QUICKACK``) this does nothing.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is None:
        return
    with contextlib.suppress(OSError):  # already closed
        raw.setsockopt(socket.IPPROTO_TCP, option, 1)


class QuickAckSocket(AssociationSocket):
    """An association's socket that asks for a quick ACK whenever data arrived.

    pynetdicom's requestor DUL looks at :attr:`ready` every millisecond and then reads a whole
    PDU with :meth:`recv`, which blocks until it is in: the ACK is asked for when the socket
    becomes readable and again after every partial receive, so a peer with Nagle's algorithm
    on never waits for a delayed ACK in the middle of a PDU.
    """

    @property
    def ready(self) -> bool:
        """Upstream's ``ready``; when data is waiting, a quick ACK asked for first."""
        readable = bool(AssociationSocket.ready.fget(self))  # type: ignore[attr-defined]
        if readable and self.socket is not None:
            quick_ack(self.socket)
        return readable

    def recv(self, nr_bytes: int) -> bytearray:
        """Read ``nr_bytes`` (fewer if the peer closes), asking for a quick ACK after each piece.

        Upstream's ``recv`` with ``recv_into`` one buffer in pieces of up to 64 KiB (upstream:
        4 KiB pieces appended to a bytearray); blocking, like upstream.
        """
        raw = self.socket
        assert raw is not None
        data = bytearray(nr_bytes)
        view = memoryview(data)
        nr_read = 0
        while nr_read < nr_bytes:
            count = raw.recv_into(view[nr_read:], min(nr_bytes - nr_read, _RECV_CHUNK))
            if not count:  # the connection is broken: what we have so far, as upstream
                del view
                del data[nr_read:]
                return data
            nr_read += count
            if nr_read < nr_bytes:
                quick_ack(raw)
        return data


class _WakingQueue(queue.Queue[Any]):
    """A queue that sets an event whenever something is put on it."""

    def __init__(self, wake: threading.Event) -> None:
        super().__init__()
        self._wake_event = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._wake_event.set()


class WakingDUL(DULServiceProvider):
    """A requestor's DUL that waits on its socket and a wake-up socket instead of sleeping 1 ms.

    pynetdicom's DUL thread sleeps a millisecond whenever it found nothing to do, so each
    response waits up to that long and an idle association costs a few per cent of a core in
    wake-ups, competing for the GIL with the thread sending. This one waits in ``select`` on
    the connected socket and a socket pair that :meth:`send_pdu` and :meth:`kill_dul` write
    to (at most :data:`MAX_WAIT_S`, for the ARTIM timer); it sets :attr:`user_wake` whenever
    it hands the association something (``to_user_queue``) or ends.
    """

    def __init__(self, assoc: Association) -> None:
        super().__init__(assoc)
        #: Set when the association thread has something to look at.
        self.user_wake = threading.Event()
        self.to_user_queue = _WakingQueue(self.user_wake)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        #: True while the reactor waits (or is about to): only then is a wake-up written.
        self._waiting = False
        #: True while the socket is lent (:meth:`lend_socket`): the reactor does not read it.
        self._lent = False
        #: Held by the reactor while it reads a PDU, and to lend the socket between reads.
        self._reading = threading.Lock()

    def send_pdu(self, primitive: Any) -> None:
        """Queue a primitive for the peer and wake the reactor to send it if it waits.

        A C-STORE of a 512 KiB slice is some 34 primitives queued back to back while the
        reactor is busy sending: a wake-up written for each cost a system call apiece.
        Queued first, then :attr:`_waiting` read; the reactor sets it, then looks at the
        queue: one of the two sees the other.
        """
        super().send_pdu(primitive)
        if self._waiting:
            self._wake()

    def send_pdus(self, primitives: list[Any]) -> None:
        """Queue several primitives for the peer, waking the reactor once if it waits.

        The fragments of one message: queued together, so the reactor sends them back to back
        instead of being woken for each.
        """
        for primitive in primitives:
            DULServiceProvider.send_pdu(self, primitive)
        if self._waiting:
            self._wake()

    @contextlib.contextmanager
    def lend_socket(self, timeout: float) -> Iterator[socket.socket | None]:
        """Lend the connected socket to the caller, who reads and writes it alone meanwhile.

        The reactor finishes any PDU it is reading first (``None`` is lent if that takes
        longer than ``timeout``), then neither waits on nor reads the socket, nor sends what is
        queued, until the loan ends; it keeps its timers. What the borrower read but must not
        handle goes back with :meth:`hand_over` before the loan ends.
        """
        sock = self.socket
        assert sock is not None
        assert sock.socket is not None
        if not self._reading.acquire(timeout=timeout):
            yield None
            return
        try:
            self._lent = True
        finally:
            self._reading.release()
        self._idle_timer.restart()
        try:
            yield sock.socket
        finally:
            self._lent = False
            self._wake()  # watch the socket, and send what was queued, at once

    def hand_over(self, pdus: list[bytes]) -> None:
        """Feed PDUs read off a lent socket to the state machine, as the reactor would have.

        The tail of pynetdicom's ``_read_pdu_data``: decode, queue the event and the PDU.
        """
        for stream in pdus:
            try:
                pdu, event = self._decode_pdu(bytearray(stream))
            except Exception:  # noqa: BLE001 - as upstream: an undecodable PDU is Evt19
                LOGGER.error("Unable to decode the received PDU data")
                self.event_queue.put("Evt19")
                continue
            self._recv_pdu.put(pdu)  # first: the state machine takes it once it sees the event
            self.event_queue.put(event)

    def idle_timer_restart(self) -> None:
        """Note that the peer sent something (the association's network timeout restarts)."""
        self._idle_timer.restart()

    def _process_recv_primitive(self) -> bool:
        """Upstream's, but not while the socket is lent: nothing is sent in the middle of the
        borrower's PDUs (an abort or a response queued meanwhile goes out when the loan ends)."""
        if self._lent:
            return False
        return bool(super()._process_recv_primitive())

    def _is_transport_event(self) -> bool:
        """Upstream's, but never while the socket is lent."""
        with self._reading:
            if self._lent:
                return False
            return bool(super()._is_transport_event())

    def kill_dul(self) -> None:
        """Stop the reactor without waiting for its next timeout."""
        super().kill_dul()
        self._wake()
        self.user_wake.set()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already awake (buffer full), or closed
            self._wake_w.send(b"\0")

    def _wait(self) -> None:
        """Block until the peer sends data, a primitive is queued, or MAX_WAIT_S passes."""
        watched: list[Any] = [self._wake_r]
        sock = self.socket
        raw = sock.socket if sock is not None and sock._is_connected else None
        if raw is not None and raw.fileno() >= 0 and not self._lent:
            watched.append(raw)
        self._waiting = True
        try:
            if (self.to_provider_queue.queue and not self._lent) or self._kill_thread:
                return  # queued before the flag was up: no wake-up was written for it
            ready, _, _ = select.select(watched, [], [], MAX_WAIT_S)
        except (OSError, ValueError):
            return  # the socket closed under us; the state machine notices next turn
        finally:
            self._waiting = False
        if self._wake_r in ready:
            with contextlib.suppress(OSError):
                while self._wake_r.recv(4096):
                    pass

    def run_reactor(self) -> None:
        """pynetdicom 3.0's DUL loop, waiting in :meth:`_wait` where upstream sleeps 1 ms."""
        try:
            self._run()
        finally:
            self.user_wake.set()
            self._wake_r.close()
            self._wake_w.close()

    def _run(self) -> None:
        self._idle_timer.start()
        sleep = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                sleep = True
            if sleep:
                self._wait()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                if self._process_recv_primitive():  # encode (sent by state machine)
                    pass
                elif self._is_transport_event():  # receive and decode PDU
                    self._idle_timer.restart()
            except Exception as exc:  # noqa: BLE001 - as upstream: abort, end the thread
                LOGGER.error("Exception in DUL.run(), aborting association: %r", exc)
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                if self.socket is not None:
                    self.socket.send(abort_pdu.encode())
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                sleep = True
                continue
            self.state_machine.do_action(event)
            sleep = False


def _requestor_reactor(self: Any) -> None:
    """pynetdicom 3.0's association loop for a requestor, waiting on ``dul.user_wake``.

    Upstream sleeps 1 ms a turn. This waits until the DUL hands the association something
    (a release request, an abort) or ends, and at most MAX_WAIT_S to look at the DIMSE queue
    (a request from the peer) and the network timeout. While it waits it counts as paused,
    so a ``send_*`` or ``release`` that pauses the loop does not wait for the wait to end.
    """
    wake: threading.Event = self.dul.user_wake
    checkpoint: threading.Event = self._reactor_checkpoint
    while not self._kill:
        self._is_paused = True
        wake.wait(MAX_WAIT_S)
        wake.clear()
        checkpoint.wait()
        self._is_paused = False
        if not checkpoint.is_set():  # a pause was asked for as the loop woke: honour it
            continue

        context_id, msg = self.dimse.get_msg(block=False)
        if msg:
            self._serve_request(msg, context_id)
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
                checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return
    self._is_paused = True


class QuickAckAE(AE):
    """A pynetdicom AE whose requested associations are event-driven and ask for quick ACKs.

    Each association it requests gets a :class:`WakingDUL` and the waiting association loop
    (:func:`_requestor_reactor`) instead of pynetdicom's 1 ms polling ones, and a
    :class:`QuickAckSocket`.
    """

    def _create_socket(
        self,
        assoc: Association,
        address: AddressInformation,
        tls_args: tuple[Any, str] | None,
    ) -> AssociationSocket:
        """Upstream's ``_create_socket``, building a :class:`QuickAckSocket` instead.

        Called before the association is requested, so its DUL and loop are swapped here.
        """
        assoc.dul = WakingDUL(assoc)
        assoc._run_reactor = types.MethodType(_requestor_reactor, assoc)  # type: ignore[method-assign]
        sock = QuickAckSocket(assoc, address=address)
        sock.tls_args = tls_args
        return sock
