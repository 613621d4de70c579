"""A bare pynetdicom SCU for the network tests: they check the daemon's exact PDUs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from simdaemon import Daemon
from simdaemon.net.outgoing import keep_responses, no_delay, recover_rejection


class Listening(Protocol):
    """Where a daemon listens: a :class:`Daemon`, or one running in another process."""

    host: str
    port: int
    ae_title: str


def identifier(level: str, **keys: object) -> Dataset:
    """A query or move identifier: the level and each keyword set to its value."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def associate(
    daemon: Listening | Daemon,
    calling: str = "SIMCLIENT",
    called: str | None = None,
    *,
    bind_address: tuple[str, int] | None = None,
    contexts: Sequence[tuple[str, Sequence[str] | None]] = ((Verification, None),),
) -> Association:
    """Request an association with the daemon; the caller releases it."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.connection_timeout = 5
    for abstract, syntaxes in contexts:
        if syntaxes is None:
            ae.add_requested_context(abstract)
        else:
            ae.add_requested_context(abstract, list(syntaxes))
    assoc = ae.associate(
        daemon.host,
        daemon.port,
        ae_title=called if called is not None else daemon.ae_title,
        bind_address=bind_address,
        evt_handlers=[(evt.EVT_CONN_OPEN, no_delay)],
    )
    return keep_responses(recover_rejection(assoc))  # pynetdicom races: simdaemon.net.outgoing


def rejection(assoc: Association) -> tuple[int, int, int]:
    """Return (result, source, reason) of an A-ASSOCIATE-RJ the daemon sent."""
    assert assoc.is_rejected, "the association was not rejected"
    answer = assoc.acceptor.primitive
    assert answer is not None
    return (answer.result or 0, answer.result_source or 0, answer.diagnostic or 0)


def store(
    daemon: Daemon,
    datasets: Sequence[Dataset | Path],
    calling: str = "SIMCLIENT",
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> list[Dataset]:
    """Send ``datasets`` over one association; return the daemon's status data sets."""
    classes = dict.fromkeys(
        str(ds.SOPClassUID if isinstance(ds, Dataset) else dcmread(ds, force=True).SOPClassUID)
        for ds in datasets
    )
    assoc = associate(
        daemon, calling, contexts=[(sop_class, [transfer_syntax]) for sop_class in classes]
    )
    assert assoc.is_established, "the daemon refused the association"
    # Files are sent as they are on disk, not decoded and re-encoded by pynetdicom, so a
    # test can send exactly the bytes it crafted.
    chunked = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        answers = []
        for ds in datasets:
            answer = assoc.send_c_store(ds)
            assert "Status" in answer, "no C-STORE response"
            answers.append(answer)
        return answers
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()


def status_of(answer: Dataset) -> tuple[int, str]:
    """``(Status, Error Comment)`` of a C-STORE response."""
    return int(answer.Status), str(answer.get("ErrorComment", ""))


def find(
    daemon: Listening | Daemon,
    identifier: Dataset,
    model: str = "study",
    calling: str = "SIMCLIENT",
) -> tuple[list[Dataset], Dataset]:
    """Run one C-FIND; return the pending identifiers and the final status data set."""
    sop_class = (
        PatientRootQueryRetrieveInformationModelFind
        if model == "patient"
        else StudyRootQueryRetrieveInformationModelFind
    )
    assoc = associate(daemon, calling, contexts=[(sop_class, None)])
    assert assoc.is_established, "the daemon refused the association"
    try:
        found: list[Dataset] = []
        final = Dataset()
        for answer, identifier_out in assoc.send_c_find(identifier, sop_class):
            assert "Status" in answer, "no C-FIND response"
            if answer.Status in (0xFF00, 0xFF01):
                assert identifier_out is not None
                found.append(identifier_out)
            else:
                final = answer
        return found, final
    finally:
        assoc.release()


def move(
    daemon: Listening | Daemon,
    identifier: Dataset,
    destination: str,
    model: str = "study",
    calling: str = "SIMCLIENT",
) -> tuple[list[Dataset], Dataset, Dataset | None]:
    """Run one C-MOVE; return the pending statuses, the final status and its identifier."""
    sop_class = (
        PatientRootQueryRetrieveInformationModelMove
        if model == "patient"
        else StudyRootQueryRetrieveInformationModelMove
    )
    assoc = associate(daemon, calling, contexts=[(sop_class, None)])
    assert assoc.is_established, "the daemon refused the association"
    try:
        pending: list[Dataset] = []
        final, final_identifier = Dataset(), None
        for answer, identifier_out in assoc.send_c_move(identifier, destination, sop_class):
            assert "Status" in answer, "no C-MOVE response"
            if answer.Status == 0xFF00:
                pending.append(answer)
            else:
                final, final_identifier = answer, identifier_out
        return pending, final, final_identifier
    finally:
        assoc.release()
