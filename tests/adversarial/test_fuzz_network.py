"""Mutated A-ASSOCIATE-RQ and P-DATA-TF PDUs over real connections: the daemon holds its line.

Issue 15's invariants, fuzzed over the wire (seeded with ``derandomize``, bounded, loopback):
an untrusted AE is never accepted whatever bytes it sends; after every mutated PDU a trusted
echo is still answered; every object the daemon kept reads back whole, the archive's rows and
files agree, and one C-MOVE delivers every kept object to a receiver. The import pipeline's
own fuzz (no sockets) is ``test_fuzz_import.py``.
"""

from __future__ import annotations

import contextlib
import socket
from io import BytesIO
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF

from simdaemon import Daemon
from tests import objects, scu
from tests.adversarial import pdus
from tests.receiver import Receiver

pytestmark = pytest.mark.slow  # a few hundred connections

CT_STORAGE = objects.CT
#: Offsets in an A-ASSOCIATE-RQ PDU (PS3.8 9.3.2): called AE 10-25, calling AE 26-41.
CALLED, CALLING = slice(10, 26), slice(26, 42)
#: How long the test waits for the daemon's answer to a mutated PDU before moving on.
ANSWER_WAIT_S = 3.0


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """Overwrite bytes at (position modulo length, value) and optionally cut the tail."""
    mutated = bytearray(data)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    if cut is not None:
        del mutated[max(1, cut % len(mutated)) :]
    return bytes(mutated)


edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4)
cuts = st.none() | st.integers(0, 1 << 16)


def _answer(raw: socket.socket) -> int | None:
    """The type of the daemon's first PDU, or None if it closed or kept silent."""
    raw.settimeout(ANSWER_WAIT_S)
    try:
        answered = pdus.read_pdu(raw)
    except (TimeoutError, OSError):
        return None
    return answered[0] if answered is not None else None


def _c_store_pdus(dataset: Dataset, message_id: int) -> bytes:
    """A C-STORE-RQ on presentation context 1 (Implicit VR Little Endian), as P-DATA-TF PDUs."""
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = dataset.SOPClassUID
    primitive.AffectedSOPInstanceUID = dataset.SOPInstanceUID
    primitive.Priority = 2
    primitive.DataSet = BytesIO(encode(dataset, True, True))
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    encoded = b""
    for data in message.encode_msg(1, 16382):
        pdu = P_DATA_TF()
        pdu.from_primitive(data)
        encoded += pdu.encode()
    return encoded


def _trusted_echo_answers(daemon: Daemon) -> bool:
    assoc = scu.associate(daemon)
    try:
        return bool(assoc.is_established and assoc.send_c_echo().Status == 0x0000)
    finally:
        if assoc.is_established:
            assoc.release()


def test_mutated_association_requests_never_let_a_stranger_in(make_daemon: Any) -> None:
    daemon = make_daemon(limits={"associate_request_timeout": 0.5})
    bases = {
        "stranger": pdus.associate_rq(calling=b"STRANGER"),
        "trusted": pdus.associate_rq(calling=b"SIMCLIENT"),
    }
    accepted: list[bytes] = []

    @settings(max_examples=120, derandomize=True, deadline=None, database=None)
    @given(base=st.sampled_from(sorted(bases)), edits=edits, cut=cuts)
    def one(base: str, edits: list[tuple[int, int]], cut: int | None) -> None:
        sent = _mutate(bases[base], edits, cut)
        with pdus.connect(daemon.address) as raw:
            with contextlib.suppress(OSError):
                raw.sendall(sent)
            kind = _answer(raw)
        if kind == pdus.ASSOCIATE_AC:
            accepted.append(sent)
            assert sent[CALLING].strip(b" ") == b"SIMCLIENT", f"accepted {sent[CALLING]!r}"
            assert sent[CALLED].strip(b" ") == daemon.ae_title.encode()

    one()
    assert accepted, "no mutation left a trusted request intact: the test proved nothing"
    assert _trusted_echo_answers(daemon)
    assert not daemon.audit.events("associate", calling_ae="STRANGER", outcome="accepted")


def test_mutated_c_stores_keep_only_objects_that_read_back_and_move(
    make_daemon: Any, receivers: list[Receiver]
) -> None:
    destination = Receiver().start()
    receivers.append(destination)
    daemon = make_daemon(
        trusted=[{"ae_title": "SIMCLIENT", "ip": "127.0.0.1", "port": 104}, destination.entity()],
        limits={"associate_request_timeout": 0.5},
    )
    request = pdus.associate_rq(contexts=(CT_STORAGE,))
    counter = iter(range(1, 1 << 16))

    @settings(max_examples=80, derandomize=True, deadline=None, database=None)
    @given(edits=edits, cut=cuts, clean=st.booleans())
    def one(edits: list[tuple[int, int]], cut: int | None, clean: bool) -> None:
        message = _c_store_pdus(objects.ct(size=4), next(counter))
        sent = message if clean else _mutate(message, edits, cut)
        with pdus.connect(daemon.address) as raw:
            raw.sendall(request)
            assert _answer(raw) == pdus.ASSOCIATE_AC
            with contextlib.suppress(OSError):
                raw.sendall(sent)
            _answer(raw)  # the C-STORE-RSP, an A-ABORT, a close, or silence
        assert _trusted_echo_answers(daemon)

    one()
    archive = daemon.archive
    assert archive.check().ok, archive.check().describe()
    kept = archive.instances()
    assert kept, "no clean C-STORE was kept: the test proved nothing"
    for row in kept:
        assert str(archive.read(row.sop_instance_uid).SOPInstanceUID) == row.sop_instance_uid
    studies = sorted({row.study_uid for row in kept})
    move = Dataset()
    move.QueryRetrieveLevel = "STUDY"
    move.StudyInstanceUID = studies
    _, final, _ = scu.move(daemon, move, destination.ae_title)
    assert int(final.Status) == 0x0000
    assert sorted(destination.uids()) == sorted(row.sop_instance_uid for row in kept)
