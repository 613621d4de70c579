"""Benchmark: C-FIND response time against archives of 10,000 and 1,000,000 instances.

A clinic's ARIA holds millions of images, and client code searches it all day: the patient
by ID, a name typed with a wildcard, a study's series, a series' images. The daemon answers
C-FIND from SQLite, so a query must cost about the same in a large archive as in a small one:
it has to be answered through an index, never by walking every row. This script measures, for
each archive size (``--sizes``, default 10,000 and 1,000,000 instances), the time from
``send_c_find`` until the final response has arrived (every pending response received and
decoded), over ONE association held for all queries of that size (Study Root), side by side
with a bare pynetdicom SCP (below):

* exact PatientID at STUDY level (one patient, one study);
* wildcard PatientName at STUDY level (Study Root allows patient keys there), a prefix that
  matches ten patients in the middle of the archive at every size;
* SERIES level by StudyInstanceUID (the study's two series);
* IMAGE level by SeriesInstanceUID (the series' 200 instances).

The queried patient, study and series sit in the middle of the archive, not in its first
rows. Every timed query must return exactly the expected number of results.

The reference is a bare pynetdicom Query/Retrieve SCP, measured per size: started after the
daemon's warm-up at that size, with the daemon's contexts for Study Root FIND (Implicit and
Explicit VR Little Endian) and TCP_NODELAY on accepted sockets, as the daemon sets them. Its
C-FIND handler decodes the request identifier (as any handler must, to know what was asked),
does no database work and yields canned identifiers, then success: for each of the four queries
the responses the daemon gave in its first warm-up round (same count, keys and values),
rebuilt once as plain Datasets. What the daemon costs above it is the query itself (SQLite,
building each response) and whatever its reactors save or cost against pynetdicom's polling
ones. The bare SCP holds no archive, so its times should not depend on the size; how much they
differ between sizes shows the run's noise.

Per size, both associations (daemon, bare) are held open for all queries. After ``WARMUP``
untimed rounds on each (their results checked), the queries run round-robin ``--repeats``
times, each query to the daemon and then the same query to the bare SCP, so machine noise hits
all of them alike. The table shows median and p90 (nearest rank) per size for daemon and bare,
the ratio of the daemon's medians largest/smallest size, and the ratio of medians daemon/bare
at the largest size. Client and SCPs run in one process, as a test suite runs them; the time
therefore includes pynetdicom's cost per response on both sides (encoding, decoding, its SCU's
polling loop), which at 200 results outweighs the SQL by far: that query has no ratio target.

The archives are filled in bulk through :meth:`simdaemon.archive.Transaction.index_instance`,
not through C-STORE, and hold no files (C-FIND never opens one): each patient has one study of
two CT series of 200 instances, and every instance carries the same small encoded attribute
set. No ``ANALYZE`` is run, so SQLite plans the queries as it would in a daemon's archive. The
start-up consistency check of ``Daemon.start()`` reports every row without its file; its
duration is printed per size, since it reads every instance row. ``--cache DIR`` keeps the
built archives so later runs skip building (default: a temporary folder deleted at exit).

Targets: exact PatientID <= 10 ms median at 1,000,000 instances; median at the largest size
<= 1.5 x median at the smallest for every query but the 200-result IMAGE one. The ratio
daemon/bare has no target: it is there to tell the daemon's cost from pynetdicom's.

Only 127.0.0.1 is used. Run by hand:
``python benchmarks/find.py [--sizes N ...] [--repeats N] [--cache DIR]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

from simdaemon import Daemon
from simdaemon.access import TRANSFER_SYNTAXES
from simdaemon.archive import Archive, NewInstance, NewSeries, NewStudy
from simdaemon.config import from_mapping
from simdaemon.matching import Demographics
from simdaemon.net.outgoing import no_delay

HOST = "127.0.0.1"
CLIENT_AE = "FINDSCU"
CLIENT_PORT = 51403
#: Study Root Query/Retrieve Information Model - FIND.
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
#: pydicom's UID root; the components below it are fixed width, so UIDs (and the file names
#: made from them) sort in insertion order, as UIDs generated over time roughly do.
UID_ROOT = "1.2.826.0.1.3680043.8.498.7"
UID_BASE = 1_000_000_000
INSTANCES_PER_SERIES = 200
SERIES_PER_STUDY = 2
INSTANCES_PER_PATIENT = INSTANCES_PER_SERIES * SERIES_PER_STUDY
#: Instance rows per write transaction while building.
BATCH = 50_000
#: Written into a cached archive once complete; a different layout is rebuilt.
LAYOUT = 1
MARKER = "benchmark.json"
WARMUP = 3
EXACT_TARGET_MS = 10.0
EXACT_TARGET_SIZE = 1_000_000
RATIO_TARGET = 1.5
PENDING = (0xFF00, 0xFF01)

#: What identifies a request to the bare SCP: its elements' keywords and values, in tag order.
Signature = tuple[tuple[str, str], ...]
#: The bare SCP's answers: the response identifiers for each request it knows.
Canned = dict[Signature, list[Dataset]]
#: Per query name, the timed milliseconds.
Times = dict[str, list[float]]


# --- the archive -----------------------------------------------------------------------------


def uid(kind: int, number: int) -> str:
    """A valid, deterministic UID: ``kind`` 1 study, 2 series, 3 instance, 4 frame."""
    return f"{UID_ROOT}.{kind}.{UID_BASE + number}"


def patient_id(patient: int) -> str:
    """The Patient ID of patient number ``patient``."""
    return f"FIND{patient:07d}"


def patient_name(patient: int) -> str:
    """The Patient Name of patient number ``patient`` (PN, as stored)."""
    return f"Bench{patient:07d}^Find"


@dataclass(frozen=True)
class Layout:
    """How an archive of ``size`` instances is shaped; patient ``p`` holds series 2p, 2p+1."""

    size: int

    @property
    def series(self) -> int:
        return self.size // INSTANCES_PER_SERIES

    @property
    def patients(self) -> int:
        return math.ceil(self.series / SERIES_PER_STUDY)

    @property
    def middle(self) -> int:
        """The patient whose study and first series are queried."""
        return self.patients // 2

    @property
    def name_prefix(self) -> str:
        """A wildcard PatientName matching the ten patients around the middle one."""
        return patient_name(self.middle)[: len("Bench") + 6].upper() + "*"

    @property
    def name_hits(self) -> list[int]:
        """The patients that ``name_prefix`` matches."""
        stem = self.name_prefix[:-1].casefold()
        return [p for p in range(self.patients) if patient_name(p).casefold().startswith(stem)]


def attributes_blob() -> bytes:
    """One CT instance's small attributes, encoded Explicit VR Little Endian, no file meta."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = uid(3, 0)
    ds.Modality = "CT"
    ds.Manufacturer = "simdaemon benchmark"
    ds.SliceThickness = 2.0
    ds.KVP = 120
    ds.PatientPosition = "HFS"
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = [-255.5, -255.5, 0.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uid(4, 0)
    ds.SliceLocation = 0.0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 512
    ds.PixelSpacing = [1, 1]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    write_dataset(buffer, ds)
    return buffer.getvalue()


class Bar:
    """``label [#####.....] done/total  rows/s`` on stderr, redrawn in place 5 times a second.

    Drawn whether or not stderr is a terminal (unlike :class:`simdaemon.progress.Progress`),
    so a build run under a log still shows that it advances.
    """

    WIDTH = 30

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.started = self.drawn = time.perf_counter()
        self.update(0)

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if done and done < self.total and now - self.drawn < 0.2:
            return
        self.drawn = now
        filled = self.WIDTH * done // self.total
        rate = done / (now - self.started) if now > self.started else 0.0
        bar = "#" * filled + "." * (self.WIDTH - filled)
        end = "\n" if done >= self.total else ""
        sys.stderr.write(f"\r{self.label} [{bar}] {done:,}/{self.total:,}  {rate:,.0f} rows/s{end}")
        sys.stderr.flush()


def build(folder: Path, layout: Layout) -> None:
    """Fill an empty archive folder with ``layout.size`` instance rows, in batches."""
    blob = attributes_blob()
    bar = Bar(f"building {layout.size:,} instances", layout.size)
    with Archive(folder) as archive:
        series_number = 0
        instance_number = 0
        while series_number < layout.series:
            with archive.transaction() as tx:
                batch_end = instance_number + BATCH
                while series_number < layout.series and instance_number < batch_end:
                    p = series_number // SERIES_PER_STUDY
                    if series_number % SERIES_PER_STUDY == 0:
                        demographics = Demographics(
                            patient_id=patient_id(p),
                            last_name=f"Bench{p:07d}",
                            first_name="Find",
                            birth_date="19600101",
                        )
                        patient = tx.add_patient(demographics, patient_name(p), "O", "", "")
                        study = tx.add_study(
                            patient,
                            NewStudy(
                                uid(1, p), study_id="C1", study_date="20260101", description="Bench"
                            ),
                        )
                    series_uid = uid(2, series_number)
                    number = str(series_number % SERIES_PER_STUDY + 1)
                    series = tx.add_series(
                        study,
                        NewSeries(
                            series_uid, modality="CT", series_number=number, description="CT"
                        ),
                    )
                    for position in range(INSTANCES_PER_SERIES):
                        instance_uid = uid(3, instance_number)
                        values = NewInstance(
                            instance_uid,
                            CTImageStorage,
                            ExplicitVRLittleEndian,
                            instance_number=str(position + 1),
                            content_date="20260101",
                        )
                        tx.index_instance(series, values, f"files/bench/{instance_uid}.dcm", blob)
                        instance_number += 1
                    series_number += 1
                    bar.update(instance_number)


def archive_for(cache: Path, layout: Layout) -> tuple[Path, float | None]:
    """The archive folder for ``layout``, built unless cached; and the build time (s)."""
    folder = cache / f"find-{layout.size}"
    marker = folder / MARKER
    expected = {"layout": LAYOUT, "size": layout.size}
    try:
        if json.loads(marker.read_text()) == expected:
            return folder, None
    except (OSError, ValueError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    begin = time.perf_counter()
    build(folder, layout)
    seconds = time.perf_counter() - begin
    marker.write_text(json.dumps(expected))
    return folder, seconds


# --- the queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One C-FIND to time: its identifier, how many results it must return, its targets."""

    name: str
    identifier: Dataset
    expected: int
    unique: str
    expected_uids: frozenset[str]
    ratio_target: bool


def identifier(level: str, **keys: object) -> Dataset:
    """A Study Root identifier with ``keys`` (an empty string asks for the key)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def queries(layout: Layout) -> list[Query]:
    """The four measured queries, aimed at the middle of an archive of ``layout``."""
    p = layout.middle
    series = p * SERIES_PER_STUDY
    first = series * INSTANCES_PER_SERIES
    hits = layout.name_hits
    return [
        Query(
            "STUDY exact PatientID",
            identifier(
                "STUDY",
                PatientID=patient_id(p),
                StudyInstanceUID="",
                StudyDate="",
                StudyID="",
                PatientName="",
            ),
            1,
            "StudyInstanceUID",
            frozenset({uid(1, p)}),
            True,
        ),
        Query(
            "STUDY wildcard PatientName",
            identifier(
                "STUDY",
                PatientName=layout.name_prefix,
                PatientID="",
                StudyInstanceUID="",
                StudyDate="",
            ),
            len(hits),
            "StudyInstanceUID",
            frozenset(uid(1, q) for q in hits),
            True,
        ),
        Query(
            "SERIES by StudyInstanceUID",
            identifier("SERIES", StudyInstanceUID=uid(1, p), SeriesInstanceUID="", Modality=""),
            SERIES_PER_STUDY,
            "SeriesInstanceUID",
            frozenset(uid(2, series + k) for k in range(SERIES_PER_STUDY)),
            True,
        ),
        Query(
            "IMAGE by SeriesInstanceUID",
            identifier(
                "IMAGE", SeriesInstanceUID=uid(2, series), SOPInstanceUID="", InstanceNumber=""
            ),
            INSTANCES_PER_SERIES,
            "SOPInstanceUID",
            frozenset(uid(3, first + k) for k in range(INSTANCES_PER_SERIES)),
            False,
        ),
    ]


def run_find(assoc: Association, query: Query) -> list[Dataset]:
    """Send one C-FIND and receive every response; return the identifiers; fail on errors."""
    found: list[Dataset] = []
    final: Dataset | None = None
    for answer, result in assoc.send_c_find(query.identifier, FIND):
        if "Status" not in answer:
            raise RuntimeError(f"{query.name}: no C-FIND response (association lost?)")
        if answer.Status in PENDING and result is not None:
            found.append(result)
        else:
            final = answer
    if final is None or final.Status != 0x0000:
        raise RuntimeError(f"{query.name}: final status {final}")
    if len(found) != query.expected:
        raise RuntimeError(f"{query.name}: {len(found)} results, expected {query.expected}")
    return found


def check_results(query: Query, found: list[Dataset]) -> None:
    """The results are exactly the expected objects."""
    got = {str(ds.get(query.unique, "")) for ds in found}
    if got != query.expected_uids:
        raise RuntimeError(f"{query.name}: returned {sorted(got)[:3]}..., not the expected ones")


def signature(ds: Dataset) -> Signature:
    """The keywords and values of an identifier (an empty value, however decoded, as "")."""
    return tuple((element.keyword, str(element.value) if element.value else "") for element in ds)


def rebuilt(ds: Dataset) -> Dataset:
    """A received identifier as a plain Dataset of decoded elements, as a handler yields them."""
    fresh = Dataset()
    for element in ds:
        fresh.add(element)
    return fresh


def start_bare(ae_title: str, canned: Canned) -> ThreadedAssociationServer:
    """A bare pynetdicom Study Root FIND SCP that answers from ``canned``, listening."""

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        for response in canned[signature(event.identifier)]:
            yield PENDING[0], response
        yield 0x0000, None

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(FIND, list(TRANSFER_SYNTAXES))
    handlers: list[evt.EventHandlerType] = [
        (evt.EVT_CONN_OPEN, no_delay),
        (evt.EVT_C_FIND, on_find),
    ]
    server = ae.start_server((HOST, 0), block=False, evt_handlers=handlers)
    assert server is not None
    return server


def associate(ae: AE, port: int, ae_title: str) -> Association:
    """An established association to ``port``, TCP_NODELAY on the client's socket."""
    assoc = ae.associate(
        HOST, port, ae_title=ae_title, evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)]
    )
    if not assoc.is_established:
        raise RuntimeError(f"association to port {port} not established")
    return assoc


