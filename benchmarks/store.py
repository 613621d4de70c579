"""Benchmark: DCMTK storescu sending a CT series to the daemon and to a bare pynetdicom SCP.

A planning system exports a CT series of a hundred or so slices over one association, and the
daemon has to file every object (validate, write the file, index it) while the sender waits
for each answer. This script measures, in one run and side by side, how many images per second
DCMTK's ``storescu`` achieves when it sends ``--slices`` CT slices (512 x 512, 16 bit, about
512 KiB each) over ONE association to:

* daemon: ``Daemon(config).start()`` persisting into a fresh temporary archive each round;
  after the round the archive must hold every slice, so the objects were really stored;
* bare: a pynetdicom storage SCP with the same contexts (CT Image Storage, Explicit and
  Implicit VR Little Endian) and TCP_NODELAY on accepted sockets, as the daemon sets them,
  whose C-STORE handler answers 0x0000 without decoding the data set: the floor that
  pynetdicom's network layer alone costs.

The slices are a synthetic patient's CT (``simdaemon.synthetic``; one patient, study and
series; Explicit VR Little Endian Part-10 files), written once into a temporary folder. Time
is the wall clock of the ``storescu`` process from start to exit; images/second = slices /
time. Starting and stopping the SCPs is not timed. One untimed warm-up round per target comes
first, then daemon and bare alternate round by round so machine noise hits both alike. The
p90 is taken over the times (the slow tail), so its images/second is the rate that nine
rounds in ten met or beat.

Targets: daemon >= 0.8 x bare and daemon >= 300 images/second (medians).

Only 127.0.0.1 is used. Run by hand: ``python benchmarks/store.py [--rounds N] [--slices N]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from simdaemon import Daemon
from simdaemon.config import from_mapping
from simdaemon.dcmtk import find_dcmtk
from simdaemon.synthetic import synthetic_patient

HOST = "127.0.0.1"
CLIENT_AE = "STORESCU"
CLIENT_PORT = 51403
SERVER_AE = "VMSDBD"
SIZE = 512
WARMUP = 1
STORESCU_TIMEOUT_S = 300
RATIO_TARGET = 0.8
RATE_TARGET = 300.0


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


def start_daemon(folder: Path) -> Daemon:
    """The daemon on an ephemeral loopback port with an empty archive in ``folder``."""
    config = from_mapping(
        {
            "daemon": {"host": HOST, "port": 0, "archive": str(folder / "archive")},
            "trusted": [{"ae_title": CLIENT_AE, "ip": HOST, "port": CLIENT_PORT}],
        },
        folder,
    )
    return Daemon(config).start()


def start_bare(received: list[int]) -> ThreadedAssociationServer:
    """A bare storage SCP that acknowledges each C-STORE undecoded; counts into ``received``."""

    def on_connection(event: evt.Event) -> None:
        raw = event.assoc.dul.socket.socket if event.assoc.dul.socket else None
        if raw is not None:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def on_store(event: evt.Event) -> int:
        received.append(1)
        return 0x0000

    ae = AE(ae_title=SERVER_AE)
    ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    handlers: list[evt.EventHandlerType] = [
        (evt.EVT_CONN_OPEN, on_connection),
        (evt.EVT_C_STORE, on_store),
    ]
    server = ae.start_server((HOST, 0), block=False, evt_handlers=handlers)
    assert server is not None
    return server


def send(storescu: str, port: int, files: list[Path]) -> float:
    """Send ``files`` over one association; return the process's wall clock in seconds."""
    command = [storescu, "-aet", CLIENT_AE, "-aec", SERVER_AE, HOST, str(port)]
    command += [str(path) for path in files]
    begin = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=STORESCU_TIMEOUT_S, check=False
    )
    elapsed = time.perf_counter() - begin
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "E:" in output:
        raise RuntimeError(f"storescu to port {port} failed ({done.returncode}): {output}")
    return elapsed


