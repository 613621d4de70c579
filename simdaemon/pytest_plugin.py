"""pytest fixtures: simulated DB Daemons on ephemeral ports and synthetic RT patients.

Registered through the ``pytest11`` entry point, so a project that installs simdaemon can
write ``def test_export(simdaemon, rt_patient): ...`` with no conftest at all.

Fixtures (in the style of pytest-postgresql: a factory, and defaults built from it):

``simdaemon_factory``
    Function-scoped. ``simdaemon_factory(**options)`` starts a daemon on 127.0.0.1 and an
    ephemeral port with a temporary archive; ``[daemon]`` fields as keywords, other tables as
    dicts (``patient_creation={"automatic": False}``), ``trusted=[...]`` to replace the trusted
    entities, ``faults=[{"operation": "echo", "status": 0xC000}, ...]`` for faults in force
    from the start (:mod:`simdaemon.faults`), ``console=True`` to serve the HTTP console
    too (``daemon.console.url``; off by default), ``folder=`` to put the archive (and relative
    investigation folders) in a folder of the caller's - daemons given the same folder share
    one archive. Every daemon trusts the test entity unless ``trusted`` says otherwise; all
    are stopped at teardown, and an exception on one of their threads fails the test.
``simdaemon``
    A fresh daemon from the factory, configured by the ``@pytest.mark.simdaemon(...)`` marker.
    ``simdaemon.test_entity`` is the trusted entity a test calls as: AE title, 127.0.0.1 and a
    port reserved for the test's own storage receiver (bound with SO_REUSEADDR and not
    listening, so a receiver the test starts there - pynetdicom's servers reuse addresses -
    can take it, and nobody else can), so a C-MOVE to the test itself works.
``simdaemon_shared``
    One daemon for the session, reset (archive, audit, trusted entities, faults) before each test
    that uses it: cheaper than a fresh daemon, for tests that do not configure it.
``simdaemon_in_use``
    The daemon the test uses: ``simdaemon_shared`` when the test asked for it, else
    ``simdaemon``. The three fixtures below follow it; a test asking for both daemons gets a
    usage error instead of a patient in the wrong one.
``daemon_client``
    A :class:`dbdaemon_client.DaemonClient` calling the test's daemon as its test entity.
``synthetic_patient`` / ``rt_patient``
    ``synthetic_patient(seed=..., **options)`` builds a patient with
    :func:`simdaemon.synthetic.synthetic_patient` and imports it into the test's daemon through
    the import pipeline; ``rt_patient`` is one such patient (seed 0, 20 slices of 128 x 128).

Which fixture needs which::

    simdaemon_settings (session)
    ├── simdaemon_factory ── simdaemon (marker) ─┐
    └── simdaemon_shared (session daemon, reset) ┴─ simdaemon_in_use
                                                     ├── daemon_client
                                                     └── synthetic_patient ── rt_patient

Daemons of other scopes, for a module or a session of your own:
:func:`simdaemon.factories.daemon` (``my_daemon = factories.daemon(scope="module", ...)``).

Options (command line, else ini, else default): ``--simdaemon-host`` / ``simdaemon_host``
(default 127.0.0.1), ``--simdaemon-keep-failed`` / ``simdaemon_keep_failed`` (keep the
archives of failed tests and name them in the report), ``--simdaemon-log-level`` /
``simdaemon_log_level`` (simdaemon's logger level, default WARNING),
``--simdaemon-strict[=LEVEL]`` / ``simdaemon_strict`` (fail a test whose daemons recorded a
finding at least LEVEL severe - style, portability, nonconformant or danger; without a level,
portability - with the findings in its report; see the findings reference).

When a test that used a daemon fails, its report gets a section with the daemon's audit trail
in words. Each daemon's archive lives in its own temporary folder, and ports come from the
kernel, so tests run in parallel under pytest-xdist without sharing anything.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from simdaemon.audit import SEVERITIES

if TYPE_CHECKING:  # imported when a test first asks for a daemon, never at plugin load
    from dbdaemon_client import DaemonClient
    from simdaemon.server import Daemon
    from simdaemon.synthetic import SyntheticPatient
    from simdaemon.testing import (
        TEST_AE_TITLE,
        TestDaemon,
        TestEntity,
        daemon_lifetime,
        import_patient,
    )

__all__ = [
    "TEST_AE_TITLE",
    "Settings",
    "TestDaemon",
    "TestEntity",
    "daemon_lifetime",
    "import_patient",
]

#: ``--simdaemon-strict`` without a level.
STRICT_DEFAULT = "portability"
_DAEMONS = pytest.StashKey[list["Daemon"]]()
_FOLDERS = pytest.StashKey[list[Path]]()
_FAILED = pytest.StashKey[bool]()

#: What the plugin still offers by name, from :mod:`simdaemon.testing` when first asked for
#: (PEP 562): loading the plugin imports neither pydicom nor the daemon.
_FROM_TESTING = frozenset(
    {"TEST_AE_TITLE", "TestDaemon", "TestEntity", "daemon_lifetime", "import_patient"}
)


if not TYPE_CHECKING:  # type checkers see the imports above, with their types

    def __getattr__(name: str) -> Any:
        if name in _FROM_TESTING:
            return getattr(import_module("simdaemon.testing"), name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Settings:
    """The plugin's settings: command-line option, else ini value, else default."""

    host: str = "127.0.0.1"
    keep_failed: bool = False
    log_level: str = "WARNING"
    #: Fail a test whose daemons recorded a finding at least this severe ("" = never).
    strict: str = ""

    @classmethod
    def of(cls, config: pytest.Config) -> Settings:
        def pick(option: str, ini: str) -> Any:
            value = config.getoption(option)
            return value if value not in (None, False) else config.getini(ini)

        return cls(
            host=str(pick("simdaemon_host", "simdaemon_host") or cls.host),
            keep_failed=bool(pick("simdaemon_keep_failed", "simdaemon_keep_failed")),
            log_level=str(pick("simdaemon_log_level", "simdaemon_log_level") or cls.log_level),
            strict=_strictness(str(pick("simdaemon_strict", "simdaemon_strict") or "")),
        )


