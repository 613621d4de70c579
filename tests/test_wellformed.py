"""The raw-bytes checker and the identity rules, without sockets (issue 15 item 6)."""

from __future__ import annotations

import struct

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simdaemon.charset import decode_text
from simdaemon.validation import is_valid_uid, validate
from simdaemon.wellformed import check, scan
from tests import objects
from tests.adversarial.malformed import encode, explicit, implicit, splice

CT = "1.2.840.10008.5.1.4.1.1.2"


def test_objects_the_daemon_writes_and_receives_are_well_formed() -> None:
    plan = objects.rt_plan(beams=3)  # nested sequences, as pydicom writes them
    for ds in (objects.ct(size=16), objects.rt_struct(), plan):
        assert check(encode(ds), ExplicitVRLittleEndian) is None
        assert check(encode(ds, implicit=True), ImplicitVRLittleEndian) is None


def test_defined_and_undefined_length_sequences_both_walk() -> None:
    item = explicit(0x00081150, "UI", CT.encode() + b"\0")
    body = struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
    defined = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, len(body)) + body
    undefined = (
        struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + item
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )
    for sequence in (defined, undefined):
        assert check(splice(objects.ct(), sequence, at=0x00081140), ExplicitVRLittleEndian) is None
    problem = check(undefined[:-8], ExplicitVRLittleEndian)  # no sequence delimiter
    assert problem is not None
    assert problem.comment == "(0008,1140) ReferencedImageSequence is not terminated"


def _sequence(*elements: bytes) -> bytes:
    """A Request Attributes Sequence (0040,0275) of one item holding ``elements``."""
    item = b"".join(elements)
    body = struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
    return struct.pack("<HH2sHI", 0x0040, 0x0275, b"SQ", 0, len(body)) + body


@pytest.mark.parametrize(
    ("element", "plain"),
    [
        (explicit(0x00321060, "LO", b"Prostate plan"), True),
        (explicit(0x00321060, "LO", "für".encode("latin-1")), False),
        (explicit(0x00321060, "LO", b"\x1b$B"), False),  # an ISO 2022 escape
        (explicit(0x00321060, "UN", "für".encode("latin-1")), True),  # not text: not decoded
        (explicit(0x00280010, "US", b"\x01\x02"), True),
        (explicit(0x00280010, "US", b"\x01\x02\x03\x04\x05\x06"), True),
        (explicit(0x00280010, "UL", b"\x01\x02\x03\x04\x05\x06"), False),  # 6 % 4
    ],
)
def test_scan_says_whether_sequence_items_need_decoding(element: bytes, plain: bool) -> None:
    """Only what is in items counts: the import decodes the top level in any case."""
    ds = objects.rt_plan()
    ds.add_new(0x00081030, "LO", "Behandlung für Müller".encode("latin-1"))  # top level
    data = splice(ds, _sequence(element), at=0x00400275)
    found = scan(data, ExplicitVRLittleEndian)
    assert (found.problem, found.plain_items) == (None, plain)


