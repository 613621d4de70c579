"""Benchmark: C-STORE of a CT series to simdaemon and to the receivers users have, side by side.

A planning system exports a CT series of a hundred or so slices over one association, and the
daemon has to file every object (validate, write the file, index it, commit) while the sender
waits for each answer. This script measures, in one run, how many images per second
``--slices`` CT slices (512 x 512, 16 bit, about 512 KiB each; a synthetic patient's, written
once) reach each receiver from each sender, and each receiver's CPU time per slice.

Senders (a process per round):

* ``DCMTK storescu``: ``/usr/bin/storescu`` with the files on its command line; time is the
  process's wall clock.
* ``pynetdicom SCU``: a script as a user writes it, library defaults (``AE()``,
  ``add_requested_context`` of CT Image Storage, ``send_c_store`` of each ``dcmread`` data
  set); it reads the files first and times association request to release.

Receivers (each a separate process, started once; every round sends a copy of the series with
new study, series and instance UIDs, written before the round, so every round stores anew):

* ``simdaemon``: ``python -m simdaemon serve`` from this tree, its archive in a temporary
  folder on the ordinary disk (``/tmp`` here), with its default durability (each object's
  file in place and its rows committed before the answer; SQLite in WAL mode with
  ``synchronous = NORMAL``, which survives a crash of the process and fsyncs at checkpoints,
  not per object). After the round the archive must hold every slice of every round.
* ``bare pynetdicom``: ``AE().add_supported_context(CTImageStorage)`` and a C-STORE handler
  answering 0x0000 without decoding or storing anything, nothing else set: the floor that
  pynetdicom's network layer costs.
* ``DCMTK storescp`` writing each object into a folder, and ``Orthanc`` storing into its own.

One untimed warm-up round per pair, then the receivers take turns round by round per sender,
who goes first rotating, so machine noise hits them alike; before each send ``os.sync()``
writes back what earlier rounds (and the copy of the series) left in the page cache, so no
receiver pays for another's writes. Medians are printed with the load average before and after.
CPU per slice: the receiver's user + system time (``/proc/PID/stat``) over the round divided
by the slices (10 ms clock ticks: use 100 slices or more).

Goal (issue 17): simdaemon >= 1.0 x the bare pynetdicom SCP with each sender (medians).

Linux only (``/proc``); only 127.0.0.1 is used. Run by hand:
``python benchmarks/store.py [--rounds N] [--slices N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

# peers.py sits next to this script, and a script's folder is first on sys.path.
from machine import Probe
from peers import (
    HOST,
    SIZE,
    STORESCU,
    Cell,
    Peer,
    Server,
    cpu_model,
    daemon,
    orthanc,
    print_rates,
    pynetdicom_receiver,
    storescp,
    write_series,
)
from pydicom import dcmread
from pydicom.uid import generate_uid

import simdaemon
from simdaemon.archive import Archive

CLIENT_AE = "STORESCU"
CLIENT = Peer(CLIENT_AE, HOST, 51403)
WARMUP = 1
SEND_TIMEOUT_S = 300
DAEMON, BARE, STORESCP_COLUMN, ORTHANC_COLUMN = (
    "simdaemon", "bare pynetdicom", "DCMTK storescp", "Orthanc",
)  # fmt: skip
STORESCU_ROW, PYNETDICOM_ROW = "DCMTK storescu", "pynetdicom SCU (library defaults)"

#: The pynetdicom sender, run as ``python -c SENDER PORT CALLED_AE FILE...``; prints the
#: seconds from association request to release and how many answers were not 0x0000.
SENDER = """
import sys, time
from pydicom import dcmread
from pynetdicom import AE
port, called, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
datasets = [dcmread(path) for path in paths]
ae = AE(ae_title="STORESCU")
ae.add_requested_context(datasets[0].SOPClassUID)
begin = time.perf_counter()
assoc = ae.associate("127.0.0.1", port, ae_title=called)
if not assoc.is_established:
    sys.exit("no association")
