"""Benchmark: what the pytest plugin's daemons cost per test, and what pytest-xdist gains.

The plugin promises a fresh daemon per test cheap enough to be the default (``simdaemon``),
a cheaper shared one for tests that do not configure theirs (``simdaemon_shared``, reset
before each test), and suites that run in parallel under pytest-xdist without sharing
anything. This script writes test files into a temporary folder, runs each in a pytest
subprocess (``python -m pytest`` from that folder, whose own ``pytest.ini`` keeps the
project's settings out; the plugin loads through its ``pytest11`` entry point) and measures,
in one run:

* fixture overhead. Each file holds ``--tests`` tests (default 200) and is run ``--rounds``
  times (default 3) with ``-n 0``, the files interleaved round by round:

  - ``baseline``: no fixture, each test ``assert n >= 0``;
  - ``simdaemon``: each test takes ``simdaemon`` and asserts its port;
  - ``simdaemon_shared``: the same with ``simdaemon_shared``;
  - ``simdaemon + patient`` and ``simdaemon_shared + patient``: each test imports the same
    small synthetic patient (5 CT slices of 32 x 32, 11 objects, built once per file) with
    :func:`simdaemon.pytest_plugin.import_patient` and checks the archive holds just it, so
    every daemon is torn down (or reset) with rows and files in its archive.

  A conftest records each test's setup and teardown durations as pytest reports them
  (``pytest_runtest_logreport``). A test's fixture overhead is its setup + teardown less the
  baseline's median setup + teardown (pytest's own cost per test, about 0.1 ms); for the
  shared daemon, that is the reset. The first and the last test of each file are left out:
  they pay one-time costs (the shared daemon's start and stop, lazy imports). Median, p90
  (nearest rank) and mean over all rounds are printed: the median is what a typical test
  pays, the mean what a suite pays per test. For the trivial files the wall-clock
  cross-check ``(t(file) - t(baseline)) / tests`` (median subprocess wall times) is printed
  too: it includes everything pytest does around a test, and should match the mean.

* speed-up. A realistic suite of ``--tests`` tests: each takes ``synthetic_patient`` (so a
  fresh ``simdaemon``), imports its own patient (``seed=n``, 5 slices of 32 x 32), then
  opens one association as ``simdaemon.test_entity``: C-ECHO, and a Study Root C-FIND by the
  patient's ID that must return its one study. It runs with ``-n 0`` and ``-n 2``,
  ``--speedup-rounds`` times each (default 5: one run takes half a minute, and this host's
  pace changes by a quarter from one to the next), ``-n 0`` first in odd rounds and ``-n 2``
  first in even ones; speed-up = median wall time with ``-n 0`` / median with ``-n 2``, the
  subprocess's whole wall time (interpreter start-up, collection, the workers' start) as a
  developer waits for it. Each round's own ratio is printed beside it. The baseline file is
  run with ``-n 0`` and ``-n 2`` in the same rounds, so that xdist's fixed cost (starting
  the workers, each importing pytest, its plugins and the test file) can be told apart: it
  is printed, with the speed-up of the part that grows with the tests, ``(suite - baseline)
  at -n 0 / (suite - baseline) at -n 2``. The target is judged on the whole wall time.

  Every pytest process and xdist worker imports pytest, every pytest plugin installed and
  what the test file imports; with ``-n 2`` that is three processes, the workers started
  only once the controller has. So the fixed cost depends on what else the environment
  holds, and the speed-up is measured (``--speedup-in``, default both) in two environments,
  round by round, each judged against the target:

  - a minimal user's environment: a virtual environment built in the temporary folder with
    ``pip install <a copy of this checkout> pytest-xdist``, every distribution pinned to
    the version installed here (pip and setuptools aside). It holds the least a user of
    simdaemon has: simdaemon with its runtime dependencies (faker brings a pytest plugin,
    and so does anyio, through FastAPI), pytest and pytest-xdist. simdaemon is installed
    as users install it, not editable, so pytest assertion-rewrites its modules as it does
    any installed plugin's. No numpy or requests: pydicom imports both in every process
    where they are installed. Building it needs the package index pip is configured with;
  - this environment: the same versions, plus simdaemon's test and dev extras and whatever
    else the machine has. Here that adds numpy and requests (imported by pydicom) and the
    pytest plugins of hypothesis, platformdirs and pytest-benchmark. (Until the tenth
    session it also held trio, through Selenium: anyio's plugin imports trio wherever it is
    installed, and so does hypothesis's import, through trio's entry point.)

  The first is the best case a user can have; every library each worker imports moves a
  suite toward the second. The environments take turns to go first, round by round, and
  the plugins of each are printed with the figures.

  Two busy processes against one, in the same rounds, as context for the speed-up (not
  judged): how much this machine's two CPUs slow each other down at that moment when both
  run CPU-bound Python. One process builds and encodes synthetic patients of the suite's
  size for :data:`BUSY_SECONDS`, alone; then two do at once (started, their imports
  done, then told to go together); then one alone again. Ratio = patients per second of
  the two together over one alone (the mean of before and after): 2 where two busy CPUs run
  as fast as one, less where they share a core's resources, a cache or a busy host. It is
  not a bound on the suite: its tests also wait on sockets, threads and the disk, and two
  workers' waits overlap. It moves from round to round as the suite's runs do, so each
  round's figure is printed; one above 2 is the host's pace changing within the round.

* seed. ``python -m simdaemon seed --patients 10`` (the defaults: 100 CT slices of
  512 x 512 each) into an empty temporary archive: the subprocess's wall time; its summary
  must say 10 patients and name no failure. It runs last, so that the 500 MB it writes do
  not slow the disk during the other measurements.

* the ``synthetic_patient`` fixture: each test of a file asks it for the same small patient
  in ``simdaemon_shared``; its cost is the test's call time less the baseline's (the
  patient is built and encoded once per process, then imported anew into each test).

Targets (issue 17): ``simdaemon`` overhead <= 10 ms per test, a synthetic patient through
the fixture <= 20 ms, and ``simdaemon_shared`` + reset <= 5 ms per test, all judged on the
MEDIAN of the in-run durations (the reset on both shared files); the mean and the
wall-clock figures are printed beside them without a target, since they also carry the
disk's occasional stalls. Speed-up >= 1.6x with 2 workers (on 2 cores); seed <= 20 s for
10 patients.

The archives live in pytest's ``--basetemp`` inside the temporary folder (``$TMPDIR``, else
/tmp). A fresh daemon costs two to three times more on a disk file system than on tmpfs
(creating the SQLite database in WAL mode, its checkpoint at close, creating and removing
folders), so the file system is printed with the figures. Every pytest process and xdist
worker imports pytest, its plugins and simdaemon anew; where ``PYTHONDONTWRITEBYTECODE`` is
set, nothing of that is cached (assertion rewriting included), which costs about a second
per process and so weighs on the speed-up. ``--pycache`` caches bytecode in the temporary
folder (``PYTHONPYCACHEPREFIX``) after one warm-up run, as a developer's machine would; the
report says which applied. Only 127.0.0.1 is used. Run by hand:
``python benchmarks/fixtures.py [--tests N] [--rounds N] [--speedup-rounds N]
[--patients N] [--pycache] [--speedup-in user|this|both]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from machine import Probe

FRESH_TARGET_MS = 10.0
#: A synthetic patient in a test, through the fixture: its call less the baseline's.
PATIENT_TARGET_MS = 20.0
RESET_TARGET_MS = 5.0
SPEEDUP_TARGET = 1.6
SPEEDUP_WORKERS = 2
SEED_TARGET_S = 20.0
SEED_PATIENTS = 10
#: How long each process of the two-against-one measurement builds patients.
BUSY_SECONDS = 2.0
#: Longest any one subprocess may run before it (and its process group) is killed.
TIMEOUT_S = 900
DURATIONS_ENV = "SIMDAEMON_BENCH_DURATIONS"
#: This checkout, which the user's environment installs.
PROJECT = Path(__file__).resolve().parents[1]
#: What building simdaemon reads from the checkout (``pyproject.toml`` names the rest).
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "simdaemon", "client")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
#: Not pinned in the user's environment: simdaemon is the copy being installed, and the
#: venv's own installers are whatever ``python -m venv`` gives.
UNPINNED = frozenset({"simdaemon", "pip", "setuptools", "wheel"})
#: What a user adds to simdaemon to run their suite in parallel.
USER_REQUIREMENTS = ("pytest-xdist",)
#: Environment variables that would change how the pytest subprocesses run.
DROPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")

PYTEST_INI = "[pytest]\n"

CONFTEST = f'''"""Per-test setup, call and teardown durations, for benchmarks/fixtures.py."""
import json
import os

DURATIONS = {{}}


def pytest_runtest_logreport(report):
    DURATIONS.setdefault(report.nodeid, {{}})[report.when] = report.duration


def pytest_sessionfinish(session):
    path = os.environ.get("{DURATIONS_ENV}")
    if path and not hasattr(session.config, "workerinput"):
        with open(path, "w", encoding="utf-8") as out:
            json.dump(DURATIONS, out)
'''

PATIENT_HEADER = """from simdaemon.pytest_plugin import import_patient
from simdaemon.synthetic import synthetic_patient

