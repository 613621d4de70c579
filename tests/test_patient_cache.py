"""Synthetic patients cached per seed and options: the same bytes, and each test its own copy."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simdaemon import patient_cache
from simdaemon.importer import received_from
from simdaemon.patient_cache import EncodedPatient, encoded_patient
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient, synthetic_patient

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
