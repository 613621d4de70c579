"""Serve the console's ASGI app with uvicorn on a background thread of the daemon's process.

The socket is bound and listening in the caller's thread before :meth:`ConsoleServer.start`
returns, like the DICOM side: port 0 gives an ephemeral port readable at once, and a request
sent right after ``start()`` waits in the listen backlog until uvicorn's loop takes it: no
readiness race, no sleep. uvicorn is told to leave logging and signals alone (it runs off
the main thread, and the daemon's process owns both).
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import uvicorn

from simdaemon.console.settings import ConsoleSettings

__all__ = ["ConsoleServer"]

LOGGER = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 5.0
#: How long uvicorn waits for open responses (a live audit stream) before closing them.
_GRACE_S = 1.0


class ConsoleServer:
    """uvicorn on its own thread and event loop, serving ``app`` on a socket bound here."""

    def __init__(self, app: Any, settings: ConsoleSettings) -> None:
        self.settings = settings
        host = settings.host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, settings.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(_GRACE_S),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, name=f"simdaemon-console@{self.port}", daemon=True
        )
        self.error: BaseException | None = None

    @property
    def port(self) -> int:
        """The bound port (the ephemeral one for port 0)."""
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """The console's address for a browser or curl."""
        host = self.settings.host
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{shown}:{self.port}/"

    def start(self) -> ConsoleServer:
        """Start serving on the background thread; the socket already accepts connections."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as error:  # kept for the daemon's raise_errors
            LOGGER.error("the console's server failed: %r", error, exc_info=error)
            self.error = error

    def stop(self) -> None:
        """Stop serving, end open responses and close the socket; idempotent."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_JOIN_TIMEOUT_S)
        self._socket.close()
