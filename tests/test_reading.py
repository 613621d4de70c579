"""The import's reading of a data set equals pydicom's ``read_dataset``, element by element.

:func:`simdaemon.reading.read_scanned` builds the data set from the well-formedness scan
instead of reading the bytes again; every later step of the import reads what it returns,
so it must be what pydicom returns for the same bytes: the same element objects (encoded
elements as the same ``RawDataElement`` tuples, sequences of undefined length parsed the
same way), the same encodings, and the same values once converted.
"""

from __future__ import annotations

import random
import struct
import warnings
from io import BytesIO
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simdaemon import reading
from simdaemon.importer import received_from
from simdaemon.reading import read_scanned
from simdaemon.synthetic import synthetic_patient
from simdaemon.wellformed import scan
from tests import objects
from tests.adversarial.malformed import encode, explicit, implicit, splice

SYNTAX = {False: ExplicitVRLittleEndian, True: ImplicitVRLittleEndian}


def _shape(element: RawDataElement | DataElement) -> Any:
    """What an element is before conversion, items included (comparable with ``==``)."""
    if isinstance(element, RawDataElement):
        return ("raw", *element)
    items = [_encoded(item) for item in element.value] if element.VR == "SQ" else element.value
    return (
        "element",
        element.tag,
        element.VR,
        element.file_tell,
        element.is_undefined_length,
        items,
    )


def _encoded(dataset: Dataset) -> Any:
    """A data set as read: its elements' shapes and the encodings it records."""
    return (
        [(tag, _shape(element)) for tag, element in dataset._dict.items()],
        dataset.original_encoding,
        dataset.original_character_set,
        dataset._parent_encoding,
    )


def _converted(dataset: Dataset) -> list[tuple[Any, ...]]:
    """Every element converted, items included: tag, VR, the value's type and the value."""
    out: list[tuple[Any, ...]] = []
    for element in dataset.iterall():
        value = element.value
        if element.VR == "SQ":
            value = len(value)
        out.append((element.tag, element.VR, type(value).__name__, str(value)))
    return out


def assert_same_reading(data: bytes, implicit_vr: bool) -> None:
    """``read_scanned`` of ``data`` is ``read_dataset``'s reading, before and after use."""
    scanned = scan(data, SYNTAX[implicit_vr])
    assert scanned.problem is None, scanned.problem
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        expected = read_dataset(BytesIO(data), implicit_vr, True)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        got = read_scanned(data, scanned, implicit_vr)
    assert _said(ours) == _said(theirs)
    assert _encoded(got) == _encoded(expected)
    theirs_values, theirs_warnings = _converting(expected)
    ours_values, ours_warnings = _converting(got)
    assert ours_values == theirs_values
    assert ours_warnings == theirs_warnings


def _said(caught: list[warnings.WarningMessage]) -> list[str]:
    """What pydicom warned, leaving out a ResourceWarning (another test's socket collected
    meanwhile)."""
    return [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]


