"""Synthetic patients cached per seed and options: the same bytes, and each test its own copy."""

from __future__ import annotations

import dataclasses
import gc
import types
from collections.abc import Callable
from io import BytesIO
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

import simdaemon.importer
from simdaemon import patient_cache
from simdaemon.importer import received_from
from simdaemon.patient_cache import EncodedPatient, encoded_patient
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient, synthetic_patient
from simdaemon.testing import import_all
from simdaemon.wellformed import Scan, scan

SMALL = {"slices": 2, "matrix": 16}


def test_the_kept_bytes_are_what_import_patient_would_send() -> None:
    cached = encoded_patient(11, **SMALL)
    built = synthetic_patient(11, **SMALL)
    sent = [received_from(d, "SIMTEST") for d in built.datasets()]
    kept = cached.received("SIMTEST")
    assert [(r.dataset, r.transfer_syntax, r.sop_instance_uid) for r in kept] == [
        (r.dataset, r.transfer_syntax, r.sop_instance_uid) for r in sent
    ]
    assert encoded_patient(11, **SMALL) is cached
    # What the budget counts is what is held: the files, not the built data sets as well.
    assert not cached.template.ct
    assert all(len(dataset) == 0 for dataset in cached.template.datasets())
    assert encoded_patient(12, **SMALL) is not cached


def test_each_copy_is_the_patient_and_its_own() -> None:
    cached = encoded_patient(13, **SMALL)
    first, second = cached.fresh(), cached.fresh()
    built = synthetic_patient(13, **SMALL)
    assert (first.patient_id, first.plan_uid, first.ct_series_uid) == (
        built.patient_id, built.plan_uid, built.ct_series_uid
    )  # fmt: skip
    assert [d.SOPInstanceUID for d in first.datasets()] == [
        d.SOPInstanceUID for d in built.datasets()
    ]
    first.plan.RTPlanLabel = "CHANGED"
    assert second.plan.RTPlanLabel == built.plan.RTPlanLabel
    assert cached.fresh().plan.RTPlanLabel == built.plan.RTPlanLabel


def converted(dataset: Dataset) -> list[tuple[Any, ...]]:
    """Every element of ``dataset``, nested ones too, converted: tag, VR and value."""
    found: list[tuple[Any, ...]] = []
    for element in dataset:
        if element.VR == "SQ":
            found.append((element.tag, "SQ", [converted(item) for item in element.value]))
        else:
            found.append((element.tag, element.VR, element.value))
    return found


@pytest.mark.parametrize("locale", ["en_US", "el_GR", "ja_JP"])
def test_a_copy_is_what_dcmread_gives_for_the_kept_bytes(locale: str) -> None:
    """The copies skip parsing the bytes again: each must still be the data set ``dcmread``
    reads from the object's file, in every element, encoding and meta field."""
    cached = EncodedPatient.of(synthetic_patient(17, locale=locale, **SMALL))
    copies = cached.fresh().datasets()
    for copy, received in zip(copies, cached.objects, strict=True):
        read = dcmread(BytesIO(received.as_file()))
        assert converted(copy) == converted(read)
        assert converted(copy.file_meta) == converted(read.file_meta)
        assert copy.preamble == read.preamble
        assert copy.file_meta.original_encoding == read.file_meta.original_encoding
        assert copy.file_meta.original_character_set == read.file_meta.original_character_set
        assert copy.original_encoding == read.original_encoding
        assert copy.original_character_set == read.original_character_set
        assert (copy.filename, type(copy.buffer)) == (read.filename, type(read.buffer))


def test_changes_to_a_copy_reach_no_other_copy() -> None:
    """Nested items, the character set and the meta information are each copy's own, even
    when the first copy changes them before any other copy has converted them."""
    cached = EncodedPatient.of(synthetic_patient(18, locale="ru_RU", **SMALL))
    first = cached.fresh()
    first.structure_set.StructureSetROISequence[0].ROIName = "CHANGED"
    first.plan.BeamSequence[0].ControlPointSequence[0].GantryAngle = 123.0
    first.plan["SpecificCharacterSet"].value = "ISO_IR 192"  # the element itself, in place
    first.plan.file_meta["TransferSyntaxUID"].value = "1.2.840.10008.1.2.2"
    first.plan.original_character_set.append("changed")
    second = cached.fresh()
    built = synthetic_patient(18, locale="ru_RU", **SMALL)
    assert second.structure_set.StructureSetROISequence[0].ROIName == (
        built.structure_set.StructureSetROISequence[0].ROIName
    )
    assert second.plan.BeamSequence[0].ControlPointSequence[0].GantryAngle == (
        built.plan.BeamSequence[0].ControlPointSequence[0].GantryAngle
    )
    assert second.plan.SpecificCharacterSet == "ISO_IR 144"
    assert second.plan.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
    assert "changed" not in second.plan.original_character_set
    plan = cached.objects[SMALL["slices"] + 1]
    assert converted(second.plan) == converted(dcmread(BytesIO(plan.as_file())))


