"""Injected faults, seen through the client library: one test per action and operation.

Each test switches a fault on, drives the daemon with :class:`client.DaemonClient` as a
user's script would, and asserts what the client observes (a status, an abort with the
partial results, a timeout, a partial move) and what the audit trail shows. The same faults
driven by DCMTK's tools are in ``test_dcmtk_faults.py``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

from dbdaemon_client import (
    AssociationAborted,
    AssociationRejected,
    ClientError,
    ConnectionTimeout,
    DaemonClient,
    DaemonStatusError,
    MoveResult,
)
from simdaemon.config import ConfigError, loads, render
from simdaemon.faults import Fault, FaultError
from simdaemon.pytest_plugin import TestDaemon, import_patient
from simdaemon.synthetic import SyntheticPatient
from simdaemon.synthetic import synthetic_patient as build_patient
from tests import known, objects, scu
from tests.conftest import client_for
from tests.receiver import Receiver

#: Long enough that a client with SHORT_TIMEOUT_S can never get its answer first.
LONG_DELAY_MS = 800
SHORT_TIMEOUT_S = 0.2
ABORT_AS = pytest.mark.parametrize("abort_as", ["abort", "close"])


def the_fault(daemon: TestDaemon) -> str:
    """The one fault event's words; fails unless exactly one fault fired."""
    (fired,) = daemon.audit.events("fault")
    assert fired.outcome == "fired"
    return fired.detail


@pytest.fixture
def patient(synthetic_patient: Callable[..., SyntheticPatient]) -> SyntheticPatient:
    """A small patient: 10 CT slices of 16x16."""
    return synthetic_patient(seed=5, slices=10, matrix=16)


# --- status: the daemon answers a status of the test's choosing --------------------------


