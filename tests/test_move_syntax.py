"""C-MOVE's transfer syntaxes: stored bytes sent as they are, or converted for the receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simdaemon import Daemon
from simdaemon.part10 import split
from simdaemon.services import move as move_service
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon
from tests.receiver import Receiver


def image(ds: Dataset) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = ds.SOPInstanceUID
    return query


def stored_bytes(daemon: Daemon, uid: str) -> tuple[str, bytes]:
    """The stored file's transfer syntax and data set bytes."""
    row = daemon.archive.instance(uid)
    assert row is not None
    meta, data = split(Path(row.path).read_bytes())
    return str(meta.TransferSyntaxUID), data


def elements(ds: Dataset) -> dict[object, object]:
    return {e.tag: e.value for e in ds if e.keyword != "SpecificCharacterSet"}


@pytest.mark.parametrize(
    ("stored", "preferred"),
    [
        (ExplicitVRLittleEndian, None),  # pynetdicom's defaults: Implicit first
        (ImplicitVRLittleEndian, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
    ],
    ids=["explicit-to-defaults", "implicit-to-explicit-first"],
)
def test_the_stored_bytes_go_out_unchanged_to_a_receiver_preferring_another_syntax(
    make_daemon: MakeDaemon,
    receivers: list[Receiver],
    stored: str,
    preferred: list[str] | None,
) -> None:
    destination = Receiver(transfer_syntaxes=preferred).start()
    receivers.append(destination)
    daemon = make_daemon(trusted=[CLIENT, destination.entity(export_charset="ISO_IR 192")])
    ds = objects.ct(size=16, SpecificCharacterSet="ISO_IR 192", PatientName="Doe^Jane")
    scu.store(daemon, [ds], transfer_syntax=stored)
    syntax, data = stored_bytes(daemon, ds.SOPInstanceUID)
    assert syntax == stored

    _, final, _ = scu.move(daemon, image(ds), "DEST")

    assert final.Status == 0
    (received,) = destination.received
    assert received.transfer_syntax == stored
    assert split(received.raw)[1] == data  # raw: as received, after a file meta header


def test_a_receiver_accepting_only_implicit_gets_the_same_data_set_converted(
    make_daemon: MakeDaemon, receivers: list[Receiver]
) -> None:
    destination = Receiver(transfer_syntaxes=[ImplicitVRLittleEndian]).start()
    receivers.append(destination)
    daemon = make_daemon(trusted=[CLIENT, destination.entity(export_charset="ISO_IR 192")])
    ds = objects.ct(size=64, SpecificCharacterSet="ISO_IR 192", StudyDescription="Pelvis")
    scu.store(daemon, [ds], transfer_syntax=ExplicitVRLittleEndian)

    _, final, _ = scu.move(daemon, image(ds), "DEST")

    assert final.Status == 0
    (received,) = destination.received
    assert received.transfer_syntax == ImplicitVRLittleEndian
    assert received.dataset.PixelData == ds.PixelData
    assert elements(received.dataset) == elements(daemon.archive.read(ds.SOPInstanceUID))


@pytest.mark.parametrize(
    "preferred",
    [None, [ImplicitVRLittleEndian]],
    ids=["stored-syntax-accepted", "converted-to-implicit"],
)
def test_text_is_re_encoded_for_the_destination_whatever_syntax_it_accepts(
    make_daemon: MakeDaemon, receivers: list[Receiver], preferred: list[str] | None
) -> None:
    destination = Receiver(ae_title="LATIN", transfer_syntaxes=preferred).start()
    receivers.append(destination)
    daemon = make_daemon(trusted=[CLIENT, destination.entity(export_charset="ISO_IR 100")])
    ds = objects.ct(SpecificCharacterSet="ISO_IR 192", PatientName="Müller^Jürgen")
    scu.store(daemon, [ds], transfer_syntax=ExplicitVRLittleEndian)

    _, final, _ = scu.move(daemon, image(ds), "LATIN")

    assert final.Status == 0
    (received,) = destination.received
    expected = ImplicitVRLittleEndian if preferred else ExplicitVRLittleEndian
    assert received.transfer_syntax == expected
    assert received.dataset.SpecificCharacterSet == "ISO_IR 100"
    assert "Müller^Jürgen".encode("latin-1") in received.raw
    assert "Müller".encode() not in received.raw
    assert received.dataset.PixelData == ds.PixelData


def test_objects_stored_in_both_syntaxes_each_arrive_as_stored(
    make_daemon: MakeDaemon, receivers: list[Receiver]
) -> None:
    destination = Receiver().start()
    receivers.append(destination)
    daemon = make_daemon(trusted=[CLIENT, destination.entity(export_charset="ISO_IR 192")])
    explicit = objects.ct(SpecificCharacterSet="ISO_IR 192")
    implicit = objects.ct(
        SpecificCharacterSet="ISO_IR 192",
        StudyInstanceUID=explicit.StudyInstanceUID,
        SeriesInstanceUID=explicit.SeriesInstanceUID,
        PatientID=explicit.PatientID,
        PatientName=explicit.PatientName,
    )
    scu.store(daemon, [explicit], transfer_syntax=ExplicitVRLittleEndian)
    scu.store(daemon, [implicit], transfer_syntax=ImplicitVRLittleEndian)
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = explicit.StudyInstanceUID
    query.SeriesInstanceUID = explicit.SeriesInstanceUID

    _, final, _ = scu.move(daemon, query, "DEST")

    assert final.Status == 0
    assert final.NumberOfCompletedSuboperations == 2
    arrived = {str(r.dataset.SOPInstanceUID): r for r in destination.received}
    for ds in (explicit, implicit):
        syntax, data = stored_bytes(daemon, ds.SOPInstanceUID)
        assert arrived[ds.SOPInstanceUID].transfer_syntax == syntax
        assert split(arrived[ds.SOPInstanceUID].raw)[1] == data
    assert {r.transfer_syntax for r in arrived.values()} == {
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    }


def instance(sop_class: str, syntax: str) -> move_service._Instance:
    return move_service._Instance("1.2.3", sop_class, Path("unused"), syntax)


def test_contexts_offer_each_stored_syntax_beside_a_fallback_per_sop_class() -> None:
    contexts = move_service._contexts(
        [
            instance(CTImageStorage, ExplicitVRLittleEndian),
            instance(CTImageStorage, ExplicitVRLittleEndian),
            instance(CTImageStorage, ImplicitVRLittleEndian),
            instance("1.2.840.10008.5.1.4.1.1.481.5", ExplicitVRLittleEndian),
        ]
    )
    both = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    assert contexts == [
        (CTImageStorage, both),
        ("1.2.840.10008.5.1.4.1.1.481.5", both),
        (CTImageStorage, [ExplicitVRLittleEndian]),
        (CTImageStorage, [ImplicitVRLittleEndian]),
        ("1.2.840.10008.5.1.4.1.1.481.5", [ExplicitVRLittleEndian]),
    ]


def test_contexts_stay_within_128_fallbacks_first() -> None:
    classes = [f"1.2.3.{n}" for n in range(130)]
    contexts = move_service._contexts([instance(c, ExplicitVRLittleEndian) for c in classes])
    assert len(contexts) == move_service.MAX_CONTEXTS == 128
    assert [c for c, _ in contexts] == classes[:128]
    few = move_service._contexts([instance(c, ExplicitVRLittleEndian) for c in classes[:100]])
    assert len(few) == 128  # 100 fallbacks, then 28 of the stored syntaxes
    assert few[100:] == [(c, [ExplicitVRLittleEndian]) for c in classes[:28]]