def _strictness(value: str) -> str:
    """``--simdaemon-strict`` / ``simdaemon_strict``: a severity, or "" (off)."""
    level = value.strip().lower()
    if level in ("", "none", "false", "off", "0"):
        return ""
    if level in ("true", "on", "1"):
        return STRICT_DEFAULT
    if level not in SEVERITIES:
        raise pytest.UsageError(
            f"--simdaemon-strict / simdaemon_strict = {value!r}: expected one of "
            + ", ".join(SEVERITIES)
        )
    return level


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simdaemon", "simulated ARIA DB Daemon fixtures")
    group.addoption("--simdaemon-host", dest="simdaemon_host", default=None,
                    help="address the daemons listen on (default 127.0.0.1)")  # fmt: skip
    group.addoption("--simdaemon-keep-failed", dest="simdaemon_keep_failed",
                    action="store_true", help="keep the archives of failed tests")  # fmt: skip
    group.addoption("--simdaemon-log-level", dest="simdaemon_log_level", default=None,
                    help="level of simdaemon's log (default WARNING)")  # fmt: skip
    group.addoption("--simdaemon-strict", dest="simdaemon_strict", nargs="?", default=None,
                    const=STRICT_DEFAULT, metavar="LEVEL",
                    help="fail tests with findings at least LEVEL severe (style, portability, "
                    f"nonconformant, danger; default {STRICT_DEFAULT})")  # fmt: skip
    parser.addini("simdaemon_host", "address the daemons listen on", default="")
    parser.addini("simdaemon_keep_failed", "keep the archives of failed tests", type="bool",
                  default=False)  # fmt: skip
    parser.addini("simdaemon_log_level", "level of simdaemon's log", default="")
    parser.addini("simdaemon_strict", "fail tests with findings at least this severe",
                  default="")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simdaemon(**options): configure the test's `simdaemon` daemon; [daemon] fields as "
        "keywords, other tables as dicts, trusted=[...] for the trusted entities, "
        "faults=[{...}] for injected faults (the keys of simdaemon.faults.Fault)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Remember whether the test body failed, for the teardown of its daemons."""
    try:
        return (yield)
    except BaseException:
        item.stash[_FAILED] = True
        raise


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add each daemon's audit trail (and a kept archive's folder) to a failed test's report."""
    report = yield
    strict = Settings.of(item.config).strict
    if strict and report.passed and call.when == "call":
        _fail_on_findings(item, report, strict)
    if report.failed and call.when == "call":
        daemons: list[Daemon] = item.stash.get(_DAEMONS, [])
        for number, daemon in enumerate(daemons, start=1):
            name = f"simdaemon {daemon.ae_title} #{number} audit trail"
            report.sections.append((name, daemon.audit.describe()))
        if Settings.of(item.config).keep_failed:
            for folder in item.stash.get(_FOLDERS, []):
                report.sections.append(("simdaemon archive kept", str(folder)))
    return report


def _fail_on_findings(item: pytest.Item, report: pytest.TestReport, strict: str) -> None:
    """``--simdaemon-strict``: fail a passing test whose daemons recorded findings."""
    daemons: list[Daemon] = item.stash.get(_DAEMONS, [])
    said: list[str] = []
    for daemon in daemons:
        for event in daemon.audit.findings(severity=strict):
            said.append(f"{event.rule} ({event.outcome}) from '{event.calling_ae}': {event.detail}")
    if not said:
        return
    text = "\n".join(said)
    report.outcome = "failed"
    report.longrepr = (
        f"--simdaemon-strict={strict}: the daemon recorded {len(said)} finding(s) at least "
        f"{strict}:\n{text}"
    )
    report.sections.append((f"simdaemon findings (at least {strict})", text))


@pytest.fixture(scope="session")
def simdaemon_settings(pytestconfig: pytest.Config) -> Settings:
    """The plugin's settings for this run."""
    settings = Settings.of(pytestconfig)
    logging.getLogger("simdaemon").setLevel(settings.log_level.upper())
    return settings


