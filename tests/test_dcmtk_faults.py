"""Injected faults, seen through DCMTK's tools: what a real peer reports for each one.

echoscu, storescu, findscu and movescu (with storescp as the Move Destination) meet every
action on the operations they drive; each test asserts what the tool says, what arrived and
what the audit trail shows. ``-v`` makes the tools name the statuses they receive.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from simdaemon import Daemon
from simdaemon.pytest_plugin import import_patient
from simdaemon.synthetic import SyntheticPatient
from simdaemon.synthetic import synthetic_patient as build_patient
from tests import objects
from tests.conftest import CLIENT, MakeDaemon
from tests.test_dcmtk import StorescpOnce

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]  # drives DCMTK's tools

PEER_ABORTED = "peer aborted association"
ABORT_AS = pytest.mark.parametrize("abort_as", ["abort", "close"])


def run(
    tool: str, daemon: Daemon, *options: str, files: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool as SIMCLIENT against ``daemon``; its log is in ``stderr``."""
    command = [tool, "-v", "-aet", "SIMCLIENT", "-aec", daemon.ae_title, *options]
    return subprocess.run(
        [*command, daemon.host, str(daemon.port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def said(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.lower()  # DCMTK capitalises differently between releases


def fault_detail(daemon: Daemon) -> str:
    (fired,) = daemon.audit.events("fault")
    return fired.detail


def ct_file(folder: Path, size: int = 16) -> Path:
    path = folder / "ct.dcm"
    objects.ct(size=size).save_as(path, enforce_file_format=True)
    return path


# --- echoscu ------------------------------------------------------------------------------


def test_echoscu_sees_the_injected_status(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon()
    daemon.faults.add("echo", status=0x0211, comment="unrecognized")
    done = run(dcmtk("echoscu"), daemon)
    assert "received echo response (unknown status: 0x211)" in said(done)
    assert "echo: answer 0x0211 'unrecognized'" in fault_detail(daemon)


def test_echoscu_times_out_on_a_delay(dcmtk: Callable[[str], str], make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    daemon.faults.add("echo", delay_ms=2500)  # DCMTK's shortest DIMSE timeout is 1 s
    done = run(dcmtk("echoscu"), daemon, "-td", "1")
    assert done.returncode != 0
    assert "dimse no data available (timeout" in said(done)
    assert "echo: delay 2500 ms" in fault_detail(daemon)


def test_echoscu_times_out_on_a_delayed_association(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon()
    daemon.faults.add("associate", delay_ms=2500)
    done = run(dcmtk("echoscu"), daemon, "-ta", "1")
    assert done.returncode != 0
    assert "association request failed" in said(done)
    assert "timeout" in said(done)


def test_echoscu_is_refused_transiently(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon()
    daemon.faults.add("associate", refuse=True, times=1)
    refused = run(dcmtk("echoscu"), daemon)
    assert refused.returncode != 0
    assert "result: rejected transient" in said(refused)
    assert run(dcmtk("echoscu"), daemon).returncode == 0, "only the first time"
    daemon.audit.assert_rejected(calling_ae="SIMCLIENT")


@ABORT_AS
def test_echoscu_association_request_is_aborted(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, abort_as: str
) -> None:
    daemon = make_daemon()
    daemon.faults.add("associate", abort_after=0, abort_as=abort_as)
    done = run(dcmtk("echoscu"), daemon)
    assert done.returncode != 0
    assert f"association request failed: 0006:0317 {PEER_ABORTED}" in said(done)
    assert daemon.audit.events("associate")[0].outcome == "aborted"


@ABORT_AS
@pytest.mark.parametrize(("operation", "after"), [("echo", 0), ("associate", 1)])
def test_echoscu_echo_is_aborted(
    dcmtk: Callable[[str], str],
    make_daemon: MakeDaemon,
    abort_as: str,
    operation: str,
    after: int,
) -> None:
    daemon = make_daemon()
    daemon.faults.add(operation, abort_after=after, abort_as=abort_as)
    done = run(dcmtk("echoscu"), daemon)
    assert f"echo failed: 0006:0317 {PEER_ABORTED}" in said(done)
    assert daemon.audit.events("echo") == []
    assert daemon.audit.events("associate")[0].outcome == "accepted"


# --- storescu ----------------------------------------------------------------------------


def test_storescu_sees_the_injected_status(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    daemon.faults.add("store", status=0xA700, comment="disk full (injected)")
    done = run(dcmtk("storescu"), daemon, files=(ct_file(tmp_path),))
    assert "received store response (refused: outofresources)" in said(done)
    assert daemon.archive.patients() == []


@ABORT_AS
@pytest.mark.parametrize(("operation", "after"), [("store", 0), ("associate", 3)])
def test_storescu_is_aborted_and_nothing_is_stored(
    dcmtk: Callable[[str], str],
    make_daemon: MakeDaemon,
    tmp_path: Path,
    abort_as: str,
    operation: str,
    after: int,
) -> None:
    """store: before the import; associate: on the third PDU, in the middle of the pixels."""
    daemon = make_daemon()
    daemon.faults.add(operation, abort_after=after, abort_as=abort_as)
    done = run(dcmtk("storescu"), daemon, files=(ct_file(tmp_path, size=256),))
    assert done.returncode != 0
    assert f"store failed, file: {tmp_path / 'ct.dcm'}".lower() in said(done)
    if abort_as == "abort" or operation == "store":
        assert PEER_ABORTED in said(done)
    # A connection closed while storescu is still sending: it may see the abort, or only
    # that its write failed (EPIPE) - either way the store failed, as the tool says above.
    assert daemon.archive.patients() == []
    assert daemon.archive.check().ok


def test_storescu_aborted_after_the_import_left_the_object_stored(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    daemon.faults.add("store", abort_after=1)
    path = ct_file(tmp_path)
    done = run(dcmtk("storescu"), daemon, files=(path,))
    assert PEER_ABORTED in said(done)
    daemon.audit.assert_stored(str(dcmread(path).SOPInstanceUID))


def test_echoscu_meets_the_same_seeded_faults_on_every_run(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    patterns = []
    for _ in range(2):
        daemon = make_daemon()
        daemon.faults.add("echo", status=0xC000, probability=0.5, seed=4)
        answers = [said(run(dcmtk("echoscu"), daemon)) for _ in range(8)]
        patterns.append(["received echo response (success)" in answer for answer in answers])
    assert patterns[0] == patterns[1]
    assert 0 < sum(patterns[0]) < 8


def test_storescu_times_out_on_a_delay(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    daemon.faults.add("store", delay_ms=2500)
    done = run(dcmtk("storescu"), daemon, "-td", "1", files=(ct_file(tmp_path),))
    assert done.returncode != 0
    assert "dimse no data available (timeout" in said(done)


# --- findscu -----------------------------------------------------------------------------


@pytest.fixture
def patient(make_daemon: MakeDaemon) -> tuple[Daemon, SyntheticPatient]:
    daemon = make_daemon()
    return daemon, import_patient(daemon, build_patient(3, slices=6, matrix=16))


def findscu(
    dcmtk: Callable[[str], str], daemon: Daemon, series_uid: str, out: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    out.mkdir()
    keys = ["-k", "QueryRetrieveLevel=IMAGE", "-k", f"SeriesInstanceUID={series_uid}"]
    return run(dcmtk("findscu"), daemon, "-S", "-X", "-od", str(out), *keys,
               "-k", "SOPInstanceUID", *options)  # fmt: skip


@ABORT_AS
def test_findscu_gets_two_matches_then_the_abort(
    dcmtk: Callable[[str], str],
    patient: tuple[Daemon, SyntheticPatient],
    tmp_path: Path,
    abort_as: str,
) -> None:
    daemon, synthetic = patient
    daemon.faults.add("find", abort_after=2, abort_as=abort_as, level="IMAGE")
    done = findscu(dcmtk, daemon, synthetic.ct_series_uid, tmp_path / "out")
    assert "received find response 2 (pending)" in said(done)
    assert "received find response 3" not in said(done)
    assert "find failed" in said(done)
    assert PEER_ABORTED in said(done)
    assert len(list((tmp_path / "out").glob("rsp*.dcm"))) == 2
    assert "find when level 'IMAGE': " in fault_detail(daemon)


def test_findscu_sees_the_injected_status(
    dcmtk: Callable[[str], str], patient: tuple[Daemon, SyntheticPatient], tmp_path: Path
) -> None:
    daemon, synthetic = patient
    daemon.faults.add("find", status=0xA700, comment="busy")
    done = findscu(dcmtk, daemon, synthetic.ct_series_uid, tmp_path / "out")
    assert "received final find response (refused: outofresources)" in said(done)
    assert list((tmp_path / "out").glob("rsp*.dcm")) == []


def test_findscu_times_out_on_a_delay(
    dcmtk: Callable[[str], str], patient: tuple[Daemon, SyntheticPatient], tmp_path: Path
) -> None:
    daemon, synthetic = patient
    daemon.faults.add("find", delay_ms=2500)
    done = findscu(dcmtk, daemon, synthetic.ct_series_uid, tmp_path / "out", "-td", "1")
    assert "dimse no data available (timeout" in said(done)


# --- movescu to storescp -----------------------------------------------------------------


def movescu(
    dcmtk: Callable[[str], str],
    make_daemon: MakeDaemon,
    tmp_path: Path,
    *options: str,
    operation: str = "move",
    **fault: object,
) -> tuple[Daemon, subprocess.CompletedProcess[str], StorescpOnce, SyntheticPatient]:
    """Move a 10-slice CT series to a DCMTK storescp with a fault for ``operation``."""
    receiver = StorescpOnce(dcmtk("storescp"), tmp_path / "received")
    destination = {"ae_title": "DEST", "ip": "127.0.0.1", "port": receiver.port}
    daemon = make_daemon(trusted=[CLIENT, destination])
    synthetic = import_patient(daemon, build_patient(4, slices=10, matrix=16))
    daemon.faults.add(operation, **fault)
    keys = ["-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={synthetic.study_uid}",
            "-k", f"SeriesInstanceUID={synthetic.ct_series_uid}"]  # fmt: skip
    done = run(dcmtk("movescu"), daemon, "-S", "-aem", "DEST", *keys, *options)
    return daemon, done, receiver, synthetic


def test_movescu_gets_a_silently_partial_list(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon, done, receiver, _ = movescu(dcmtk, make_daemon, tmp_path, drop_fraction=0.4, seed=2)
    assert receiver.wait().returncode == 0
    arrived = len(list(receiver.folder.iterdir()))
    assert 0 < arrived < 10
    assert done.returncode == 0, done.stderr
    assert "received final move response (success)" in said(done)
    assert "drop 0.4 of the sub-operations silently" in fault_detail(daemon)


def test_movescu_sees_dropped_suboperations_counted_failed(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon, done, receiver, _ = movescu(
        dcmtk, make_daemon, tmp_path, drop_fraction=0.4, drop_as="failed", seed=2
    )
    receiver.wait()
    arrived = len(list(receiver.folder.iterdir()))
    assert 0 < arrived < 10
    assert "received final move response (warning" in said(done)
    (move,) = daemon.audit.events("move")
    assert f"{arrived} completed, {10 - arrived} failed" in move.detail


@ABORT_AS
def test_movescu_is_aborted_after_two_suboperations(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path, abort_as: str
) -> None:
    daemon, done, receiver, _ = movescu(
        dcmtk, make_daemon, tmp_path, abort_after=2, abort_as=abort_as
    )
    assert receiver.wait().returncode == 0, "the daemon's own store association ends cleanly"
    assert len(list(receiver.folder.iterdir())) == 2
    assert "received move response 2 (pending)" in said(done)
    assert f"move request failed: 0006:0317 {PEER_ABORTED}" in said(done)
    (move,) = daemon.audit.events("move")
    assert "ended by an injected fault after 2 completed" in move.detail


def test_movescu_sees_the_injected_status(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon, done, receiver, _ = movescu(
        dcmtk, make_daemon, tmp_path, status=0xA702, comment="out of resources (injected)"
    )
    receiver.close()
    assert "received final move response (refused: outofresourcessuboperations)" in said(done)
    assert daemon.audit.events("move") == [], "answered by the fault, not by the move service"


def test_movescu_sees_suboperations_the_destination_refused(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon, done, receiver, _ = movescu(
        dcmtk, make_daemon, tmp_path, operation="suboperation", status=0xA700, times=3
    )
    receiver.wait()
    assert len(list(receiver.folder.iterdir())) == 7
    assert "received final move response (warning" in said(done)
    assert len(daemon.audit.events("fault")) == 3


def test_movescu_times_out_on_a_slow_suboperation(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon, done, receiver, _ = movescu(
        dcmtk, make_daemon, tmp_path, "-td", "1", operation="suboperation", delay_ms=2500,
        times=1,
    )  # fmt: skip
    receiver.wait()
    assert "dimse no data available (timeout" in said(done)  # movescu still exits 0
    assert "suboperation: delay 2500 ms" in fault_detail(daemon)
    (move,) = daemon.audit.events("move")
    assert "the requester left after 1 completed" in move.detail, "the daemon stops sending"
