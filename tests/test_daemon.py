"""The Daemon's lifecycle: bind before returning, ephemeral ports, idempotent stop, errors kept."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from pynetdicom import evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

import simdaemon.server
from simdaemon import Config, Daemon, DaemonError
from simdaemon.config import DaemonSettings
from tests import scu
from tests.conftest import MakeDaemon
from tests.scu import associate


def _threads_of(daemon_port: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"simdaemon@{daemon_port}"]


def test_start_returns_listening_on_the_reported_ephemeral_port(tmp_path: Path) -> None:
    with Daemon(Config(daemon=DaemonSettings(port=0, archive=tmp_path))) as daemon:
        assert daemon.running
        assert daemon.port > 0
        assert daemon.address == ("127.0.0.1", daemon.port)
        with socket.create_connection(daemon.address, timeout=5):
            pass  # connecting right after start() succeeds: no readiness race
    assert not daemon.running


def test_stop_is_idempotent_and_leaves_no_thread_or_socket(tmp_path: Path) -> None:
    daemon = Daemon(Config(daemon=DaemonSettings(port=0, archive=tmp_path))).start()
    port = daemon.port
    assert _threads_of(port)
    daemon.stop()
    daemon.stop()
    assert not _threads_of(port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    with pytest.raises(DaemonError, match="not running"):
        _ = daemon.port


def test_stop_ends_open_associations(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    assoc = associate(daemon)
    assert assoc.is_established
    silent = socket.create_connection(daemon.address, timeout=5)  # never sends a request
    daemon.stop()
    assoc.join(5)
    assert assoc.is_aborted
    with silent:
        try:
            closed = silent.recv(1) == b""
        except ConnectionResetError:
            closed = True
    assert closed, "a connection that never sent a request is closed too"


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(Config(daemon=DaemonSettings(port=port, archive=tmp_path)))
        with pytest.raises(DaemonError, match=rf"cannot listen on 127\.0\.0\.1:{port}: .*port"):
            daemon.start()


def test_handler_exceptions_are_kept_and_re_raised(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(event: evt.Event, *_: object) -> int:
        raise ZeroDivisionError("bug in a handler")

    monkeypatch.setattr(simdaemon.server, "handle_echo", broken)
    daemon = make_daemon()
    assoc = associate(daemon)
    assoc.send_c_echo()
    assoc.release()
    with pytest.raises(DaemonError, match="bug in a handler") as raised:
        daemon.raise_errors()
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    daemon.errors.clear()  # handled here; the fixture would otherwise fail the test


def test_a_find_handler_failing_before_it_streams_is_answered_with_a_comment(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when the C-FIND module cannot be loaded on its first request (simdaemon.services).
    def broken(event: evt.Event, *_: object) -> object:
        raise ImportError("no module named simdaemon.services.find")

    monkeypatch.setattr(simdaemon.server, "handle_find", broken)
    daemon = make_daemon()
    found, final = scu.find(daemon, scu.identifier("STUDY", PatientID="X"))
    assert found == []
    assert scu.status_of(final) == (0xC000, "the daemon failed (ImportError); see its log")
    with pytest.raises(DaemonError, match="no module named"):
        daemon.raise_errors()
    daemon.errors.clear()  # handled here; the fixture would otherwise fail the test


def test_a_move_whose_failure_answer_fails_too_is_aborted_not_left_waiting(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise ImportError("no module named simdaemon.services.move")

    monkeypatch.setattr(simdaemon.server, "serve_move", broken)
    monkeypatch.setattr(simdaemon.server, "fail_move", broken)
    daemon = make_daemon()
    assoc = associate(daemon, contexts=[(StudyRootQueryRetrieveInformationModelMove, None)])
    assoc.dimse_timeout = 10  # the peer would wait this long if the move were left unanswered
    query = scu.identifier("STUDY", StudyInstanceUID="1.2.3")
    answers = list(
        assoc.send_c_move(query, "SIMCLIENT", StudyRootQueryRetrieveInformationModelMove)
    )
    assert [status for status, _ in answers if "Status" in status] == []
    assoc.join(5)  # the requestor's thread records the A-ABORT as it ends
    assert assoc.is_aborted
    with pytest.raises(DaemonError, match="no module named"):
        daemon.raise_errors()
    daemon.errors.clear()  # handled here; the fixture would otherwise fail the test
