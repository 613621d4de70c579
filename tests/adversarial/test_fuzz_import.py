"""Mutated data sets through the import pipeline: whatever is acknowledged can be read back.

Issue 15's invariant, fuzzed (seeded, bounded): every object answered 0x0000 or a warning is
in the archive, its file reads back whole, its UIDs and identifying keys are clean; every
other object is parked; the archive's rows and files agree afterwards. Without sockets: the
same :class:`~simdaemon.importer.Received` a C-STORE makes, so a hundred runs cost seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simdaemon import config, status
from simdaemon.archive import Archive
from simdaemon.importer import Importer, Received
from simdaemon.investigation import Investigator
from simdaemon.printable import CONTROL
from simdaemon.validation import is_valid_uid
from tests import objects
from tests.adversarial.malformed import encode

_CT = objects.ct(size=4)


#: The CT's top-level elements, each encoded alone, per transfer syntax.
def _split(implicit: bool) -> list[bytes]:
    whole = encode(_CT, implicit=implicit)
    ends = [len(encode(_CT[: element.tag + 1], implicit=implicit)) for element in _CT]
    return [whole[start:end] for start, end in zip([0, *ends], ends, strict=False)]


_ELEMENTS = {ExplicitVRLittleEndian: _split(False), ImplicitVRLittleEndian: _split(True)}
_META = bytes.fromhex("02001000") + b"UI\x14\x001.2.840.10008.1.2.1\x00"  # (0002,0010)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    """A valid encoding with elements repeated, swapped, retyped or prefixed by file meta
    information, then a few bytes overwritten, inserted, deleted or cut off."""
    syntax = draw(st.sampled_from(sorted(_ELEMENTS)))
    elements = list(_ELEMENTS[syntax])
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(elements) - 2))
        kind = draw(st.sampled_from(["repeat", "swap", "retype", "meta"]))
        if kind == "repeat":
            elements.insert(at, elements[at])
        elif kind == "swap":
            elements[at], elements[at + 1] = elements[at + 1], elements[at]
        elif kind == "retype" and syntax == ExplicitVRLittleEndian:
            vr = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2))
            elements[at] = elements[at][:4] + vr.encode() + elements[at][6:]
        elif kind == "meta":
            elements.insert(0, _META)
    data = bytearray(b"".join(elements))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
        if not data:
            data = bytearray(b"\0")
    # Now and then the bytes go on the other syntax's context.
    if draw(st.integers(0, 9)) == 0:
        syntax = ImplicitVRLittleEndian if syntax == ExplicitVRLittleEndian else syntax
    return bytes(data), syntax


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[Importer]:
    settings_ = config.from_mapping(
        {"investigation": {"failed_import_folder": str(tmp_path / "failed")}}
    )
    with Archive(tmp_path / "archive") as archive:
        yield Importer(settings_, archive, Investigator(settings_.investigation))


@pytest.mark.filterwarnings("ignore")  # pydicom warns about every broken value
@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated())
def test_every_acknowledged_object_reads_back_whole(
    importer: Importer, case: tuple[bytes, str]
) -> None:
    data, syntax = case
    result = importer.run(
        Received(
            dataset=data,
            transfer_syntax=syntax,
            calling_ae="FUZZ",
            sop_class_uid=str(_CT.SOPClassUID),
            sop_instance_uid=str(_CT.SOPInstanceUID),
            context_sop_class=str(_CT.SOPClassUID),
        )
    )
    archive = importer.archive
    if result.status in (status.SUCCESS, status.COERCED):
        stored = archive.read(result.sop_instance_uid)
        for element in stored.iterall():  # every value converts: the file is whole
            _ = element.value
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            assert is_valid_uid(str(stored[keyword].value))
        assert str(stored.get("PatientID", ""))  # filed by patient, so it has one
        assert not CONTROL.search(str(stored.PatientID))
        assert "TransferSyntaxUID" not in stored  # no file meta merged into the data set
        path = archive.path_for(
            str(stored.StudyInstanceUID), str(stored.SeriesInstanceUID), result.sop_instance_uid
        )
        assert dcmread(path).SOPInstanceUID == result.sop_instance_uid
        assert result.parked is None
    else:
        assert status.outcome(result.status) == "failure"
        assert result.parked is not None
        assert result.parked.exists()
    found = archive.check()
    assert (found.missing_files, found.orphan_files, found.partial_files) == ((), (), ())