def test_printing_or_comparing_a_cached_patient_leaves_its_readings_unused() -> None:
    """pytest prints and compares what an assertion names; converting the readings' elements
    then would make every later copy deep-copy them."""
    cached = EncodedPatient.of(synthetic_patient(19, **SMALL))

    def still_encoded() -> list[int]:
        return [
            sum(not isinstance(e, DataElement) for e in r.dataset.elements) for r in cached.readings
        ]

    before = still_encoded()
    assert repr(cached)
    assert str(cached)
    assert cached == EncodedPatient.of(synthetic_patient(19, **SMALL))
    assert still_encoded() == before


def test_the_budget_counts_the_readings_elements() -> None:
    """A patient of many small objects holds far more than its bytes: each element read."""
    cached = EncodedPatient.of(synthetic_patient(20, **SMALL))
    encoded = sum(len(o.dataset) for o in cached.objects)
    elements = sum(len(r.dataset.elements) for r in cached.readings)
    assert cached.size >= 3 * encoded + patient_cache.ELEMENT_BYTES * elements


def _tracked(root: object) -> int:
    """How many objects the garbage collector tracks among those ``root`` holds."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        held = stack.pop()
        if id(held) in seen or not gc.is_tracked(held):
            continue
        if isinstance(held, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(held))
        stack.extend(gc.get_referents(held))
    return len(seen)


def test_a_cached_patient_leaves_the_garbage_collector_little_to_walk() -> None:
    """A suite that builds many patients keeps them all: each full collection walks what they
    hold, in every test and at exit. Elements kept as plain tuples are not tracked, where
    pydicom's elements (about 140 tracked objects per object held) would be."""
    cached = EncodedPatient.of(synthetic_patient(21, **SMALL))
    # A collection untracks a tuple whose items it finds untracked: nested tuples take one
    # collection per level, in whatever order the collector meets them.
    counts = [_tracked(cached)]
    for _ in range(10):
        gc.collect()
        counts.append(_tracked(cached))
        if counts[-1] == counts[-2]:
            break
    assert counts[-1] <= 25 * len(cached.objects), counts
    # What they hold still reads as before.
    assert [r.copy() for r in cached.readings] == [
        dcmread(BytesIO(o.as_file())) for o in cached.objects
    ]


def test_the_cache_keeps_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    one = EncodedPatient.of(synthetic_patient(14, **SMALL))
    monkeypatch.setattr(patient_cache, "BUDGET_BYTES", int(one.size * 1.5))
    monkeypatch.setattr(patient_cache, "_cache", type(patient_cache._cache)())
    monkeypatch.setattr(patient_cache, "_held", 0)
    a = encoded_patient(14, **SMALL)
    b = encoded_patient(15, **SMALL)  # a is dropped to make room
    assert list(patient_cache._cache.values()) == [b]
    assert encoded_patient(14, **SMALL) is not a


def test_the_fixture_imports_the_patient_and_hands_out_a_copy(
    simdaemon: TestDaemon, synthetic_patient: Callable[..., SyntheticPatient]
) -> None:
    patient = synthetic_patient(16, **SMALL)
    assert [p.patient_id for p in simdaemon.archive.patients()] == [patient.patient_id]
    assert patient.plan.RTPlanLabel == synthetic_patient_built(16).plan.RTPlanLabel
    assert simdaemon.archive.count() == len(patient.datasets())


def synthetic_patient_built(seed: int) -> SyntheticPatient:
    return synthetic_patient(seed, **SMALL)


def test_the_kept_objects_carry_their_scan_and_the_import_uses_it(
    simdaemon_factory: Callable[..., TestDaemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each object is walked once when cached, not again on every import of it."""
    cached = encoded_patient(17, **SMALL)
    assert [r.scanned and r.scanned.scan for r in cached.objects] == [
        scan(r.dataset, r.transfer_syntax) for r in cached.objects
    ]
    walked: list[bytes] = []

    def counted(data: bytes, transfer_syntax: str) -> Scan:
        walked.append(data)
        return scan(data, transfer_syntax)

    monkeypatch.setattr(simdaemon.importer, "scan", counted)
    for daemon in (simdaemon_factory(), simdaemon_factory()):
        import_all(daemon, cached.received("SIMTEST"))
        assert daemon.archive.count() == len(cached.objects)
    assert walked == []
    # An object without its scan (any other import) is walked as before, and so is a copy
    # whose bytes are other bytes, even equal ones: the scan is kept for the bytes it read.
    built = synthetic_patient_built(17)
    import_all(simdaemon_factory(), [received_from(d, "SIMTEST") for d in built.datasets()])
    assert len(walked) == len(cached.objects)
    copies = [dataclasses.replace(r, dataset=bytes(bytearray(r.dataset))) for r in cached.objects]
    import_all(simdaemon_factory(), copies)
    assert len(walked) == 2 * len(cached.objects)
