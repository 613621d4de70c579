"""Every refusal of the API as ``{"detail": sentence, "field": name}``, never a traceback.

A client (or the console's own pages) shows ``detail`` to a person and highlights ``field``:
the TOML key (``daemon.port``, ``ip``), a query parameter or a path part.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

__all__ = ["ApiError", "install"]

LOGGER = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the API refuses: status, the field at fault (or None) and what to change."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


def _field(location: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "daemon", "port")`` -> ``daemon.port``; ``("query", "since")`` -> ``since``."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(location[-1] if location else "")


def answer(status: int, detail: str, field: str | None) -> JSONResponse:
    """The one shape of an error answer."""
    return JSONResponse({"detail": detail, "field": field}, status_code=status)


def install(app: FastAPI) -> None:
    """Make every error of ``app`` answer in the one shape."""

    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return answer(error.status, error.detail, error.field)

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0]
        field = _field(first.get("loc", ()))
        return answer(422, f"{field}: {first.get('msg', 'invalid')}", field)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return answer(error.status_code, str(error.detail), None)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        LOGGER.error("console request %s failed: %r", request.url.path, error, exc_info=error)
        return answer(500, f"the daemon failed to answer: {type(error).__name__}", None)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
