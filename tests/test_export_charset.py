"""Export re-encoding: a stored object's text in the destination's character set (no sockets)."""

from __future__ import annotations

import struct
import warnings
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from simdaemon.charset import export_bytes, export_dataset


def _raw(ds: Dataset, implicit: bool) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    write_dataset(out, ds)
    return out.getvalue()


def _object(charset: str | None, name: bytes, description: bytes) -> Dataset:
    ds = Dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.add_new(0x00080018, "UI", "1.2.3.4")
    ds.add_new(0x00081030, "LO", description)
    ds.add_new(0x00100010, "PN", name)
    return ds


def _read(data: bytes, implicit: bool) -> Dataset:
    return read_dataset(BytesIO(data), implicit, True)


@pytest.mark.parametrize("implicit", [True, False])
def test_ascii_text_only_the_charset_element_is_rewritten(implicit: bool) -> None:
    data = _raw(_object("ISO_IR 100", b"Smith^John", b"Prostate"), implicit)
    out = export_bytes(data, implicit, ["ISO_IR 192"])
    assert out is not None
    new = b"ISO_IR 192"
    header = b"\x08\x00\x05\x00" + (b"\x0a\x00\x00\x00" if implicit else b"CS\x0a\x00")
    old_len = len(b"ISO_IR 100")
    assert out == data.replace(data[: 8 + old_len], header + new)
    assert _read(out, implicit).PatientName == "Smith^John"


@pytest.mark.parametrize("implicit", [True, False])
def test_ascii_text_without_a_charset_gets_one_inserted_in_tag_order(implicit: bool) -> None:
    data = _raw(_object(None, b"Smith^John", b"Prostate"), implicit)
    out = export_bytes(data, implicit, ["ISO_IR 100"])
    assert out is not None
    assert len(out) == len(data) + 8 + len(b"ISO_IR 100")
    ds = _read(out, implicit)
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert list(ds.keys()) == [0x00080005, 0x00080018, 0x00081030, 0x00100010]
    assert ds.PatientName == "Smith^John"


def test_the_same_charset_returns_the_bytes_as_they_are() -> None:
    data = _raw(_object("ISO_IR 100", "Müller".encode("latin-1"), b"x"), True)
    assert export_bytes(data, True, ["ISO_IR 100"]) is data


@pytest.mark.parametrize(
    ("stored", "wanted"),
    [("ISO_IR 100", ["ISO_IR 192"]), ("ISO_IR 192", ["ISO_IR 100"])],
)
def test_non_ascii_text_cannot_go_as_it_is(stored: str, wanted: list[str]) -> None:
    name = "Müller^Jürgen".encode("latin-1" if stored == "ISO_IR 100" else "utf-8")
    data = _raw(_object(stored, name, b"x"), True)
    assert export_bytes(data, True, wanted) is None


def test_a_charset_with_escapes_is_not_patched() -> None:
    data = _raw(_object("ISO_IR 100", b"Smith", b"x"), True)
    assert export_bytes(data, True, ["ISO 2022 IR 6", "ISO 2022 IR 87"]) is None


@pytest.mark.parametrize(
    ("stored", "encoding", "wanted", "wanted_encoding"),
    [
        ("ISO_IR 100", "latin-1", "ISO_IR 192", "utf-8"),
        ("ISO_IR 192", "utf-8", "ISO_IR 100", "latin-1"),
    ],
)
def test_latin1_and_utf8_are_re_encoded(
    stored: str, encoding: str, wanted: str, wanted_encoding: str
) -> None:
    name = "Müller^Jürgen"
    ds = _read(_raw(_object(stored, name.encode(encoding), b"x"), True), True)
    out = export_dataset(ds, [wanted])
    assert out is ds
    assert out.SpecificCharacterSet == wanted
    data = _raw(out, True)
    assert name.encode(wanted_encoding) in data


def test_ascii_text_keeps_its_values_and_changes_only_the_charset() -> None:
    ds = _read(_raw(_object("ISO_IR 100", b"Smith^John", b"Prostate"), True), True)
    out = export_dataset(ds, ["ISO_IR 192"])
    assert out.SpecificCharacterSet == "ISO_IR 192"
    assert (
        _raw(out, True)[18:] == _raw(_object("ISO_IR 192", b"Smith^John", b"Prostate"), True)[18:]
    )


def test_a_name_the_target_cannot_encode_is_written_with_question_marks() -> None:
    """As move.py did before the move: pydicom replaces what Latin-1 cannot hold, warning."""
    ds = _read(_raw(_object("ISO_IR 192", "山田^太郎".encode(), b"x"), True), True)
    out = export_dataset(ds, ["ISO_IR 100"])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        data = _raw(out, True)
    assert out.SpecificCharacterSet == "ISO_IR 100"
    assert b"\x10\x00\x10\x00\x06\x00\x00\x00??^?? " in data


