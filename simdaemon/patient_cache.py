"""Synthetic patients built and encoded once per process, handed out as fresh copies.

A test that asks for a synthetic patient pays, without a cache, for building it (faker,
geometry, pydicom data sets) and for encoding every object again on import: 150-200 ms for
a small patient, most of a fixture's cost. The same seed and options always give the same
bytes (:func:`simdaemon.synthetic.synthetic_patient`), so this keeps each patient's objects
as encoded data sets, keyed by seed and options:

- the import sends the kept bytes as they are (nothing is encoded again);
- the test gets data sets decoded from those bytes, its own copy: a test that changes one
  changes nothing another test sees.

The cache holds at most :data:`BUDGET_BYTES` of encoded data sets (least recently used
dropped first); a patient larger than that on its own is built each time, as without a cache.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset

from simdaemon.importer import Received, received_from
from simdaemon.synthetic import SyntheticPatient, synthetic_patient

__all__ = ["BUDGET_BYTES", "EncodedPatient", "encoded_patient"]

#: Encoded bytes the cache keeps at most, across patients.
BUDGET_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class EncodedPatient:
    """One synthetic patient's objects as encoded, in ``datasets()`` order.

    Only the encoded objects are kept; ``template`` holds the patient's scalar fields with no
    data sets, so the budget counts what the cache holds.
    """

    template: SyntheticPatient
    #: Each object as :func:`~simdaemon.importer.received_from` encodes it (no calling AE).
    objects: tuple[Received, ...]
    cts: int
    rt_images: int

    @classmethod
    def of(cls, patient: SyntheticPatient) -> EncodedPatient:
        """Encode ``patient``'s objects, as ``import_patient`` would."""
        objects = tuple(received_from(dataset, "") for dataset in patient.datasets())
        empty = Dataset()
        template = dataclasses.replace(
            patient, ct=[], structure_set=empty, plan=empty, dose=empty, rt_images=[],
            registration=empty, files=[],
        )  # fmt: skip
        return cls(template, objects, len(patient.ct), len(patient.rt_images))

    @property
    def size(self) -> int:
        """Bytes the encoded data sets take."""
        return sum(len(o.dataset) for o in self.objects)

    def received(self, calling_ae: str) -> list[Received]:
        """Each object as if it had arrived from ``calling_ae``, its bytes as kept."""
        return [dataclasses.replace(o, calling_ae=calling_ae) for o in self.objects]

    def fresh(self) -> SyntheticPatient:
        """A copy of the patient whose data sets are decoded from the kept bytes."""
        decoded: list[Dataset] = [dcmread(BytesIO(o.as_file())) for o in self.objects]
        cts, images = self.cts, self.rt_images
        structure_set, plan, dose = decoded[cts : cts + 3]
        return dataclasses.replace(
            self.template,
            ct=decoded[:cts],
            structure_set=structure_set,
            plan=plan,
            dose=dose,
            rt_images=decoded[cts + 3 : cts + 3 + images],
            registration=decoded[cts + 3 + images],
        )


_cache: OrderedDict[tuple[Any, ...], EncodedPatient] = OrderedDict()
_held = 0
_lock = threading.Lock()


def encoded_patient(seed: int = 0, **options: Any) -> EncodedPatient:
    """The patient :func:`~simdaemon.synthetic.synthetic_patient` builds, encoded; cached."""
    global _held
    key = (seed, *sorted(options.items()))
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    built = EncodedPatient.of(synthetic_patient(seed, **options))
    if built.size > BUDGET_BYTES:
        return built
    with _lock:
        if key not in _cache:
            _cache[key] = built
            _held += built.size
        while _held > BUDGET_BYTES:
            _, dropped = _cache.popitem(last=False)
            _held -= dropped.size
    return built
