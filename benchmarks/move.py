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

After the moves, each mover answers ``QUICK_ROUNDS`` associations with a C-ECHO and as many
with a C-FIND at STUDY level by the series' PatientID (Study Root; one match), each timed
from the association request to the release, from the same pynetdicom SCU: what issue 17
asks to stay ahead of the peers.

Goals (issue 17; medians, this run): simdaemon >= Orthanc to the pynetdicom SCP with library
defaults; >= 5 x Orthanc to storescp; >= 3 x Orthanc-to-Orthanc with Orthanc receiving;
<= 2.5 ms simdaemon CPU per slice (to the pynetdicom SCP with defaults).

Linux only (``/proc``); only 127.0.0.1 is used. Run by hand:
``python benchmarks/move.py [--rounds N] [--slices N] [--base-tree DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# peers.py sits next to this script, and a script's folder is first on sys.path.
from peers import (
    HOST,
    SIZE,
    Cell,
    Peer,
    Server,
    cpu_model,
    daemon,
    dcmqrscp,
    orthanc,
    print_rates,
    pynetdicom_receiver,
    storescp,
    write_series,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

import simdaemon
from simdaemon.net.outgoing import keep_responses

CLIENT_AE = "MOVESCU"
#: Study Root Query/Retrieve Information Model - MOVE.
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
WARMUP = 1
PENDING = (0xFF00, 0xFF01)
#: The receiver the first three goals and the CPU goal are measured against.
DEFAULTS, STORESCP_ROW, ORTHANC_ROW, NODELAY = (
    "pynetdicom defaults",
    "DCMTK storescp",
    "Orthanc",
    "pynetdicom TCP_NODELAY (old benchmark's receiver)",
)


#: Rounds of the quick exchanges (echo, find) per server.
QUICK_ROUNDS = 30
#: Study Root Query/Retrieve Information Model - FIND.
FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def echo_once(server: Server) -> float:
    """Milliseconds for association + C-ECHO + release with a pynetdicom SCU."""
    ae = AE(ae_title=CLIENT_AE)
    ae.add_requested_context("1.2.840.10008.1.1")
    begin = time.perf_counter()
    assoc = keep_responses(ae.associate(HOST, server.peer.port, ae_title=server.peer.ae_title))
    if not assoc.is_established or assoc.send_c_echo().Status != 0:
        raise RuntimeError(f"no echo from {server.name}")
    assoc.release()
    return (time.perf_counter() - begin) * 1000


def find_once(server: Server, patient_id: str) -> float:
    """Milliseconds for association + C-FIND STUDY by PatientID (all answers) + release."""
    ae = AE(ae_title=CLIENT_AE)
    ae.add_requested_context(FIND, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient_id
    query.StudyInstanceUID = ""
    begin = time.perf_counter()
    assoc = keep_responses(ae.associate(HOST, server.peer.port, ae_title=server.peer.ae_title))
    if not assoc.is_established:
        raise RuntimeError(f"no association to {server.name}")
    matches = sum(1 for status, answer in assoc.send_c_find(query, FIND)
                  if status and status.Status in PENDING and answer is not None)  # fmt: skip
    assoc.release()
    if matches != 1:
        raise RuntimeError(f"{server.name} found {matches} studies, expected 1")
    return (time.perf_counter() - begin) * 1000


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
                daemon(folder / "daemon", tree, "simdaemon", {**caller, **destinations}, series)
            ),
        }
        if args.base_tree is not None:
            movers["simdaemon (base)"] = stack.enter_context(
                daemon(
                    folder / "base",
                    args.base_tree.resolve(),
                    "base",
                    {**caller, **destinations},
                    series,
                )
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
        quick = {
            name: (
                [echo_once(mover) for _ in range(QUICK_ROUNDS)],
                [find_once(mover, str(first.PatientID)) for _ in range(QUICK_ROUNDS)],
            )
            for name, mover in movers.items()
        }

    load_after = os.getloadavg()
    model = cpu_model()
    print(
        f"C-MOVE at SERIES level of {args.slices} CT slices {SIZE}x{SIZE} 16 bit "
        f"({megabytes:.1f} MB); {args.rounds} rounds, medians; {os.cpu_count()} CPUs ({model}); "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print()
    columns = list(movers)
    print_rates("receiver", list(receivers), columns, cells, args.slices)

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
    print()
    print(f"| ms, median of {QUICK_ROUNDS} | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    medians = {name: (statistics.median(e), statistics.median(f)) for name, (e, f) in quick.items()}
    labels = ("association + C-ECHO + release", "association + C-FIND STUDY by PatientID + release")
    for index, label in enumerate(labels):
        print(f"| {label} | " + " | ".join(f"{medians[c][index]:.1f}" for c in columns) + " |")
    print()
    for index, label in enumerate(labels):
        peers_best = min(medians[c][index] for c in columns if not c.startswith("simdaemon"))
        ours = medians["simdaemon"][index]
        print(f"goal: simdaemon stays ahead, {label}: {ours:.1f} vs {peers_best:.1f} ms, "
              f"{'met' if ours <= peers_best else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
