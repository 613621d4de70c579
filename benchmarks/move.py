"""Benchmark: C-MOVE of a CT series to the receivers users really have, against Orthanc and DCMTK.

Treatment planning pulls a whole CT series out of ARIA with one C-MOVE: the archive finds the
series' instances, opens one association to the destination and sends every slice while the
requester waits. How fast that goes depends on the receiver as much as on the sender: DCMTK
and Orthanc keep Nagle's algorithm on and write each C-STORE-RSP in two pieces, and a
pynetdicom SCP with library defaults accepts Implicit VR Little Endian first. So this script
measures, in one run and side by side, how many images per second ``--slices`` CT slices
(512 x 512, 16 bit, about 512 KiB each) reach each receiver when moved by each archive.

Movers (each a separate process holding the same slices, asked by the same pynetdicom SCU in
this process, AE ``MOVESCU``, Study Root MOVE at SERIES level):

* ``simdaemon``: ``python -m simdaemon serve`` from the tree this script imports simdaemon
  from, the slices imported with ``simdaemon import`` before it starts. ``--base-tree DIR``
  adds a column for another tree (say ``git archive <commit>`` unpacked), run the same way,
  for before/after in one run.
* ``Orthanc``: Debian's ``/usr/sbin/Orthanc`` on loopback, a temporary storage folder, the
  slices POSTed through its REST API; ``SynchronousCMove`` and no association reuse.
* ``dcmqrscp``: DCMTK's ``/usr/bin/dcmqrscp`` (a child process per association, its
  default), the slices indexed with ``dcmqridx``.

Receivers (each a separate process):

* ``pynetdicom defaults``: ``AE().add_supported_context(CTImageStorage)`` and a C-STORE
  handler answering 0x0000 without decoding, nothing else set - as a user's script starts it.
* ``DCMTK storescp``: ``/usr/bin/storescp``, writing each object into a temporary folder.
* ``Orthanc``: a second Orthanc, storing (``OverwriteInstances``: each round stores anew).
* ``pynetdicom TCP_NODELAY`` (labelled extra row): the receiver this benchmark used before, the
  same SCP with TCP_NODELAY on accepted sockets, which no ordinary receiver sets.

Time: from ``send_c_move`` until its final response; the final status must be 0x0000 and,
where the mover reports it, every sub-operation completed. CPU per slice: the mover's user +
system time (``/proc/PID/stat``, the children of its process group included) over the round,
divided by the slices (10 ms clock ticks: use 100 slices or more). One untimed
warm-up round per pair, then the movers alternate round by round per receiver so machine noise
hits them alike. Medians are printed, with the load average before and after.

Goals (issue 17; medians, this run): simdaemon >= Orthanc to the pynetdicom SCP with library
defaults; >= 5 x Orthanc to storescp; >= 3 x Orthanc-to-Orthanc with Orthanc receiving;
<= 2.5 ms simdaemon CPU per slice (to the pynetdicom SCP with defaults).

Linux only (``/proc``); only 127.0.0.1 is used. Run by hand:
``python benchmarks/move.py [--rounds N] [--slices N] [--base-tree DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

# store.py sits next to this script, and a script's folder is first on sys.path.
from store import SIZE, write_series

import simdaemon
from simdaemon.net.outgoing import keep_responses

# The tests' helpers (reserved loopback ports, server processes, a C-ECHO probe).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.qr_servers import Peer, PortReservation, ServerProcess, echo  # noqa: E402

HOST = "127.0.0.1"
CLIENT_AE = "MOVESCU"
#: Study Root Query/Retrieve Information Model - MOVE.
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
WARMUP = 1
PENDING = (0xFF00, 0xFF01)
ORTHANC = "/usr/sbin/Orthanc"
DCMQRSCP = "/usr/bin/dcmqrscp"
DCMQRIDX = "/usr/bin/dcmqridx"
STORESCP = "/usr/bin/storescp"
TICKS = os.sysconf("SC_CLK_TCK")
#: The receiver the first three goals and the CPU goal are measured against.
DEFAULTS, STORESCP_ROW, ORTHANC_ROW, NODELAY = (
    "pynetdicom defaults",
    "DCMTK storescp",
    "Orthanc",
    "pynetdicom TCP_NODELAY (old benchmark's receiver)",
)

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
        self.cpu_seconds = lambda: _cpu_seconds(pid)


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(leader: int) -> float:
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


def _wait_echo(process: ServerProcess, peer: Peer) -> None:
    process.wait_until(lambda: echo(peer, CLIENT_AE, timeout=2.0), "answering C-ECHO")


def _http(url: str, data: bytes | None = None) -> object:
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    if data is not None:
        request.add_header("Content-Type", "application/dicom")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def _orthanc_answers(url: str) -> bool:
    try:
        _http(f"{url}/system")
    except (OSError, ValueError):
        return False
    return True


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
            process.wait_until(lambda: _orthanc_answers(url), "answering on HTTP")
            _wait_echo(process, peer)
            for path in files:
                _http(f"{url}/instances", path.read_bytes())
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
        try:
            _wait_echo(process, peer)
            yield Server("dcmqrscp", peer, process)
        finally:
            process.stop()


@contextlib.contextmanager
def daemon(
    folder: Path, tree: Path, label: str, destinations: dict[str, Peer], series: Path
) -> Iterator[Server]:
    """``python -m simdaemon serve`` from ``tree``, the series imported before it starts."""
    folder.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    with PortReservation() as reserved:
        peer = Peer("VMSDBD", HOST, reserved.port)
        trusted = {"MOVESCU": Peer(CLIENT_AE, HOST, 51403), **destinations}
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
        subprocess.run(
            [*base, "import", "--config", str(config), "--as", CLIENT_AE, str(series)],
            check=True, env=environment, cwd=folder, capture_output=True, timeout=300,
        )  # fmt: skip
        command = ["env", f"PYTHONPATH={tree}", *base, "serve", "--config", str(config)]
        process = ServerProcess(label, [*command, "--log-level", "WARNING"], folder)
        try:
            _wait_echo(process, peer)
            yield Server(label, peer, process)
        finally:
            process.stop()


@contextlib.contextmanager
def pynetdicom_receiver(folder: Path, title: str, nodelay: bool) -> Iterator[Server]:
    """The pynetdicom storage SCP of :data:`RECEIVER` in its own process."""
    with PortReservation() as reserved:
        peer = Peer(title, HOST, reserved.port)
        command = [sys.executable, "-c", RECEIVER, str(peer.port), title]
        process = ServerProcess(title, command + (["nodelay"] if nodelay else []), folder)
        try:
            _wait_echo(process, peer)
            yield Server(title, peer, process)
        finally:
            process.stop()


@contextlib.contextmanager
def storescp(folder: Path) -> Iterator[Server]:
    """DCMTK storescp writing what it receives into ``folder/received``."""
    received = folder / "received"
    received.mkdir()
    with PortReservation() as reserved:
        peer = Peer("STORESCP", HOST, reserved.port)
        command = [STORESCP, "-aet", peer.ae_title, "-od", str(received), str(peer.port)]
        process = ServerProcess("storescp", command, folder)
        try:
            _wait_echo(process, peer)
            yield Server("storescp", peer, process)
        finally:
            process.stop()


def move_once(mover: Server, identifier: Dataset, destination: str, slices: int) -> float:
    """One timed C-MOVE of the series from ``mover`` to ``destination``; check the outcome."""
    ae = AE(ae_title=CLIENT_AE)
    ae.add_requested_context(MOVE, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 600
    assoc = keep_responses(ae.associate(HOST, mover.peer.port, ae_title=mover.peer.ae_title))
    if not assoc.is_established:
        raise RuntimeError(f"no association to {mover.name}")
    final: Dataset | None = None
    try:
        begin = time.perf_counter()
        for answer, _ in assoc.send_c_move(identifier, destination, MOVE):
            if answer and answer.get("Status") not in PENDING:
                final = answer
        elapsed = time.perf_counter() - begin
    finally:
        assoc.release()
    if final is None:
        raise RuntimeError(f"{mover.name} -> {destination}: no final response")
    code = int(final.get("Status", -1))
    completed = final.get("NumberOfCompletedSuboperations")
    if code != 0x0000 or (completed is not None and int(completed) != slices):
        raise RuntimeError(
            f"{mover.name} -> {destination}: 0x{code:04X}, {completed} of {slices} completed"
        )
    return elapsed


@dataclass
class Cell:
    """One mover's rounds to one receiver: times and CPU seconds."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def rate(self, slices: int) -> float:
        return slices / statistics.median(self.seconds)

    def cpu_ms(self, slices: int) -> float:
        return statistics.median(self.cpu) * 1000 / slices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per pair")
    parser.add_argument("--slices", type=int, default=100, help="CT slices in the series")
    parser.add_argument("--base-tree", type=Path, help="another simdaemon tree, as a column")
    args = parser.parse_args()
    if args.rounds < 1 or args.slices < 1:
        parser.error("--rounds and --slices must be at least 1")
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    tree = Path(simdaemon.__file__).resolve().parent.parent
    load_before = os.getloadavg()
    cells: dict[tuple[str, str], Cell] = {}

    with tempfile.TemporaryDirectory(prefix="simdaemon-move-bench-") as temp, \
            contextlib.ExitStack() as stack:  # fmt: skip
        folder = Path(temp)
        series = folder / "series"
        series.mkdir()
        files = write_series(series, args.slices)
        megabytes = sum(path.stat().st_size for path in files) / 1e6
        first = dcmread(files[0], stop_before_pixels=True)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "SERIES"
        identifier.StudyInstanceUID = first.StudyInstanceUID
        identifier.SeriesInstanceUID = first.SeriesInstanceUID

        receivers = {
            DEFAULTS: stack.enter_context(pynetdicom_receiver(folder, "PYSCP", False)),
            STORESCP_ROW: stack.enter_context(storescp(folder)),
            ORTHANC_ROW: stack.enter_context(orthanc(folder / "orthanc-rx", "ORTHANCRX", {})),
            NODELAY: stack.enter_context(pynetdicom_receiver(folder, "PYNODELAY", True)),
        }
        destinations = {s.peer.ae_title: s.peer for s in receivers.values()}
        caller = {"MOVESCU": Peer(CLIENT_AE, HOST, 51403)}
        movers = {
            "simdaemon": stack.enter_context(
                daemon(folder / "daemon", tree, "simdaemon", destinations, series)
            ),
        }
        if args.base_tree is not None:
            movers["simdaemon (base)"] = stack.enter_context(
                daemon(folder / "base", args.base_tree.resolve(), "base", destinations, series)
            )
        movers["Orthanc"] = stack.enter_context(
            orthanc(folder / "orthanc", "ORTHANC", {**caller, **destinations}, files)
        )
        movers["dcmqrscp"] = stack.enter_context(dcmqrscp(folder / "dcmqrscp", destinations, files))

        for row, receiver in receivers.items():
            for index in range(WARMUP + args.rounds):
                for column, mover in movers.items():
                    cpu = mover.cpu_seconds()
                    seconds = move_once(mover, identifier, receiver.peer.ae_title, args.slices)
                    if index >= WARMUP:
                        cell = cells.setdefault((row, column), Cell())
                        cell.seconds.append(seconds)
                        cell.cpu.append(mover.cpu_seconds() - cpu)
            print(f"... {row} done", file=sys.stderr)

    load_after = os.getloadavg()
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown",
    )  # fmt: skip
    print(
        f"C-MOVE at SERIES level of {args.slices} CT slices {SIZE}x{SIZE} 16 bit "
        f"({megabytes:.1f} MB); {args.rounds} rounds, medians; {os.cpu_count()} CPUs ({model}); "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print()
    columns = list(movers)
    print("| receiver | " + " | ".join(f"{c} img/s (CPU ms/slice)" for c in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in receivers:
        shown = [
            f"{cells[row, c].rate(args.slices):.0f} ({cells[row, c].cpu_ms(args.slices):.1f})"
            for c in columns
        ]
        print(f"| {row} | " + " | ".join(shown) + " |")
    print()

    def rate(row: str, column: str) -> float:
        return cells[row, column].rate(args.slices)

    goals = [
        (f"simdaemon >= Orthanc to the {DEFAULTS} SCP", rate(DEFAULTS, "simdaemon"),
         rate(DEFAULTS, "Orthanc"), 1.0),
        ("simdaemon >= 5 x Orthanc to storescp", rate(STORESCP_ROW, "simdaemon"),
         rate(STORESCP_ROW, "Orthanc"), 5.0),
        ("simdaemon >= 3 x Orthanc-to-Orthanc", rate(ORTHANC_ROW, "simdaemon"),
         rate(ORTHANC_ROW, "Orthanc"), 3.0),
    ]  # fmt: skip
    for text, ours, theirs, factor in goals:
        met = ours >= factor * theirs
        print(f"goal: {text}: {ours:.0f} vs {theirs:.0f} img/s ({ours / theirs:.2f} x), "
              f"{'met' if met else 'NOT met'}")  # fmt: skip
    cpu = cells[DEFAULTS, "simdaemon"].cpu_ms(args.slices)
    print(f"goal: simdaemon CPU <= 2.5 ms per slice: {cpu:.2f} ms, "
          f"{'met' if cpu <= 2.5 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
