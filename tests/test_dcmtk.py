"""Interop: DCMTK's echoscu for every row of the association table, storescu, findscu, movescu
with storescp as the Move Destination."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dbdaemon_client import DaemonClient, Entity
from simdaemon import Daemon
from simdaemon.synthetic import synthetic_patient
from tests import known, objects, scu
from tests.conftest import CLIENT, MakeDaemon
from tests.scu import associate

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]  # drives DCMTK's tools


def echoscu(
    dcmtk: Callable[[str], str], daemon: Daemon, calling: str, called: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [dcmtk("echoscu"), "-aet", calling, "-aec", called or daemon.ae_title]
    return subprocess.run(
        [*command, daemon.host, str(daemon.port)], capture_output=True, text=True, timeout=30
    )


def test_echoscu_from_a_trusted_entity_succeeds(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon()
    done = echoscu(dcmtk, daemon, "SIMCLIENT")
    assert done.returncode == 0, done.stderr
    assert [e.operation for e in daemon.audit] == ["associate", "echo"]


@pytest.mark.parametrize(
    ("calling", "called", "result", "reason"),
    [
        ("STRANGER", None, "rejected permanent, source: service user", "calling ae title not"),
        ("SIMCLIENT", "ARIA", "rejected permanent, source: service user", "called ae title not"),
    ],
)
def test_echoscu_sees_the_exact_rejection(
    dcmtk: Callable[[str], str],
    make_daemon: MakeDaemon,
    calling: str,
    called: str | None,
    result: str,
    reason: str,
) -> None:
    done = echoscu(dcmtk, make_daemon(), calling, called)
    assert done.returncode != 0
    said = done.stderr.lower()  # DCMTK capitalises differently between releases
    assert f"result: {result}" in said
    assert f"reason: {reason} recognized" in said


def test_echoscu_from_the_wrong_address_is_refused(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon(trusted=[{"ae_title": "SIMCLIENT", "ip": "10.130.10.133", "port": 104}])
    done = echoscu(dcmtk, daemon, "SIMCLIENT")
    assert "reason: calling ae title not recognized" in done.stderr.lower()
    assert daemon.audit.events("associate")[0].rule == "peer-address"


def test_echoscu_over_the_limit_is_refused_transiently(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon(max_associations=1)
    held = associate(daemon)
    assert held.is_established
    done = echoscu(dcmtk, daemon, "SIMCLIENT")
    held.release()
    said = done.stderr.lower()
    assert "result: rejected transient, source: service provider (presentation" in said
    assert "reason: local limit exceeded" in said


def storescu(
    dcmtk: Callable[[str], str], daemon: Daemon, calling: str, files: list[Path]
) -> subprocess.CompletedProcess[str]:
    command = [dcmtk("storescu"), "-aet", calling, "-aec", daemon.ae_title]
    return subprocess.run(
        [*command, daemon.host, str(daemon.port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _write(folder: Path, datasets: list[Dataset]) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for number, ds in enumerate(datasets):
        path = folder / f"{number:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_storescu_stores_a_ct_series_and_a_structure_set(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    first = objects.ct(size=64, InstanceNumber=1)
    series = [first] + [
        objects.same_patient(first, objects.ct(size=64, InstanceNumber=n)) for n in range(2, 11)
    ]
    structures = objects.same_patient(first, objects.rt_struct())
    structures.SeriesInstanceUID = objects.uid()
    files = _write(tmp_path / "send", [*series, structures])

    done = storescu(dcmtk, daemon, "SIMCLIENT", files)

    assert done.returncode == 0, done.stderr
    assert daemon.archive.count() == 11
    (patient,) = daemon.archive.patients()
    assert (patient.patient_id, patient.series, patient.instances) == ("PAT001", 2, 11)
    for ds in series:
        assert daemon.archive.read(ds.SOPInstanceUID).PixelData == ds.PixelData
    stored = daemon.archive.read(structures.SOPInstanceUID)
    assert stored.StructureSetROISequence[0].ROIName == "BODY"
    assert len(daemon.audit.events("store", calling_ae="SIMCLIENT", outcome="success")) == 11


def test_storescu_from_an_untrusted_entity_is_rejected_at_association(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    files = _write(tmp_path / "send", [objects.ct()])
    done = storescu(dcmtk, daemon, "STRANGER", files)
    assert done.returncode != 0
    said = done.stderr.lower()
    assert "result: rejected permanent, source: service user" in said
    assert "reason: calling ae title not recognized" in said
    assert daemon.archive.count() == 0
    assert [e.operation for e in daemon.audit] == ["associate"]


def findscu(
    dcmtk: Callable[[str], str], daemon: Daemon, model: str, keys: dict[str, str], out: Path
) -> list[Dataset]:
    """Run DCMTK findscu; return its responses (extracted with -X), sorted by file name."""
    out.mkdir()
    command = [dcmtk("findscu"), model, "-aet", "SIMCLIENT", "-aec", daemon.ae_title, "-X"]
    command += ["-od", str(out)]
    for keyword, value in keys.items():
        command += ["-k", f"{keyword}={value}" if value else keyword]
    done = subprocess.run(
        [*command, daemon.host, str(daemon.port)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


FINDSCU_QUERIES = [
    ("-S", "wildcard name", {"QueryRetrieveLevel": "STUDY", "PatientName": "Do*"}),
    ("-P", "wildcard name", {"QueryRetrieveLevel": "PATIENT", "PatientName": "DO*"}),
    ("-S", "date range", {"QueryRetrieveLevel": "STUDY", "StudyDate": "20260101-20260228"}),
    (
        "-P",
        "date range",
        {"QueryRetrieveLevel": "STUDY", "PatientID": "PAT-A", "StudyDate": "20260201-"},
    ),
    ("-S", "UID list", {"QueryRetrieveLevel": "SERIES", "SeriesInstanceUID": "@series-list"}),
    (
        "-P",
        "UID list",
        {
            "QueryRetrieveLevel": "IMAGE",
            "PatientID": "PAT-A",
            "StudyInstanceUID": "@study",
            "SeriesInstanceUID": "@ct-series",
            "SOPInstanceUID": "@image-list",
        },
    ),
]


@pytest.mark.parametrize(
    ("model", "keys"), [pytest.param(m, k, id=f"{m}-{name}") for m, name, k in FINDSCU_QUERIES]
)
def test_findscu_gets_the_same_identifiers_as_pynetdicom(
    dcmtk: Callable[[str], str],
    make_daemon: MakeDaemon,
    tmp_path: Path,
    model: str,
    keys: dict[str, str],
) -> None:
    daemon = make_daemon()
    archive = known.build()
    known.store(daemon, archive)
    substitutes = {
        "@series-list": f"{archive.uid('ct1', 'SeriesInstanceUID')}\\"
        f"{archive.uid('mr1', 'SeriesInstanceUID')}",
        "@study": archive.uid("ct1", "StudyInstanceUID"),
        "@ct-series": archive.uid("ct1", "SeriesInstanceUID"),
        "@image-list": f"{archive.uid('ct1')}\\{archive.uid('ct3')}",
    }
    keys = {k: substitutes.get(v, v) for k, v in keys.items()}
    level = keys["QueryRetrieveLevel"]
    returned = ["PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyID",
                "SeriesInstanceUID", "Modality", "SOPInstanceUID"]  # fmt: skip
    wanted = {**{k: "" for k in returned}, **keys}

    from_dcmtk = findscu(dcmtk, daemon, model, wanted, tmp_path / "dcmtk")

    identifier = Dataset()
    for keyword, value in wanted.items():
        setattr(identifier, keyword, value)
    from_pynetdicom, final = scu.find(daemon, identifier, "patient" if model == "-P" else "study")
    assert final.Status == 0
    assert from_dcmtk, "the query should match something in the known archive"

    def shown(datasets: list[Dataset]) -> list[dict[str, str]]:
        return sorted(
            ({e.keyword: str(e.value) for e in ds if e.keyword} for ds in datasets),
            key=lambda d: sorted(d.items()),
        )

    assert shown(from_dcmtk) == shown(from_pynetdicom)
    assert all(ds.QueryRetrieveLevel == level for ds in from_dcmtk)


class StorescpOnce:
    """DCMTK storescp serving one association on a loopback port chosen by the kernel.

    storescp cannot listen on port 0 or on loopback only, so this listens itself and hands
    the accepted connection to ``storescp --inetd`` as its standard input and output.
    """

    def __init__(self, storescp: str, folder: Path, ae_title: str = "DEST") -> None:
        self.folder = folder
        folder.mkdir()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self.result: subprocess.CompletedProcess[str] | None = None
        command = [storescp, "--inetd", "-aet", ae_title, "-od", str(folder)]
        self._thread = threading.Thread(target=self._serve, args=(command,), daemon=True)
        self._thread.start()

    def _serve(self, command: list[str]) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:  # closed: nobody called
            return
        with connection:
            self.result = subprocess.run(
                command, stdin=connection, stdout=connection, stderr=subprocess.PIPE,
                text=True, timeout=120, check=False,
            )  # fmt: skip

    def close(self) -> None:
        """Stop waiting for a call that is not coming."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() on Linux
        self._listener.close()
        self._thread.join(5)

    def wait(self) -> subprocess.CompletedProcess[str]:
        self._thread.join(120)
        self._listener.close()
        assert self.result is not None, "storescp was never called"
        return self.result