def timed_find(assoc: Association, query: Query) -> float:
    """One C-FIND with every response received; its duration in milliseconds."""
    begin = time.perf_counter()
    run_find(assoc, query)
    return (time.perf_counter() - begin) * 1000.0


def measure(port: int, ae_title: str, cases: list[Query], repeats: int) -> tuple[Times, Times]:
    """Time every query ``repeats`` times, round-robin, daemon then bare SCP for each query.

    Each SCP is queried over one association held for the whole measurement. The bare SCP is
    started once the daemon's warm-up has given the responses it is to repeat.
    """
    ae = AE(ae_title=CLIENT_AE)
    ae.add_requested_context(FIND)
    daemon_times: Times = {case.name: [] for case in cases}
    bare_times: Times = {case.name: [] for case in cases}
    daemon = associate(ae, port, ae_title)
    server: ThreadedAssociationServer | None = None
    bare: Association | None = None
    try:
        canned: Canned = {}
        for _ in range(WARMUP):
            for case in cases:
                found = run_find(daemon, case)
                check_results(case, found)
                canned.setdefault(signature(case.identifier), [rebuilt(ds) for ds in found])
        if len(canned) != len(cases):
            raise RuntimeError("two queries have the same identifier: the bare SCP cannot tell")
        server = start_bare(ae_title, canned)
        bare = associate(ae, int(server.server_address[1]), ae_title)
        for _ in range(WARMUP):
            for case in cases:
                found = run_find(bare, case)
                check_results(case, found)
                sent = canned[signature(case.identifier)]
                if [signature(ds) for ds in found] != [signature(ds) for ds in sent]:
                    raise RuntimeError(f"{case.name}: the bare SCP answered other than the daemon")
        for _ in range(repeats):
            for case in cases:
                daemon_times[case.name].append(timed_find(daemon, case))
                bare_times[case.name].append(timed_find(bare, case))
    finally:
        daemon.release()
        if bare is not None:
            bare.release()
        if server is not None:
            server.shutdown()
    return daemon_times, bare_times


