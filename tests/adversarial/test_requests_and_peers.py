"""Malformed titles, requests on the wrong context, and IPv4 peers of a dual-stack daemon."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from tests.adversarial.pdus import ASSOCIATE_RJ, associate_rq, closed_by_peer, connect, read_pdu
from tests.conftest import MakeDaemon
from tests.scu import associate

QR_CONTEXTS = (
    (StudyRootQueryRetrieveInformationModelFind, None),
    (StudyRootQueryRetrieveInformationModelMove, None),
)


def study_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    return query


@pytest.mark.parametrize(
    ("calling", "called", "reason", "shown"),
    [
        (b"SIM\x00CLIENT", b"VMSDBD", 3, "calling AE title 'SIM\\x00CLIENT'"),
        ("SIMCLIENTé".encode(), b"VMSDBD", 3, "calling AE title 'SIMCLIENT\\xc3\\xa9'"),
        (b"SIMCLIENT", b"VMS\nDBD", 7, "called AE title 'VMS\\x0aDBD'"),
        (b"SIM\\CLIENT", b"VMSDBD", 3, "calling AE title 'SIM\\x5cCLIENT'"),
    ],
    ids=["nul", "non-ascii", "newline-in-called", "backslash"],
)
def test_an_ae_title_with_control_or_non_ascii_bytes_is_rejected_and_audited(
    make_daemon: MakeDaemon, calling: bytes, called: bytes, reason: int, shown: str
) -> None:
    daemon = make_daemon()
    with connect(daemon.address) as raw:
        raw.sendall(associate_rq(calling=calling, called=called))
        answer = read_pdu(raw)
        closed_by_peer(raw)

    assert answer is not None
    assert answer[0] == ASSOCIATE_RJ
    _, result, source, diagnostic = struct.unpack(">BBBB", answer[1])
    assert (result, source, diagnostic) == (1, 1, reason)
    event = daemon.audit.wait_for("associate", outcome="rejected")
    assert event.rule == "ae-title"
    assert shown in event.detail
    assert "\x00" not in event.describe()
    assert "\n" not in event.describe()


def test_a_c_move_on_a_find_context_is_refused_0x0122(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assoc = associate(daemon, contexts=QR_CONTEXTS)
    try:
        responses = list(
            assoc.send_c_move(
                study_query(), "SIMCLIENT", query_model=StudyRootQueryRetrieveInformationModelFind
            )
        )
    finally:
        assoc.release()

    statuses = [status.Status for status, _ in responses if status is not None]
    assert statuses == [0x0122]
    event = daemon.audit.wait_for("move", outcome="refused")
    assert event.status == 0x0122
    assert event.rule == "context"
    assert StudyRootQueryRetrieveInformationModelFind in event.detail


def test_a_c_find_on_a_move_context_is_refused_0x0122(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assoc = associate(daemon, contexts=QR_CONTEXTS)
    try:
        responses = list(
            assoc.send_c_find(study_query(), query_model=StudyRootQueryRetrieveInformationModelMove)
        )
    finally:
        assoc.release()

    statuses = [status.Status for status, _ in responses if status is not None]
    assert statuses == [0x0122]
    assert daemon.audit.wait_for("find", outcome="refused").status == 0x0122


def ipv6_loopback() -> bool:
    """Whether the kernel can bind the IPv6 loopback (no IPv6 at all otherwise)."""
    if not socket.has_ipv6:
        return False
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            return False
    return True


@dataclass
class Address:
    host: str
    port: int
    ae_title: str


@pytest.mark.skipif(not ipv6_loopback(), reason="this kernel has no IPv6 (cannot bind ::1)")
def test_a_dual_stack_daemon_trusts_an_ipv4_entity_calling_over_ipv4(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(host="::")
    assoc = associate(Address("127.0.0.1", daemon.port, daemon.ae_title))
    try:
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    decision = daemon.audit.wait_for("associate", outcome="accepted")
    assert decision.rule == "trusted"
    assert "from 127.0.0.1:" in decision.detail
    assert decision.peer.startswith("127.0.0.1:"), "the audit names the peer as trusted"
