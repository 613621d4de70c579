"""The pytest plugin, tested as its users use it: through pytester."""

from __future__ import annotations

import importlib
import pkgutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import simdaemon

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow  # runs pytest in pytest (pytester, subprocesses)


@pytest.fixture(scope="module", autouse=True)
def _every_module_imported() -> None:
    """Import every simdaemon module before pytester runs pytest in this process.

    After each in-process run pytester restores ``sys.modules``, dropping the modules first
    imported during the run; the next run imports them again as new module objects, while
    modules imported earlier still hold the old ones. A C-FIND query parsed with one
    generation's classes then reached the other's ``match`` and was answered 0xC000, in
    whichever test ran after another that had first loaded the query modules. With every
    module imported first, no run drops any.
    """
    for module in pkgutil.walk_packages(simdaemon.__path__, "simdaemon."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


ECHO = """
from pynetdicom import AE
from pynetdicom.sop_class import Verification

def echo(daemon, calling=None):
    ae = AE(ae_title=calling or daemon.test_entity.ae_title)
    ae.add_requested_context(Verification)
    assoc = ae.associate(daemon.host, daemon.port, ae_title=daemon.ae_title)
    try:
        return assoc.is_established and assoc.send_c_echo().Status == 0
    finally:
        if assoc.is_established:
            assoc.release()
"""


def test_simdaemon_is_a_fresh_daemon_trusting_the_test_entity(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        ECHO
        + """
def test_fresh(simdaemon):
    assert simdaemon.running and simdaemon.port > 0
    assert simdaemon.host == "127.0.0.1"
    assert simdaemon.archive.patients() == []
    assert [e.ae_title for e in simdaemon.trusted] == [simdaemon.test_entity.ae_title]
    assert echo(simdaemon)
    assert not echo(simdaemon, calling="STRANGER")
    assert [e.outcome for e in simdaemon.audit] == ["accepted", "success", "rejected"]
"""
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_marker_configures_the_daemon(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import pytest

@pytest.mark.simdaemon(ae_title="MYDAEMON", patient_creation={"automatic": False},
                       quirks={"failed_import_status": "success"})
def test_configured(simdaemon):
    assert simdaemon.ae_title == "MYDAEMON"
    assert simdaemon.config.daemon.ae_title == "MYDAEMON"
    assert simdaemon.config.patient_creation.automatic is False
    assert simdaemon.config.quirks.failed_import_status == "success"
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_the_factory_makes_several_daemons_and_leaves_nothing_behind(
    pytester: pytest.Pytester,
) -> None:
    # Only this test's daemons count: a session-scoped server of another test (the interop
    # tests' qr_server) may be running in this process when xdist schedules it here.
    before = daemon_threads()
    running = {t.name for t in before}
    pytester.makepyfile(
        ECHO
        + f"""
PORTS = []

def daemon_threads():
    import threading
    return {{t for t in threading.enumerate() if t.name.startswith("simdaemon@")}}

def test_two(simdaemon_factory):
    first = simdaemon_factory(ae_title="FIRST")
    second = simdaemon_factory(ae_title="SECOND", trusted=[])
    PORTS.extend([first.port, second.port])
    assert first.port != second.port
    assert {{t.name for t in daemon_threads()}} >= {{f"simdaemon@{{p}}" for p in PORTS}}
    assert echo(first)
    assert not echo(second)  # trusts nobody

def test_gone():
    import socket
    assert {{t.name for t in daemon_threads()}} <= {running!r}
    for port in PORTS:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
"""
    )
    pytester.runpytest_inprocess("-p", "no:randomly").assert_outcomes(passed=2)
    assert daemon_threads() <= before


def daemon_threads() -> set[threading.Thread]:
    """The daemons' serving threads alive in this process (named ``simdaemon@<port>``)."""
    return {t for t in threading.enumerate() if t.name.startswith("simdaemon@")}


def test_the_shared_daemon_is_reset_between_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
from simdaemon.config import TrustedEntity
from simdaemon.synthetic import synthetic_patient
from simdaemon.pytest_plugin import import_patient

PORTS = set()

def test_one(simdaemon_shared):
    PORTS.add(simdaemon_shared.port)
    import_patient(simdaemon_shared, synthetic_patient(1, slices=2, matrix=16))
    simdaemon_shared.trust(TrustedEntity("EXTRA", "127.0.0.1", 104))
    simdaemon_shared.faults.add("echo", status=0xC000)
    assert len(simdaemon_shared.archive.patients()) == 1

def test_two(simdaemon_shared):
    PORTS.add(simdaemon_shared.port)
    assert len(PORTS) == 1, "one daemon for the session"
    assert simdaemon_shared.archive.patients() == []
    assert simdaemon_shared.archive.count() == 0
    assert len(simdaemon_shared.audit) == 0
    assert [e.ae_title for e in simdaemon_shared.trusted] == ["SIMTEST"]
    assert len(simdaemon_shared.faults) == 0
    assert list(simdaemon_shared.archive.files.glob("*/*/*.dcm")) == []
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=2)


def test_rt_patient_is_imported_through_the_pipeline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_patient(simdaemon, rt_patient):
    (patient,) = simdaemon.archive.patients()
    assert patient.patient_id == rt_patient.patient_id
    assert patient.instances == len(rt_patient.datasets())
    assert simdaemon.archive.instance(rt_patient.plan_uid) is not None

def test_more(simdaemon, synthetic_patient):
    first = synthetic_patient(seed=1, slices=3, matrix=16)
    second = synthetic_patient(seed=2, slices=3, matrix=16)
    assert first.patient_id != second.patient_id
    assert len(simdaemon.archive.patients()) == 2
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=2)


def test_a_failed_test_reports_the_audit_trail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        ECHO
        + """
def test_fails(simdaemon):
    echo(simdaemon, calling="STRANGER")
    assert False, "the client was refused"
"""
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*simdaemon VMSDBD #1 audit trail*",
            "*associate from 'STRANGER' at 127.0.0.1:*: rejected*not a trusted entity*",
        ]
    )