PATIENT = synthetic_patient(0, slices=5, matrix=32)
"""

PATIENT_TEST = """

def test_{n}({fixture}):
    import_patient({fixture}, PATIENT)
    assert [p.patient_id for p in {fixture}.archive.patients()] == [PATIENT.patient_id]
"""

CACHED_PATIENT_TEST = """

def test_{n}(simdaemon_shared, synthetic_patient):
    patient = synthetic_patient(0, slices=5, matrix=32)
    assert [p.patient_id for p in simdaemon_shared.archive.patients()] == [patient.patient_id]
"""

SUITE_HEADER = """from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from simdaemon.net.outgoing import keep_responses

FIND = StudyRootQueryRetrieveInformationModelFind


def echo_and_find(daemon, patient):
    ae = AE(ae_title=daemon.test_entity.ae_title)
    ae.acse_timeout = ae.connection_timeout = ae.dimse_timeout = 30
    ae.add_requested_context(Verification)
    ae.add_requested_context(FIND)
    assoc = ae.associate(daemon.host, daemon.port, ae_title=daemon.ae_title)
    assert assoc.is_established
    keep_responses(assoc)  # pynetdicom #875, see simdaemon.net.outgoing
    try:
        assert assoc.send_c_echo().Status == 0x0000
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = patient.patient_id
        query.StudyInstanceUID = ""
        statuses, studies = [], []
        for status, identifier in assoc.send_c_find(query, FIND):
            statuses.append(status.Status)
            if status.Status in (0xFF00, 0xFF01):
                studies.append(identifier.StudyInstanceUID)
        assert statuses[-1] == 0x0000
        assert studies == [patient.study_uid]
    finally:
        assoc.release()
