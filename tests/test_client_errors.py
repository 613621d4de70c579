"""The client's connection failures: each cause its own type, in the time it names, in words."""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from dbdaemon_client import (
    AssociationRejected,
    ClientError,
    ConnectionFailed,
    ConnectionRefused,
    ConnectionTimeout,
    DaemonClient,
    Entity,
    Unreachable,
)
from dbdaemon_client import daemon_client as daemon_client_module
from dbdaemon_client.transport import Opened
from simdaemon.pytest_plugin import TestDaemon
from tests.conftest import client_for
from tests.races import requestor_looks_after_the_answer


def client_of(port: int, timeout: float) -> DaemonClient:
    return DaemonClient(Entity("SIMTEST", "127.0.0.1", 1), Entity("VMSDBD", "127.0.0.1", port),
                        connect_timeout=timeout)  # fmt: skip


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full: the kernel drops further SYNs, so connects time out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued: list[socket.socket] = []
    try:
        for _ in range(8):  # Linux queues backlog + 1 connections; the next connect hangs
            probe = socket.socket()
            probe.settimeout(0.3)
            queued.append(probe)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            pytest.fail("the listen queue never filled")
        yield port
    finally:
        for sock in queued:
            sock.close()
        server.close()


@contextlib.contextmanager
def silent_peer() -> Iterator[int]:
    """A TCP server that accepts and then never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)
        for sock in accepted:
            sock.close()


def test_nothing_listening_is_connection_refused_at_once() -> None:
    with socket.socket() as closed:  # bound, never listening: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConnectionRefused) as refused:
            client_of(port, timeout=5).find_studies("P1")
    assert time.monotonic() - started < 5
    assert f"nothing listens on 127.0.0.1:{port} (connection refused)" in str(refused.value)
    assert "is VMSDBD running" in str(refused.value)
    assert isinstance(refused.value, ConnectionFailed)


def test_a_host_that_drops_the_connection_times_out_in_the_time_named() -> None:
    with full_backlog() as port:
        started = time.monotonic()
        with pytest.raises(ConnectionTimeout) as late:
            client_of(port, timeout=1).echo()
        waited = time.monotonic() - started
    assert 1 <= waited < 5
    assert f"no TCP connection to 127.0.0.1:{port} within 1 s" in str(late.value)


def test_a_peer_that_never_answers_the_association_request_times_out() -> None:
    with silent_peer() as port:
        started = time.monotonic()
        with pytest.raises(ConnectionTimeout) as late:
            client_of(port, timeout=1).echo()
        waited = time.monotonic() - started
    assert 1 <= waited < 5
    message = str(late.value)
    assert f"VMSDBD at 127.0.0.1:{port} took the TCP connection" in message
    assert "did not answer the association request from SIMTEST within 1 s" in message


def test_no_route_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Classification only: no test may send traffic off this machine to get a real EHOSTUNREACH."""

    def unreachable(*args: object, **kwargs: object) -> Opened:
        never = SimpleNamespace(is_established=False, is_rejected=False)  # what is read of it
        return Opened(never, False, OSError(errno.EHOSTUNREACH, "No route to host"))  # type: ignore[arg-type]

    monkeypatch.setattr(daemon_client_module, "open_association", unreachable)
    with pytest.raises(Unreachable, match=r"cannot reach 127.0.0.1:4242: No route to host"):
        client_of(4242, timeout=1).echo()


def test_a_rejection_says_what_to_change(simdaemon: TestDaemon) -> None:
    with pytest.raises(AssociationRejected) as rejected:
        client_for(simdaemon, calling="STRANGER").echo()
    message = str(rejected.value)
    assert f"association rejected by VMSDBD at 127.0.0.1:{simdaemon.port}" in message
    assert "calling AE title not recognized" in message
    assert "add 'STRANGER' with this machine's IP address" in message
    assert not rejected.value.transient


def test_every_error_is_a_client_error() -> None:
    for error in (ConnectionRefused, ConnectionTimeout, Unreachable, AssociationRejected):
        assert issubclass(error, ClientError)


def test_a_rejection_read_before_the_requestor_looks_is_still_a_rejection(
    simdaemon: TestDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pynetdicom's requestor aborts when the DUL closed after the A-ASSOCIATE-RJ first."""
    requestor_looks_after_the_answer(monkeypatch, simdaemon.port)
    client = client_for(simdaemon, calling="STRANGER")
    with pytest.raises(AssociationRejected, match="calling AE title not recognized"):
        client.echo()
