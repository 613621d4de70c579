"""Benchmark: C-MOVE of a CT series from the daemon, against a pynetdicom C-STORE client.

Treatment planning pulls a whole CT series out of ARIA with one C-MOVE: the daemon finds the
series' instances, opens one association to the destination and sends every slice while the
requester waits. This script measures, in one run and side by side, how many images per second
reach one and the same receiver (below) when ``--slices`` CT slices (512 x 512, 16 bit, about
512 KiB each) are sent by:

* move: the daemon (``Daemon(config).start()``, in this process), asked by a pynetdicom SCU
  (AE ``MOVESCU``, Study Root MOVE, TCP_NODELAY) for a C-MOVE at SERIES level (Study and
  Series Instance UID) to the trusted entity ``DEST``. Timed from the start of
  ``send_c_move`` until its final response has arrived; the final status must be 0x0000 with
  every sub-operation completed, and the receiver must have counted every slice anew. The
  time includes what the daemon does per move: the query, its association to the destination,
  reading each stored file, re-encoding its text for the destination's export character set
  (the default ``ISO_IR 192``; the slices are stored in ``ISO_IR 100``) and the release.
* ceiling: a pynetdicom C-STORE client (AE ``MOVESCU``, the same contexts, TCP_NODELAY) that
  reads the same generated files with ``dcmread`` and sends them with ``send_c_store`` over
  one association. Timed from just before the association request until the release has
  completed, since the daemon's move includes its own association to the destination and its
  release. This is what pynetdicom's requestor alone achieves reading and sending the series:
  the ceiling for a daemon built on it.

The receiver is a bare pynetdicom storage SCP (AE ``DEST``, CT Image Storage with Explicit and
Implicit VR Little Endian, TCP_NODELAY on accepted sockets as the daemon sets them) whose
C-STORE handler counts and answers 0x0000 without decoding the data set. It is started first
(the daemon's configuration needs its port) and serves both targets all run long.

The slices are generated once with pydicom (one patient, study and series; Explicit VR Little
Endian Part-10 files, ``write_series`` of ``store.py``) into a temporary folder and imported
once, untimed, into the daemon's fresh archive through :func:`simdaemon.local.import_files`,
the path C-STORE takes. Every pynetdicom association this script requests is wrapped in
:func:`simdaemon.net.outgoing.keep_responses` (pynetdicom issue #875). One untimed warm-up round per
target comes first, then move and ceiling alternate round by round so machine noise hits both
alike. Client, daemon and receiver share one process (and its GIL), as a test suite runs them.
The p90 is taken over the times (the slow tail), so its images/second is the rate that nine
rounds in ten met or beat.

Targets: move >= 0.8 x ceiling and move >= 200 images/second (medians).

Only 127.0.0.1 is used. Run by hand: ``python benchmarks/move.py [--rounds N] [--slices N]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

# store.py sits next to this script, and a script's folder is first on sys.path.
from store import SIZE, print_table, write_series

from simdaemon import Daemon
from simdaemon.config import Config, from_mapping
from simdaemon.local import import_files
from simdaemon.net.outgoing import keep_responses, no_delay

HOST = "127.0.0.1"
CLIENT_AE = "MOVESCU"
CLIENT_PORT = 51403
DESTINATION_AE = "DEST"
#: Study Root Query/Retrieve Information Model - MOVE.
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
WARMUP = 1
RATIO_TARGET = 0.8
RATE_TARGET = 200.0
PENDING = (0xFF00, 0xFF01)
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def start_receiver(received: list[int]) -> ThreadedAssociationServer:
    """The bare storage SCP ``DEST``: acknowledges each C-STORE undecoded, counts it."""

    def on_store(event: evt.Event) -> int:
        received.append(1)
        return 0x0000

    ae = AE(ae_title=DESTINATION_AE)
    ae.add_supported_context(CTImageStorage, SYNTAXES)
    handlers: list[evt.EventHandlerType] = [
        (evt.EVT_CONN_OPEN, no_delay),
        (evt.EVT_C_STORE, on_store),
    ]
    server = ae.start_server((HOST, 0), block=False, evt_handlers=handlers)
    assert server is not None
    return server


def make_config(folder: Path, receiver_port: int) -> Config:
    """The daemon on an ephemeral loopback port, its archive in ``folder``, two trusted AEs."""
    return from_mapping(
        {
            "daemon": {"host": HOST, "port": 0, "archive": str(folder / "archive")},
            "trusted": [
                {"ae_title": CLIENT_AE, "ip": HOST, "port": CLIENT_PORT},
                {"ae_title": DESTINATION_AE, "ip": HOST, "port": receiver_port},
            ],
        },
        folder,
    )


def fill_archive(series: Path, config: Config, slices: int) -> None:
    """Import the series through the daemon's import path; every slice must be stored."""
    summary = import_files([series], config, CLIENT_AE, progress_label="filling the archive")
    stored = sum(1 for _, result in summary.results if result.stored)
    if stored != slices or summary.skipped:
        problems = [f"{path}: {result.detail}" for path, result in summary.failed]
        problems += [f"{path}: {why}" for path, why in summary.skipped]
        raise RuntimeError(f"imported {stored} of {slices} slices: {problems[:3]}")