def _pydicom_export(data: bytes, implicit: bool, wanted: list[str]) -> bytes | None:
    """What export_bytes answered when it parsed the data set with pydicom (before issue 17):
    the reference the raw walk must agree with."""
    from pydicom.dataelem import RawDataElement

    from simdaemon.charset import (
        _ASCII_SUPERSETS,
        _LONG_HEADER_VRS,
        _all_ascii,
        _charset_element,
        value_representation,
    )

    parsed = read_dataset(BytesIO(data), implicit, True)
    element = parsed.get_item(0x00080005)
    value = element.value if element is not None else None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    stored = [t.strip() for t in str(value or "").split("\\")] if value else []
    if stored == wanted:
        return data
    if not (set(stored) | set(wanted) <= _ASCII_SUPERSETS) or 0x00080000 in parsed:
        return None
    if not _all_ascii(parsed):
        return None
    new = _charset_element(wanted, implicit)
    if isinstance(element, RawDataElement):
        start = int(element.value_tell) - 8
        return data[:start] + new + data[int(element.value_tell) + int(element.length) :]
    for tag in parsed.keys():  # noqa: SIM118
        if tag > 0x00080005:
            after = parsed.get_item(tag)
            assert isinstance(after, RawDataElement)
            long = not implicit and value_representation(after) in _LONG_HEADER_VRS
            start = int(after.value_tell) - (12 if long else 8)
            return data[:start] + new + data[start:]
    return data + new


def _nested(charset: str | None, inner_name: bytes, undefined: bool, private: bool) -> Dataset:
    """An object whose text sits in sequence items two deep, with a private block."""
    from pydicom.sequence import Sequence

    ds = _object(charset, b"Smith^John", b"Plan")
    inner = Dataset()
    inner.add_new(0x00081150, "UI", "1.2.840.10008.5.1.4.1.1.2")
    inner.add_new(0x00100010, "PN", inner_name)
    outer = Dataset()
    outer.add_new(0x00081140, "SQ", Sequence([inner]))
    outer.add_new(0x00081030, "LO", b"outer")
    ds.add_new(0x00082112, "SQ", Sequence([outer, Dataset()]))
    for element in (ds[0x00082112], outer[0x00081140]):
        element.is_undefined_length = undefined
    for item in (outer, inner):
        item.is_undefined_length_sequence_item = undefined
    if private:
        ds.add_new(0x00090010, "LO", b"SIMDAEMON")
        ds.add_new(0x00091001, "LO", inner_name)  # unknown to the dictionary: UN when implicit
        ds.add_new(0x00091002, "US", 0xE9E9)  # binary bytes above 0x7F: not text
    ds.add_new(0x7FE00010, "OW", bytes(range(256)) * 8)
    return ds


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("undefined", [True, False])
@pytest.mark.parametrize("private", [True, False])
@pytest.mark.parametrize("stored", [None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 87"])
@pytest.mark.parametrize("inner_name", [b"Doe^Jane", "Müller".encode("latin-1")])
@pytest.mark.parametrize("wanted", [["ISO_IR 192"], ["ISO_IR 100"]])
def test_the_raw_walk_answers_what_parsing_with_pydicom_answered(
    implicit: bool,
    undefined: bool,
    private: bool,
    stored: str | None,
    inner_name: bytes,
    wanted: list[str],
) -> None:
    data = _raw(_nested(stored, inner_name, undefined, private), implicit)
    expected = _pydicom_export(data, implicit, wanted)
    assert export_bytes(data, implicit, wanted) == expected
    if expected is not None and expected != data:  # and the result is the same object, re-read
        assert _read(expected, implicit).SpecificCharacterSet == wanted[0]


@pytest.mark.parametrize("implicit", [True, False])
def test_a_group_length_in_group_0008_sends_the_object_to_pydicom(implicit: bool) -> None:
    rest = _raw(_object(None, b"Smith^John", b"x"), implicit)
    length = b"\x08\x00\x00\x00" + (b"\x04\x00\x00\x00" if implicit else b"UL\x04\x00")
    data = length + struct.pack("<I", len(rest)) + rest  # pydicom writes no group lengths
    assert export_bytes(data, implicit, ["ISO_IR 100"]) is None
    assert _pydicom_export(data, implicit, ["ISO_IR 100"]) is None


def test_pieces_view_the_stored_bytes_instead_of_copying_them() -> None:
    from simdaemon.charset import export_pieces

    data = _raw(_object(None, b"Smith^John", b"Prostate"), False)
    pieces = export_pieces(data, False, ["ISO_IR 192"])
    assert pieces is not None
    assert [type(p) for p in pieces] == [memoryview, bytes, memoryview]
    assert all(p.obj is data for p in pieces if isinstance(p, memoryview))
    assert b"".join(pieces) == export_bytes(data, False, ["ISO_IR 192"])


@pytest.mark.parametrize("implicit", [True, False])
def test_a_truncated_data_set_is_left_to_pydicom(implicit: bool) -> None:
    data = _raw(_nested(None, b"Doe^Jane", True, False), implicit)
    for cut in (3, 7, 11, len(data) // 2):
        assert export_bytes(data[:-cut], implicit, ["ISO_IR 192"]) is None