"""

SUITE_TEST = """

def test_{n}(simdaemon, synthetic_patient):
    echo_and_find(simdaemon, synthetic_patient(seed={n}, slices=5, matrix=32))
"""

#: Per test node id, its phases' durations in seconds, as the conftest wrote them.
Durations = dict[str, dict[str, float]]
Row = tuple[str, str, str, str]


@dataclass(frozen=True)
class TestFile:
    """A generated test file of the fixture measurements."""

    name: str
    label: str
    text: Callable[[int], str]


def trivial(fixture: str | None) -> Callable[[int], str]:
    """Tests that do next to nothing, with ``fixture`` (or none for the baseline)."""
    if fixture is None:
        return lambda tests: "".join(
            f"\n\ndef test_{n}():\n    assert {n} >= 0\n" for n in range(tests)
        )
    return lambda tests: "".join(
        f"\n\ndef test_{n}({fixture}):\n    assert {fixture}.port > 0\n" for n in range(tests)
    )


def with_patient(fixture: str) -> Callable[[int], str]:
    """Tests that import the file's small synthetic patient into ``fixture``."""
    return lambda tests: (
        PATIENT_HEADER + "".join(PATIENT_TEST.format(n=n, fixture=fixture) for n in range(tests))
    )


def cached_patient(tests: int) -> str:
    """Tests that each ask the ``synthetic_patient`` fixture for the same patient."""
    return "".join(CACHED_PATIENT_TEST.format(n=n) for n in range(tests))


def suite(tests: int) -> str:
    """The realistic suite of the speed-up measurement."""
    return SUITE_HEADER + "".join(SUITE_TEST.format(n=n) for n in range(tests))


BASELINE = TestFile("baseline", "baseline (no fixture)", trivial(None))
FRESH = TestFile("fresh", "`simdaemon`", trivial("simdaemon"))
SHARED = TestFile("shared", "`simdaemon_shared`", trivial("simdaemon_shared"))
FRESH_PATIENT = TestFile("fresh_patient", "`simdaemon` + patient", with_patient("simdaemon"))
SHARED_PATIENT = TestFile(
    "shared_patient", "`simdaemon_shared` + patient", with_patient("simdaemon_shared")
)
PATIENT_FIXTURE = TestFile(
    "patient_fixture", "`synthetic_patient` (same seed) in `simdaemon_shared`", cached_patient
)
FIXTURE_FILES = (BASELINE, FRESH, SHARED, FRESH_PATIENT, SHARED_PATIENT, PATIENT_FIXTURE)
SUITE = TestFile("suite", "realistic suite", suite)


@dataclass
class Runs:
    """A test file's runs: wall times in seconds, and per-test durations pooled over runs."""

    walls: list[float]
    setup_ms: list[float]
    call_ms: list[float]
    teardown_ms: list[float]

    @property
    def overhead_ms(self) -> list[float]:
        """Setup + teardown of each test (first and last of each run left out), in ms."""
        return [s + t for s, t in zip(self.setup_ms, self.teardown_ms, strict=True)]


