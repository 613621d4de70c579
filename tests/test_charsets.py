"""SPEC section 5 step 2: the import character set, its override, and warning 0xB000."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian

from simdaemon.charset import decode_dataset, decode_text, effective_charset
from simdaemon.importer import Received
from tests import objects, scu
from tests.adversarial.malformed import encode, explicit, splice
from tests.conftest import CLIENT, MakeDaemon

LATIN1_NAME = "Müller^Jürgen".encode("latin-1")


def _entity(**charset: object) -> dict[str, object]:
    return {**CLIENT, **charset}


def _latin1_object(declared: str | None) -> objects.Dataset:
    ds = objects.ct()
    if declared is not None:
        ds.SpecificCharacterSet = declared
    ds.add_new(0x00100010, "PN", LATIN1_NAME)
    ds.add_new(0x00081030, "LO", "Prostata Behandlung für Müller".encode("latin-1"))
    return ds


def test_latin1_without_charset_imports_correctly_through_an_iso_ir_100_entity(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(trusted=[_entity(import_charset="ISO_IR 100")])
    ds = _latin1_object(declared=None)
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (0x0000, "")
    (patient,) = daemon.archive.patients()
    assert patient.name == "Müller^Jürgen"
    stored = daemon.archive.read(ds.SOPInstanceUID)
    assert stored.SpecificCharacterSet == "ISO_IR 192"
    assert str(stored.PatientName) == "Müller^Jürgen"
    assert stored.StudyDescription == "Prostata Behandlung für Müller"
    assert stored.PixelData == ds.PixelData


def test_latin1_without_charset_through_a_us_ascii_entity_is_coerced_with_b000(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(trusted=[_entity(import_charset="ISO_IR 6")])
    ds = _latin1_object(declared=None)
    (answer,) = scu.store(daemon, [ds])
    status, comment = scu.status_of(answer)
    assert status == 0xB000
    assert comment == "text not valid in ISO_IR 6 replaced"
    (patient,) = daemon.archive.patients()
    assert patient.name == "M\ufffdller^J\ufffdrgen"
    (event,) = daemon.audit.events("store")
    assert event.outcome == "warning"
    assert "(0010,0010)" in event.detail


@pytest.mark.parametrize(
    ("override", "status", "name"),
    [(True, 0x0000, "Müller^Jürgen"), (False, 0xB000, "M\ufffdller^J\ufffdrgen")],
)
def test_override_import_charset(
    make_daemon: MakeDaemon, override: bool, status: int, name: str
) -> None:
    """The object claims UTF-8 but holds Latin-1: only the override reads it right."""
    daemon = make_daemon(
        trusted=[_entity(import_charset="ISO_IR 100", override_import_charset=override)]
    )
    (answer,) = scu.store(daemon, [_latin1_object(declared="ISO_IR 192")])
    assert scu.status_of(answer)[0] == status
    assert daemon.archive.patients()[0].name == name


def test_declared_charset_is_used_when_not_overridden(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(trusted=[_entity(import_charset="ISO_IR 6")])
    (answer,) = scu.store(daemon, [_latin1_object(declared="ISO_IR 100")])
    assert scu.status_of(answer) == (0x0000, "")
    assert daemon.archive.patients()[0].name == "Müller^Jürgen"


@pytest.mark.parametrize(
    "name", ["山田^太郎", "Διονυσίου^Ελένη", "Ivanova^Анна"], ids=["japanese", "greek", "cyrillic"]
)
def test_utf8_names_round_trip(make_daemon: MakeDaemon, name: str) -> None:
    daemon = make_daemon()
    ds = objects.ct(SpecificCharacterSet="ISO_IR 192", PatientName=name)
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (0x0000, "")
    assert daemon.archive.patients()[0].name == name
    row = daemon.archive.instance(ds.SOPInstanceUID)
    assert row is not None
    raw = row.path.read_bytes()
    assert name.encode("utf-8") in raw  # filed as received: no re-encoding was needed
    assert str(dcmread(row.path).PatientName) == name


def test_a_correctly_declared_charset_is_filed_as_received(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    ds = objects.ct(SpecificCharacterSet="ISO_IR 126", PatientName="Διονυσίου^Ελένη")
    scu.store(daemon, [ds])
    assert daemon.archive.patients()[0].name == "Διονυσίου^Ελένη"
    stored = daemon.archive.read(ds.SOPInstanceUID)
    assert stored.SpecificCharacterSet == "ISO_IR 126"
    assert str(stored.PatientName) == "Διονυσίου^Ελένη"


def _requested(ds: Dataset, description: bytes) -> Dataset:
    """``ds`` with a Request Attributes Sequence item whose LO holds ``description``."""
    item = Dataset()
    item.add_new(0x00321060, "LO", description)  # Requested Procedure Description
    item.add_new(0x00401001, "SH", b"RP-1")  # Requested Procedure ID
    ds.add_new(0x00400275, "SQ", [item])
    return ds


def _requested_text(daemon_read: Dataset) -> str:
    return str(daemon_read.RequestAttributesSequence[0].RequestedProcedureDescription)


@pytest.mark.parametrize(
    ("item_text", "expected"),
    [("Behandlung für Müller".encode("latin-1"), "Behandlung für Müller"),
     (b"Prostate plan", "Prostate plan")],
    ids=["latin-1 item", "ascii item"],
)  # fmt: skip
def test_items_are_read_in_the_import_charset_when_the_object_is_stored_in_utf8(
    make_daemon: MakeDaemon, item_text: bytes, expected: str
) -> None:
    """The object names no character set and its name needs ISO_IR 100: it is filed in UTF-8,
    its items' text with it, whether that text needed decoding (Latin-1) or not (ASCII)."""
    daemon = make_daemon(trusted=[_entity(import_charset="ISO_IR 100")])
    ds = _requested(_latin1_object(declared=None), item_text)
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (0x0000, "")
    stored = daemon.archive.read(ds.SOPInstanceUID)
    assert stored.SpecificCharacterSet == "ISO_IR 192"
    assert str(stored.PatientName) == "Müller^Jürgen"
    assert _requested_text(stored) == expected
    assert stored.RequestAttributesSequence[0].RequestedProcedureID == "RP-1"