def test_keep_failed_keeps_and_names_the_archive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_fails(simdaemon):
    assert False

def test_passes(simdaemon):
    pass
"""
    )
    result = pytester.runpytest_inprocess("--simdaemon-keep-failed")
    result.assert_outcomes(failed=1, passed=1)
    header = next(i for i, line in enumerate(result.outlines) if "simdaemon archive kept" in line)
    line = result.outlines[header + 1]
    kept = pytester.path.joinpath(line.strip())
    assert (kept / "archive" / "archive.sqlite").exists()


def test_options_and_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsimdaemon_log_level = DEBUG\n")
    pytester.makepyfile(
        """
import logging

def test_settings(simdaemon, simdaemon_settings):
    assert simdaemon_settings.host == "127.0.0.1"
    assert simdaemon_settings.log_level == "DEBUG"
    assert logging.getLogger("simdaemon").level == logging.DEBUG
"""
    )
    result = pytester.runpytest_inprocess("--simdaemon-host", "127.0.0.1")
    result.assert_outcomes(passed=1)


def test_the_test_entitys_port_is_reserved_for_its_receiver(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
import socket
from pydicom.dataset import Dataset
from pynetdicom import AE, evt, StoragePresentationContexts
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

def test_move_to_self(simdaemon, rt_patient):
    entity = simdaemon.test_entity
    with socket.socket() as stranger:  # nobody else can take the port
        try:
            stranger.bind((entity.host, entity.port))
            taken = False
        except OSError:
            taken = True
    assert taken
    received = []
    receiver = AE(ae_title=entity.ae_title)
    receiver.supported_contexts = StoragePresentationContexts
    server = receiver.start_server(
        (entity.host, entity.port), block=False,
        evt_handlers=[(evt.EVT_C_STORE, lambda e: received.append(e.request) or 0)],
    )
    try:
        mover = AE(ae_title=entity.ae_title)
        mover.add_requested_context(MOVE)
        assoc = mover.associate(simdaemon.host, simdaemon.port, ae_title=simdaemon.ae_title)
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.SeriesInstanceUID = rt_patient.ct_series_uid
        final = list(assoc.send_c_move(query, entity.ae_title, MOVE))[-1][0]
        assoc.release()
    finally:
        server.shutdown()
    assert final.Status == 0
    assert len(received) == len(rt_patient.ct)
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_no_listening_socket_is_left_behind(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_uses(simdaemon, simdaemon_shared):
    with open("ports.txt", "w") as out:
        out.write(f"{simdaemon.port} {simdaemon_shared.port} {simdaemon.test_entity.port}")
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
    ports = [int(p) for p in pytester.path.joinpath("ports.txt").read_text().split()]
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listening"
    with socket.socket() as probe:  # the reservation was released too
        probe.bind(("127.0.0.1", ports[2]))


USER_PROJECT_TEST = """
import client  # the user's own module, not ours

def test_mine(daemon_client):
    assert client.WHOSE == "the user's"
    assert daemon_client.ping()
    assert type(daemon_client).__module__ == "dbdaemon_client.daemon_client"
"""


@pytest.mark.parametrize("runner", ["pytest", "python -m pytest"])
def test_a_project_with_its_own_client_module(pytester: pytest.Pytester, runner: str) -> None:
    """Our client never shadows a user's ``client`` module, nor breaks loading the plugin."""
    pytester.makepyfile(client='WHOSE = "the user\'s"\n', test_mine=USER_PROJECT_TEST)
    # A subprocess, as a user runs it: `python -m pytest` puts the project folder first on
    # sys.path, plain `pytest` the test's folder (rootdir-relative, prepend import mode).
    if runner == "pytest":
        command = [str(Path(sys.executable).with_name("pytest"))]
    else:
        command = [sys.executable, "-m", "pytest"]
    result = pytester.run(*command, "-p", "no:cacheprovider", "-p", "no:xdist", "-q")
    result.assert_outcomes(passed=1)