codes = [getattr(assoc.send_c_store(ds), "Status", None) for ds in datasets]
assoc.release()
print(time.perf_counter() - begin, sum(code != 0 for code in codes))
"""


def send_storescu(peer: Peer, files: list[Path]) -> float:
    """Send ``files`` with DCMTK storescu over one association; its wall clock in seconds."""
    command = [STORESCU, "-aet", CLIENT_AE, "-aec", peer.ae_title, HOST, str(peer.port)]
    begin = time.perf_counter()
    done = subprocess.run(
        command + [str(path) for path in files],
        capture_output=True, text=True, timeout=SEND_TIMEOUT_S, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - begin
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or "E:" in output:
        raise RuntimeError(f"storescu to {peer.ae_title} failed ({done.returncode}): {output}")
    return elapsed


def send_pynetdicom(peer: Peer, files: list[Path]) -> float:
    """Send ``files`` with the pynetdicom script :data:`SENDER`; its own timing in seconds."""
    done = subprocess.run(
        [sys.executable, "-c", SENDER, str(peer.port), peer.ae_title, *map(str, files)],
        capture_output=True, text=True, timeout=SEND_TIMEOUT_S, check=False,
    )  # fmt: skip
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 2 or fields[1] != "0":
        raise RuntimeError(
            f"pynetdicom SCU to {peer.ae_title} failed ({done.returncode}): "
            f"{done.stdout.strip()} {done.stderr.strip()[-2000:]}"
        )
    return float(fields[0])


def archived(folder: Path) -> int:
    """How many objects the (stopped) daemon's archive in ``folder`` holds."""
    archive = Archive(folder)
    try:
        return archive.count()
    finally:
        archive.close()


def fresh_copy(files: list[Path], folder: Path) -> list[Path]:
    """The series again with new study, series and instance UIDs, so every round stores anew."""
    folder.mkdir()
    study, series = generate_uid(), generate_uid()
    copies = []
    for path in files:
        ds = dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        copies.append(folder / path.name)
        ds.save_as(copies[-1], enforce_file_format=True)
    return copies


@contextlib.contextmanager
def started(folder: Path, tree: Path) -> Iterator[dict[str, Server]]:
    """Every receiver, each in a folder of its own, for the whole run."""
    with contextlib.ExitStack() as stack:
        for name in ("bare", "storescp"):
            (folder / name).mkdir()
        caller = {CLIENT_AE: CLIENT}
        yield {
            DAEMON: stack.enter_context(daemon(folder / "daemon", tree, DAEMON, caller)),
            BARE: stack.enter_context(pynetdicom_receiver(folder / "bare", "BARE", False)),
            STORESCP_COLUMN: stack.enter_context(storescp(folder / "storescp")),
            ORTHANC_COLUMN: stack.enter_context(orthanc(folder / "orthanc", "ORTHANC", caller)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per pair")
    parser.add_argument("--slices", type=int, default=100, help="CT slices per association")
    args = parser.parse_args()
    if args.rounds < 1 or args.slices < 1:
        parser.error("--rounds and --slices must be at least 1")
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    tree = Path(simdaemon.__file__).resolve().parent.parent
    senders = {STORESCU_ROW: send_storescu, PYNETDICOM_ROW: send_pynetdicom}
    load_before = os.getloadavg()
    probe = Probe.start()
    cells: dict[tuple[str, str], Cell] = {}
    with tempfile.TemporaryDirectory(prefix="simdaemon-store-bench-") as temp:
        folder = Path(temp)
        series = folder / "series"
        series.mkdir()
        files = write_series(series, args.slices)
        megabytes = sum(path.stat().st_size for path in files) / 1e6
        runs = 0
        with started(folder, tree) as targets:
            for row, send in senders.items():
                for index in range(WARMUP + args.rounds):
                    runs += 1
                    copies = fresh_copy(files, folder / f"series{runs}")
                    turn = index % len(targets)  # who goes first rotates round by round
                    for column in [*targets][turn:] + [*targets][:turn]:
                        server = targets[column]
                        os.sync()  # what earlier rounds wrote is on disk, not written back now
                        cpu = server.cpu_seconds()
                        seconds = send(server.peer, copies)
                        used = server.cpu_seconds() - cpu
                        if index >= WARMUP:
                            cell = cells.setdefault((row, column), Cell())
                            cell.seconds.append(seconds)
                            cell.cpu.append(used)
                    shutil.rmtree(copies[0].parent)
                print(f"... {row} done", file=sys.stderr)
        stored = archived(folder / "daemon" / "archive")  # every slice acknowledged is there
        if stored != runs * args.slices:
            raise RuntimeError(f"simdaemon holds {stored} of {runs * args.slices} slices")
    load_after = os.getloadavg()
    model = cpu_model()
    print(
        f"C-STORE of {args.slices} CT slices {SIZE}x{SIZE} 16 bit ({megabytes:.1f} MB) over one "
        f"association; {args.rounds} rounds, medians; {os.cpu_count()} CPUs ({model}); load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(probe.describe())
    print()
    columns = list(targets)
    print_rates("sender", list(senders), columns, cells, args.slices)
    for row in senders:
        ours, bare = cells[row, DAEMON].rate(args.slices), cells[row, BARE].rate(args.slices)
        print(f"goal: simdaemon >= 1.0 x bare pynetdicom, {row}: {ours:.0f} vs {bare:.0f} img/s "
              f"({ours / bare:.2f} x), {'met' if ours >= bare else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
