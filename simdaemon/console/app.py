"""The console: the JSON API and the pages as one FastAPI app, served beside the DICOM side.

FastAPI (on Starlette, served by uvicorn) rather than hand-written HTTP: request parsing,
validation of query and body parameters with the failing field named, and the OpenAPI
document (``/api/openapi.json``) that other languages' clients are generated from all come
from one well-kept, typed framework. Its interactive docs would load Swagger UI from a CDN,
so they are off; ``/api/docs`` is a small page of our own, with vendored JavaScript, that
lists the operations from the OpenAPI document and tries them.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from simdaemon import __version__
from simdaemon.console import api_archive, api_audit, api_daemon, api_entities, errors, pages
from simdaemon.console.control import Control
from simdaemon.console.runner import ConsoleServer
from simdaemon.console.security import Guard
from simdaemon.console.settings import ConsoleSettings

__all__ = ["Console", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"


def create_app(control: Control, closing: threading.Event) -> FastAPI:
    """The API and the pages for ``control``; live streams end when ``closing`` is set."""
    app = FastAPI(
        title="simdaemon console",
        version=__version__,
        description="The simulated ARIA DB Daemon's control plane: the same calls as its "
        "Python API, for test suites in any language and for the web console.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.include_router(api_daemon.router(control))
    app.include_router(api_entities.router(control))
    app.include_router(api_audit.router(control, closing))
    app.include_router(api_archive.router(control))
    app.include_router(pages.router(control))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class Console:
    """A daemon's console: bound when made, serving after :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, control: Control, settings: ConsoleSettings) -> None:
        self.settings = settings.resolved()
        self._closing = threading.Event()
        app = Guard(create_app(control, self._closing), self.settings.token)
        self._server = ConsoleServer(app, self.settings)

    @property
    def url(self) -> str:
        """Where the console answers, e.g. ``http://127.0.0.1:51403/``."""
        return self._server.url

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.port

    @property
    def token(self) -> str | None:
        """The token requests must carry (None on loopback unless one was given)."""
        return self.settings.token

    @property
    def error(self) -> BaseException | None:
        """What ended the console's server thread, if it failed."""
        return self._server.error

    def start(self) -> Console:
        """Start serving; the socket is already accepting connections."""
        self._server.start()
        return self

    def stop(self) -> None:
        """End live streams, stop serving and close the socket; idempotent."""
        self._closing.set()
        self._server.stop()
