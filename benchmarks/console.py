"""Benchmark: what the HTTP console costs the daemon, and the archive page of 1,000 patients.

Issue 19's targets, measured in one run:

* start: ``Daemon(config).start()`` with and without ``console=ConsoleSettings()``,
  alternating round by round after one warm-up start of each (so the one-time import of
  FastAPI and uvicorn, printed apart, is not in the rounds); target: the console adds
  at most 50 ms;
* echo and store: association + C-ECHO (or + 10 C-STOREs of 64 x 64 CT slices) + release
  against two daemons running side by side, one with the console and one without,
  alternating round by round; target: no measurable difference;
* archive page: ``GET /archive`` over HTTP with 1,000 patients in the archive (seeded through
  the import pipeline, one CT slice each); target: at most 300 ms.

Only 127.0.0.1 is used. Run by hand: ``python benchmarks/console.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE

from simdaemon import Config, Daemon, TrustedEntity
from simdaemon.config import DaemonSettings, Storage
from simdaemon.console.settings import ConsoleSettings
from simdaemon.importer import received_from
from simdaemon.synthetic import synthetic_patient

HOST = "127.0.0.1"
CLIENT_AE = "SIMCLIENT"
VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
WARMUP = 10
PATIENTS = 1000


def make_config(archive: Path) -> Config:
    return Config(
        daemon=DaemonSettings(port=0, archive=archive),
        storage=Storage(on_duplicate="overwrite"),  # the same series, round after round
        trusted=(TrustedEntity(CLIENT_AE, HOST, 51403),),
    )


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def timed_ms(action: Callable[[], object]) -> float:
    begin = time.perf_counter()
    action()
    return (time.perf_counter() - begin) * 1000.0


def row(name: str, values: list[float], reference: list[float] | None = None) -> str:
    ratio = ""
    if reference is not None:
        ratio = f"{statistics.median(values) / statistics.median(reference):.2f}"
    return f"| {name} | {statistics.median(values):.2f} | {p90(values):.2f} | {ratio} |"


def measure_start(rounds: int, folder: Path) -> tuple[float, list[float], list[float]]:
    """The first console start (imports included), then alternating timed starts."""
    config = make_config(folder / "start")
    first = timed_ms(lambda: Daemon(config, console=ConsoleSettings()).start().stop())
    Daemon(config).start().stop()
    plain: list[float] = []
    console: list[float] = []
    for _ in range(rounds):
        daemon = Daemon(config)
        plain.append(timed_ms(daemon.start))
        daemon.stop()
        daemon = Daemon(config, console=ConsoleSettings())
        console.append(timed_ms(daemon.start))
        daemon.stop()
    return first, plain, console


def ct_slices(count: int) -> list[Dataset]:
    patient = synthetic_patient(99, slices=count, matrix=64)
    return patient.ct


def echo_once(scu: AE, port: int) -> None:
    assoc = scu.associate(HOST, port, ae_title="VMSDBD")
    if not assoc.is_established:
        raise RuntimeError("association not established")
    status = assoc.send_c_echo()
    assoc.release()
    if status is None or status.get("Status") != 0:
        raise RuntimeError(f"C-ECHO failed: {status}")


def store_once(scu: AE, port: int, datasets: list[Dataset]) -> None:
    assoc = scu.associate(HOST, port, ae_title="VMSDBD")
    if not assoc.is_established:
        raise RuntimeError("association not established")
    for ds in datasets:
        status = assoc.send_c_store(ds)
        if status is None or status.get("Status") not in (0, 0xB000, 0xB007):
            raise RuntimeError(f"C-STORE failed: {status}")
    assoc.release()


def side_by_side(
    rounds: int, plain: Daemon, console: Daemon, action: Callable[[int], None]
) -> tuple[list[float], list[float]]:
    for _ in range(WARMUP):
        action(plain.port)
        action(console.port)
    without: list[float] = []
    with_console: list[float] = []
    for _ in range(rounds):
        without.append(timed_ms(lambda: action(plain.port)))
        with_console.append(timed_ms(lambda: action(console.port)))
    return without, with_console


def seed_many(daemon: Daemon, patients: int) -> None:
    """``patients`` synthetic patients, one 8 x 8 CT slice and the RT objects each."""
    for seed in range(patients):
        for dataset in synthetic_patient(seed, slices=1, matrix=8).datasets():
            result = daemon.importer.run(received_from(dataset, "BENCH"))
            if not result.stored:
                raise RuntimeError(result.detail)


def get_ms(port: int, path: str) -> tuple[float, int]:
    begin = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return (time.perf_counter() - begin) * 1000.0, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds per measurement")
    parser.add_argument("--patients", type=int, default=PATIENTS, help="archive page size")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="simdaemon-bench-") as scratch:
        folder = Path(scratch)
        first, plain_start, console_start = measure_start(args.rounds, folder)
        print(f"first start with a console (imports FastAPI and uvicorn): {first:.0f} ms\n")
        print("| measurement | median ms | p90 ms | console / none |")
        print("|---|---|---|---|")
        print(row("start, no console", plain_start))
        print(row("start, console", console_start, plain_start))

        plain = Daemon(make_config(folder / "plain")).start()
        console = Daemon(make_config(folder / "console"), console=ConsoleSettings()).start()
        try:
            scu = AE(ae_title=CLIENT_AE)
            scu.add_requested_context(VERIFICATION)
            scu.add_requested_context(CT_STORAGE)
            without, with_console = side_by_side(
                args.rounds, plain, console, lambda port: echo_once(scu, port)
            )
            print(row("echo, no console", without))
            print(row("echo, console", with_console, without))
            series = ct_slices(10)
            without, with_console = side_by_side(
                args.rounds, plain, console, lambda port: store_once(scu, port, series)
            )
            print(row("store 10 CT, no console", without))
            print(row("store 10 CT, console", with_console, without))
        finally:
            plain.stop()
            console.stop()

        daemon = Daemon(make_config(folder / "many"), console=ConsoleSettings()).start()
        try:
            begin = time.perf_counter()
            seed_many(daemon, args.patients)
            seeded = time.perf_counter() - begin
            assert daemon.console is not None
            port = daemon.console.port
            get_ms(port, "/archive")
            pages = [get_ms(port, "/archive") for _ in range(max(5, args.rounds // 3))]
            times = [ms for ms, _ in pages]
            print(row(f"GET /archive, {args.patients} patients", times))
            api = [get_ms(port, "/api/patients")[0] for _ in range(max(5, args.rounds // 3))]
            print(row(f"GET /api/patients, {args.patients} patients", api))
            print(f"\n(page {pages[0][1] // 1024} KiB; seeding took {seeded:.0f} s)")
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
