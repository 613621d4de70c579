"""Who may use the console: the token, and the same-origin rule for state-changing requests.

:func:`judge` is the whole rule as a pure function of a request's method and headers, so it
is tested without sockets; :class:`Guard` applies it to every HTTP request as ASGI
middleware (plain ASGI, so the live audit stream is not buffered).

The rules:

- With a token (required on any non-loopback address), every request carries it: the
  ``Authorization: Bearer TOKEN`` header, or the ``simdaemon_console`` cookie a browser gets
  by opening any page once with ``?token=TOKEN``. Without it: 401.
- Without a token (loopback only), the ``Host`` header must name a loopback address or
  ``localhost``: a web page on another name that resolves to 127.0.0.1 (DNS rebinding)
  gets 403.
- A state-changing request (POST, PUT, PATCH, DELETE) that a browser sent from another
  site gets 403 unless it carries the token header: its ``Origin`` must equal the console's
  own (``http://`` + ``Host``), and ``Sec-Fetch-Site``, when sent, must say ``same-origin``.
  A client that is no browser (curl, a C# HttpClient) sends neither and passes.
"""

from __future__ import annotations

import hmac
import http.cookies
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simdaemon.console.settings import is_loopback

__all__ = ["COOKIE", "Guard", "Verdict", "judge"]

#: The cookie holding the token in a browser (HttpOnly, SameSite=Strict).
COOKIE = "simdaemon_console"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Verdict:
    """A refusal: the HTTP status and the sentence saying what to change."""

    status: int
    detail: str


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def _hostname(host: str) -> str:
    """The name part of a Host header (``[::1]:8080`` -> ``::1``)."""
    return urlsplit(f"//{host}").hostname or ""


def judge(
    method: str,
    headers: Mapping[str, str],
    token: str | None,
    *,
    query_token: str | None = None,
) -> Verdict | None:
    """Refuse a request (401 or 403, with the reason) or let it through (None).

    ``headers`` are lower-case names; ``query_token`` is ``?token=`` of the URL.
    """
    bearer = None
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        bearer = authorization[7:].strip()
    cookie = None
    if "cookie" in headers:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(headers["cookie"])
        except http.cookies.CookieError:
            jar = http.cookies.SimpleCookie()
        if COOKIE in jar:
            cookie = jar[COOKIE].value
    host = headers.get("host", "")
    if token is not None:
        if not (_same(bearer, token) or _same(cookie, token) or _same(query_token, token)):
            return Verdict(
                401,
                "this console needs its token: send 'Authorization: Bearer TOKEN' or open "
                "the console once with ?token=TOKEN (simdaemon serve prints it at start)",
            )
        if _same(bearer, token):
            return None  # a client holding the token is not a forged cross-site request
    elif not is_loopback(_hostname(host)):
        return Verdict(
            403,
            f"Host {host!r} is not a loopback address; open the console as "
            "http://127.0.0.1:PORT/ (a console on another address needs --console-token)",
        )
    if method.upper() in _SAFE_METHODS:
        return None
    origin = headers.get("origin")
    site = headers.get("sec-fetch-site")
    if origin is not None and origin != f"http://{host}":
        return Verdict(
            403,
            f"cross-site {method.upper()} refused: Origin {origin!r} is not this console "
            f"(http://{host}); send the token header to change state from elsewhere",
        )
    if site is not None and site not in ("same-origin", "none"):
        return Verdict(403, f"cross-site {method.upper()} refused (Sec-Fetch-Site: {site})")
    return None


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """ASGI middleware applying :func:`judge`; sets the token cookie when ``?token=`` was used."""

    def __init__(self, app: App, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        query_token = query.get("token", [None])[0]
        verdict = judge(scope["method"], headers, self.token, query_token=query_token)
        if verdict is not None:
            body = json.dumps({"detail": verdict.detail, "field": None}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": verdict.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *([(b"www-authenticate", b"Bearer")] if verdict.status == 401 else []),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if self.token is not None and _same(query_token, self.token):
            cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        await self.app(scope, receive, send)