def round_daemon(storescu: str, files: list[Path], scratch: Path) -> float:
    """One timed send to a daemon on a fresh archive; check every slice was persisted."""
    folder = Path(tempfile.mkdtemp(prefix="daemon-", dir=scratch))
    daemon = start_daemon(folder)
    try:
        seconds = send(storescu, daemon.port, files)
        stored = daemon.archive.count()
        if stored != len(files):
            raise RuntimeError(f"daemon archive holds {stored} objects, expected {len(files)}")
    finally:
        daemon.stop()
    daemon.raise_errors()
    shutil.rmtree(folder)
    return seconds


def round_bare(storescu: str, files: list[Path]) -> float:
    """One timed send to a fresh bare SCP; check it acknowledged every slice."""
    received: list[int] = []
    server = start_bare(received)
    try:
        seconds = send(storescu, int(server.server_address[1]), files)
    finally:
        server.shutdown()
    if len(received) != len(files):
        raise RuntimeError(f"bare SCP received {len(received)} objects, expected {len(files)}")
    return seconds


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def print_table(
    slices: int, first: tuple[str, list[float]], second: tuple[str, list[float]], ratio: str
) -> tuple[float, float]:
    """A Markdown table of times and rates of two targets; return their median rates."""
    print("| target | rounds | time med (ms) | time p90 (ms) | img/s med | img/s p90 |")
    print("|---|---:|---:|---:|---:|---:|")
    rates: list[float] = []
    for name, seconds in (first, second):
        med, slow = statistics.median(seconds), p90(seconds)
        rates.append(slices / med)
        print(
            f"| {name} | {len(seconds)} | {med * 1000:.0f} | {slow * 1000:.0f} "
            f"| {slices / med:.0f} | {slices / slow:.0f} |"
        )
    med_ratio = rates[0] / rates[1]
    p90_ratio = p90(second[1]) / p90(first[1])
    print(f"| ratio {ratio} (img/s) | | | | {med_ratio:.2f} | {p90_ratio:.2f} |")
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per target")
    parser.add_argument("--slices", type=int, default=100, help="CT slices per association")
    args = parser.parse_args()
    if args.rounds < 1 or args.slices < 1:
        parser.error("--rounds and --slices must be at least 1")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)

    storescu = find_dcmtk("storescu")
    if storescu is None:
        print("DCMTK storescu not found (pynetdicom's storescu is not DCMTK); install dcmtk")
        raise SystemExit(1)

    daemon_s: list[float] = []
    bare_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="simdaemon-store-bench-") as temp:
        scratch = Path(temp)
        series = scratch / "series"
        series.mkdir()
        files = write_series(series, args.slices)
        megabytes = sum(path.stat().st_size for path in files) / 1e6
        for _ in range(WARMUP):
            round_daemon(storescu, files, scratch)
            round_bare(storescu, files)
        for _ in range(args.rounds):
            daemon_s.append(round_daemon(storescu, files, scratch))
            bare_s.append(round_bare(storescu, files))

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(
        f"storescu: {storescu}; {args.slices} CT slices {SIZE}x{SIZE} 16 bit "
        f"({megabytes:.1f} MB) over one association; CPUs: {os.cpu_count()}"
        + (f" ({affinity} usable)" if affinity is not None else "")
    )
    print()
    daemon_rate, bare_rate = print_table(
        args.slices, ("daemon", daemon_s), ("bare pynetdicom", bare_s), "daemon/bare"
    )
    ratio = daemon_rate / bare_rate
    print()
    print(
        f"target: daemon >= {RATIO_TARGET:.1f} x bare (median): {ratio:.2f} x, "
        f"{'met' if ratio >= RATIO_TARGET else 'NOT met'}"
    )
    print(
        f"target: daemon >= {RATE_TARGET:.0f} images/s (median): {daemon_rate:.0f} images/s, "
        f"{'met' if daemon_rate >= RATE_TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
