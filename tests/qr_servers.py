"""Three DICOM Query/Retrieve servers holding the same synthetic RT patient, for one test suite.

The ``qr_server`` fixture is parametrised with the ids ``simdaemon``, ``dcmqrscp`` and
``orthanc``, so a client test written once runs against this project's daemon, DCMTK's
reference archive and Orthanc - three independent readings of PS3.4 - and a client that
works with all three does not lean on one server's quirks::

    from tests.qr_servers import QRServer

    pytest_plugins = ["tests.qr_servers"]

    def test_finds_the_study(qr_server: QRServer) -> None:
        ...  # call qr_server.server as qr_server.local.ae_title

Load the fixtures with ``pytest_plugins`` as above, not by importing
them into the test module: pytest registers an imported fixture once per module that
imports it, so each such module would start its own three servers (checked), and ruff's
F811 flags the test parameters that shadow the import. This module has no ``assert`` for
pytest to rewrite, hence PYTEST_DONT_REWRITE: without it, loading it as a plugin after a test
module imported it (for :class:`QRServer`) warns that it cannot be rewritten.

Every server listens on 127.0.0.1 (but see "Addresses"), knows two move destinations -
``local``, the test's own entity (a test starts its storage SCP on ``local.port`` to C-MOVE
to itself), and ``third``, a third party - and holds the patient built by :func:`patient`:
CT series, RT Structure Set, RT Plan, RT Dose, two RT Images and a spatial registration, with
an ASCII name in ISO_IR 100, so names compare equal whatever character set a server answers
in. The fixture is session-scoped: each xdist worker starts each server once (pytest orders
the tests so that one server runs at a time). Tests share the server, so they must only add
to it - store new objects, query by the patient's keys - and compare
:meth:`QRServer.stored_uids` before and after instead of expecting the patient alone.

Ports. Neither dcmqrscp nor Orthanc can listen on port 0. Each port is reserved with
:class:`PortReservation` - a socket bound with SO_REUSEADDR to 127.0.0.1 and a port the
kernel picks, never listening - held for the server's lifetime: the kernel gives that port to
nobody else, and a server that sets SO_REUSEADDR itself binds it and listens. pynetdicom's
servers, DCMTK's network layer and both of Orthanc 1.10.1's servers (DICOM: DCMTK; HTTP:
CivetWeb) do; this was verified for Orthanc's two ports, so no retry on a new port is needed.
A server that does not come up is reported with the end of its log.

Addresses. pynetdicom servers (simdaemon, the tests' receivers) bind 127.0.0.1 only. Orthanc
1.10.1 has no option to choose the address it binds (no ``HttpBindAddress`` or
``DicomBindAddress`` among the keys the binary knows) and dcmqrscp has none either: both
listen on the wildcard address of their reserved port. Orthanc is locked down instead:
``RemoteAccessAllowed: false`` (its HTTP server answers loopback clients only),
``DicomCheckModalityHost: true`` and every ``DicomAlwaysAllow*`` off (it accepts
associations only from ``local`` and ``third``, calling from 127.0.0.1).

Observed differences (pynetdicom against simdaemon / dcmqrscp 3.6.7 / Orthanc 1.10.1), which
a suite must expect rather than paper over:

* IMAGE-level keys outside dcmqrscp's index (RTPlanLabel, NumberOfBeams,
  ImagePositionPatient, ReferencedRTPlanSequence...) are left out of its responses entirely
  and never filter (RTPlanLabel "NOPE" still matches the plan). Orthanc reads them from the
  file: it returns what the object has at top level (an empty NumberOfBeams for a plan: the
  value lives in the Fraction Group Sequence), leaves out a requested sequence the object
  lacks, and matches on them: a value for a key the object lacks matches nothing
  (NumberOfBeams "0" or "4": no plan), whatever StorageAccessOnFind says. simdaemon answers
  NumberOfBeams from the Fraction Group Sequence and ignores it for matching.
* An IMAGE-level C-FIND without StudyInstanceUID (Study or Patient Root): simdaemon and
  Orthanc match it; dcmqrscp answers 0xC000, no comment (it needs the levels' unique keys).
* C-MOVE to an unknown destination: 0xA801 from simdaemon (with an Error Comment) and
  dcmqrscp (sub-operation counts 0); 0xC000 from Orthanc (counts 0, no comment).
* A wrong called AE title: all three reject with (1, 1, 7) - rejected permanent, service
  user, called AE title not recognised.
* A STUDY-level C-MOVE with an empty StudyInstanceUID: simdaemon and Orthanc refuse it
  (0xC000, nothing moved); dcmqrscp matches universally and moves the whole archive.
* PN matching is case-insensitive in simdaemon and Orthanc, case-sensitive in dcmqrscp.
  simdaemon and Orthanc (``DefaultEncoding: Utf8``) always answer in ISO_IR 192; dcmqrscp
  answers in the request's Specific Character Set if it names one, else the stored one, and
  leaves the element out when the answer is plain ASCII.
* dcmqrscp accepts calls from any AE title; simdaemon and Orthanc (as configured here)
  reject an unknown calling AE title with (1, 1, 3).

Missing tools follow ``tests/conftest.py``'s ``dcmtk`` fixture: a test fails in CI (``CI``
set) and is skipped elsewhere, naming the ``apt-get`` command. The absolute paths are
deliberate: pynetdicom installs same-named scripts that shadow DCMTK's tools on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pytest
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pynetdicom import AE

from simdaemon import Daemon
from simdaemon.config import from_mapping
from simdaemon.importer import received_from
from simdaemon.net.outgoing import keep_responses
from simdaemon.synthetic import SyntheticPatient, synthetic_patient

__all__ = [
    "DCMQRIDX",
    "DCMQRSCP",
    "LOCAL_AE",
    "LOOPBACK",
    "ORTHANC",
    "SERVERS",
    "THIRD_AE",
    "Peer",
    "PortReservation",
    "QRServer",
    "ServerProcess",
    "echo",
    "patient",
    "qr_peers",
    "qr_server",
    "run_dcmqrscp",
    "run_orthanc",
    "run_simdaemon",
]

LOOPBACK = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"  # pynetdicom.sop_class's names are invisible to mypy
DCMQRSCP = "/usr/bin/dcmqrscp"
DCMQRIDX = "/usr/bin/dcmqridx"
ORTHANC = "/usr/sbin/Orthanc"
#: The AE title the tests call as, and the "local" move destination.
LOCAL_AE = "SIMCLIENT"
#: A move destination that is neither the caller nor the server.
THIRD_AE = "THIRDPARTY"
#: The ids of ``qr_server``'s parameters.
SERVERS = ("simdaemon", "dcmqrscp", "orthanc")

#: Seconds a server may take to answer once started (all three need well under a second).
_START_DEADLINE_S = 30.0
#: Seconds a server may take to exit after SIGTERM (Orthanc needs ~3) before it is killed.
_STOP_GRACE_S = 15.0


@dataclass(frozen=True)
class Peer:
    """A DICOM application entity: its AE title and where it listens."""

    ae_title: str
    host: str
    port: int


class PortReservation:
    """A port on 127.0.0.1 that is ours until closed: a bound, non-listening socket.

    The socket sets SO_REUSEADDR, so a server that sets it too can bind and listen on the
    same port while the reservation is held, and the kernel gives the port to nobody else.
    """

    def __init__(self, host: str = LOOPBACK) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.host = host
        self.port = int(self._socket.getsockname()[1])

    def close(self) -> None:
        """Give the port back."""
        self._socket.close()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class QRServer:
    """A running Query/Retrieve SCP holding :attr:`patient`, as a parametrised test sees it."""

    #: ``"simdaemon"``, ``"dcmqrscp"`` or ``"orthanc"``: the parameter id.
    name: str
    #: The SCP to call: its AE title, 127.0.0.1 and its port.
    server: Peer
    #: The test's own entity; the server accepts its calls and C-MOVEs to it.
    local: Peer
    #: Another move destination the server knows.
    third: Peer
    #: Stored in the server before the first test.
    patient: SyntheticPatient
    #: Reads what the server holds (see :meth:`stored_uids`).
    _stored: Callable[[], set[str]] = field(repr=False)
    #: The server's log, for diagnosis (None for simdaemon, which logs through ``logging``).
    log: Path | None = None

    def stored_uids(self) -> set[str]:
        """The SOP Instance UIDs the server holds now, from its storage rather than C-FIND."""
        return self._stored()


def echo(server: Peer, calling: str, *, timeout: float = 5.0) -> bool:
    """Whether a C-ECHO from ``calling`` to ``server`` succeeds."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(VERIFICATION)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    assoc = keep_responses(ae.associate(server.host, server.port, ae_title=server.ae_title))
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return "Status" in status and status.Status == 0
    finally:
        assoc.release()