@pytest.fixture
def simdaemon_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    simdaemon_settings: Settings,
) -> Iterator[Callable[..., TestDaemon]]:
    """Start configured daemons (see the module docstring); stop them all at teardown."""
    from simdaemon.testing import make_test_daemon, reserve

    started: list[Daemon] = []
    folders: list[Path] = []
    entity = reserve(simdaemon_settings.host)
    request.node.stash[_DAEMONS] = started
    request.node.stash[_FOLDERS] = folders

    def make(*, folder: Path | None = None, **options: Any) -> TestDaemon:
        if folder is None:
            folder = tmp_path_factory.mktemp("simdaemon")
            folders.append(folder)  # ours to delete; a folder given by the caller is not
        daemon = make_test_daemon(options, folder, simdaemon_settings.host, entity).start()
        started.append(daemon)
        return daemon  # type: ignore[return-value]

    yield make
    for daemon in started:
        daemon.stop()
    entity.release()
    if not (simdaemon_settings.keep_failed and request.node.stash.get(_FAILED, False)):
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    for daemon in started:
        daemon.raise_errors()


@pytest.fixture
def simdaemon(
    request: pytest.FixtureRequest, simdaemon_factory: Callable[..., TestDaemon]
) -> TestDaemon:
    """A fresh daemon, configured by ``@pytest.mark.simdaemon(...)`` when present."""
    marker = request.node.get_closest_marker("simdaemon")
    options = dict(marker.kwargs) if marker is not None else {}
    return simdaemon_factory(**options)


@pytest.fixture(scope="session")
def _simdaemon_session(
    tmp_path_factory: pytest.TempPathFactory, simdaemon_settings: Settings
) -> Iterator[TestDaemon]:
    from simdaemon.testing import daemon_lifetime

    yield from daemon_lifetime(tmp_path_factory, simdaemon_settings)


@pytest.fixture
def simdaemon_shared(request: pytest.FixtureRequest, _simdaemon_session: TestDaemon) -> TestDaemon:
    """The session's daemon, reset: empty archive and audit, configured trusted entities."""
    _simdaemon_session.reset()
    request.node.stash[_DAEMONS] = [_simdaemon_session]
    return _simdaemon_session


@pytest.fixture
def simdaemon_in_use(request: pytest.FixtureRequest) -> TestDaemon:
    """The daemon this test uses: ``simdaemon_shared`` if it asked for it, else ``simdaemon``.

    ``synthetic_patient``, ``rt_patient`` and ``daemon_client`` follow it, so a test written
    with ``simdaemon_shared`` gets its patient and client there instead of silently starting
    a second daemon. A test that asks for both daemons must say which with the factory.
    """
    names = request.fixturenames
    if "simdaemon_shared" in names and "simdaemon" in names:
        raise pytest.UsageError(
            f"{request.node.nodeid} uses both `simdaemon` and `simdaemon_shared`, so "
            "synthetic_patient, rt_patient and daemon_client cannot tell which daemon they "
            "belong to: use one of them, or call import_patient(daemon, patient) and build a "
            "DaemonClient for the other yourself"
        )
    name = "simdaemon_shared" if "simdaemon_shared" in names else "simdaemon"
    daemon: TestDaemon = request.getfixturevalue(name)
    return daemon


@pytest.fixture
def synthetic_patient(simdaemon_in_use: TestDaemon) -> Callable[..., SyntheticPatient]:
    """``synthetic_patient(seed=0, **options)``: build a patient, import it into the daemon
    the test uses (``simdaemon``, or ``simdaemon_shared`` when the test asked for that)."""

    from simdaemon.patient_cache import encoded_patient
    from simdaemon.testing import TEST_AE_TITLE, import_all

    def make(seed: int = 0, **options: Any) -> SyntheticPatient:
        # Built and encoded once per process (simdaemon.patient_cache); the test gets its
        # own copy of the data sets.
        encoded = encoded_patient(seed, **options)
        import_all(simdaemon_in_use, encoded.received(TEST_AE_TITLE))
        return encoded.fresh()

    return make


@pytest.fixture
def rt_patient(synthetic_patient: Callable[..., SyntheticPatient]) -> SyntheticPatient:
    """One synthetic RT patient (seed 0, 20 CT slices of 128 x 128) in the test's daemon."""
    return synthetic_patient(0, slices=20, matrix=128)


@pytest.fixture
def daemon_client(simdaemon_in_use: TestDaemon) -> DaemonClient:
    """A :class:`dbdaemon_client.DaemonClient` calling the test's daemon as its test entity.

    The client is imported here, not when the plugin loads: a user's project may have its
    own module of any name, and loading pytest must not depend on ours.
    """
    from dbdaemon_client import DaemonClient, Entity

    entity = simdaemon_in_use.test_entity
    return DaemonClient(
        Entity(entity.ae_title, entity.host, entity.port),
        Entity(simdaemon_in_use.ae_title, simdaemon_in_use.host, simdaemon_in_use.port),
    )
