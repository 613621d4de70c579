"""The peers users really have, started as processes for the side-by-side benchmarks.

``move.py`` and ``store.py`` measure simdaemon beside Debian's Orthanc and DCMTK servers and a
pynetdicom SCP with library defaults, each a separate process whose CPU time is read from
``/proc`` (its process group included: dcmqrscp forks a child per association). The CT
series they send is a synthetic patient's (:func:`write_series`). Linux only; 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The tests' helpers (reserved loopback ports, server processes, a C-ECHO probe).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from simdaemon.synthetic import synthetic_patient
from tests.qr_servers import (
    Peer,
    PortReservation,
    ServerProcess,
    echo,
    http_json,
    orthanc_answers,
)

HOST = "127.0.0.1"
#: Rows and columns of each CT slice (16 bit: 512 KiB of pixels).
SIZE = 512
#: The AE title the readiness probe calls from (the daemon trusts it).
PROBE_AE = "ECHOSCU"
ORTHANC = "/usr/sbin/Orthanc"
DCMQRSCP = "/usr/bin/dcmqrscp"
DCMQRIDX = "/usr/bin/dcmqridx"
STORESCP = "/usr/bin/storescp"
STORESCU = "/usr/bin/storescu"
TICKS = os.sysconf("SC_CLK_TCK")


def write_series(folder: Path, slices: int) -> list[Path]:
    """Write ``slices`` CT Image Storage files of one patient, study and series; return them.

    The slices are the CT of a synthetic patient (:mod:`simdaemon.synthetic`: a water
    phantom, seed 0, an English name in ISO_IR 100), the same data the tests and ``seed`` use.
    """
    patient = synthetic_patient(0, slices=slices, matrix=SIZE, locale="en_US")
    paths = []
    for index, ds in enumerate(patient.ct, start=1):
        path = folder / f"CT{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


#: The pynetdicom receiver, run as ``python -c RECEIVER PORT AE [nodelay]``.
RECEIVER = """
import socket, sys, threading
from pynetdicom import AE, evt
from pydicom.uid import CTImageStorage
port, title, nodelay = int(sys.argv[1]), sys.argv[2], len(sys.argv) > 3
def on_store(event):
    return 0x0000
