"""The daemon's listening socket: accepting connections until ``stop()``, without polling.

socketserver's ``serve_forever`` checks for a shutdown request every half second, so
stopping a daemon would take up to that long. :meth:`Listener.serve_until_stopped` replaces it
(from Python's ``socketserver.BaseServer.serve_forever``): it waits on the listening socket
and on a wake-up socket that :meth:`Listener.stop_serving` writes to, with no poll interval,
and runs pynetdicom's ``service_actions`` (its periodic garbage collection) after each
connection rather than after each poll. Each connection is then served by the request handler
the daemon passes to ``AE.make_server``: :class:`~simdaemon.net.acceptor.EventDrivenRequestHandler`.
"""

from __future__ import annotations

import selectors
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

__all__ = ["Listener"]


class Listener(ThreadedAssociationServer):
    """pynetdicom's threaded server with a serve loop that ``stop()`` can wake at once."""

    def __init__(self, *args: Any, on_error: Callable[[BaseException], None], **kwargs: Any):
        #: DIMSE requests the daemon serves itself, by primitive type (see net.acceptor).
        self.services: dict[type, Callable[[Association, Any, int], None]] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._on_error = on_error
        super().__init__(*args, **kwargs)

    def serve_until_stopped(self) -> None:
        """Accept connections until :meth:`stop_serving` is called."""
        listening = self.socket
        assert listening is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listening, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = selector.select()
                if self._stopping.is_set():
                    break
                if any(key.fileobj is listening for key, _ in ready):
                    self._handle_request_noblock()  # type: ignore[attr-defined]
                    self.service_actions()

    def stop_serving(self) -> None:
        """Make :meth:`serve_until_stopped` return promptly."""
        self._stopping.set()
        self._wake_w.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep the exception of a failed connection thread instead of printing it."""
        error = sys.exc_info()[1]
        if error is not None:
            self._on_error(error)