def _converting(dataset: Dataset) -> tuple[Any, list[str]]:
    """:func:`_converted`, or the type of what it raised; and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: Any = _converted(dataset)
        except Exception as error:  # noqa: BLE001 - both readings must fail alike
            result = type(error)
    return result, _said(caught)


def _undefined_sequence(tag: int, *items: bytes, vr: bytes = b"SQ") -> bytes:
    """An Explicit VR element of undefined length holding ``items`` of undefined length."""
    body = b"".join(
        struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        + item
        + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        for item in items
    )
    head = struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, 0xFFFFFFFF)
    return head + body + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


@pytest.mark.parametrize("implicit_vr", [False, True])
@pytest.mark.parametrize(
    "make",
    [
        lambda: objects.ct(size=16),
        objects.rt_struct,
        lambda: objects.rt_plan(beams=3),
        lambda: objects.rt_dose("1.2.3"),
        objects.rt_image,
        objects.registration,
    ],
    ids=["ct", "struct", "plan", "dose", "rt-image", "registration"],
)
def test_the_test_objects_read_alike(make: Any, implicit_vr: bool) -> None:
    assert_same_reading(encode(make(), implicit=implicit_vr), implicit_vr)


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "el_GR", "ja_JP", "ru_RU"])
def test_synthetic_patients_read_alike_in_their_character_sets(locale: str) -> None:
    for dataset in synthetic_patient(5, slices=2, matrix=8, locale=locale).datasets():
        assert_same_reading(received_from(dataset, "").dataset, False)


def test_a_top_level_sequence_of_undefined_length_is_parsed_in_the_declared_charset() -> None:
    """pydicom parses it at once, with the character set read so far: so does the reading."""
    ds = objects.ct()
    ds.SpecificCharacterSet = "ISO_IR 100"
    name = explicit(0x00081030, "LO", "Müller".encode("latin-1"))  # Study Description
    sequence = _undefined_sequence(0x00081140, explicit(0x00081150, "UI", b"1.2.3\0"), name)
    assert_same_reading(splice(ds, sequence, at=0x00081140), False)


def test_empty_values_read_alike() -> None:
    ds = objects.ct()
    ds.add_new(0x00081030, "LO", "")
    ds.add_new(0x00181030, "LO", None)
    ds.add_new(0x00280034, "IS", None)
    ds.add_new(0x00081140, "SQ", [])
    ds.add_new(0x00091010, "OB", b"")
    ds.SpecificCharacterSet = ""
    for implicit_vr in (False, True):
        assert_same_reading(encode(ds, implicit=implicit_vr), implicit_vr)


@pytest.mark.parametrize("charset", ["", "ISO_IR 192", "\\ISO 2022 IR 87", "ISO_IR 100\\ISO_IR 6"])
def test_character_set_terms_read_alike(charset: str) -> None:
    ds = objects.ct()
    ds.SpecificCharacterSet = charset.split("\\") if "\\" in charset else charset
    assert_same_reading(encode(ds), False)


def test_a_un_of_undefined_length_is_read_by_pydicom() -> None:
    """pydicom reads it as a sequence, looking inside: the same reading, pydicom's, warning
    once for an unknown character set term, not again for a start made before it."""
    item = implicit(0x00081150, b"1.2.3\0")  # Implicit VR inside, as CP-246 has it
    un = _undefined_sequence(0x00081140, item, vr=b"UN")
    assert_same_reading(splice(objects.ct(), un, at=0x00081140), False)
    charset = explicit(0x00080005, "CS", b"ISO_IR 999")
    sequence = _undefined_sequence(0x00081032, explicit(0x00080100, "SH", b"X"))
    later_un = _undefined_sequence(0x00291010, implicit(0x00100010, b"AB"), vr=b"UN")
    assert_same_reading(charset + sequence + later_un, False)


def test_implicit_vr_that_looks_explicit_is_read_by_pydicom() -> None:
    """pydicom switches to Explicit VR, with a warning: the same reading, pydicom's."""
    first = implicit(0x00080008, b"A" * 0x4141)  # its length's low bytes read "AA"
    rest = encode(objects.ct(), implicit=True)
    data = first + rest[rest.index(struct.pack("<HH", 0x0008, 0x0016)) :]
    assert_same_reading(data, True)


def test_a_character_set_of_undefined_length_fails_as_in_pydicom() -> None:
    data = _undefined_sequence(0x00080005) + explicit(0x00100020, "LO", b"ID")
    scanned = scan(data, ExplicitVRLittleEndian)
    assert scanned.problem is None
    with pytest.raises(Exception) as theirs:  # noqa: PT011 - whatever pydicom raises
        read_dataset(BytesIO(data), False, True)
    with pytest.raises(theirs.type):
        read_scanned(data, scanned, False)


def _desynchronizing() -> bytes:
    """A top-level sequence of undefined length whose items pydicom ends elsewhere.

    Its item holds a UN of undefined length; inside it, by the scan's Implicit VR reading,
    one element whose length's bytes read "OB\\0\\0". pydicom reads that as an Explicit
    VR OB with a 4-byte length, closes both sequences early and finds a Patient ID "EVIL" at
    the top level; the scan skips the value and finds "GOOD" after the delimiters.
    """
    end_item, end_sequence = (
        struct.pack("<HHI", 0xFFFE, 0xE00D, 0),
        struct.pack("<HHI", 0xFFFE, 0xE0DD, 0),
    )
    closing = end_item + end_sequence + end_item + end_sequence
    length = 0x424F  # little endian "OB\0\0"
    filler = b"\0" * 8
    hidden = filler + closing + explicit(0x00100020, "LO", b"EVIL")
    after = closing + explicit(0x00100020, "LO", b"GOOD")
    swallowed = length - 4 - len(hidden) - 12 + len(after)  # pydicom's OB takes the rest
    value = struct.pack("<I", len(filler)) + hidden
    value += struct.pack("<HH2sHI", 0x0099, 0x1000, b"OB", 0, swallowed)
    value += b"\0" * (length - len(value))
    element = struct.pack("<HHI", 0x0010, 0x0010, length) + value  # odd: not padded
    un_item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + element
    un = struct.pack("<HH2sHI", 0x0040, 0xA730, b"UN", 0, 0xFFFFFFFF) + un_item
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + un
    top = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF) + item
    return explicit(0x00080016, "UI", b"1.2\0") + top + after