def on_open(event):
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
handlers = [(evt.EVT_C_STORE, on_store)] + ([(evt.EVT_CONN_OPEN, on_open)] if nodelay else [])
ae = AE(ae_title=title)
ae.add_supported_context(CTImageStorage)
ae.add_supported_context("1.2.840.10008.1.1")
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=handlers)
"""


@dataclass
class Server:
    """A running DICOM server process: its AE, where it listens, and its process."""

    name: str
    peer: Peer
    process: ServerProcess
    #: Moves whose final response carries no sub-operation counts are still checked by status.
    cpu_seconds: Callable[[], float] = field(init=False)

    def __post_init__(self) -> None:
        pid = self.process.process.pid
        self.cpu_seconds = lambda: cpu_seconds(pid)


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(leader: int) -> float:
    """User + system CPU seconds of the process group ``leader`` leads, children included.

    The leader's own time and that of its reaped children, plus every live (or not yet reaped)
    process of its group: dcmqrscp forks a child per association.
    """
    fields = _stat(leader)
    ticks = sum(int(value) for value in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != leader:
            with contextlib.suppress(OSError, IndexError):
                child = _stat(entry.name)
                if int(child[2]) == leader:  # its process group
                    ticks += int(child[11]) + int(child[12])
    return ticks / TICKS


def wait_echo(process: ServerProcess, peer: Peer, calling_ae: str = PROBE_AE) -> None:
    """Wait until ``process`` answers a C-ECHO from ``calling_ae`` at ``peer``."""
    process.wait_until(lambda: echo(peer, calling_ae, timeout=2.0), "answering C-ECHO")


@contextlib.contextmanager
def serving(name: str, peer: Peer, process: ServerProcess) -> Iterator[Server]:
    """``process`` as a :class:`Server` once it answers a C-ECHO at ``peer``; stopped after."""
    try:
        wait_echo(process, peer)
        yield Server(name, peer, process)
    finally:
        process.stop()


@contextlib.contextmanager
def orthanc(
    folder: Path, title: str, modalities: dict[str, Peer], files: Sequence[Path] = ()
) -> Iterator[Server]:
    """Orthanc on loopback with a temporary storage folder, ``files`` uploaded through REST."""
    folder.mkdir()
    with PortReservation() as dicom, PortReservation() as http:
        peer = Peer(title, HOST, dicom.port)
        url = f"http://{HOST}:{http.port}"
        config = {
            "Name": title,
            "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"),
            "Plugins": [],
            "LuaScripts": [],
            "HttpPort": http.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomAet": title,
            "DicomPort": dicom.port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowMove": True,
            "DicomModalities": {
                name: {"AET": p.ae_title, "Host": p.host, "Port": p.port}
                for name, p in modalities.items()
            },
            "DicomAssociationCloseDelay": 0,
            "SynchronousCMove": True,
            "OverwriteInstances": True,
            "SaveJobs": False,
        }
        (folder / "orthanc.json").write_text(json.dumps(config))
        command = [ORTHANC, f"--logfile={folder / 'orthanc.log'}", str(folder / "orthanc.json")]
        process = ServerProcess(title, command, folder, folder / "orthanc.log")
        try:
            process.wait_until(lambda: orthanc_answers(url), "answering on HTTP")
            wait_echo(process, peer)
            for path in files:
                http_json(f"{url}/instances", path.read_bytes(), timeout=60)
            yield Server(f"Orthanc {title}", peer, process)
        finally:
            process.stop()


@contextlib.contextmanager
def dcmqrscp(
    folder: Path, destinations: dict[str, Peer], files: Sequence[Path]
) -> Iterator[Server]:
    """DCMTK dcmqrscp, the slices indexed into its storage area."""
    storage = folder / "storage"
    storage.mkdir(parents=True)
    copies = []
    for path in files:
        copies.append(storage / path.name)
        copies[-1].write_bytes(path.read_bytes())
    subprocess.run([DCMQRIDX, str(storage), *map(str, copies)], check=True, timeout=120)
    with PortReservation() as reserved:
        peer = Peer("DCMQRSCP", HOST, reserved.port)
        hosts = "".join(
            f"{name} = ({p.ae_title}, {p.host}, {p.port})\n" for name, p in destinations.items()
        )
        (folder / "dcmqrscp.cfg").write_text(
            f"NetworkTCPPort = {peer.port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{hosts}HostTable END\nVendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\nDCMQRSCP {storage} RW (200, 1024mb) ANY\nAETable END\n"
        )
        command = [DCMQRSCP, "--config", str(folder / "dcmqrscp.cfg")]
        process = ServerProcess("dcmqrscp", command, folder)
        with serving("dcmqrscp", peer, process) as server:
            yield server


@contextlib.contextmanager
def daemon(
    folder: Path, tree: Path, label: str, peers: dict[str, Peer], series: Path | None = None
) -> Iterator[Server]:
    """``python -m simdaemon serve`` from ``tree``, trusting ``peers`` and the probe's AE;
    ``series`` imported (as if from the probe's AE) before it starts."""
    folder.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    with PortReservation() as reserved:
        peer = Peer("VMSDBD", HOST, reserved.port)
        trusted = {PROBE_AE: Peer(PROBE_AE, HOST, 51499), **peers}
        lines = [
            "[daemon]",
            f'ae_title = "{peer.ae_title}"',
            f'host = "{HOST}"',
            f"port = {peer.port}",
            f'archive = "{folder / "archive"}"',
        ]
        for p in trusted.values():
            lines += ["[[trusted]]", f'ae_title = "{p.ae_title}"', f'ip = "{p.host}"',
                      f"port = {p.port}"]  # fmt: skip
        config = folder / "simdaemon.toml"
        config.write_text("\n".join(lines) + "\n")
        base = [sys.executable, "-m", "simdaemon"]
        if series is not None:
            subprocess.run(
                [*base, "import", "--config", str(config), "--as", PROBE_AE, str(series)],
                check=True, env=environment, cwd=folder, capture_output=True, timeout=300,
            )  # fmt: skip
        command = ["env", f"PYTHONPATH={tree}", *base, "serve", "--config", str(config)]
        process = ServerProcess(label, [*command, "--log-level", "WARNING"], folder)
        with serving(label, peer, process) as server:
            yield server


@contextlib.contextmanager
def pynetdicom_receiver(folder: Path, title: str, nodelay: bool) -> Iterator[Server]:
    """The pynetdicom storage SCP of :data:`RECEIVER` in its own process."""
    with PortReservation() as reserved:
        peer = Peer(title, HOST, reserved.port)
        command = [sys.executable, "-c", RECEIVER, str(peer.port), title]
        process = ServerProcess(title, command + (["nodelay"] if nodelay else []), folder)
        with serving(title, peer, process) as server:
            yield server


@contextlib.contextmanager
def storescp(folder: Path) -> Iterator[Server]:
    """DCMTK storescp writing what it receives into ``folder/received``."""
    received = folder / "received"
    received.mkdir()
    with PortReservation() as reserved:
        peer = Peer("STORESCP", HOST, reserved.port)
        command = [STORESCP, "-aet", peer.ae_title, "-od", str(received), str(peer.port)]
        process = ServerProcess("storescp", command, folder)
        with serving("storescp", peer, process) as server:
            yield server


@dataclass
class Cell:
    """One pair's rounds (a sender or mover and a receiver): times and CPU seconds."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def rate(self, slices: int) -> float:
        return slices / statistics.median(self.seconds)

    def cpu_ms(self, slices: int) -> float:
        return statistics.median(self.cpu) * 1000 / slices


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    return next((line.split(":", 1)[1].strip() for line in lines
                 if line.startswith("model name")), "unknown")  # fmt: skip


def print_rates(
    first: str, rows: Sequence[str], columns: Sequence[str], cells: dict[tuple[str, str], Cell],
    slices: int,
) -> None:  # fmt: skip
    """A Markdown table of img/s (CPU ms per slice), a row per ``rows`` entry; a blank after."""
    print(f"| {first} | " + " | ".join(f"{c} img/s (CPU ms/slice)" for c in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        shown = [f"{cells[row, c].rate(slices):.0f} ({cells[row, c].cpu_ms(slices):.1f})"
                 for c in columns]  # fmt: skip
        print(f"| {row} | " + " | ".join(shown) + " |")
    print()
