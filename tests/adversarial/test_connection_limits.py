"""Connections that never associate: memory, association slots, threads, and stop().

Each test opens tens of raw sockets on loopback and checks what the daemon does with them:
a header claiming a gigabyte is refused without allocating it, idle and half-sent requests
take no association slot and are closed after ``[limits] associate_request_timeout``, the
connections beyond ``max_connections`` are closed at once, and ``stop()`` does not wait for
the stalled peers one by one.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from simdaemon import Daemon
from tests.adversarial.pdus import (
    ABORT,
    ASSOCIATE_AC,
    P_DATA,
    associate_rq,
    close_all,
    closed_by_peer,
    connect,
    header,
    is_open,
    join_acceptor_threads,
    read_pdu,
)
from tests.conftest import MakeDaemon
from tests.scu import associate

GIB = 1024**3
MB = 1024**2

pytestmark = pytest.mark.slow  # tens of raw connections held open for seconds


def rss_bytes() -> int:
    """This process's resident set size (the daemon runs in it)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def advertised_maximum(associate_ac: bytes) -> int:
    """The Maximum Length Received sub-item (0x51) of an A-ASSOCIATE-AC's user information."""
    marker = associate_ac.find(b"\x51\x00\x00\x04")
    assert marker >= 0, "no maximum length sub-item in the A-ASSOCIATE-AC"
    return int(struct.unpack(">L", associate_ac[marker + 4 : marker + 8])[0])


def echo_is_accepted(daemon: Daemon) -> None:
    """A trusted association is accepted (not A-ASSOCIATE-RJ) and its C-ECHO answered."""
    assoc = associate(daemon)
    try:
        assert assoc.is_established, "the trusted echo was refused"
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def stalled(daemon: Daemon, count: int) -> list[socket.socket]:
    """``count`` connections that sent the first 20 bytes of an A-ASSOCIATE-RQ, then stopped."""
    sockets = [connect(daemon.address) for _ in range(count)]
    for raw in sockets:
        raw.sendall(associate_rq()[:20])
    return sockets


def test_a_header_claiming_a_gigabyte_is_aborted_without_allocating_it(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon()
    before = rss_bytes()
    with connect(daemon.address) as raw:
        raw.sendall(header(0x01, GIB) + bytes(64 * 1024))
        answer = closed_by_peer(raw)
    growth = rss_bytes() - before

    assert growth < 50 * MB, f"RSS grew {growth / MB:.0f} MB for a 1 GiB claim"
    assert answer[:1] in (bytes([ABORT]), b""), answer[:10]
    event = daemon.audit.wait_for("associate", outcome="aborted")
    assert event.rule == "pdu-size"
    assert str(GIB) in event.detail
    assert "max_associate_request" in event.detail
    echo_is_accepted(daemon)


def test_after_association_a_pdu_beyond_the_advertised_maximum_aborts(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(limits={"max_pdu_length": 16384})
    with connect(daemon.address) as raw:
        raw.sendall(associate_rq())
        accepted = read_pdu(raw)
        assert accepted is not None
        assert accepted[0] == ASSOCIATE_AC
        assert advertised_maximum(accepted[1]) == 16384
        before = rss_bytes()
        raw.sendall(header(P_DATA, 0xFFFFFFFF) + bytes(16 * 1024))
        answer = closed_by_peer(raw)
        growth = rss_bytes() - before

    assert growth < 50 * MB, f"RSS grew {growth / MB:.0f} MB for a 4 GiB claim"
    assert answer[:1] in (bytes([ABORT]), b""), answer[:10]
    event = daemon.audit.wait_for("associate", outcome="aborted")
    assert str(0xFFFFFFFF) in event.detail
    assert "max_pdu_length" in event.detail
    echo_is_accepted(daemon)


def test_idle_and_stalled_connections_take_no_association_slot(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(max_associations=10, limits={"associate_request_timeout": 30.0})
    idle = [connect(daemon.address) for _ in range(12)]
    half = stalled(daemon, 12)
    try:
        echo_is_accepted(daemon)
        assert daemon.audit.events("associate", outcome="rejected") == []
    finally:
        close_all(idle + half)


def test_stalled_and_idle_connections_are_closed_after_the_request_deadline(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(limits={"associate_request_timeout": 0.5})
    baseline = threading.active_count()
    idle = [connect(daemon.address) for _ in range(10)]
    half = stalled(daemon, 10)
    try:
        for raw in idle + half:
            assert closed_by_peer(raw, timeout=10.0) == b""
    finally:
        close_all(idle + half)

    event = daemon.audit.wait_for("associate", outcome="refused")
    assert event.rule == "request-timeout"
    assert "associate_request_timeout" in event.detail
    join_acceptor_threads()
    assert threading.active_count() <= baseline + 2
    echo_is_accepted(daemon)


def test_connections_beyond_the_cap_are_closed_at_once(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(
        max_associations=4, limits={"max_connections": 12, "associate_request_timeout": 30.0}
    )
    held = [connect(daemon.address) for _ in range(12)]
    excess = [connect(daemon.address) for _ in range(6)]
    try:
        for raw in excess:
            assert closed_by_peer(raw, timeout=10.0) == b""
        assert all(is_open(raw) for raw in held)
        event = daemon.audit.wait_for("associate", outcome="refused")
        assert event.rule == "connection-limit"
        assert "max_connections" in event.detail
        # Rate-limited: one line for the burst, not one per connection.
        refusals = [e for e in daemon.audit.events("associate") if e.rule == "connection-limit"]
        assert len(refusals) == 1
    finally:
        close_all(held + excess)
    join_acceptor_threads()
    echo_is_accepted(daemon)


def test_stop_does_not_wait_for_stalled_peers_one_by_one(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(limits={"associate_request_timeout": 30.0})
    half = stalled(daemon, 20)
    deaf = []  # associated peers that never read the daemon's A-ABORT nor close
    for _ in range(8):
        raw = connect(daemon.address)
        raw.sendall(associate_rq())
        accepted = read_pdu(raw)
        assert accepted is not None
        assert accepted[0] == ASSOCIATE_AC
        deaf.append(raw)
    try:
        started = time.monotonic()
        daemon.stop()
        took = time.monotonic() - started
    finally:
        close_all(half + deaf)
    assert took < 5.0, f"stop() took {took:.1f} s with 28 stalled peers"
