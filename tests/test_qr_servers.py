"""The three Q/R servers of :mod:`tests.qr_servers` answer as a client suite expects.

pynetdicom directly, not the client library: these tests check the fixture, so they must
not depend on the code the fixture exists to test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid
from pynetdicom import AE
from pynetdicom.association import Association

from simdaemon.net.outgoing import keep_responses
from tests.qr_servers import QRServer, echo, patient
from tests.receiver import Receiver

pytestmark = pytest.mark.slow  # starts dcmqrscp and Orthanc

#: The fixtures qr_server and qr_peers: a plugin, so every module shares one set of servers.
pytest_plugins = ["tests.qr_servers"]

PENDING = (0xFF00, 0xFF01)
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


def _associate(qr_server: QRServer, context: str) -> Association:
    """An association from the test's entity to the server, for one abstract syntax."""
    ae = AE(ae_title=qr_server.local.ae_title)
    ae.add_requested_context(context)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 30
    server = qr_server.server
    assoc = keep_responses(ae.associate(server.host, server.port, ae_title=server.ae_title))
    assert assoc.is_established, f"{qr_server.name} refused the association"
    return assoc


def _find(qr_server: QRServer, identifier: Dataset) -> tuple[list[Dataset], int]:
    """Study Root C-FIND: the matches and the final status."""
    context = STUDY_ROOT_FIND
    assoc = _associate(qr_server, context)
    matches, final = [], -1
    try:
        for status, found in assoc.send_c_find(identifier, context):
            assert "Status" in status, "no C-FIND response"
            final = int(status.Status)
            if final in PENDING and found is not None:
                matches.append(found)
    finally:
        assoc.release()
    return matches, final


def _move(qr_server: QRServer, identifier: Dataset, destination: str) -> Iterator[Dataset]:
    """Study Root C-MOVE: every response's status data set."""
    context = STUDY_ROOT_MOVE
    assoc = _associate(qr_server, context)
    try:
        for status, _ in assoc.send_c_move(identifier, destination, context):
            assert "Status" in status, "no C-MOVE response"
            yield status
    finally:
        assoc.release()


def test_a_c_echo_from_the_local_entity_succeeds(qr_server: QRServer) -> None:
    assert echo(qr_server.server, qr_server.local.ae_title)


def test_a_study_level_c_find_by_patient_id_finds_the_patients_study(
    qr_server: QRServer,
) -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientID = qr_server.patient.patient_id
    identifier.StudyInstanceUID = ""

    matches, final = _find(qr_server, identifier)

    assert final == 0x0000
    assert [str(ds.StudyInstanceUID) for ds in matches] == [qr_server.patient.study_uid]


def test_a_series_level_c_move_to_the_local_entity_delivers_the_ct(qr_server: QRServer) -> None:
    held = qr_server.patient
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = held.study_uid
    identifier.SeriesInstanceUID = held.ct_series_uid
    local = qr_server.local
    receiver = Receiver(ae_title=local.ae_title, bind_port=local.port).start()
    try:
        responses = list(_move(qr_server, identifier, local.ae_title))
    finally:
        receiver.stop()

    final = responses[-1]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == len(held.ct)
    assert sorted(receiver.uids()) == sorted(str(ds.SOPInstanceUID) for ds in held.ct)
    assert {r.calling_ae for r in receiver.received} == {qr_server.server.ae_title}


def test_a_c_store_from_the_local_entity_is_kept(qr_server: QRServer) -> None:
    """Another patient's CT slice, so the shared patient stays as the other tests expect."""
    slice_ = patient().ct[0]
    slice_.PatientID = f"QRSTORE-{qr_server.name}"
    slice_.StudyInstanceUID = generate_uid()
    slice_.SeriesInstanceUID = generate_uid()
    slice_.SOPInstanceUID = slice_.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    before = qr_server.stored_uids()
    assoc = _associate(qr_server, CTImageStorage)
    try:
        status = assoc.send_c_store(slice_)
    finally:
        assoc.release()

    assert status.Status == 0x0000
    assert qr_server.stored_uids() - before == {str(slice_.SOPInstanceUID)}
