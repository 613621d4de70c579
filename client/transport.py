"""pynetdicom associations as the client opens them: timeouts, no Nagle, no lost responses."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import register_uid, uid_to_service_class
from pynetdicom.transport import AddressInformation, AssociationSocket, ThreadedAssociationServer

__all__ = ["Opened", "open_association", "start_receiver"]

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


# Copies of helpers in simdaemon.net (outgoing, sop_classes): the client never imports simdaemon.


def _no_delay(event: evt.Event) -> None:
    """Send each PDU at once: small requests must not wait for Nagle's algorithm."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _keep_responses(assoc: Association) -> None:
    """Put back a response pynetdicom's own loop took from a waiting ``send_*`` call.

    ``send_c_store`` and its siblings pause the association's loop before sending, but the
    pause can land just after the loop passed its checkpoint; the loop then takes the
    response, finds it is not a request and drops it, and the call waits out its timeout
    (pynetdicom issue #875). A daemon that answers within microseconds makes that likely.
    """
    serve = assoc._serve_request

    def serve_or_put_back(msg: Any, context_id: int) -> None:
        if msg.is_valid_response:
            waiting = assoc.dimse.msg_queue
            with waiting.mutex:  # at the front: responses keep the order they came in
                waiting.queue.appendleft((context_id, msg))
                waiting.not_empty.notify()
            return
        serve(msg, context_id)

    assoc._serve_request = serve_or_put_back  # type: ignore[method-assign]


def _recover_rejection(assoc: Association) -> None:
    """Report an association the daemon rejected as rejected, not aborted.

    pynetdicom 3.0's requestor thread checks that the socket is still connected before it
    waits for the answer; on a loaded machine its DUL thread may already have read the
    A-ASSOCIATE-RJ and closed the connection, and the requestor aborts instead, leaving the
    rejection unread in the DUL's queue. It is taken from there.
    """
    if assoc.is_established or assoc.is_rejected:
        return
    with assoc.dul.to_user_queue.mutex:
        waiting = list(assoc.dul.to_user_queue.queue)
    for primitive in waiting:
        if isinstance(primitive, A_ASSOCIATE) and primitive.result in (0x01, 0x02):
            assoc.acceptor.primitive = primitive
            assoc.is_rejected = True
            assoc.is_aborted = False
            return


class _RememberingSocket(socket.socket):
    """A TCP socket that keeps the error of its ``connect``; pynetdicom only logs it."""

    connect_error: OSError | None = None

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except OSError as error:
            self.connect_error = error
            raise


class _DiagnosedSocket(AssociationSocket):
    """pynetdicom's association socket, on a :class:`_RememberingSocket`."""

    tcp: _RememberingSocket | None = None

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        made = super()._create_socket(address)
        timeout = made.gettimeout()
        self.tcp = _RememberingSocket(made.family, made.type, made.proto, fileno=made.detach())
        self.tcp.settimeout(timeout)
        return self.tcp


class _ClientAE(AE):
    """An AE whose requested associations remember why their TCP connection failed.

    ``AE._create_socket`` is the hook pynetdicom itself uses to make a requestor's socket;
    overriding it is how the client tells "connection refused" from "no route" from "timed
    out", which pynetdicom reports alike (an aborted association and a log line).
    """

    sockets: list[_DiagnosedSocket]

    def _create_socket(
        self, assoc: Association, address: AddressInformation, tls_args: Any
    ) -> AssociationSocket:
        sock = _DiagnosedSocket(assoc, address=address)
        sock.tls_args = tls_args
        self.sockets.append(sock)
        return sock


class Opened:
    """An association request's outcome: the association, and how far the connection got."""

    def __init__(self, assoc: Association, connected: bool, error: OSError | None) -> None:
        self.assoc = assoc
        #: Whether the TCP connection was made (the server then ended or ignored the request).
        self.connected = connected
        #: Why the TCP connection failed, when it did.
        self.connect_error = error


def open_association(
    calling: str,
    host: str,
    port: int,
    called: str,
    contexts: Sequence[str],
    *,
    connect_timeout: float,
    idle_timeout: float,
    max_pdu: int = 16382,
) -> Opened:
    """Request an association proposing ``contexts`` (uncompressed syntaxes).

    The outcome says whether the TCP connection was made and, if not, the socket's error, so
    a caller can tell a server that ended the association from one it never reached.
    """
    ae = _ClientAE(ae_title=calling)
    ae.sockets = []
    ae.connection_timeout = connect_timeout
    ae.acse_timeout = connect_timeout
    ae.network_timeout = idle_timeout
    ae.dimse_timeout = idle_timeout
    for context in contexts:
        ae.add_requested_context(context, UNCOMPRESSED)

    assoc = ae.associate(
        host,
        port,
        ae_title=called,
        max_pdu=max_pdu,
        evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)],
    )
    _recover_rejection(assoc)
    _keep_responses(assoc)
    errors = [s.tcp.connect_error for s in ae.sockets if s.tcp is not None]
    error = next((e for e in errors if e is not None), None)
    return Opened(assoc, bool(errors) and error is None, error)


#: Varian's private storage classes, which ARIA sends; pynetdicom does not know them.
VARIAN_PRIVATE_STORAGE = ("1.2.246.352.70.1.10", "1.2.246.352.70.1.70")


def start_receiver(local: Any, on_store: Any) -> ThreadedAssociationServer:
    """A storage SCP as ``local`` (its AE title, host and port) for every storage class."""
    for uid in VARIAN_PRIVATE_STORAGE:  # so pynetdicom answers their C-STOREs
        if uid_to_service_class(uid) is ServiceClass:
            register_uid(uid, f"PrivateStorage_{uid.replace('.', '_')}", StorageServiceClass)
    ae = AE(ae_title=local.ae_title)
    for context in StoragePresentationContexts:
        ae.add_supported_context(str(context.abstract_syntax), UNCOMPRESSED)
    for uid in VARIAN_PRIVATE_STORAGE:
        ae.add_supported_context(uid, UNCOMPRESSED)
    server = ae.start_server(
        (local.host, local.port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_CONN_OPEN, _no_delay)],
    )
    assert server is not None  # block=False always returns the server
    return server