def requestor(contexts: list[str]) -> AE:
    """A pynetdicom SCU ``MOVESCU`` requesting ``contexts`` with both Little Endian syntaxes."""
    ae = AE(ae_title=CLIENT_AE)
    for abstract in contexts:
        ae.add_requested_context(abstract, SYNTAXES)
    return ae


def associate(ae: AE, port: int, called_ae: str) -> Association:
    """An established association to ``called_ae`` on loopback ``port``, TCP_NODELAY set."""
    assoc = keep_responses(
        ae.associate(HOST, port, ae_title=called_ae, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)])
    )
    if not assoc.is_established:
        raise RuntimeError(f"no association to '{called_ae}' on port {port}")
    return assoc


def round_move(daemon: Daemon, identifier: Dataset, received: list[int], slices: int) -> float:
    """One timed C-MOVE of the series to ``DEST``; check the status, counts and arrivals."""
    ae = requestor([MOVE])
    assoc = associate(ae, daemon.port, daemon.ae_title)
    before = len(received)
    final: Dataset | None = None
    try:
        begin = time.perf_counter()
        responses = assoc.send_c_move(identifier, DESTINATION_AE, MOVE)
        for answer, _ in responses:
            if answer and answer.get("Status") not in PENDING:
                final = answer
        elapsed = time.perf_counter() - begin
    finally:
        assoc.release()
    if final is None:
        raise RuntimeError("the C-MOVE ended without a final response")
    code = int(final.get("Status", -1))
    completed = int(final.get("NumberOfCompletedSuboperations", -1))
    if code != 0x0000 or completed != slices:
        raise RuntimeError(f"C-MOVE ended 0x{code:04X} with {completed} of {slices} completed")
    arrived = len(received) - before
    if arrived != slices:
        raise RuntimeError(f"the receiver counted {arrived} objects of the move, not {slices}")
    return elapsed


def round_ceiling(port: int, files: list[Path], received: list[int]) -> float:
    """One timed read-and-send of ``files`` over one association; check the answers."""
    ae = requestor([CTImageStorage])
    before = len(received)
    failed = 0
    begin = time.perf_counter()
    assoc = associate(ae, port, DESTINATION_AE)
    try:
        for path in files:
            answer = assoc.send_c_store(dcmread(path))
            if not answer or answer.get("Status") != 0x0000:
                failed += 1
    finally:
        assoc.release()
    elapsed = time.perf_counter() - begin
    arrived = len(received) - before
    if failed or arrived != len(files):
        raise RuntimeError(
            f"ceiling: {failed} C-STORE(s) failed; the receiver counted {arrived} of {len(files)}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per target")
    parser.add_argument("--slices", type=int, default=200, help="CT slices in the series")
    args = parser.parse_args()
    if args.rounds < 1 or args.slices < 1:
        parser.error("--rounds and --slices must be at least 1")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)

    move_s: list[float] = []
    ceiling_s: list[float] = []
    received: list[int] = []
    receiver = start_receiver(received)
    try:
        receiver_port = int(receiver.server_address[1])
        with tempfile.TemporaryDirectory(prefix="simdaemon-move-bench-") as temp:
            folder = Path(temp)
            series = folder / "series"
            series.mkdir()
            files = write_series(series, args.slices)
            megabytes = sum(path.stat().st_size for path in files) / 1e6
            config = make_config(folder, receiver_port)
            fill_archive(series, config, args.slices)
            first = dcmread(files[0], stop_before_pixels=True)
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "SERIES"
            identifier.StudyInstanceUID = first.StudyInstanceUID
            identifier.SeriesInstanceUID = first.SeriesInstanceUID

            daemon = Daemon(config).start()
            try:
                stored = daemon.archive.count()
                if stored != args.slices:
                    raise RuntimeError(f"the archive holds {stored} objects, not {args.slices}")
                for _ in range(WARMUP):
                    round_move(daemon, identifier, received, args.slices)
                    round_ceiling(receiver_port, files, received)
                for _ in range(args.rounds):
                    move_s.append(round_move(daemon, identifier, received, args.slices))
                    ceiling_s.append(round_ceiling(receiver_port, files, received))
            finally:
                daemon.stop()
            daemon.raise_errors()
    finally:
        receiver.shutdown()

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print(
        f"C-MOVE at SERIES level of {args.slices} CT slices {SIZE}x{SIZE} 16 bit "
        f"({megabytes:.1f} MB) to a bare pynetdicom SCP; CPUs: {os.cpu_count()}"
        + (f" ({affinity} usable)" if affinity is not None else "")
    )
    print()
    move_rate, ceiling_rate = print_table(
        args.slices,
        ("move (daemon)", move_s),
        ("ceiling (C-STORE client)", ceiling_s),
        "move/ceiling",
    )
    ratio = move_rate / ceiling_rate
    print()
    print(
        f"target: move >= {RATIO_TARGET:.1f} x ceiling (median): {ratio:.2f} x, "
        f"{'met' if ratio >= RATIO_TARGET else 'NOT met'}"
    )
    print(
        f"target: move >= {RATE_TARGET:.0f} images/s (median): {move_rate:.0f} images/s, "
        f"{'met' if move_rate >= RATE_TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