def test_patient_and_client_follow_the_shared_daemon(pytester: pytest.Pytester) -> None:
    """`rt_patient` and `daemon_client` with `simdaemon_shared` land there: no second daemon."""
    pytester.makepyfile(
        """
from simdaemon.server import Daemon

def test_shared(simdaemon_shared, rt_patient, daemon_client, request):
    assert [p.patient_id for p in simdaemon_shared.archive.patients()] == [rt_patient.patient_id]
    found = daemon_client.find_patients(rt_patient.patient_id)
    assert [p.patient_id for p in found] == [rt_patient.patient_id]
    assert "simdaemon" not in request.fixturenames, "no second daemon was started"
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=1)


def test_asking_for_both_daemons_and_a_patient_says_which_fixture_to_use(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
def test_both(simdaemon, simdaemon_shared, rt_patient):
    pass
"""
    )
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*uses both `simdaemon` and `simdaemon_shared`*"])


def test_a_factory_daemon_lives_for_its_scope(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
from simdaemon import factories

module_daemon = factories.daemon(scope="module", patient_creation={"automatic": False})
"""
    )
    pytester.makepyfile(
        ECHO
        + """
PORTS = []

def test_first(module_daemon):
    PORTS.append(module_daemon.port)
    assert module_daemon.config.patient_creation.automatic is False
    assert echo(module_daemon)

def test_second(module_daemon):
    assert [module_daemon.port] == PORTS, "the same daemon for the whole module"
    assert echo(module_daemon)
"""
    )
    pytester.runpytest_inprocess().assert_outcomes(passed=2)


STRICT = """
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

def series_query(daemon, **keys):
    ae = AE(ae_title=daemon.test_entity.ae_title)
    ae.add_requested_context(FIND)
    assoc = ae.associate(daemon.host, daemon.port, ae_title=daemon.ae_title)
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.Modality = "CT"
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    try:
        return [int(status.Status) for status, _ in assoc.send_c_find(query, FIND)]
    finally:
        assoc.release()

def test_bad_client(simdaemon):
    assert series_query(simdaemon) == [0]  # answered: the daemon is lenient, like ARIA

def test_good_client(simdaemon):
    assert series_query(simdaemon, StudyInstanceUID="1.2.3") == [0]
"""


def test_simdaemon_strict_fails_a_test_whose_client_made_a_finding(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(STRICT)
    result = pytester.runpytest_subprocess("--simdaemon-strict", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*--simdaemon-strict=portability: the daemon recorded 1 finding(s)*",
            "*query-missing-parent-unique-key (portability) from 'SIMTEST': message 1: C-FIND "
            "at SERIES level without StudyInstanceUID*",
            "*simdaemon findings (at least portability)*",
            "FAILED *test_bad_client*",
        ]
    )
    assert "test_good_client FAILED" not in result.stdout.str()


def test_simdaemon_strict_level_from_ini_and_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(STRICT)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nsimdaemon_strict = danger\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nsimdaemon_strict = style\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=1)
    bad = pytester.runpytest_subprocess("--simdaemon-strict=fatal", "-p", "no:cacheprovider")
    bad.stderr.fnmatch_lines(["*simdaemon_strict = 'fatal': expected one of style*"])


def test_the_marker_sets_fail_on(pytester: pytest.Pytester) -> None:
    refused = STRICT.replace(
        "series_query(simdaemon) == [0]", "series_query(simdaemon) == [0xC000]"
    )
    marked = '@pytest.mark.simdaemon(findings={"fail_on": "portability"})\ndef test_bad_client'
    pytester.makepyfile(refused.replace("def test_bad_client", marked))
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_loading_the_plugin_imports_neither_pydicom_nor_the_daemon() -> None:
    """pytest loads the plugin in every run of a project that installs simdaemon, and the
    xdist controller loads it before any worker starts: the daemon comes with the first
    fixture that needs it. What the plugin offers by name is still there."""
    check = (
        "import sys, simdaemon.pytest_plugin as plugin\n"
        "heavy = [m for m in ('pydicom', 'pynetdicom', 'simdaemon.server', 'simdaemon.testing')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from simdaemon.pytest_plugin import TestDaemon, import_patient\n"
        "assert TestDaemon.__module__ == 'simdaemon.testing' and 'pydicom' in sys.modules\n"
        "assert callable(import_patient) and plugin.TEST_AE_TITLE == 'SIMTEST'\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
