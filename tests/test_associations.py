"""Every row of SPEC section 3 over a real socket, asserting the exact A-ASSOCIATE-RJ."""

from __future__ import annotations

import logging
import socket

import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from simdaemon import TrustedEntity
from tests.conftest import MakeDaemon, has_second_loopback
from tests.scu import associate, rejection

CALLED_AE_NOT_RECOGNIZED = (1, 1, 7)
CALLING_AE_NOT_RECOGNIZED = (1, 1, 3)
LOCAL_LIMIT_EXCEEDED = (2, 3, 2)

needs_127_0_0_2 = pytest.mark.skipif(
    not has_second_loopback(), reason="127.0.0.2 cannot be bound on this machine"
)


def test_trusted_entity_is_accepted_and_echo_succeeds(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assoc = associate(daemon)
    assert assoc.is_established
    status = assoc.send_c_echo()
    assoc.release()
    assert status.Status == 0x0000
    decided, echoed = daemon.audit.events()
    assert (decided.operation, decided.outcome, decided.calling_ae) == (
        "associate",
        "accepted",
        "SIMCLIENT",
    )
    assert decided.peer.startswith("127.0.0.1:")
    assert (echoed.operation, echoed.status, echoed.calling_ae) == ("echo", 0x0000, "SIMCLIENT")


def test_wrong_called_ae_is_rejected_reason_7(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assert rejection(associate(daemon, called="ARIA")) == CALLED_AE_NOT_RECOGNIZED
    (event,) = daemon.audit.events("associate")
    assert (event.outcome, event.rule, event.called_ae) == ("rejected", "called-ae", "ARIA")


def test_untrusted_calling_ae_is_rejected_reason_3_with_advice(
    make_daemon: MakeDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = make_daemon()
    with caplog.at_level(logging.INFO, logger="simdaemon"):
        assert rejection(associate(daemon, "STRANGER")) == CALLING_AE_NOT_RECOGNIZED
    (line,) = [r.getMessage() for r in caplog.records if "STRANGER" in r.getMessage()]
    assert "add it under [[trusted]] with ae_title = 'STRANGER', ip = '127.0.0.1'" in line
    assert daemon.audit.events(outcome="rejected")[0].rule == "calling-ae"


@needs_127_0_0_2
def test_trusted_ae_from_another_address_is_rejected_reason_3(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assoc = associate(daemon, bind_address=("127.0.0.2", 0))
    assert rejection(assoc) == CALLING_AE_NOT_RECOGNIZED
    (event,) = daemon.audit.events("associate")
    assert event.rule == "peer-address"
    assert "trusted only from 127.0.0.1; this call came from 127.0.0.2" in event.detail


@needs_127_0_0_2
def test_a_cidr_entity_accepts_any_address_in_its_block(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(trusted=[{"ae_title": "WARD", "ip": "127.0.0.0/8", "port": 104}])
    assoc = associate(daemon, "WARD", bind_address=("127.0.0.2", 0))
    assert assoc.is_established
    assoc.release()


def test_trailing_spaces_in_ae_titles_are_not_significant(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(
        ae_title="MYDAEMON  ",
        trusted=[{"ae_title": "MYCLIENT   ", "ip": "127.0.0.1", "port": 104}],
    )
    assert daemon.ae_title == "MYDAEMON"
    assoc = associate(daemon, "MYCLIENT  ", called="MYDAEMON   ")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_one_more_than_max_associations_is_rejected_transiently(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(max_associations=2)
    held = [associate(daemon) for _ in range(2)]
    assert all(a.is_established for a in held)
    assert rejection(associate(daemon)) == LOCAL_LIMIT_EXCEEDED
    assert daemon.audit.events(outcome="rejected")[0].rule == "limit"
    held.pop().release()
    again = associate(daemon)
    assert again.is_established, "a released association frees its place"
    for assoc in [*held, again]:
        assoc.release()


def test_trust_and_untrust_at_runtime(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assert rejection(associate(daemon, "NEWCLIENT")) == CALLING_AE_NOT_RECOGNIZED
    daemon.trust(TrustedEntity("NEWCLIENT", "127.0.0.1", 11112))
    assoc = associate(daemon, "NEWCLIENT")
    assert assoc.is_established
    assoc.release()
    daemon.untrust("NEWCLIENT")
    assert rejection(associate(daemon, "NEWCLIENT")) == CALLING_AE_NOT_RECOGNIZED
    with pytest.raises(KeyError, match="'NEWCLIENT' is not a trusted entity"):
        daemon.untrust("NEWCLIENT")


def test_c_get_and_unsupported_transfer_syntaxes_are_refused(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assoc = associate(
        daemon,
        contexts=[
            (Verification, None),
            (PatientRootQueryRetrieveInformationModelGet, None),
            (StudyRootQueryRetrieveInformationModelGet, None),
            (CTImageStorage, [JPEGBaseline8Bit]),
            (CTImageStorage, [JPEGBaseline8Bit, ExplicitVRLittleEndian]),
        ],
    )
    assert assoc.is_established
    refused = {(cx.abstract_syntax, cx.result) for cx in assoc.rejected_contexts}
    abstract_syntax_not_supported, transfer_syntaxes_not_supported = 0x03, 0x04
    assert refused == {
        (PatientRootQueryRetrieveInformationModelGet, abstract_syntax_not_supported),
        (StudyRootQueryRetrieveInformationModelGet, abstract_syntax_not_supported),
        (CTImageStorage, transfer_syntaxes_not_supported),
    }
    accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    assert (CTImageStorage, ExplicitVRLittleEndian) in accepted
    assoc.release()


def test_daemon_keeps_serving_after_garbage(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x01\x00\x00\x00\x00\x10" + b"\xff" * 16, b""):
        with socket.create_connection(daemon.address, timeout=5) as raw:
            raw.sendall(junk)
            raw.shutdown(socket.SHUT_WR)
            while raw.recv(4096):  # the daemon aborts or closes; wait for it
                pass
    assoc = associate(daemon)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