def test_text_not_valid_in_an_item_is_replaced_with_b000_naming_where(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon()
    ds = _requested(objects.ct(SpecificCharacterSet="ISO_IR 192"), "für".encode("latin-1"))
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (0xB000, "text not valid in ISO_IR 192 replaced")
    (event,) = daemon.audit.events("store")
    assert "text in (0040,0275)[0].(0032,1060) is not valid ISO_IR 192" in event.detail
    assert _requested_text(daemon.archive.read(ds.SOPInstanceUID)) == "f\ufffdr"


@pytest.mark.parametrize("where", ["top level", "item"])
def test_a_binary_value_of_a_broken_width_is_refused_in_an_item_as_at_the_top(
    make_daemon: MakeDaemon, where: str
) -> None:
    """A UL of 6 bytes is misencoded wherever it is; the walk into items must still see it."""
    daemon = make_daemon()
    element = explicit(0x300A0111, "UL", b"\x01\x02\x03\x04\x05\x06")
    plan = objects.rt_plan()
    if where == "item":
        item = b"".join([explicit(0x00321060, "LO", b"Prostate"), element])
        body = struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
        data = splice(plan, struct.pack("<HH2sHI", 0x0040, 0x0275, b"SQ", 0, len(body)) + body,
                      at=0x00400275)  # fmt: skip
    else:
        data = splice(plan, element, at=0x300A0111)
    result = daemon.importer.run(Received(data, ExplicitVRLittleEndian, "SIMCLIENT"))
    assert (result.status, result.rule) == (0xA900, "parse")
    assert "element (300A,0111) has VR UL but a length of 6 bytes" in result.detail
    assert daemon.archive.patients() == []


def test_an_item_pydicom_cannot_parse_is_refused_as_unparsable_not_as_a_full_disk(
    make_daemon: MakeDaemon,
) -> None:
    """A UN of undefined length whose Implicit VR content reads, to pydicom, as a broken
    Explicit VR element (a length whose bytes spell "LO"): refused 0xA900 "parse" while the
    import reads the object, never 0xA700 (a write failure, which tells the peer to retry)."""
    daemon = make_daemon()
    # (0008,1150) whose 4-byte length, 0x4F4C, reads as the letters of an Explicit VR "LO"
    inner = struct.pack("<HHI", 0x0008, 0x1150, 0x4F4C) + bytes(0x4F4C)
    un = (
        struct.pack("<HH2sHI", 0x0008, 0x1140, b"UN", 0, 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )  # fmt: skip
    item = un + explicit(0x00321060, "LO", b"Prostate")
    body = struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
    sequence = struct.pack("<HH2sHI", 0x0040, 0x0275, b"SQ", 0, len(body)) + body
    data = splice(objects.rt_plan(), sequence, at=0x00400275)
    result = daemon.importer.run(Received(data, ExplicitVRLittleEndian, "SIMCLIENT"))
    assert (result.status, result.rule) == (0xA900, "parse")
    assert daemon.archive.patients() == []


def test_plain_items_stay_encoded_only_where_that_changes_nothing() -> None:
    """The fast path is taken (the sequence is left as read) for ASCII items in a character
    set that writes ASCII as ASCII; not for ISO 2022 ones, nor when items are not plain."""
    data = encode(_requested(objects.rt_plan(), b"Prostate plan"))

    def sequence_after(declared: str, plain_items: bool) -> object:
        ds = read_dataset(BytesIO(data), False, True)
        ds.SpecificCharacterSet = declared
        decode_dataset(ds, "ISO_IR 6", False, plain_items=plain_items)
        return ds.get_item(0x00400275)

    assert isinstance(sequence_after("ISO_IR 100", True), RawDataElement)
    assert isinstance(sequence_after("ISO_IR 192", True), RawDataElement)
    assert not isinstance(sequence_after("ISO_IR 100", False), RawDataElement)
    assert not isinstance(sequence_after("ISO 2022 IR 87", True), RawDataElement)


def test_iso_ir_6_is_strict_ascii_unlike_pydicoms_default() -> None:
    assert decode_text(b"Doe^John", ["ISO_IR 6"]) == ("Doe^John", True)
    assert decode_text(b"M\xfcller", ["ISO_IR 6"]) == ("M\ufffdller", False)
    assert decode_text(b"M\xfcller", ["ISO_IR 100"]) == ("Müller", True)


def test_japanese_code_extensions_decode() -> None:
    raw = b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"
    text, ok = decode_text(raw, ["", "ISO 2022 IR 87"])
    assert ok
    assert text == "Yamada^Tarou=山田^太郎"


@pytest.mark.parametrize(
    ("declared", "override", "expected"),
    [
        ((), False, ("ISO_IR 100",)),
        (("",), False, ("ISO_IR 100",)),
        (("ISO_IR 192",), False, ("ISO_IR 192",)),
        (("ISO_IR 192",), True, ("ISO_IR 100",)),
    ],
)
def test_effective_charset(
    declared: tuple[str, ...], override: bool, expected: tuple[str, ...]
) -> None:
    assert effective_charset(declared, "ISO_IR 100", override) == expected
