"""Benchmark: what the findings rules cost, rules on against rules off, in one run.

The rules run on every request (issue 16), so they must cost next to nothing: the target is at
most 5 % on each of C-ECHO, C-STORE and C-FIND. Two daemons run side by side in one process,
identical but for ``[findings] enabled`` (true: every rule runs and records; false: none
runs), each with the same synthetic patient imported; the measurements alternate between
them round by round after a warm-up, so machine noise hits both alike:

* echo: association + C-ECHO + release from a pynetdicom SCU (the association rules run at
  accept and at release);
* store: one association sending ``--slices`` CT slices (fresh SOP Instance UIDs each round)
  of the synthetic patient (the text rules run on each);
* find: SERIES then IMAGE level C-FIND of the patient's CT series over one held association
  (the query rules run on each).

Only 127.0.0.1 is used. Run by hand: ``python benchmarks/findings.py [--rounds N]``; echo.py,
store.py and find.py measure the daemon against bare pynetdicom and are unchanged.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.association import Association

from simdaemon import Daemon
from simdaemon.config import from_mapping
from simdaemon.pytest_plugin import import_patient
from simdaemon.synthetic import SyntheticPatient, synthetic_patient

HOST = "127.0.0.1"
CLIENT_AE = "SIMCLIENT"
VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
WARMUP = 5
TARGET = 1.05

Times = dict[str, list[float]]


def start(folder: Path, enabled: bool, patient: SyntheticPatient) -> Daemon:
    """A daemon with rules on or off, the patient imported, trusting the benchmark's SCU."""
    config = from_mapping(
        {
            "daemon": {"host": HOST, "port": 0, "archive": str(folder / "archive")},
            "trusted": [{"ae_title": CLIENT_AE, "ip": HOST, "port": 51403}],
            "findings": {"enabled": enabled},
        },
        folder,
    )
    daemon = Daemon(config).start()
    import_patient(daemon, patient)
    return daemon


def timed_ms(action: Callable[..., object], *args: object) -> float:
    begin = time.perf_counter()
    action(*args)
    return (time.perf_counter() - begin) * 1000.0


def associate(daemon: Daemon, *contexts: str) -> Association:
    ae = AE(ae_title=CLIENT_AE)
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate(HOST, daemon.port, ae_title=daemon.ae_title)
    if not assoc.is_established:
        raise RuntimeError("association not established")
    return assoc


def echo(daemon: Daemon) -> None:
    assoc = associate(daemon, VERIFICATION)
    status = assoc.send_c_echo()
    assoc.release()
    if status.get("Status") != 0:
        raise RuntimeError(f"C-ECHO failed: {status}")


def store(daemon: Daemon, slices: list[Dataset]) -> None:
    assoc = associate(daemon, CT_STORAGE)
    try:
        for ds in slices:
            ds.SOPInstanceUID = generate_uid()
            status = assoc.send_c_store(ds)
            if status.get("Status") != 0:
                raise RuntimeError(f"C-STORE failed: {status}")
    finally:
        assoc.release()


def find(assoc: Association, study_uid: str, series_uid: str) -> None:
    for level, keys in (
        ("SERIES", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": "", "Modality": ""}),
        ("IMAGE", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
                   "SOPInstanceUID": "", "InstanceNumber": ""}),
    ):  # fmt: skip
        query = Dataset()
        query.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            setattr(query, keyword, value)
        final = [s for s, _ in assoc.send_c_find(query, STUDY_FIND)][-1]
        if final.get("Status") != 0:
            raise RuntimeError(f"C-FIND failed: {final}")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=100, help="rounds per measurement")
    parser.add_argument("--slices", type=int, default=20, help="CT slices per store round")
    args = parser.parse_args()
    if args.rounds < 1 or args.slices < 1:
        parser.error("rounds and slices must be at least 1")
    logging.getLogger("pynetdicom").setLevel(logging.ERROR)
    logging.getLogger("simdaemon").setLevel(logging.ERROR)
    patient = synthetic_patient(0, slices=args.slices, matrix=128)
    study_uid = str(patient.ct[0].StudyInstanceUID)
    series_uid = str(patient.ct[0].SeriesInstanceUID)
    folder = Path(tempfile.mkdtemp(prefix="simdaemon-findings-"))
    daemons = {"on": start(folder / "on", True, patient), "off": start(folder / "off", False,
                                                                        patient)}  # fmt: skip
    times: dict[str, Times] = {name: {"on": [], "off": []} for name in ("echo", "store", "find")}
    held = {name: associate(daemon, STUDY_FIND) for name, daemon in daemons.items()}
    try:
        for round_number in range(WARMUP + args.rounds):
            order = ("on", "off") if round_number % 2 else ("off", "on")
            for name in order:
                daemon = daemons[name]
                measured = {
                    "echo": timed_ms(echo, daemon),
                    "store": timed_ms(store, daemon, patient.ct),
                    "find": timed_ms(find, held[name], study_uid, series_uid),
                }
                if round_number >= WARMUP:
                    for what, value in measured.items():
                        times[what][name].append(value)
    finally:
        for assoc in held.values():
            assoc.release()
        for daemon in daemons.values():
            daemon.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for daemon in daemons.values():
        daemon.raise_errors()
    recorded = len(daemons["on"].audit.findings())
    if recorded:  # the clients here are meant to be clean: say so if they were not
        print(f"note: the rules recorded {recorded} finding(s) during the run")

    print(f"{'measurement (ms)':<34}{'n':>5}{'on med':>10}{'on p90':>10}{'off med':>10}"
          f"{'off p90':>10}{'on/off':>9}")  # fmt: skip
    labels = {
        "echo": "assoc+echo+release",
        "store": f"store {args.slices} CT slices (1 assoc)",
        "find": "find SERIES + IMAGE (held assoc)",
    }
    verdicts = []
    for what, label in labels.items():
        on, off = times[what]["on"], times[what]["off"]
        ratio = statistics.median(on) / statistics.median(off)
        verdicts.append((label, ratio))
        print(f"{label:<34}{len(on):>5}{statistics.median(on):>10.2f}{p90(on):>10.2f}"
              f"{statistics.median(off):>10.2f}{p90(off):>10.2f}{ratio:>9.3f}")  # fmt: skip
    print()
    for label, ratio in verdicts:
        met = "met" if ratio <= TARGET else "NOT met"
        print(f"target: {label} rules on/off <= {TARGET:.2f} (median): {ratio:.3f}, {met}")


if __name__ == "__main__":
    main()