def no_runs() -> Runs:
    """Runs yet to be made."""
    return Runs([], [], [], [])


def p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def run_bounded(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``command`` in its own session; kill its process group after ``TIMEOUT_S``."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group of the child started above
        process.communicate()
        raise RuntimeError(f"{' '.join(command)} ran longer than {TIMEOUT_S} s") from None
    return process.returncode, output


@dataclass(frozen=True)
class Bench:
    """Where the subprocesses run, with which environment, and how many tests per file."""

    folder: Path
    env: dict[str, str]
    tests: int
    #: The interpreter that runs pytest: this one, or the user's environment's.
    python: str = sys.executable


def child_env(pycache: Path | None) -> dict[str, str]:
    """This process's environment without what would change how pytest runs.

    With ``pycache``, bytecode is cached there (``PYTHONPYCACHEPREFIX``) even when
    ``PYTHONDONTWRITEBYTECODE`` is set, as on a developer's machine.
    """
    env = {k: v for k, v in os.environ.items() if k not in (*DROPPED_ENV, DURATIONS_ENV)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def bytecode_caching(env: dict[str, str]) -> str:
    """How the subprocesses cache bytecode, for the report."""
    if "PYTHONPYCACHEPREFIX" in env and "PYTHONDONTWRITEBYTECODE" not in env:
        return f"on, in {env['PYTHONPYCACHEPREFIX']}"
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return (
            "OFF (PYTHONDONTWRITEBYTECODE is set: every pytest process and xdist worker "
            "compiles and assertion-rewrites what it imports anew; --pycache turns it on)"
        )
    return "on, in __pycache__ folders"


def pytest_command(bench: Bench, workers: int, basetemp: str, targets: list[str]) -> list[str]:
    """pytest on ``targets`` with ``-n workers``, its archives under ``basetemp-<basetemp>``."""
    command = [bench.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    return [
        *command,
        "-n",
        str(workers),
        f"--basetemp={bench.folder / f'basetemp-{basetemp}'}",
        *targets,
    ]


def run_pytest(
    bench: Bench, test_file: TestFile, workers: int, runs: Runs, *, record: bool
) -> None:
    """Run ``test_<name>.py`` once; add its wall time (and its durations) to ``runs``."""
    folder, tests = bench.folder, bench.tests
    durations = folder / f"durations-{test_file.name}.json"
    command = pytest_command(bench, workers, test_file.name, [f"test_{test_file.name}.py"])
    env = dict(bench.env)
    if record:
        env[DURATIONS_ENV] = str(durations)
    begin = time.perf_counter()
    code, output = run_bounded(command, folder, env)
    runs.walls.append(time.perf_counter() - begin)
    if code != 0 or f"{tests} passed" not in output:
        tail = "\n".join(output.splitlines()[-30:])
        raise RuntimeError(f"{test_file.label} with -n {workers} failed:\n{tail}")
    if record:
        measured: Durations = json.loads(durations.read_text(encoding="utf-8"))
        durations.unlink()
        per_test = list(measured.values())[1:-1]
        runs.setup_ms.extend(d["setup"] * 1000.0 for d in per_test)
        runs.call_ms.extend(d["call"] * 1000.0 for d in per_test)
        runs.teardown_ms.extend(d["teardown"] * 1000.0 for d in per_test)


def warm_up(bench: Bench) -> None:
    """Fill the bytecode cache: one realistic test and the baseline file, with ``-n 0`` and
    with ``-n`` :data:`SPEEDUP_WORKERS`.

    The realistic test imports all the suite imports (the fixtures' modules too), and the
    second run what only xdist's controller and workers import, so that no measured run
    compiles anything.
    """
    targets = [f"test_{SUITE.name}.py::test_0", f"test_{BASELINE.name}.py"]
    for workers in (0, SPEEDUP_WORKERS):
        command = pytest_command(bench, workers, "warm-up", targets)
        run_checked(command, bench.folder, bench.env, "the warm-up run")


def run_checked(command: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    """Run ``command`` bounded (:func:`run_bounded`); its output, or an error naming ``what``."""
    code, output = run_bounded(command, cwd, env)
    if code != 0:
        raise RuntimeError(f"{what} failed (exit {code}):\n{output[-3000:]}")
    return output


def canonical(name: str) -> str:
    """A distribution's name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def user_environment(folder: Path, env: dict[str, str]) -> str:
    """Build a minimal user's environment for the suite; return its interpreter.

    A virtual environment with ``pip install <this checkout> pytest-xdist`` and nothing
    else: simdaemon with its runtime dependencies, pytest and pytest-xdist. Every
    distribution installed here from the index is pinned to its version (a constraints
    file), so the two environments run the same versions and differ in what else is
    installed (and in simdaemon being installed, not editable). The checkout's
    sources are copied into ``folder`` first: pip builds in the tree it installs from, and
    a ``build`` folder left in the checkout could hand stale modules to the next install.
    Needs the package index pip is configured with (``--speedup-in this`` does without).
    """
    venv = folder / "user-env"
    run_checked([sys.executable, "-m", "venv", str(venv)], folder, env, "python -m venv")
    python = str(venv / "bin" / "python")
    pins: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name, pinned = distribution.metadata["Name"], distribution.version
        if not name or canonical(name) in UNPINNED or "+" in pinned:
            continue  # a local version is on no index
        if distribution.read_text("direct_url.json") is not None:
            continue  # installed from a path or a repository, not from the index
        pins.setdefault(canonical(name), f"{name}=={pinned}")
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(sorted(pins.values())) + "\n", encoding="utf-8")
    install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    source = folder / "source"  # pip builds in the tree it installs: not in the checkout
    source.mkdir()
    for name in SOURCE_FILES:
        if (PROJECT / name).is_dir():
            shutil.copytree(PROJECT / name, source / name, ignore=IGNORED)
        else:
            shutil.copy2(PROJECT / name, source / name)
    install += ["-c", str(constraints), str(source), *USER_REQUIREMENTS]
    run_checked(install, folder, env, " ".join(install))
    return python


#: Prints the distributions that register pytest plugins (``pytest11`` entry points).
LIST_PLUGINS = (
    "import importlib.metadata as m; print(', '.join(sorted({e.dist.name for e in "
    "m.entry_points(group='pytest11') if e.dist is not None})))"
)


def pytest_plugins(bench: Bench) -> str:
    """The distributions whose pytest plugins load in every process of ``bench``'s runs."""
    output = run_checked([bench.python, "-c", LIST_PLUGINS], bench.folder, bench.env, "listing")
    return output.strip()


USER_ENV = "a minimal user's environment"
THIS_ENV = "this environment"


@dataclass
class Speedup:
    """One environment's runs of the speed-up measurement: the suite and the baseline file,
    each with ``-n 0`` and with ``-n`` :data:`SPEEDUP_WORKERS`."""

    label: str
    bench: Bench
    #: The distributions whose pytest plugins every process loads there.
    plugins: str
    serial: Runs = field(default_factory=no_runs)
    parallel: Runs = field(default_factory=no_runs)
    baseline_serial: Runs = field(default_factory=no_runs)
    baseline_parallel: Runs = field(default_factory=no_runs)

    def run_round(self, round_number: int) -> None:
        """One run of each: ``-n 0`` first in odd rounds, ``-n N`` first in even ones, so
        that a host slowing down or speeding up during a round favours neither."""
        plan = [(0, self.serial, self.baseline_serial)]
        plan.append((SPEEDUP_WORKERS, self.parallel, self.baseline_parallel))
        for workers, suite, baseline in plan if round_number % 2 else reversed(plan):
            run_pytest(self.bench, SUITE, workers, suite, record=False)
            run_pytest(self.bench, BASELINE, workers, baseline, record=False)

    def round_ratios(self) -> str:
        """Each round's ``-n 0`` wall time over its ``-n N`` one, for the report."""
        pairs = zip(self.serial.walls, self.parallel.walls, strict=True)
        return ", ".join(f"{serial / parallel:.2f}" for serial, parallel in pairs)

    def rows(self) -> list[Row]:
        """The suite's wall times, the speed-up against the target, the fixed cost of a run
        and the speed-up of the part that grows with the tests."""
        workers, where = SPEEDUP_WORKERS, f" ({self.label})"
        serial_s = statistics.median(self.serial.walls)
        parallel_s = statistics.median(self.parallel.walls)
        speedup = serial_s / parallel_s
        fixed_0 = statistics.median(self.baseline_serial.walls)
        fixed_n = statistics.median(self.baseline_parallel.walls)
        growing = (serial_s - fixed_0) / (parallel_s - fixed_n)
        return [
            (
                f"realistic suite{where}, -n 0, wall {walls(self.serial)}",
                f"{serial_s:.2f} s",
                "-",
                "-",
            ),
            (
                f"realistic suite{where}, -n {workers}, wall {walls(self.parallel)}",
                f"{parallel_s:.2f} s",
                "-",
                "-",
            ),
            (
                f"speed-up -n {workers} vs -n 0{where} (rounds: {self.round_ratios()})",
                f"{speedup:.2f}x",
                f">= {SPEEDUP_TARGET}x",
                verdict(speedup >= SPEEDUP_TARGET),
            ),
            (
                f"baseline file{where}, -n 0 / -n {workers}, wall (fixed cost of a run)",
                f"{fixed_0:.2f} s / {fixed_n:.2f} s",
                "-",
                "-",
            ),
            (f"speed-up of the per-test part{where}", f"{growing:.2f}x", "-", "-"),
        ]


#: One process of the two-against-one measurement: builds and encodes synthetic patients of the
#: suite's size for argv[1] seconds, then prints how many it built per second. It prints
#: "ready" once its imports (and a first patient, for faker's locale) are done and starts on
#: the next line of its stdin, so that processes run at once start together.
BUSY_WORK = """import sys, time
from io import BytesIO
from simdaemon.synthetic import synthetic_patient

def build(seed):
    for dataset in synthetic_patient(seed, slices=5, matrix=32, locale="en_US").datasets():
        dataset.save_as(BytesIO(), enforce_file_format=True)

seconds = float(sys.argv[1])
build(0)
print("ready", flush=True)
sys.stdin.readline()
begin = time.perf_counter()
built = 0
while time.perf_counter() - begin < seconds:
    built += 1
    build(built)
print(built / (time.perf_counter() - begin), flush=True)
"""


def patients_per_second(bench: Bench, processes: int) -> list[float]:
    """Run ``processes`` copies of :data:`BUSY_WORK` at once; each one's rate.

    All are started, and told to go once every one is ready; all are killed (and an error
    raised) if they are not done within :data:`TIMEOUT_S`.
    """
    command = [bench.python, "-c", BUSY_WORK, str(BUSY_SECONDS)]
    children = [
        subprocess.Popen(
            command,
            cwd=bench.folder,
            env=bench.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]

    def kill_all() -> None:
        for child in children:
            child.kill()

    deadline = threading.Timer(TIMEOUT_S, kill_all)
    deadline.start()
    try:
        for child in children:
            assert child.stdout is not None  # piped above
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a busy process did not say it was ready (exit {child.poll()})")
        try:
            for child in children:
                assert child.stdin is not None  # piped above
                child.stdin.write("go\n")
                child.stdin.flush()
        except OSError as error:
            raise RuntimeError(f"a busy process ended before it started: {error}") from None
        rates = []
        for child in children:
            output, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"a busy process failed (exit {child.returncode})")
            rates.append(float(output.strip()))
        return rates
    finally:
        deadline.cancel()
        kill_all()
        for child in children:
            child.communicate()


@dataclass
class BusyProcesses:
    """Two busy processes against one: how much this machine's CPUs slow each other down
    when both run CPU-bound Python (building and encoding synthetic patients; no pytest,
    threads or sockets), measured in the speed-up's rounds."""

    bench: Bench
    #: Each round's rate of one process alone, before and after the processes at once.
    alone: list[tuple[float, float]] = field(default_factory=list)
    #: Each round's rates of the processes run at once.
    together: list[list[float]] = field(default_factory=list)

    def run_round(self) -> None:
        """One process alone, then :data:`SPEEDUP_WORKERS` at once, then one alone again."""
        before = patients_per_second(self.bench, 1)[0]
        self.together.append(patients_per_second(self.bench, SPEEDUP_WORKERS))
        self.alone.append((before, patients_per_second(self.bench, 1)[0]))

    def ratios(self) -> list[float]:
        """Each round's patients per second of all processes at once over that of one alone
        (the mean of before and after)."""
        pairs = zip(self.alone, self.together, strict=True)
        return [sum(together) / statistics.mean(alone) for alone, together in pairs]

    def rows(self) -> list[Row]:
        """Each round's ratio and their median, not judged."""
        rounds = ", ".join(f"{r:.2f}" for r in self.ratios())
        alone = statistics.median(rate for rates in self.alone for rate in rates)
        together = statistics.median(rate for rates in self.together for rate in rates)
        return [
            (
                f"two busy processes against one (no pytest): patients built and encoded per "
                f"second, one alone {alone:.1f}, each of {SPEEDUP_WORKERS} at once "
                f"{together:.1f} (rounds: {rounds})",
                f"{statistics.median(self.ratios()):.2f}x",
                "-",
                "-",
            )
        ]


def run_seed(bench: Bench, patients: int) -> tuple[float, str]:
    """Time ``simdaemon seed --patients N`` into an empty archive; return it and the summary."""
    archive = bench.folder / "seed-archive"
    command = [sys.executable, "-m", "simdaemon", "seed", "--patients", str(patients)]
    command += ["--archive", str(archive)]
    begin = time.perf_counter()
    code, output = run_bounded(command, bench.folder, bench.env)
    wall = time.perf_counter() - begin
    shutil.rmtree(archive, ignore_errors=True)
    summary = re.search(r"^seeded (\d+) patient\(s\), (\d+) object\(s\).*$", output, re.M)
    if code != 0 or summary is None or int(summary[1]) != patients or "FAILED" in output:
        raise RuntimeError(f"simdaemon seed failed (exit {code}):\n{output[-3000:]}")
    return wall, summary[0]


def file_system(path: Path) -> str:
    """The type of the file system holding ``path``, from /proc/mounts where there is one."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return "unknown"
    resolved, best, kind = str(path.resolve()), "", "unknown"
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return f"{kind} ({best})" if best else kind


def cpu_counts() -> str:
    """Logical CPUs, and those this process may run on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    total = os.cpu_count()
    return f"{total} logical" + (f", {usable} usable by this process" if usable else "")


def version(distribution: str) -> str:
    """An installed distribution's version, or "?"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def verdict(met: bool) -> str:
    """The table's "met?" cell."""
    return "yes" if met else "**NO**"


def overhead_rows(label: str, runs: Runs, pytest_ms: float, target: float | None) -> list[Row]:
    """Median (judged when ``target`` is given), p90 and mean fixture overhead per test."""
    values = [v - pytest_ms for v in runs.overhead_ms]
    median = statistics.median(values)
    met = verdict(median <= target) if target is not None else "-"
    goal = f"<= {target:.0f} ms" if target is not None else "-"
    return [
        (f"{label}: overhead per test, median", f"{median:.2f} ms", goal, met),
        (f"{label}: overhead per test, p90", f"{p90(values):.2f} ms", "-", "-"),
        (f"{label}: overhead per test, mean", f"{statistics.mean(values):.2f} ms", "-", "-"),
    ]


def wall_row(label: str, runs: Runs, baseline: Runs, tests: int) -> Row:
    """The wall-clock cross-check: median wall time over the baseline's, per test."""
    extra = (statistics.median(runs.walls) - statistics.median(baseline.walls)) / tests
    return (f"{label}: overhead per test, wall clock", f"{extra * 1000.0:.2f} ms", "-", "-")


def walls(runs: Runs) -> str:
    """The wall times of the runs, in order, for the table."""
    return "(" + ", ".join(f"{w:.1f}" for w in runs.walls) + " s)"


def print_markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table, columns padded to their widest cell."""
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=200, help="tests per generated file")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each file of the fixture measurements"
    )
    parser.add_argument(
        "--speedup-rounds",
        type=int,
        default=5,
        help="runs of the suite (and of the baseline file) with -n 0 and with -n 2, in each "
        "environment, and of the two-processes-against-one measurement",
    )
    parser.add_argument(
        "--patients", type=int, default=SEED_PATIENTS, help="patients to seed (0: skip)"
    )
    parser.add_argument(
        "--pycache",
        action="store_true",
        help="cache bytecode in the temporary folder even if PYTHONDONTWRITEBYTECODE is set",
    )
    parser.add_argument(
        "--speedup-in",
        choices=("user", "this", "both"),
        default="both",
        help="where the speed-up is measured and judged: a minimal user's environment (a "
        "virtual environment with simdaemon and pytest-xdist only, built with pip), this "
        "one, or both (default)",
    )
    args = parser.parse_args()
    if args.tests < 3 or min(args.rounds, args.speedup_rounds) < 1 or args.patients < 0:
        parser.error(
            "--tests must be at least 3, --rounds and --speedup-rounds at least 1, "
            "--patients 0 or more"
        )
    if importlib.util.find_spec("xdist") is None:
        parser.error("pytest-xdist is not installed: pip install -e '.[test]'")
    started = time.perf_counter()
    probe = Probe.start()

    with tempfile.TemporaryDirectory(prefix="simdaemon-fixtures-") as name:
        folder = Path(name)
        (folder / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
        (folder / "conftest.py").write_text(CONFTEST, encoding="utf-8")
        for test_file in (*FIXTURE_FILES, SUITE):
            path = folder / f"test_{test_file.name}.py"
            path.write_text(test_file.text(args.tests), encoding="utf-8")
        where = file_system(folder)
        bench = Bench(folder, child_env(folder / "pycache" if args.pycache else None), args.tests)
        speedups: list[Speedup] = []
        if args.speedup_in in ("user", "both"):  # first: a failing pip stops it at once
            progress(f"speed-up: building {USER_ENV} (pip, from a copy of {PROJECT})")
            user = replace(bench, python=user_environment(folder, bench.env))
            speedups.append(Speedup(USER_ENV, user, pytest_plugins(user)))
        if args.speedup_in in ("this", "both"):
            speedups.append(Speedup(THIS_ENV, bench, pytest_plugins(bench)))
        if args.pycache:
            progress("warm-up: filling the bytecode cache")
            warm_up(bench)
            for speedup in speedups:
                if speedup.bench is not bench:
                    warm_up(speedup.bench)

        runs = {f.name: no_runs() for f in FIXTURE_FILES}
        busy = BusyProcesses(bench)
        for round_number in range(1, args.rounds + 1):
            progress(f"fixture overhead: round {round_number}/{args.rounds}")
            for test_file in FIXTURE_FILES:
                run_pytest(bench, test_file, 0, runs[test_file.name], record=True)
        for round_number in range(1, args.speedup_rounds + 1):
            progress(f"speed-up: round {round_number}/{args.speedup_rounds}")
            # The environments, like -n 0 and -n N within one, take turns to go first.
            for speedup in speedups if round_number % 2 else reversed(speedups):
                speedup.run_round(round_number)
            busy.run_round()
        seeded: tuple[float, str] | None = None
        if args.patients:
            progress(f"seed: {args.patients} patient(s)")
            seeded = run_seed(bench, args.patients)

    baseline = runs[BASELINE.name]
    pytest_ms = statistics.median(baseline.overhead_ms)
    rows: list[Row] = []
    rows += overhead_rows(FRESH.label, runs[FRESH.name], pytest_ms, FRESH_TARGET_MS)
    rows.append(wall_row(FRESH.label, runs[FRESH.name], baseline, args.tests))
    rows += overhead_rows(SHARED.label + " + reset", runs[SHARED.name], pytest_ms, RESET_TARGET_MS)
    rows.append(wall_row(SHARED.label + " + reset", runs[SHARED.name], baseline, args.tests))
    rows += overhead_rows(
        SHARED_PATIENT.label + " + reset", runs[SHARED_PATIENT.name], pytest_ms, RESET_TARGET_MS
    )
    rows += overhead_rows(FRESH_PATIENT.label, runs[FRESH_PATIENT.name], pytest_ms, None)[:1]
    patient_ms = statistics.median(runs[PATIENT_FIXTURE.name].call_ms) - statistics.median(
        baseline.call_ms
    )
    rows.append(
        (
            f"{PATIENT_FIXTURE.label}: the patient's cost per test (call), median",
            f"{patient_ms:.2f} ms",
            f"<= {PATIENT_TARGET_MS:.0f} ms",
            verdict(patient_ms <= PATIENT_TARGET_MS),
        )
    )
    for speedup in speedups:
        rows += speedup.rows()
    rows += busy.rows()
    if seeded is not None:
        judged = args.patients == SEED_PATIENTS
        rows.append(
            (
                f"`simdaemon seed --patients {args.patients}` (100 x 512^2 CT each), wall",
                f"{seeded[0]:.2f} s",
                f"<= {SEED_TARGET_S:.0f} s" if judged else f"- (target is for {SEED_PATIENTS})",
                verdict(seeded[0] <= SEED_TARGET_S) if judged else "-",
            )
        )

    print(f"CPUs: {cpu_counts()}; {probe.describe()}")
    print(
        f"Python {sys.version.split()[0]}, pytest {version('pytest')}, "
        f"pytest-xdist {version('pytest-xdist')}, pynetdicom {version('pynetdicom')}"
    )
    print(
        f"archives on: {where}; {args.tests} tests per file, {args.rounds} round(s) of the "
        f"fixture files, {args.speedup_rounds} of the speed-up"
    )
    print(f"bytecode caching of the subprocesses: {bytecode_caching(bench.env)}")
    print(f"pytest's own setup + teardown per test (baseline median): {pytest_ms:.3f} ms")
    for speedup in speedups:
        print(f"pytest plugins loaded by every process in {speedup.label}: {speedup.plugins}")
    print()
    print_markdown(("measurement", "value", "target", "met?"), rows)
    print()
    details: list[tuple[str, ...]] = []
    for test_file in FIXTURE_FILES:
        measured = runs[test_file.name]
        details.append(
            (
                test_file.label,
                f"{statistics.median(measured.walls):.2f}",
                f"{statistics.median(measured.setup_ms):.2f}",
                f"{statistics.median(measured.call_ms):.2f}",
                f"{statistics.median(measured.teardown_ms):.2f}",
            )
        )
    header = ("file (-n 0)", "wall s", "setup ms", "call ms", "teardown ms")
    print_markdown(header, details)
    print("(wall: median per run; setup, call, teardown: median per test over all runs)")
    if seeded is not None:
        print(f"seed said: {seeded[1]}")
    print(f"benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
