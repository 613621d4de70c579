"""pynetdicom associations as the client opens them: timeouts, no Nagle, no lost responses."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.association import Association
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import register_uid, uid_to_service_class
from pynetdicom.transport import ThreadedAssociationServer

__all__ = ["open_association", "start_receiver"]

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


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
    on_connect: Callable[[], None] | None = None,
) -> Association:
    """Request an association proposing ``contexts`` (uncompressed syntaxes).

    ``on_connect`` is called once the TCP connection is open, so a caller can tell a daemon
    that ended the association from one it never reached.
    """
    ae = AE(ae_title=calling)
    ae.connection_timeout = connect_timeout
    ae.acse_timeout = connect_timeout
    ae.network_timeout = idle_timeout
    ae.dimse_timeout = idle_timeout
    for context in contexts:
        ae.add_requested_context(context, UNCOMPRESSED)

    def opened(event: evt.Event) -> None:
        _no_delay(event)
        if on_connect is not None:
            on_connect()

    assoc = ae.associate(
        host,
        port,
        ae_title=called,
        max_pdu=max_pdu,
        evt_handlers=[(evt.EVT_CONN_OPEN, opened)],
    )
    _keep_responses(assoc)
    return assoc


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