def _undefined_un(inner: bytes) -> bytes:
    """(0008,1140) as UN of undefined length (CP-246): one item holding ``inner``."""
    return (
        struct.pack("<HH2sHI", 0x0008, 0x1140, b"UN", 0, 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + inner
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    )


def test_a_un_of_undefined_length_in_an_item_is_never_plain() -> None:
    """pydicom reads inside it as Explicit VR when the bytes look so, which this walk does
    not: the import must parse such an item while it can still refuse the object."""
    inner = implicit(0x00081150, CT.encode() + b"\0")
    data = splice(objects.rt_plan(), _sequence(_undefined_un(inner)), at=0x00400275)
    found = scan(data, ExplicitVRLittleEndian)
    assert (found.problem, found.plain_items) == (None, False)


def test_items_of_a_sequence_tagged_0000_0000_are_items() -> None:
    """Tag 0 is a tag like any other: its items' elements are neither top-level elements
    nor exempt from the plain check."""
    item = explicit(0x00321060, "LO", "für".encode("latin-1"))
    body = struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
    sequence = struct.pack("<HH2sHI", 0, 0, b"SQ", 0, len(body)) + body
    found = scan(sequence + encode(objects.ct()), ExplicitVRLittleEndian)
    assert (found.problem, found.plain_items) == (None, False)
    tags = [element[0] for element in found.elements]
    assert tags[0] == 0
    assert 0x00321060 not in tags


def test_scan_reads_implicit_vr_items_by_the_dictionary() -> None:
    def item_holding(value: bytes) -> bytes:
        item = implicit(0x00321060, value)  # Requested Procedure Description, LO
        body = struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
        return struct.pack("<HHI", 0x0040, 0x0275, len(body)) + body

    for value, plain in ((b"Prostate", True), ("für".encode("latin-1"), False)):
        data = splice(objects.rt_plan(), item_holding(value), at=0x00400275, implicit=True)
        assert scan(data, ImplicitVRLittleEndian).plain_items is plain


def test_a_malformed_object_is_never_called_plain() -> None:
    found = scan(_sequence(explicit(0x00321060, "LO", b"ok"))[:-4], ExplicitVRLittleEndian)
    assert found.problem is not None
    assert not found.plain_items


def _ct() -> Dataset:
    return objects.ct(size=16)


CASES: dict[str, tuple[bytes, str, str, str]] = {
    "group 0002 in the data set": (
        splice(_ct(), explicit(0x00020010, "UI", b"1.2.840.10008.1.2\0"), at=0x00020010),
        ExplicitVRLittleEndian,
        "group-0002",
        "group 0002 element (0002,0010) TransferSyntaxUID in the data set",
    ),
    "duplicate Patient ID": (
        splice(
            _ct(),
            explicit(0x00100020, "LO", b"ID-A"),
            explicit(0x00100020, "LO", b"ID-B"),
            at=0x00100020,
        ),
        ExplicitVRLittleEndian,
        "duplicate-element",
        "duplicate element (0010,0020) PatientID",
    ),
    "out of ascending order": (
        splice(
            _ct(),
            explicit(0x00100020, "LO", b"ID-A"),
            explicit(0x00081030, "LO", b"Plan"),
            at=0x00100020,
        ),
        ExplicitVRLittleEndian,
        "tag-order",
        "element (0008,1030) StudyDescription out of ascending order",
    ),
    "unknown VR ZZ": (
        splice(_ct(), explicit(0x00081030, "ZZ", b"desc"), at=0x00081030),
        ExplicitVRLittleEndian,
        "unknown-vr",
        "unknown VR 'ZZ' in element (0008,1030) StudyDescription",
    ),
    "Implicit VR bytes on an Explicit VR context": (
        encode(_ct(), implicit=True),
        ExplicitVRLittleEndian,
        "vr-encoding",
        "Implicit VR data on an Explicit VR context at (0008,0016)",
    ),
    "Explicit VR bytes on an Implicit VR context": (
        encode(_ct()),
        ImplicitVRLittleEndian,
        "vr-encoding",
        "Explicit VR data on an Implicit VR context at (0008,0016)",
    ),
    "truncated Pixel Data": (
        encode(_ct())[:-100],
        ExplicitVRLittleEndian,
        "truncated",
        "Pixel Data (7FE0,0010) is truncated: 412 of 512 bytes",
    ),
    "undefined-length Pixel Data in a native syntax": (
        encode(_ct())[: encode(_ct()).index(b"\xe0\x7f\x10\x00OW")]
        + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF),
        ExplicitVRLittleEndian,
        "undefined-length",
        "(7FE0,0010) PixelData has undefined length",
    ),
    "an implicit element cut in its header": (
        encode(_ct(), implicit=True) + implicit(0x7FE10010, b"")[:6],
        ImplicitVRLittleEndian,
        "truncated",
        "the data set ends inside an element header",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.filterwarnings("ignore")  # pydicom warns about what the cases break on purpose
def test_malformed_encodings_are_named(case: str) -> None:
    data, syntax, rule, comment = CASES[case]
    problem = check(data, syntax)
    assert problem is not None
    assert (problem.rule, problem.comment) == (rule, comment)
    assert len(problem.comment) <= 64


def test_deeply_nested_sequences_do_not_exhaust_the_stack() -> None:
    depth = 5000  # far past Python's recursion limit
    opening = (
        struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    ) * depth
    closing = (struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)) * (
        depth
    )
    assert check(opening + closing, ExplicitVRLittleEndian) is None
    problem = check(opening + closing[:-8], ExplicitVRLittleEndian)
    assert problem is not None
    assert problem.rule == "truncated"


@pytest.mark.parametrize(
    ("uid", "valid"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", True),
        ("2.25.0", True),
        ("0.0", True),
        ("１.２.３.４", False),  # noqa: RUF001 - fullwidth digits are the point
        ("1.2.٣", False),  # Arabic-Indic digit three
        ("1.02.3", False),
        ("1..2", False),
        ("1.2.", False),
        (".1.2", False),
        ("1." + "2" * 62, True),
        ("1." + "2" * 63, False),
        ("", False),
    ],
)
def test_uids_are_ascii_digits_with_the_standards_grammar(uid: str, valid: bool) -> None:
    assert is_valid_uid(uid) is valid


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_a_fullwidth_study_uid_is_refused_by_validation() -> None:
    ds = objects.ct(StudyInstanceUID="１.２.３.４")  # noqa: RUF001
    problem = validate(ds)
    assert problem is not None
    assert problem.comment == "invalid Study Instance UID (0020,000D)"


@pytest.mark.parametrize(
    ("keyword", "value", "comment"),
    [
        ("PatientID", "ID\x00EVIL", "control character in Patient ID (0010,0020)"),
        ("PatientID", "ID\nINFO forged line", "control character in Patient ID (0010,0020)"),
        ("PatientName", "Doe^\x1b[31mJohn", "control character in Patient's Name (0010,0010)"),
        ("OtherPatientIDs", "A\rB", "control character in Other Patient IDs (0010,1000)"),
    ],
)
def test_control_characters_in_identifying_keys_are_refused(
    keyword: str, value: str, comment: str
) -> None:
    problem = validate(objects.ct(**{keyword: value}))
    assert problem is not None
    assert (problem.rule, problem.comment) == ("control-character", comment)
    assert "\\x" in problem.detail  # the value is shown escaped


def test_the_sop_class_must_be_the_contexts() -> None:
    sr = objects.ct(SOPClassUID="1.2.840.10008.5.1.4.1.1.88.11")
    problem = validate(sr, context_sop_class=CT)
    assert problem is not None
    assert problem.comment == "SOP Class UID (0008,0016) is not the context's abstract syntax"
    assert validate(objects.ct(), context_sop_class=CT) is None
    assert validate(sr) is None  # a local import has no context


@pytest.mark.filterwarnings("ignore:Found unknown escape sequence")
def test_broken_iso_2022_escapes_are_undecodable() -> None:
    assert decode_text(b"Yamada^\x1b$Zabc", ["", "ISO 2022 IR 87"])[1] is False
    text, ok = decode_text(b"Doe\x1b[31m", ["ISO_IR 100"])
    assert not ok
    assert "\x1b" not in text