def test_a_sequence_pydicom_ends_elsewhere_than_the_scan_is_read_by_pydicom() -> None:
    """Else the index would say one Patient ID and every later reading of the file another."""
    data = _desynchronizing()
    scanned = scan(data, ExplicitVRLittleEndian)
    assert scanned.problem is None
    assert [e.tag for e in scanned.elements][-1] == 0x00100020  # the scan's "GOOD"
    assert_same_reading(data, False)
    assert read_scanned(data, scanned, False).PatientID == "EVIL"  # as pydicom reads it


def test_sequences_of_undefined_length_are_read_without_a_second_walk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is the one taken for what pydicom writes and peers send."""
    monkeypatch.setattr(reading, "_pydicom", _not_called)
    inner = _undefined_sequence(0x00081199, explicit(0x00081150, "UI", b"1.2.3\0"))
    sequence = _undefined_sequence(0x00081140, explicit(0x00081150, "UI", b"1.2\0") + inner)
    data = splice(objects.ct(), sequence, at=0x00081140)
    got = read_scanned(data, scan(data, ExplicitVRLittleEndian), False)
    item = got.ReferencedImageSequence[0]
    assert item.ReferencedSOPSequence[0].ReferencedSOPClassUID == "1.2.3"
    assert_same_reading(data, False)


def _not_called(data: bytes, implicit: bool) -> Dataset:
    """Stands in for ``reading._pydicom`` where it must not be called."""
    raise AssertionError("pydicom was asked to read the data set again")


def test_a_scan_that_found_a_problem_is_refused() -> None:
    data = encode(objects.ct())[:-3]
    scanned = scan(data, ExplicitVRLittleEndian)
    assert scanned.problem is not None
    with pytest.raises(ValueError, match="well-formed"):
        read_scanned(data, scanned, False)


def _well_formed_mutants() -> st.SearchStrategy[tuple[bytes, bool]]:
    """Test objects with random bytes changed, kept when the scan still finds them well-formed."""
    bases = [
        (encode(make(), implicit=implicit_vr), implicit_vr)
        for make in (objects.ct, objects.rt_struct, lambda: objects.rt_plan(beams=2))
        for implicit_vr in (False, True)
    ]
    referenced = explicit(0x00081150, "UI", b"1.2.3\0") + explicit(0x00081030, "LO", b"Text")
    sequence = _undefined_sequence(0x00081140, referenced, referenced)
    bases.append((splice(objects.ct(), sequence, at=0x00081140), False))  # read_sequence

    @st.composite
    def mutant(draw: st.DrawFn) -> tuple[bytes, bool]:
        data, implicit_vr = bases[draw(st.integers(0, len(bases) - 1))]
        rng = random.Random(draw(st.integers(0, 2**32 - 1)))
        changed = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            changed[rng.randrange(len(changed))] = rng.randrange(256)
        return bytes(changed), implicit_vr

    return mutant()


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(case=_well_formed_mutants())
def test_mutated_objects_the_scan_accepts_read_alike(case: tuple[bytes, bool]) -> None:
    data, implicit_vr = case
    scanned = scan(data, SYNTAX[implicit_vr])
    if scanned.problem is not None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_dataset(BytesIO(data), implicit_vr, True)
            expected_error = None
    except Exception as error:  # noqa: BLE001 - whatever pydicom raises, ours must too
        expected_error = type(error)
    if expected_error is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(expected_error):
                read_scanned(data, scanned, implicit_vr)
        return
    assert_same_reading(data, implicit_vr)
