"""Who may use the console: the token rules and the same-origin rule (simdaemon.console.security).

The pure rule first, then the console on 127.0.0.2 (a non-loopback bind for the rules'
purposes would need a real interface; 127.0.0.2 is loopback to the kernel, so the test
forces a token the way a non-loopback address does) and cross-site requests over real HTTP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simdaemon import Daemon
from simdaemon.config import from_mapping
from simdaemon.console.security import COOKIE, judge
from simdaemon.console.settings import ConsoleSettings
from tests.conftest import has_second_loopback
from tests.http import call

TOKEN = "s3cret-token-for-tests-only"
HOST = {"host": "127.0.0.1:8000"}


def test_a_token_console_refuses_a_request_without_it() -> None:
    verdict = judge("GET", HOST, TOKEN)
    assert verdict is not None
    assert verdict.status == 401
    assert judge("GET", {**HOST, "authorization": "Bearer wrong-token-xxxxxxxx"}, TOKEN)
    assert judge("GET", {**HOST, "authorization": f"Bearer {TOKEN}"}, TOKEN) is None
    assert judge("GET", {**HOST, "cookie": f"{COOKIE}={TOKEN}"}, TOKEN) is None
    assert judge("GET", HOST, TOKEN, query_token=TOKEN) is None


def test_cross_site_writes_are_refused_unless_they_carry_the_token_header() -> None:
    evil = {**HOST, "origin": "http://evil.example"}
    refused = judge("POST", evil, None)
    assert refused is not None
    assert refused.status == 403
    assert "evil.example" in refused.detail
    assert judge("GET", evil, None) is None  # reading is not a forgery
    assert judge("POST", {**HOST, "origin": "http://127.0.0.1:8000"}, None) is None
    assert judge("POST", HOST, None) is None  # curl or a C# HttpClient: no Origin at all
    assert judge("DELETE", {**HOST, "sec-fetch-site": "cross-site"}, None) is not None
    with_cookie = {**evil, "cookie": f"{COOKIE}={TOKEN}"}
    assert judge("POST", with_cookie, TOKEN) is not None  # a cookie rides along cross-site
    assert judge("POST", {**evil, "authorization": f"Bearer {TOKEN}"}, TOKEN) is None


def test_a_tokenless_console_answers_only_to_loopback_names() -> None:
    """A site whose name resolves to 127.0.0.1 (DNS rebinding) cannot read it."""
    refused = judge("GET", {"host": "rebind.example:8000"}, None)
    assert refused is not None
    assert refused.status == 403
    for host in ("127.0.0.1:1", "localhost:1", "[::1]:1", "127.0.0.2:1"):
        assert judge("GET", {"host": host}, None) is None, host


def test_an_address_beyond_loopback_gets_a_generated_token() -> None:
    assert ConsoleSettings("127.0.0.1").resolved().token is None
    settings = ConsoleSettings("0.0.0.0").resolved()
    assert settings.token is not None
    assert len(settings.token) >= 16
    with pytest.raises(ValueError, match="console host"):
        ConsoleSettings("not-an-address")
    with pytest.raises(ValueError, match="at least 16"):
        ConsoleSettings(token="short")


@pytest.fixture
def guarded(tmp_path: Path) -> Daemon:
    if not has_second_loopback():
        pytest.skip("127.0.0.2 cannot be bound here")
    config = from_mapping({"daemon": {"port": 0, "archive": str(tmp_path / "archive")}})
    daemon = Daemon(config, console=ConsoleSettings("127.0.0.2", 0, TOKEN)).start()
    yield daemon
    daemon.stop()
    daemon.raise_errors()


def test_every_request_without_the_token_gets_401(guarded: Daemon) -> None:
    assert guarded.console is not None
    url = guarded.console.url
    assert url.startswith("http://127.0.0.2:")
    for method, path in [("GET", "/api/status"), ("GET", "/"), ("POST", "/api/reset"),
                         ("GET", "/api/openapi.json"), ("GET", "/static/console.js")]:  # fmt: skip
        answer = call(url, method, path)
        assert answer.status == 401, path
        assert "token" in answer.json()["detail"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert call(url, "GET", "/api/status", headers=bearer).status == 200
    assert call(url, "POST", "/api/reset", headers=bearer).status == 200


def test_a_browser_opens_the_console_once_with_the_token_and_keeps_a_cookie(
    guarded: Daemon,
) -> None:
    assert guarded.console is not None
    url = guarded.console.url
    first = call(url, "GET", f"/archive?token={TOKEN}")
    assert first.status == 200
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    jar = {"Cookie": cookie.split(";")[0]}
    assert call(url, "GET", "/api/patients", headers=jar).status == 200
    origin = {**jar, "Origin": url.rstrip("/")}
    assert call(url, "POST", "/api/reset", headers=origin).status == 200
    forged = {**jar, "Origin": "http://evil.example"}
    assert call(url, "POST", "/api/reset", headers=forged).status == 403


@pytest.mark.simdaemon(console=True)
def test_a_cross_site_post_is_refused_over_http(simdaemon: Daemon) -> None:
    assert simdaemon.console is not None
    url = simdaemon.console.url
    entity = {"ae_title": "FORGED", "ip": "127.0.0.1", "port": 104}
    forged = call(url, "POST", "/api/trusted", entity, {"Origin": "http://evil.example"})
    assert forged.status == 403
    assert "FORGED" not in {e.ae_title for e in simdaemon.trusted}
    same = call(url, "POST", "/api/trusted", entity, {"Origin": url.rstrip("/")})
    assert same.status == 201
    assert "FORGED" in {e.ae_title for e in simdaemon.trusted}
    rebound = call(url, "GET", "/api/status", headers={"Host": "rebind.example"})
    assert rebound.status == 403