@contextmanager
def quiet(name: str) -> Iterator[None]:
    """Silence a logger below CRITICAL for a while (the start-up check logs every bulk row)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass
class SizeResult:
    """Everything measured for one archive size."""

    layout: Layout
    queries: list[Query]
    build_s: float | None
    database_mb: float
    start_ms: float
    missing_reported: int
    times: Times
    bare: Times

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def bare_median(self, name: str) -> float:
        return statistics.median(self.bare[name])


def bench_size(cache: Path, layout: Layout, repeats: int) -> SizeResult:
    """Build or reuse the archive, start the daemon on it, time the queries, stop it."""
    folder, build_s = archive_for(cache, layout)
    config = from_mapping(
        {
            "daemon": {"host": HOST, "port": 0, "archive": str(folder)},
            "trusted": [{"ae_title": CLIENT_AE, "ip": HOST, "port": CLIENT_PORT}],
        },
        folder.parent,
    )
    with quiet("simdaemon"):
        begin = time.perf_counter()
        daemon = Daemon(config).start()
        start_ms = (time.perf_counter() - begin) * 1000.0
    print(f"{layout.size:,} instances: Daemon.start() took {start_ms:.0f} ms", file=sys.stderr)
    cases = queries(layout)
    try:
        consistency = daemon.consistency
        missing = len(consistency.missing_files) if consistency is not None else 0
        held = daemon.archive.count()
        if held != layout.size:
            raise RuntimeError(
                f"the archive holds {held:,} instances after Daemon.start(), expected "
                f"{layout.size:,}: did the start-up check remove rows without files?"
            )
        times, bare = measure(daemon.port, daemon.ae_title, cases, repeats)
    finally:
        daemon.stop()
    daemon.raise_errors()
    database_mb = (folder / "archive.sqlite").stat().st_size / 1e6
    return SizeResult(layout, cases, build_s, database_mb, start_ms, missing, times, bare)


# --- the report ------------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def print_archives(results: list[SizeResult]) -> None:
    """One row per archive: its shape, build time, database size, Daemon.start() time."""
    print(
        "| instances | patients | series | build (s) | database (MB) | Daemon.start() (ms) "
        "| rows without file | wildcard PatientName |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        built = "cached" if r.build_s is None else f"{r.build_s:.1f}"
        print(
            f"| {r.layout.size:,} | {r.layout.patients:,} | {r.layout.series:,} | {built} "
            f"| {r.database_mb:.0f} | {r.start_ms:.0f} | {r.missing_reported:,} "
            f"| `{r.layout.name_prefix}` |"
        )


def ratio(results: list[SizeResult], name: str) -> float:
    """Median at the largest size over median at the smallest."""
    return results[-1].median(name) / results[0].median(name)


def print_queries(results: list[SizeResult]) -> None:
    """One row per query: daemon and bare median/p90 per size (ms), the ratio of the daemon's
    medians largest/smallest, and the ratio of medians daemon/bare at the largest size."""
    several = len(results) > 1
    largest = results[-1]
    header, rule = "| query | results |", "|---|---:|"
    for r in results:
        size = f"{r.layout.size:,}"
        header += f" {size} med | {size} p90 | {size} bare med | {size} bare p90 |"
        rule += "---:|---:|---:|---:|"
    header += " ratio med |" if several else ""
    rule += "---:|" if several else ""
    print(header + f" daemon/bare med at {largest.layout.size:,} |")
    print(rule + "---:|")
    for index, case in enumerate(results[0].queries):
        counts = "/".join(dict.fromkeys(str(r.queries[index].expected) for r in results))
        row = f"| {case.name} | {counts} |"
        for r in results:
            row += f" {r.median(case.name):.2f} | {p90(r.times[case.name]):.2f} |"
            row += f" {r.bare_median(case.name):.2f} | {p90(r.bare[case.name]):.2f} |"
        row += f" {ratio(results, case.name):.2f} |" if several else ""
        print(row + f" {largest.median(case.name) / largest.bare_median(case.name):.2f} |")


def print_targets(results: list[SizeResult]) -> None:
    """Whether each target of the issue holds."""
    largest, smallest = results[-1], results[0]
    exact_name = largest.queries[0].name
    exact = largest.median(exact_name)
    scope = "" if largest.layout.size == EXACT_TARGET_SIZE else " (not the target's size)"
    print(
        f"target: {exact_name} <= {EXACT_TARGET_MS:.0f} ms median at {EXACT_TARGET_SIZE:,} "
        f"instances: {exact:.2f} ms at {largest.layout.size:,}{scope}, "
        f"{'met' if exact <= EXACT_TARGET_MS else 'NOT met'}"
    )
    if len(results) < 2:
        return
    sizes = f"{largest.layout.size:,} / {smallest.layout.size:,}"
    for case in largest.queries:
        if case.ratio_target:
            value = ratio(results, case.name)
            print(
                f"target: {case.name} median {sizes} <= {RATIO_TARGET:.1f}: {value:.2f}, "
                f"{'met' if value <= RATIO_TARGET else 'NOT met'}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 1_000_000],
        help=f"archive sizes in instances (multiples of {INSTANCES_PER_SERIES})",
    )
    parser.add_argument("--repeats", type=int, default=50, help="timed rounds per query")
    parser.add_argument(
        "--cache", type=Path, help="keep built archives here (default: a temporary folder)"
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    sizes: list[int] = sorted(set(args.sizes))
    if any(size < INSTANCES_PER_PATIENT or size % INSTANCES_PER_SERIES for size in sizes):
        parser.error(
            f"sizes must be multiples of {INSTANCES_PER_SERIES}, at least {INSTANCES_PER_PATIENT}"
        )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)

    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="simdaemon-find-bench-") as temp:
        cache = args.cache if args.cache is not None else Path(temp)
        cache.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            results.append(bench_size(cache, Layout(size), args.repeats))

    print(
        f"C-FIND (Study Root) over one held association per size and SCP (daemon, bare "
        f"pynetdicom), interleaved query by query: {args.repeats} timed rounds per query after "
        f"{WARMUP} warm-up rounds; times in ms"
        + (f"; ratio = daemon median at {sizes[-1]:,} / at {sizes[0]:,}" if sizes[1:] else "")
    )
    print()
    print_archives(results)
    print()
    print_queries(results)
    print()
    print_targets(results)


if __name__ == "__main__":
    main()
