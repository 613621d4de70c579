"""The attributes kept in an instance's archive row: judged from the bytes where they can be.

``attributes.summarize`` decides from a still-encoded element's bytes whether it is bulk (a
contour's thousands of values), and decodes only the rest. The kept attributes must be
exactly those of the plain rule - decode every element, then judge - which this file
states again as the reference and compares on every kind of object the synthetic patient
has, in both transfer syntaxes.
"""

from __future__ import annotations

import random
import struct
import warnings
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simdaemon import attributes
from simdaemon.synthetic import synthetic_patient


def reference_keep(dataset: Dataset) -> Dataset:
    """The rule, on decoded elements only (what summarize did before it read bytes)."""
    kept = Dataset()
    for element in dataset:
        if element.tag.group in (0x0002, 0x7FE0) or element.VR in attributes._BULK_VRS:
            continue
        if element.VR == "SQ":
            if len(element.value) > attributes.MAX_ITEMS:
                continue
            kept.add(DataElement(element.tag, "SQ", [reference_keep(i) for i in element.value]))
            continue
        if element.VM > attributes.MAX_VM:
            continue
        if isinstance(element.value, str) and len(element.value) > attributes.MAX_TEXT:
            continue
        kept.add(element)
    return kept


def encoded(dataset: Dataset, implicit: bool) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, implicit
    write_dataset(out, dataset)
    return out.getvalue()


def as_read(data: bytes, implicit: bool) -> Dataset:
    return read_dataset(BytesIO(data), implicit, True)


def shown(dataset: Dataset) -> list[str]:
    return [repr(element) for element in dataset.iterall()]


@pytest.mark.filterwarnings("ignore:The value length")  # the oversize values, on purpose
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_the_kept_attributes_are_the_plain_rules(syntax: str) -> None:
    implicit = syntax == ImplicitVRLittleEndian
    patient = synthetic_patient(3, slices=2, matrix=16, locale="el_GR")
    # Contours (more values than MAX_VM), a long text, and values long only together.
    patient.structure_set.PatientComments = "x" * (attributes.MAX_TEXT + 1)
    # MAX_VM values of 16 characters: more than MAX_TEXT bytes, yet each value is short.
    patient.dose.GridFrameOffsetVector = [f"{n:016.10f}" for n in range(attributes.MAX_VM)]
    # Binary values: one more than MAX_VM (bulk), and just MAX_VM (kept).
    patient.ct[0].TableOfParameterValues = [0.5] * (attributes.MAX_VM + 1)
    patient.ct[1].TableOfParameterValues = [0.5] * attributes.MAX_VM
    # Private elements (VR unknown in Implicit VR): a creator, a tag pydicom's private
    # dictionary knows, and one it does not.
    block = patient.plan.private_block(0x0087, "ACME 1.0", create=True)
    block.add_new(0x10, "CS", "VALUE")
    patient.plan.add_new(0x00091010, "LO", "unknown")
    # One value longer than MAX_TEXT only by its removable padding; one long DS.
    patient.plan.PlanIntent = "CURATIVE" + " " * attributes.MAX_TEXT
    patient.dose.DoseGridScaling = "1" * (attributes.MAX_TEXT + 1)
    for dataset in patient.datasets():
        data = encoded(dataset, implicit)
        fast = attributes.summarize(as_read(data, implicit), data, None, syntax)
        plain = encoded(reference_keep(as_read(data, implicit)), implicit)
        assert shown(as_read(fast, implicit)) == shown(as_read(plain, implicit)), dataset.Modality


def test_contours_are_left_out_and_labels_kept() -> None:
    patient = synthetic_patient(3, slices=2, matrix=16)
    data = encoded(patient.structure_set, implicit=False)
    kept = as_read(attributes.summarize(as_read(data, False), data, None, ExplicitVRLittleEndian),
                   False)  # fmt: skip
    assert kept.StructureSetLabel == patient.structure_set.StructureSetLabel
    contours = kept.ROIContourSequence[0].ContourSequence if "ROIContourSequence" in kept else []
    assert all("ContourData" not in c for c in contours)


def test_a_file_reads_back_through_the_kept_attributes() -> None:
    patient = synthetic_patient(3, slices=2, matrix=16)
    out = DicomBytesIO()
    patient.plan.save_as(out, enforce_file_format=True)
    plan = dcmread(BytesIO(out.getvalue()))
    assert attributes.read(attributes.summarize(plan, b"", None, ExplicitVRLittleEndian),
                           ExplicitVRLittleEndian).RTPlanLabel == patient.plan_label  # fmt: skip