def test_echo_answers_the_injected_status_the_first_time_only(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add(operation="echo", status=0x0211, comment="unrecognized operation",
                         times=1)  # fmt: skip
    client = client_for(simdaemon)
    with pytest.raises(DaemonStatusError) as failed:
        client.echo()
    assert (failed.value.status, failed.value.comment) == (0x0211, "unrecognized operation")
    client.echo()  # the second time the fault no longer fires
    (fault,) = simdaemon.audit.events("fault")
    assert fault.status == 0x0211
    assert "echo: answer 0x0211 'unrecognized operation', the first time only" in fault.detail


def test_store_answers_the_status_without_storing(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("store", status=0xA700, comment="disk full (injected)",
                         sop_class_uid=objects.CT)  # fmt: skip
    ct, plan = objects.ct(), objects.rt_plan()
    result = client_for(simdaemon).store([ct, plan])
    assert [(o.status, o.comment) for o in result.objects] == [
        (0xA700, "disk full (injected)"),
        (0x0000, ""),
    ]
    assert simdaemon.archive.instance(ct.SOPInstanceUID) is None
    simdaemon.audit.assert_stored(plan.SOPInstanceUID)
    assert simdaemon.audit.events("store", status=0x0000)[0].status == 0x0000
    assert f"store when sop_class_uid '{objects.CT}'" in the_fault(simdaemon)


def test_find_answers_the_status_for_its_level_only(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("find", status=0xA700, comment="busy", level="IMAGE")
    client = client_for(simdaemon)
    assert client.find_patients() == []  # PATIENT level: not matched
    with pytest.raises(DaemonStatusError, match="0xA700: busy"):
        client.find("IMAGE", SOPInstanceUID=None)
    assert "find when level 'IMAGE': answer 0xA700 'busy'" in the_fault(simdaemon)


def test_move_answers_the_status_before_any_suboperation(
    simdaemon: TestDaemon, patient: SyntheticPatient, receiver: Receiver
) -> None:
    simdaemon.faults.add("move", status=0xA702, comment="out of resources (injected)")
    client = client_for(simdaemon)
    (study,) = client.find_studies(patient.patient_id)
    with pytest.raises(DaemonStatusError, match="0xA702: out of resources"):
        client.move(study, simdaemon.test_entity.ae_title)
    assert receiver.uids() == []
    assert "move: answer 0xA702" in the_fault(simdaemon)


# --- delay: slow, or too slow for the client's timeout -----------------------------------


def test_a_short_delay_still_answers(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("echo", delay_ms=50)
    assert client_for(simdaemon).ping()
    assert "echo: delay 50 ms, every time" in the_fault(simdaemon)


def test_an_association_delayed_past_the_clients_timeout_times_out(
    simdaemon: TestDaemon,
) -> None:
    simdaemon.faults.add("associate", delay_ms=LONG_DELAY_MS)
    with pytest.raises(ConnectionTimeout, match="did not answer the association request"):
        client_for(simdaemon, connect_timeout=SHORT_TIMEOUT_S).echo()
    assert f"associate: delay {LONG_DELAY_MS} ms" in the_fault(simdaemon)


def _echo(client: DaemonClient, patient: SyntheticPatient) -> object:
    return client.echo()


def _find(client: DaemonClient, patient: SyntheticPatient) -> object:
    return client.find_studies(patient.patient_id)


def _store(client: DaemonClient, patient: SyntheticPatient) -> object:
    return client.store([objects.ct()])


def _move(client: DaemonClient, patient: SyntheticPatient) -> object:
    return client.move(client.find_studies(patient.patient_id)[0], "NOWHERE")


CALLS = {"echo": _echo, "find": _find, "store": _store, "move": _move}


@pytest.mark.parametrize("operation", list(CALLS))
def test_a_request_delayed_past_the_clients_timeout_times_out(
    simdaemon: TestDaemon, patient: SyntheticPatient, operation: str
) -> None:
    simdaemon.faults.add(operation, delay_ms=LONG_DELAY_MS)
    client = client_for(simdaemon, idle_timeout=SHORT_TIMEOUT_S)
    with pytest.raises(ConnectionTimeout, match=f"did not answer the C-{operation.upper()}"):
        CALLS[operation](client, patient)
    assert f"{operation}: delay {LONG_DELAY_MS} ms" in the_fault(simdaemon)


# --- refuse: a transient A-ASSOCIATE-RJ --------------------------------------------------


def test_an_association_is_refused_transiently(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("associate", refuse=True, times=1)
    client = client_for(simdaemon)
    with pytest.raises(AssociationRejected) as refused:
        client.echo()
    assert refused.value.transient
    assert client.ping()
    first = simdaemon.audit.events("associate")[0]
    assert (first.outcome, first.rule) == ("rejected", "fault")
    assert "refused by an injected fault" in first.detail


# --- abort_after: A-ABORT, or the connection closed without one --------------------------


@ABORT_AS
def test_an_association_request_answered_by_an_abort(simdaemon: TestDaemon, abort_as: str) -> None:
    simdaemon.faults.add("associate", abort_after=0, abort_as=abort_as, times=1)
    client = client_for(simdaemon)
    with pytest.raises(AssociationAborted, match="during the association request"):
        client.echo()
    assert client.ping(), "the daemon goes on serving"
    first = simdaemon.audit.events("associate")[0]
    assert (first.outcome, first.rule) == ("aborted", "fault")


def ct_of_pdus(daemon: TestDaemon, pdus: int) -> Dataset:
    """A CT slice whose pixels fill at least ``pdus`` PDUs of the daemon's maximum length."""
    side = 16
    while side * side * 2 < pdus * daemon.config.limits.max_pdu_length:
        side *= 2
    return objects.ct(size=side)


@ABORT_AS
def test_an_association_aborted_on_a_pdu_cuts_a_store_off_mid_object(
    simdaemon: TestDaemon, abort_as: str
) -> None:
    slice_ = ct_of_pdus(simdaemon, 8)  # at least 8 P-DATA-TF PDUs, whatever their size
    simdaemon.faults.add("associate", abort_after=3, abort_as=abort_as)
    with pytest.raises(AssociationAborted, match="during the C-STORE") as aborted:
        client_for(simdaemon).store([slice_])
    assert aborted.value.partial == ()
    assert simdaemon.archive.instance(slice_.SOPInstanceUID) is None
    assert simdaemon.audit.events("store") == [], "the object never reached the importer"
    assert "A-ABORT on the peer's P-DATA-TF PDU 3" in the_fault(simdaemon) or abort_as == "close"


@ABORT_AS
def test_an_echo_answered_by_an_abort(simdaemon: TestDaemon, abort_as: str) -> None:
    simdaemon.faults.add("echo", abort_after=0, abort_as=abort_as)
    with pytest.raises(AssociationAborted, match="during the C-ECHO before answering"):
        client_for(simdaemon).echo()
    assert simdaemon.audit.events("echo") == []


@ABORT_AS
def test_a_find_aborted_after_two_matches_returns_no_list(
    simdaemon: TestDaemon, patient: SyntheticPatient, abort_as: str
) -> None:
    simdaemon.faults.add("find", abort_after=2, abort_as=abort_as, level="IMAGE")
    client = client_for(simdaemon)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    with pytest.raises(AssociationAborted, match="after 2 partial result") as aborted:
        client.find_images(ct)
    partial = aborted.value.partial
    assert len(partial) == 2
    assert all(isinstance(ds, Dataset) for ds in partial)
    assert {ds.SOPInstanceUID for ds in partial} <= {ds.SOPInstanceUID for ds in patient.ct}
    assert "find when level 'IMAGE': " in the_fault(simdaemon)


def test_a_find_with_fewer_matches_than_the_limit_is_still_aborted(
    simdaemon: TestDaemon, patient: SyntheticPatient
) -> None:
    simdaemon.faults.add("find", abort_after=5, level="STUDY")
    with pytest.raises(AssociationAborted) as aborted:
        client_for(simdaemon).find_studies(patient.patient_id)
    assert len(aborted.value.partial) == 1, "the one study, then the abort instead of success"
    (find,) = simdaemon.audit.events("find")
    assert (find.outcome, find.status) == ("aborted", None)


def test_a_move_with_fewer_suboperations_than_the_limit_is_still_aborted(
    simdaemon: TestDaemon, patient: SyntheticPatient, receiver: Receiver
) -> None:
    simdaemon.faults.add("move", abort_after=20)
    client = client_for(simdaemon)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    with pytest.raises(AssociationAborted) as aborted:
        client.move(ct, simdaemon.test_entity.ae_title)
    assert aborted.value.partial[0].completed == 10, "all ten, then the abort, not success"
    (move,) = simdaemon.audit.events("move")
    assert move.outcome == "aborted"


@ABORT_AS
def test_a_store_aborted_before_the_import_stores_nothing(
    simdaemon: TestDaemon, abort_as: str
) -> None:
    ct = objects.ct()
    simdaemon.faults.add("store", abort_after=0, abort_as=abort_as)
    with pytest.raises(AssociationAborted, match="during the C-STORE"):
        client_for(simdaemon).store([ct])
    assert simdaemon.archive.instance(ct.SOPInstanceUID) is None
    assert simdaemon.audit.events("store") == []


def test_a_store_aborted_after_the_import_kept_the_object(simdaemon: TestDaemon) -> None:
    """The nasty one: the object is stored, but the client never hears so."""
    first, second = objects.ct(), objects.ct()
    simdaemon.faults.add("store", abort_after=1, times=1)
    client = client_for(simdaemon)
    with pytest.raises(AssociationAborted) as aborted:
        client.store([first, second])
    assert aborted.value.partial == ()
    simdaemon.audit.assert_stored(first.SOPInstanceUID)
    assert simdaemon.archive.instance(second.SOPInstanceUID) is None
    retried = client.store([first])  # a retry finds the object already there
    assert retried.objects[0].status == 0xC004


@ABORT_AS
def test_a_move_aborted_after_three_suboperations_delivers_three(
    simdaemon: TestDaemon, patient: SyntheticPatient, receiver: Receiver, abort_as: str
) -> None:
    simdaemon.faults.add("move", abort_after=3, abort_as=abort_as)
    client = client_for(simdaemon)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    with pytest.raises(AssociationAborted, match="during the C-MOVE") as aborted:
        client.move(ct, simdaemon.test_entity.ae_title)
    (last,) = aborted.value.partial
    assert isinstance(last, MoveResult)
    assert (last.completed, last.failed) == (3, 0)
    assert len(receiver.uids()) == 3
    (move,) = simdaemon.audit.events("move")
    assert "ended by an injected fault after 3 completed" in move.detail


@ABORT_AS
def test_the_abort_is_an_a_abort_or_a_closed_connection_as_asked(
    simdaemon: TestDaemon, abort_as: str
) -> None:
    """Tell the two apart at the protocol level: an A-ABORT arrives, or only the close."""
    simdaemon.faults.add("echo", abort_after=0, abort_as=abort_as)
    seen: list[object] = []
    assoc = scu.associate(simdaemon, simdaemon.test_entity.ae_title)
    assoc.bind(evt.EVT_ACSE_RECV, lambda event: seen.append(event.primitive))
    assert "Status" not in assoc.send_c_echo()
    assoc.join(5)
    aborts = [type(p) for p in seen if isinstance(p, (A_ABORT, A_P_ABORT))]
    if abort_as == "abort":  # from the daemon application: service-user source
        assert aborts == [A_ABORT]
        assert seen[-1].abort_source == 0  # type: ignore[attr-defined]
    else:  # no A-ABORT PDU: pynetdicom reports the closed connection as a provider abort
        assert aborts == [A_P_ABORT]


@ABORT_AS
def test_a_trap_springing_while_responses_are_queued_keeps_the_daemon_up(
    simdaemon: TestDaemon, abort_as: str
) -> None:
    """The C-CANCEL is the peer's third PDU; hundreds of responses wait to go out then."""
    known.bulk_series(simdaemon, "MANY", 5_000)
    simdaemon.faults.add("associate", abort_after=3, abort_as=abort_as, times=1)
    assoc = scu.associate(simdaemon, simdaemon.test_entity.ae_title, contexts=[(FIND, None)])
    statuses = []
    identifier = Dataset()
    identifier.QueryRetrieveLevel, identifier.PatientID, identifier.SOPInstanceUID = (
        "IMAGE", "MANY", "",
    )  # fmt: skip
    for answer, _ in assoc.send_c_find(identifier, FIND, msg_id=7):
        statuses.append(answer.get("Status"))
        if len(statuses) == 5:
            assoc.send_c_cancel(7, query_model=FIND)
    assert statuses[-1] is None, "the association ended; no final status"
    assert 5 <= len(statuses) < 5_000
    find = simdaemon.audit.wait_for("find")  # the search notices the end on its own thread
    assert find.outcome == "aborted"
    assert "(association ended before the final response)" in find.detail
    assert "on the peer's P-DATA-TF PDU 3" in the_fault(simdaemon)
    assert client_for(simdaemon).ping(), "the daemon goes on serving"


@pytest.mark.parametrize("operation", ["associate", "echo"])
def test_stop_ends_an_injected_delay_at_once(
    simdaemon_factory: Callable[..., TestDaemon], operation: str
) -> None:
    """stop() does not wait out a delay, and the delayed request is never served."""
    daemon = simdaemon_factory()
    daemon.faults.add(operation, delay_ms=120_000)
    errors: list[BaseException] = []

    def echo() -> None:
        try:
            client_for(daemon, connect_timeout=60).echo()
        except ClientError as error:
            errors.append(error)

    def acceptors() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("AcceptorThread")}

    before = acceptors()
    caller = threading.Thread(target=echo)
    caller.start()
    daemon.audit.wait_for("fault")
    serving = acceptors() - before
    daemon.stop()
    assert not any(t.is_alive() for t in serving), "stop() left the delayed request running"
    caller.join(30)
    assert [type(e) for e in errors] == [AssociationAborted]
    assert daemon.audit.events("echo") == []


# --- drop_fraction: the daemon "sometimes only sends a partial list" ---------------------


@pytest.mark.parametrize("drop_as", ["silent", "failed"])
def test_a_move_drops_a_seeded_fraction_of_its_suboperations(
    simdaemon: TestDaemon,
    synthetic_patient: Callable[..., SyntheticPatient],
    receiver: Receiver,
    drop_as: str,
) -> None:
    patient = synthetic_patient(seed=5, slices=20, matrix=16)
    simdaemon.faults.add("move", drop_fraction=0.3, drop_as=drop_as, seed=7)
    client = client_for(simdaemon)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    result = client.move(ct, simdaemon.test_entity.ae_title)
    arrived = len(receiver.uids())
    assert 0 < arrived < 20, "about 30 % of the 20 slices are dropped"
    if drop_as == "silent":  # the real daemon's partial list: fewer, and success
        assert (result.status, result.completed, result.failed) == (0x0000, arrived, 0)
    else:
        assert (result.status, result.completed, result.failed) == (0xB000, arrived, 20 - arrived)
        assert len(result.failed_uids) == 20 - arrived
    assert "drop 0.3 of the sub-operations" in the_fault(simdaemon)


# --- suboperation: each C-STORE of a move to its destination ---------------------------


def test_a_suboperation_status_fails_the_objects_of_one_sop_class(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, receiver: Receiver
) -> None:
    """The dose never arrives: the move says so, with the UID."""
    dose = rt_patient.dose
    simdaemon.faults.add("suboperation", status=0xA700, sop_class_uid=dose.SOPClassUID)
    client = client_for(simdaemon)
    (study,) = client.find_studies(rt_patient.patient_id)
    result = client.move(study, simdaemon.test_entity.ae_title)
    assert (result.status, result.failed, result.failed_uids) == (
        0xB000, 1, (dose.SOPInstanceUID,)
    )  # fmt: skip
    assert dose.SOPInstanceUID not in receiver.uids()
    assert len(receiver.uids()) == result.completed
    assert "suboperation when sop_class_uid" in the_fault(simdaemon)
    assert "the destination answers 0xA700" in the_fault(simdaemon)


def test_a_suboperation_warning_is_sent_and_counted_a_warning(
    simdaemon: TestDaemon, patient: SyntheticPatient, receiver: Receiver
) -> None:
    simdaemon.faults.add("suboperation", status=0xB000, times=2)
    client = client_for(simdaemon)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    result = client.move(ct, simdaemon.test_entity.ae_title)
    assert (result.status, result.completed, result.warning) == (0xB000, 8, 2)
    assert len(receiver.uids()) == 10
    assert len(simdaemon.audit.events("fault")) == 2


def test_a_slow_suboperation_times_the_move_out(
    simdaemon: TestDaemon, patient: SyntheticPatient, receiver: Receiver
) -> None:
    # Before its first sub-operation the daemon opens an association to the receiver: on a
    # loaded 2-core machine that alone can take longer than SHORT_TIMEOUT_S, and the client
    # would give up before the fault fires. A wider margin on both sides keeps the cause.
    delay_ms, timeout_s = 5000, 1.5
    simdaemon.faults.add("suboperation", delay_ms=delay_ms, times=1)
    client = client_for(simdaemon, idle_timeout=timeout_s)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    with pytest.raises(ConnectionTimeout, match="did not answer the C-MOVE"):
        client.move(ct, simdaemon.test_entity.ae_title)
    assert f"suboperation: delay {delay_ms} ms" in the_fault(simdaemon)


def test_a_suboperation_rule_matches_the_patient(
    simdaemon: TestDaemon,
    synthetic_patient: Callable[..., SyntheticPatient],
    receiver: Receiver,
) -> None:
    first = synthetic_patient(seed=1, slices=2, matrix=16)
    second = synthetic_patient(seed=2, slices=2, matrix=16)
    simdaemon.faults.add("suboperation", status=0xA700, patient_id=second.patient_id)
    client = client_for(simdaemon)
    (one,) = client.find_patients(first.patient_id)
    (two,) = client.find_patients(second.patient_id)
    assert client.move(one, simdaemon.test_entity.ae_title).ok
    assert client.move(two, simdaemon.test_entity.ae_title).completed == 0


# --- matching: which requests a rule is about --------------------------------------------


def test_a_rule_for_another_calling_ae_does_not_fire(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("echo", status=0xC000, calling_ae="SOMEONE_ELSE")
    client_for(simdaemon).echo()
    assert simdaemon.audit.events("fault") == []
    simdaemon.faults.add("echo", status=0xC000, calling_ae=simdaemon.test_entity.ae_title)
    with pytest.raises(DaemonStatusError):
        client_for(simdaemon).echo()


def test_rules_match_on_patient_id_for_store_find_and_move(
    simdaemon: TestDaemon, patient: SyntheticPatient, receiver: Receiver
) -> None:
    client = client_for(simdaemon)
    client.store([objects.ct(PatientID="OTHER-1")])
    simdaemon.faults.add("store", status=0xC001, comment="no", patient_id="OTHER-1")
    simdaemon.faults.add("find", status=0xC001, patient_id="OTHER-1", level="STUDY")
    simdaemon.faults.add("move", status=0xC001, patient_id="OTHER-1")

    stored = client.store([objects.ct(PatientID="OTHER-1"), objects.ct(PatientID="FINE-1")])
    assert [o.status for o in stored.objects] == [0xC001, 0x0000]
    assert client.find_studies(patient.patient_id)
    with pytest.raises(DaemonStatusError, match="0xC001"):
        client.find_studies("OTHER-1")
    (mine,) = client.find_patients(patient.patient_id)
    (other,) = client.find_patients("OTHER-1")
    assert client.move(mine, simdaemon.test_entity.ae_title).ok
    with pytest.raises(DaemonStatusError, match="0xC001"):
        client.move(other, simdaemon.test_entity.ae_title)
    assert len(simdaemon.audit.events("fault")) == 3


# --- how often: times, probability and seed ----------------------------------------------


def test_a_seed_gives_the_same_faults_in_the_same_places(
    simdaemon_factory: Callable[..., TestDaemon],
) -> None:
    patterns = []
    for _ in range(2):
        daemon = simdaemon_factory()
        daemon.faults.add("echo", status=0xC000, probability=0.5, seed=7)
        client = client_for(daemon)
        patterns.append([client.ping() for _ in range(16)])
    assert patterns[0] == patterns[1]
    assert 0 < sum(patterns[0]) < 16


def test_a_seed_drops_the_same_suboperations_in_every_run(
    simdaemon_factory: Callable[..., TestDaemon],
) -> None:
    arrived = []
    for _ in range(2):
        daemon = simdaemon_factory()
        entity = daemon.test_entity
        patient = import_patient(daemon, build_patient(5, slices=12, matrix=16))
        daemon.faults.add("move", drop_fraction=0.5, seed=11)
        receiver = Receiver(ae_title=entity.ae_title, bind_port=entity.port).start()
        try:
            client = client_for(daemon)
            (ct,) = client.find_series(patient.study_uid, modality="CT")
            client.move(ct, entity.ae_title)
        finally:
            receiver.stop()
        arrived.append(sorted(receiver.uids()))
    assert arrived[0] == arrived[1]
    assert 0 < len(arrived[0]) < 12


# --- the vocabulary: Python, [[faults]] and the marker ------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"operation": "fly", "delay_ms": 1}, "operation = 'fly' is not allowed: expected one"),
        ({"operation": "echo"}, "a fault needs an action"),
        ({"operation": "echo", "drop_fraction": 0.5}, "applies to operation 'move' only"),
        ({"operation": "echo", "refuse": True}, "applies to operation 'associate' only"),
        ({"operation": "associate", "status": 1}, "an association has no status"),
        ({"operation": "echo", "status": 1, "probability": 2}, "expected a number from 0 to 1"),
        (
            {"operation": "echo", "abort_after": 1},
            "abort_after = 1 is not allowed: expected an integer from 0 to 0",
        ),
        ({"operation": "store", "abort_after": 2}, "expected an integer from 0 to 1"),
        ({"operation": "find", "abort_as": "close"}, "needs abort_after"),
        ({"operation": "find", "status": 1, "abort_after": 1}, "one action besides delay_ms"),
        ({"operation": "find", "status": "busy"}, "status = 'busy' is not allowed: expected an"),
        ({"operation": "find", "level": "image"}, "expected one of 'PATIENT'"),
        ({"operation": "find", "stauts": 1}, "stauts = 1 is not allowed: unknown key"),
        ({"operation": "suboperation", "abort_after": 1}, "a sub-operation cannot abort"),
        ({"operation": "associate", "refuse": True, "level": "STUDY"}, "cannot be matched on"),
        ({"operation": "store", "status": 1, "level": "IMAGE"}, "would never fire"),
        ({"operation": "suboperation", "status": 0}, "needs a failure or warning status"),
    ],
)
def test_bad_rules_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultError, match=message):
        Fault.from_mapping(options)


def test_faults_from_the_configuration_are_in_force_from_the_start(
    simdaemon_factory: Callable[..., TestDaemon],
) -> None:
    daemon = simdaemon_factory(faults=[{"operation": "echo", "status": 0xC000, "times": 1}])
    client = client_for(daemon)
    assert not client.ping()
    assert client.ping()
    daemon.reset()  # the configured faults come back, as new
    assert not client.ping()


@pytest.mark.simdaemon(faults=[{"operation": "associate", "refuse": True}])
def test_faults_from_the_marker(simdaemon: TestDaemon) -> None:
    with pytest.raises(AssociationRejected):
        client_for(simdaemon).echo()


def test_faults_tables_load_and_render_back() -> None:
    config = loads(
        """
        [[faults]]
        operation = "store"
        delay_ms = 500
        probability = 0.5
        seed = 1

        [[faults]]
        operation = "find"
        abort_after = 2
        """
    )
    assert [rule.operation for rule in config.faults] == ["store", "find"]
    assert config.faults[0].delay_ms == 500.0
    assert loads(render(config)) == config


def test_a_bad_faults_table_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"faults\[2\]\.drop_fraction = 1\.5 is not allowed"):
        loads('[[faults]]\noperation = "echo"\ndelay_ms = 1\n'
              '[[faults]]\noperation = "move"\ndrop_fraction = 1.5\n')  # fmt: skip


# --- a fault never corrupts the archive -------------------------------------------------


@pytest.mark.slow
def test_every_fault_at_random_leaves_the_archive_consistent(
    simdaemon: TestDaemon,
    synthetic_patient: Callable[..., SyntheticPatient],
    receiver: Receiver,
) -> None:
    patient = synthetic_patient(seed=9, slices=6, matrix=16)
    randomly = {"probability": 0.15, "seed": 3}
    faults = simdaemon.faults
    faults.add("associate", refuse=True, **randomly)
    faults.add("associate", abort_after=4, **randomly)
    faults.add("associate", abort_after=0, abort_as="close", **randomly)
    faults.add("echo", status=0xC000, **randomly)
    faults.add("store", abort_after=1, **randomly)
    faults.add("store", abort_after=0, abort_as="close", **randomly)
    faults.add("store", status=0xA700, **randomly)
    faults.add("store", delay_ms=5, **randomly)
    faults.add("find", abort_after=1, **randomly)
    faults.add("find", status=0xA700, **randomly)
    faults.add("move", abort_after=2, **randomly)
    faults.add("move", drop_fraction=0.5, drop_as="failed", **randomly)
    client = client_for(simdaemon)
    stored: list[str] = []
    outcomes: dict[str, int] = {}
    choose = random.Random(1)
    for round_ in range(60):
        try:
            action = choose.choice(["echo", "store", "store", "find", "move"])
            if action == "echo":
                client.echo()
            elif action == "store":
                batch = [objects.ct(size=64, PatientID=f"RND-{round_ % 4}") for _ in range(3)]
                answered: tuple[Any, ...] = ()
                try:
                    answered = client.store(batch).objects
                except AssociationAborted as aborted:
                    answered = aborted.partial  # the answers before the abort count too
                    raise
                finally:
                    stored += [o.sop_instance_uid for o in answered if o.status == 0]
            elif action == "find":
                client.find_studies(patient.patient_id)
            else:
                (ct,) = client.find_series(patient.study_uid, modality="CT")
                client.move(ct, simdaemon.test_entity.ae_title)
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except ClientError as error:
            outcomes[type(error).__name__] = outcomes.get(type(error).__name__, 0) + 1
    assert len(outcomes) >= 3, f"the faults should have shown in several ways: {outcomes}"
    assert stored, "some stores got through"
    assert len(simdaemon.audit.events("fault")) > 10

    assert simdaemon.archive.check().ok, simdaemon.archive.check().describe()
    for uid in stored:  # everything acknowledged is there
        simdaemon.audit.assert_stored(uid)
        assert simdaemon.archive.read(uid).SOPInstanceUID == uid
    faults.clear()
    client.echo()
    simdaemon.raise_errors()