def test_movescu_to_dcmtk_storescp_delivers_the_study_unchanged(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    receiver = StorescpOnce(dcmtk("storescp"), tmp_path / "received")
    destination = {"ae_title": "DEST", "ip": "127.0.0.1", "port": receiver.port,
                   "export_charset": "ISO_IR 100"}  # fmt: skip
    daemon = make_daemon(trusted=[CLIENT, destination])
    archive = known.build()
    for ds in archive.objects.values():  # a UTF-8 name: the files differ only in charset
        if ds.PatientID == "PAT-A":
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.PatientName = "Müller^Jürgen"
    known.store(daemon, archive)
    study = archive.uid("ct1", "StudyInstanceUID")

    command = [
        dcmtk("movescu"),
        "-S",
        "-aet",
        "SIMCLIENT",
        "-aec",
        daemon.ae_title,
        "-aem",
        "DEST",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
    ]
    done = subprocess.run(
        [*command, daemon.host, str(daemon.port)], capture_output=True, text=True, timeout=120
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    stored_by_storescp = receiver.wait()
    assert stored_by_storescp.returncode == 0, stored_by_storescp.stderr
    received = {str(ds.SOPInstanceUID): ds for ds in map(dcmread, receiver.folder.iterdir())}
    moved = ("ct1", "ct2", "ct3", "rs", "plan1", "plan2", "dose", "reg")
    assert set(received) == {archive.uid(name) for name in moved}
    for name in moved:
        stored = daemon.archive.read(archive.uid(name))
        arrived = received[archive.uid(name)]
        assert arrived.get("PixelData") == stored.get("PixelData"), name
        mine = {e.tag: e.value for e in stored if e.keyword != "SpecificCharacterSet"}
        theirs = {e.tag: e.value for e in arrived if e.keyword != "SpecificCharacterSet"}
        assert theirs == mine, name
        assert str(arrived.PatientName) == "Müller^Jürgen"
        assert arrived.SpecificCharacterSet == "ISO_IR 100"
    event = daemon.audit.events("move")[-1]
    assert event.status == 0
    assert "8 completed, 0 failed" in event.detail


def _reserve_port() -> socket.socket:
    """A bound, non-listening SO_REUSEADDR socket: its port is ours until a server takes it."""
    reservation = socket.socket()
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.bind(("127.0.0.1", 0))
    return reservation


def test_the_client_works_against_dcmtk_dcmqrscp(
    dcmtk: Callable[[str], str], tmp_path: Path
) -> None:
    """find_studies and retrieve against a server that is not simdaemon."""
    patient = synthetic_patient(3, slices=4, matrix=32, locale="en_US")
    storage = tmp_path / "storage"
    files = patient.write(storage)
    indexed = subprocess.run([dcmtk("dcmqridx"), str(storage), *map(str, files)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert indexed.returncode == 0, indexed.stderr
    with _reserve_port() as server_port, _reserve_port() as client_port:
        config = tmp_path / "dcmqrscp.cfg"
        config.write_text(
            f"NetworkTCPPort = {server_port.getsockname()[1]}\nMaxPDUSize = 16384\n"
            "MaxAssociations = 16\n"
            f"HostTable BEGIN\nclient = (SIMTEST, 127.0.0.1, {client_port.getsockname()[1]})\n"
            "HostTable END\nVendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\nARCHIVE {storage} RW (200, 1024mb) ANY\nAETable END\n"
        )
        command = [dcmtk("dcmqrscp"), "-c", str(config)]
        server = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            client = DaemonClient(
                Entity("SIMTEST", "127.0.0.1", client_port.getsockname()[1]),
                Entity("ARCHIVE", "127.0.0.1", server_port.getsockname()[1]),
                connect_timeout=2,
            )
            # dcmqrscp says nothing when it listens: poll it with C-ECHO until it answers,
            # within a deadline, waiting between tries on the process itself (if it exits
            # instead of listening, the wait ends at once and says why).
            deadline = time.monotonic() + 20
            while not client.ping():
                assert time.monotonic() < deadline, "dcmqrscp never answered"
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(0.05)
                    pytest.fail(f"dcmqrscp exited: {server.communicate()[0]}")
            (study,) = client.find_studies(patient.patient_id)
            assert study.study_uid == patient.study_uid
            (ct,) = client.find_series(study, modality="CT")
            retrieved = client.retrieve(ct, into=tmp_path / "retrieved")
        finally:
            server.terminate()
            server.communicate(timeout=30)
    assert sorted(str(dcmread(p).SOPInstanceUID) for p in retrieved) == sorted(
        str(ds.SOPInstanceUID) for ds in patient.ct
    )


@pytest.mark.parametrize("lenient", [False, True], ids=["refused", "move_universal_match"])
def test_movescu_with_an_empty_study_uid_is_refused_unless_the_quirk_allows_it(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path, lenient: bool
) -> None:
    """Issue 13: movescu sees 0xC000 and the counts; storescp is never called. The quirk: all."""
    receiver = StorescpOnce(dcmtk("storescp"), tmp_path / "received")
    destination = {"ae_title": "DEST", "ip": "127.0.0.1", "port": receiver.port}
    daemon = make_daemon(trusted=[CLIENT, destination], quirks={"move_universal_match": lenient})
    archive = known.build()  # 3 patients, 4 studies, 12 objects
    known.store(daemon, archive)

    command = [dcmtk("movescu"), "-d", "-S", "-aet", "SIMCLIENT", "-aec", daemon.ae_title,
               "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY",
               "-k", "StudyInstanceUID="]  # fmt: skip
    done = subprocess.run(
        [*command, daemon.host, str(daemon.port)], capture_output=True, text=True, timeout=120
    )

    event = daemon.audit.events("move")[-1]
    if not lenient:
        receiver.close()
        assert receiver.result is None, "storescp was called: the daemon connected to DEST"
        assert "move response with error status (failed: unabletoprocess)" in done.stderr.lower()
        # -d prints the response's status detail, the Error Comment with it
        assert (
            "(0000,0902) LO [StudyInstanceUID empty: would move 3 patients, 12 objects]"
            in done.stderr
        )
        assert list(receiver.folder.iterdir()) == []
        assert (event.status, event.rule) == (0xC000, "move_universal_match")
        assert "an empty value would move 3 patients, 4 studies, 8 series, 12 objects" in (
            event.detail
        )
        return
    assert done.returncode == 0, done.stderr
    assert receiver.wait().returncode == 0
    received = {str(dcmread(path).SOPInstanceUID) for path in receiver.folder.iterdir()}
    assert received == {archive.uid(name) for name in archive.objects}
    assert "error status" not in done.stderr.lower()
    assert event.status == 0
    assert "12 completed, 0 failed" in event.detail