def encoded_element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    """One element as a data set's bytes, in Implicit or Explicit VR Little Endian."""
    group, element = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHL", group, element, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr.encode(), len(value)) + value


RAW_TEXTS = [
    b"", b"1.2.3", b"1.2.3\0", b"1.2.840.10008.5.1.4.1.1.2 ", b" 1.2.3 \0", b"1.2.3\\1.2.4\0",
    b"1.2.3 \\ 1.2.4", b"CT", b" CT ", b"ORIGINAL\\PRIMARY\\AXIAL ", b"A\\ B ", b"\0", b"\\",
    b"caf\xe9", b"x\x00y ", b"20261202", b"101530.25 ", b"1\\2", b"+12", b"-0", b"012", b" 12",
    b"1 \\ 2 ", b"\t7", b"1.0", b"045Y", b"2026120210\\20261203",
    b"999999999999", b"-99999999999", b"99999999999999999999999",
]  # fmt: skip
#: More values for the VRs read raw: random strings of digits, signs, padding, separators.
_PIECES = [b" ", b"\\", b"1", b"0", b"9", b".", b"+", b"-", b"e", b"\x00", b":", b"\t", b"\xe9"]
FUZZED = [
    b"".join(random.Random(n).choices(_PIECES, k=random.Random(-n).randint(0, 11)))
    for n in range(400)
]


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
@pytest.mark.parametrize("strip", [True, False])
@pytest.mark.parametrize(
    ("keyword", "vr"),
    [("SOPInstanceUID", "UI"), ("Modality", "CS"), ("ImageType", "CS"),
     ("SOPInstanceUID", "CS"), ("Modality", "UI"), ("Modality", "LO"), ("ContentDate", "DA"),
     ("ContentTime", "TM"), ("AcquisitionDateTime", "DT"), ("PatientAge", "AS"),
     ("InstanceNumber", "IS"), ("SeriesNumber", "IS"), ("ContentDate", "IS"),
     ("InstanceNumber", "DA")],
)  # fmt: skip
def test_text_value_reads_raw_bytes_as_pydicom_converts_them(
    keyword: str, vr: str, strip: bool, implicit: bool
) -> None:
    """The raw read gives pydicom's text for every padding, null, sign and backslash case;
    an explicit VR it does not read (a wrong one) goes through pydicom's conversion."""
    tag = Tag(keyword)
    for raw in RAW_TEXTS + FUZZED:
        data = encoded_element(tag, vr, raw + b" " * (len(raw) % 2), implicit)
        fast = read_dataset(BytesIO(data), implicit, True)
        converted = read_dataset(BytesIO(data), implicit, True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns on the invalid values, rightly
            expected = converted.get(keyword)
            found = attributes.text_value(fast, keyword, strip=strip)  # may convert, too
        if expected is None:
            reference = ""
        elif isinstance(expected, (list, tuple)) or type(expected).__name__ == "MultiValue":
            reference = "\\".join(str(v) for v in expected)
        else:
            reference = str(expected).strip() if strip else str(expected)
        assert found == reference, raw


def test_the_memo_forgets_the_least_recently_used_beyond_its_budget() -> None:
    memo = attributes._Memo(budget=100)
    memo.put((b"a" * 30, "1.2.840.10008.1.2.1"), b"x" * 10)
    memo.put((b"b" * 30, "1.2.840.10008.1.2.1"), b"y" * 10)
    assert memo.get((b"a" * 30, "1.2.840.10008.1.2.1")) == b"x" * 10  # now the most recent
    memo.put((b"c" * 30, "1.2.840.10008.1.2.1"), b"z" * 10)  # 120 bytes held: b goes
    assert memo.get((b"b" * 30, "1.2.840.10008.1.2.1")) is None
    assert memo.get((b"a" * 30, "1.2.840.10008.1.2.1")) == b"x" * 10
    assert memo.get((b"a" * 30, "1.2.840.10008.1.2")) is None, "the syntax is in the key"


@pytest.mark.parametrize("kind", ["structure_set", "plan"])
def test_summarize_filed_gives_what_summarize_gives_each_time(kind: str) -> None:
    """Filed twice, in each syntax: the remembered summary is the one summarize makes."""
    dataset = getattr(synthetic_patient(3, slices=2, matrix=16), kind)
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        out = DicomBytesIO()
        out.is_little_endian, out.is_implicit_VR = True, syntax == ImplicitVRLittleEndian
        write_dataset(out, dataset)
        data = out.getvalue()
        expected = attributes.summarize(as_read(data, out.is_implicit_VR), data, None, syntax)
        for _ in range(2):
            read = as_read(data, out.is_implicit_VR)
            assert attributes.summarize_filed(read, data, None, syntax) == expected