def patient() -> SyntheticPatient:
    """The patient every server holds: seed 7, 4 CT slices of 32 x 32, an ASCII name.

    A fresh object on each call (building it takes milliseconds) with the same UIDs and
    bytes, so nothing one server's set-up does to it can change what another test sees.
    """
    built = synthetic_patient(7, slices=4, matrix=32, locale="en_US")
    if not built.name.isascii():  # a faker upgrade must not bring in charset differences
        raise AssertionError(f"the shared patient's name is not ASCII: {built.name!r}")
    return built


class ServerProcess:
    """A server run as a child process in its own session, its output in ``<name>.out``.

    Its own session (process group) lets :meth:`stop` reach the children dcmqrscp forks for
    each association. :meth:`wait_until` polls a readiness probe within a deadline and fails
    at once, with the end of the log, if the process exits instead.
    """

    def __init__(self, name: str, command: list[str], folder: Path, log: Path | None = None):
        self.name = name
        self.output = folder / f"{name}.out"
        #: Where the server logs (Orthanc writes a log file of its own).
        self.log = log if log is not None else self.output
        self._output: TextIO = self.output.open("w", encoding="utf-8")
        try:
            self.process = subprocess.Popen(
                command,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError:
            self._output.close()
            raise

    def tail(self, lines: int = 40) -> str:
        """The end of the output and of the log, for error messages."""
        shown = []
        for path in dict.fromkeys((self.output, self.log)):
            with contextlib.suppress(OSError):
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                shown.append(f"--- {path} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(shown)

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Poll ``ready`` until true; raise if the deadline passes or the process exits first.

        Between tries this waits on the process itself, so an exit ends the wait at once.
        """
        deadline = time.monotonic() + _START_DEADLINE_S
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not {what} in {_START_DEADLINE_S} s\n{self.tail()}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(0.05)
                raise RuntimeError(f"{self.name} exited ({code}) before {what}\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL it if the server outlives the grace period."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(_STOP_GRACE_S)
        # Children forked for associations (dcmqrscp) may outlive their leader: end them too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._output.close()


@contextlib.contextmanager
def run_simdaemon(folder: Path, local: Peer, third: Peer) -> Iterator[QRServer]:
    """simdaemon on 127.0.0.1 and an ephemeral port, trusting ``local`` and ``third``.

    The patient goes in through the daemon's import pipeline, as if ``local`` had stored it.
    """
    held = patient()
    trusted = [{"ae_title": p.ae_title, "ip": p.host, "port": p.port} for p in (local, third)]
    settings = {"host": LOOPBACK, "port": 0, "archive": str(folder / "archive")}
    daemon = Daemon(from_mapping({"daemon": settings, "trusted": trusted}, folder)).start()
    try:
        for dataset in held.datasets():
            result = daemon.importer.run(received_from(dataset, local.ae_title))
            if not result.stored:
                raise RuntimeError(f"simdaemon did not import the patient: {result.detail}")
        yield QRServer(
            name="simdaemon",
            server=Peer(daemon.ae_title, daemon.host, daemon.port),
            local=local,
            third=third,
            patient=held,
            _stored=lambda: {row.sop_instance_uid for row in daemon.archive.instances()},
        )
    finally:
        daemon.stop()
    daemon.raise_errors()


def _dcmqrscp_config(server: Peer, storage: Path, peers: dict[str, Peer]) -> str:
    """dcmqrscp's configuration: the peers as move destinations, one RW storage area."""
    hosts = "".join(f"{n} = ({p.ae_title}, {p.host}, {p.port})\n" for n, p in peers.items())
    return (
        f"NetworkTCPPort = {server.port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        f"HostTable BEGIN\n{hosts}HostTable END\n"
        "VendorTable BEGIN\nVendorTable END\n"
        # 200 studies and 1 GB before it deletes the oldest; ANY: every calling AE may store.
        f"AETable BEGIN\n{server.ae_title} {storage} RW (200, 1024mb) ANY\nAETable END\n"
    )


def _stored_files(storage: Path) -> set[str]:
    """SOP Instance UIDs of the DICOM files in dcmqrscp's storage area (index.dat excluded)."""
    uids = set()
    for path in storage.iterdir():
        if path.name == "index.dat" or not path.is_file():
            continue
        with contextlib.suppress(InvalidDicomError, OSError):
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
            if "SOPInstanceUID" in ds:
                uids.add(str(ds.SOPInstanceUID))
    return uids


@contextlib.contextmanager
def run_dcmqrscp(folder: Path, local: Peer, third: Peer) -> Iterator[QRServer]:
    """DCMTK dcmqrscp as ``DCMQRSCP``: Study and Patient Root, storage open to any caller.

    Its HostTable names ``local`` and ``third`` as move destinations. The patient's files are
    written into its storage area and indexed with dcmqridx before it starts. It forks a
    child per association (its default), so tests may hold several associations at once.
    """
    held = patient()
    storage = folder / "storage"
    files = held.write(storage)
    indexed = subprocess.run(
        [DCMQRIDX, str(storage), *map(str, files)], capture_output=True, text=True, timeout=60
    )
    if indexed.returncode != 0:
        raise RuntimeError(f"dcmqridx failed: {indexed.stdout}{indexed.stderr}")
    with PortReservation() as reserved:
        server = Peer("DCMQRSCP", LOOPBACK, reserved.port)
        config = folder / "dcmqrscp.cfg"
        config.write_text(_dcmqrscp_config(server, storage, {"local": local, "third": third}))
        command = [DCMQRSCP, "--config", str(config), "--log-level", "info"]
        process = ServerProcess("dcmqrscp", command, folder)
        try:
            # dcmqrscp says nothing when it listens: poll it with C-ECHO.
            process.wait_until(lambda: echo(server, local.ae_title), "answering C-ECHO")
            yield QRServer(
                name="dcmqrscp",
                server=server,
                local=local,
                third=third,
                patient=held,
                _stored=lambda: _stored_files(storage),
                log=process.log,
            )
        finally:
            process.stop()


def _orthanc_config(folder: Path, server: Peer, http_port: int, peers: dict[str, Peer]) -> Any:
    """Orthanc's whole configuration: nothing comes from Debian's (no plugins, no Lua)."""
    storage = str(folder / "db")
    return {
        "Name": "qr-servers",
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "Plugins": [],
        "LuaScripts": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,  # no bind address in 1.10.1: refuse non-loopback HTTP
        "AuthenticationEnabled": False,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "MetricsEnabled": False,
        "HttpThreadsCount": 8,
        "DicomServerEnabled": True,
        "DicomAet": server.ae_title,
        "DicomPort": server.port,
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": True,  # the known AE titles, from their own host only
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowFindWorklist": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomModalities": {
            name: {"AET": p.ae_title, "Host": p.host, "Port": p.port} for name, p in peers.items()
        },
        # Close C-MOVE's storage association at once instead of keeping it 5 s for reuse: the
        # test's receiver is gone by then, and the next move would find a dead association.
        "DicomAssociationCloseDelay": 0,
        "SynchronousCMove": True,
        "StorageAccessOnFind": "Always",  # the default, stated: keys outside the index
        "DefaultEncoding": "Utf8",
        "SaveJobs": False,
        "DeidentifyLogs": False,  # synthetic data; the log is for diagnosis
    }


def http_json(url: str, data: bytes | None = None, timeout: float = 30) -> Any:
    """GET ``url`` (POST ``data`` as application/dicom); return the decoded JSON answer."""
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/dicom")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def orthanc_answers(url: str) -> bool:
    try:
        http_json(f"{url}/system")
    except (OSError, ValueError):  # URLError is an OSError
        return False
    return True


def _orthanc_uids(url: str) -> set[str]:
    return {str(i["MainDicomTags"]["SOPInstanceUID"]) for i in http_json(f"{url}/instances?expand")}


@contextlib.contextmanager
def run_orthanc(folder: Path, local: Peer, third: Peer) -> Iterator[QRServer]:
    """Debian's Orthanc as ``ORTHANC`` with a generated configuration; the patient via REST.

    Ready when its REST API answers ``/system`` and a C-ECHO from ``local`` succeeds; the
    patient's Part-10 files are then POSTed to ``/instances``. Verbose log: ``orthanc.log``.
    """
    held = patient()
    files = held.write(folder / "upload")
    with PortReservation() as dicom_port, PortReservation() as http_port:
        server = Peer("ORTHANC", LOOPBACK, dicom_port.port)
        url = f"http://{LOOPBACK}:{http_port.port}"
        config = folder / "orthanc.json"
        peers = {"local": local, "third": third}
        config.write_text(json.dumps(_orthanc_config(folder, server, http_port.port, peers)))
        log = folder / "orthanc.log"
        command = [ORTHANC, "--verbose", f"--logfile={log}", str(config)]
        process = ServerProcess("orthanc", command, folder, log)
        try:
            # Orthanc starts its DICOM server before its HTTP server; wait for both anyway.
            process.wait_until(lambda: orthanc_answers(url), "answering on HTTP")
            process.wait_until(lambda: echo(server, local.ae_title), "answering C-ECHO")
            for path in files:
                answer = http_json(f"{url}/instances", path.read_bytes())
                if answer.get("Status") not in ("Success", "AlreadyStored"):
                    raise RuntimeError(f"Orthanc did not store {path.name}: {answer}")
            yield QRServer(
                name="orthanc",
                server=server,
                local=local,
                third=third,
                patient=held,
                _stored=lambda: _orthanc_uids(url),
                log=log,
            )
        finally:
            process.stop()


_Starter = Callable[[Path, Peer, Peer], contextlib.AbstractContextManager[QRServer]]
_STARTERS: dict[str, _Starter] = {
    "simdaemon": run_simdaemon,
    "dcmqrscp": run_dcmqrscp,
    "orthanc": run_orthanc,
}
#: The programs each server needs, with the Debian package that installs them.
_NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "simdaemon": (),
    "dcmqrscp": ((DCMQRSCP, "dcmtk"), (DCMQRIDX, "dcmtk")),
    "orthanc": ((ORTHANC, "orthanc"),),
}


def _require(path: str, package: str) -> None:
    """Fail in CI, else skip, when ``path`` is not an executable."""
    if os.access(path, os.X_OK):
        return
    message = f"{path} is not installed (apt-get install -y {package})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def qr_peers() -> Iterator[tuple[Peer, Peer]]:
    """(local, third): the move destinations every server knows, on reserved loopback ports.

    The ports stay reserved for the session, so a test can start a storage SCP on
    ``local.port`` (or ``third.port``) - pynetdicom's servers set SO_REUSEADDR - and nothing
    else takes them in between.
    """
    with PortReservation() as local, PortReservation() as third:
        yield Peer(LOCAL_AE, LOOPBACK, local.port), Peer(THIRD_AE, LOOPBACK, third.port)


@pytest.fixture(scope="session", params=SERVERS)
def qr_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    qr_peers: tuple[Peer, Peer],
) -> Iterator[QRServer]:
    """A running Q/R server holding :func:`patient`; one parameter per name in SERVERS."""
    name: str = request.param
    for path, package in _NEEDS[name]:
        _require(path, package)
    local, third = qr_peers
    with _STARTERS[name](tmp_path_factory.mktemp(f"qr-{name}"), local, third) as server:
        yield server
