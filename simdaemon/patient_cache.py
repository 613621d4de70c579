"""Synthetic patients built and encoded once per process, handed out as fresh copies.

A test that asks for a synthetic patient pays, without a cache, for building it (faker,
geometry, pydicom data sets) and for encoding every object again on import: 150-200 ms for
a small patient, most of a fixture's cost. The same seed and options always give the same
bytes (:func:`simdaemon.synthetic.synthetic_patient`), so this keeps each patient's objects
as encoded data sets, keyed by seed and options:

- the import sends the kept bytes as they are (nothing is encoded again), with their
  well-formedness scan, made once (:attr:`~simdaemon.importer.Received.scanned`): every
  other step of the import pipeline runs on every import;
- the test gets data sets decoded from those bytes, its own copy: a test that changes one
  changes nothing another test sees. Each object is read once with ``dcmread``, its elements
  left encoded, and each test gets a copy of that reading (:class:`_Reading`): the elements
  are converted in the copy when the test first uses them, as in a data set ``dcmread`` has
  just returned, without parsing the bytes again for every test.

The cache holds at most :data:`BUDGET_BYTES` of encoded data sets, scans and readings (least
recently used dropped first); a patient larger than that on its own is built each time, as
without a cache.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterable, MutableSequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import BaseTag

from simdaemon.importer import Received, received_from
from simdaemon.synthetic import SyntheticPatient, synthetic_patient
from simdaemon.wellformed import KeptScan

__all__ = ["BUDGET_BYTES", "EncodedPatient", "encoded_patient"]

#: Encoded bytes the cache keeps at most, across patients.
BUDGET_BYTES = 256 * 1024 * 1024


#: A :class:`~pydicom.dataelem.RawDataElement` as plain tuples: its tag as an int, and its
#: other fields.
_Encoded = tuple[int, tuple[str | None, int, bytes | None, int, bool, bool, bool, bool]]


@dataclass(frozen=True)
class _Elements:
    """A data set's elements as ``dcmread`` left them, and how it was encoded.

    Encoded elements (:class:`~pydicom.dataelem.RawDataElement`) are kept as plain tuples
    of ints, strings and bytes. Python's garbage collector stops tracking such tuples (a
    nesting level per collection that finds them: within a collection or three), where it
    would walk each RawDataElement (a named tuple) and its tag at every full collection
    for as long as the cache keeps the patient: a suite that builds many patients paid for
    that walk in every test, and again at exit. :meth:`copy` makes the elements again, in
    under a microsecond each.
    """

    #: Each element in the data set's order: encoded (packed), or as ``dcmread`` converted it.
    elements: tuple[_Encoded | DataElement, ...]
    #: The data set's ``original_encoding`` and ``original_character_set``.
    implicit: bool | None
    little: bool | None
    charset: str | MutableSequence[str]

    @classmethod
    def of(cls, dataset: Dataset) -> _Elements:
        implicit, little = dataset.original_encoding
        elements = tuple(
            _packed(e) if isinstance(e, RawDataElement) else e for e in dataset.values()
        )
        return cls(elements, implicit, little, dataset.original_character_set)

    def copy(self) -> dict[BaseTag, RawDataElement | DataElement]:
        """The elements for another data set: the encoded ones made again (immutable, so
        that is all a copy needs), the converted ones copied deep."""
        elements: dict[BaseTag, RawDataElement | DataElement] = {}
        for element in self.elements:
            if isinstance(element, DataElement):
                elements[element.tag] = copy.deepcopy(element)
            else:
                tag = BaseTag(element[0])
                # RawDataElement(tag, *fields), without its argument parsing: half the time.
                elements[tag] = tuple.__new__(RawDataElement, (tag, *element[1]))
        return elements

    def encode_like(self, dataset: Dataset) -> None:
        """Give ``dataset`` the original encoding of the data set these were read from."""
        dataset.set_original_encoding(self.implicit, self.little, copy.copy(self.charset))


def _packed(e: RawDataElement) -> _Encoded:
    """``e``'s fields, its tag an int."""
    return int(e.tag), (
        e.VR, e.length, e.value, e.value_tell, e.is_implicit_VR, e.is_little_endian, e.is_raw,
        e.is_buffered,
    )  # fmt: skip


@dataclass(frozen=True)
class _Reading:
    """One object as ``dcmread`` reads it from its Part-10 file, kept only to be copied.

    ``dcmread`` leaves elements encoded (:class:`~pydicom.dataelem.RawDataElement`, immutable)
    until they are used; this reading is never used, only copied, so a copy converts its own
    elements and shares nothing a test could change. The few elements ``dcmread`` converts
    itself (the character set, the transfer syntax) are copied deep.
    """

    file: bytes
    preamble: bytes | None = field(repr=False)
    meta: _Elements = field(repr=False)
    dataset: _Elements = field(repr=False)

    @classmethod
    def of(cls, received: Received) -> _Reading:
        """Read ``received`` as a test would from its file."""
        file = received.as_file()
        read = dcmread(BytesIO(file))
        return cls(file, read.preamble, _Elements.of(read.file_meta), _Elements.of(read))

    @property
    def size(self) -> int:
        """About the bytes held: the file, the values read from it (no more than the file)
        and :data:`ELEMENT_BYTES` for each element read, in items too."""
        return 2 * len(self.file) + ELEMENT_BYTES * _count(self.dataset.elements)

    def copy(self) -> FileDataset:
        """A data set equal to ``dcmread`` of the file, and the caller's own."""
        meta = FileMetaDataset(self.meta.copy())
        self.meta.encode_like(meta)
        dataset = FileDataset(
            BytesIO(self.file),
            self.dataset.copy(),
            self.preamble,
            meta,
            bool(self.dataset.implicit),
            bool(self.dataset.little),
        )
        self.dataset.encode_like(dataset)
        return dataset


#: What one element read costs in memory besides its value (the element, its tag, the
#: dictionary entry): about 350 bytes measured with pydicom 3.0, rounded up.
ELEMENT_BYTES = 512


def _count(elements: Iterable[_Encoded | RawDataElement | DataElement]) -> int:
    """The elements, and those in the items of the converted sequences (``dcmread`` leaves
    sequences encoded: there are none in practice), without converting any."""
    total = 0
    for element in elements:
        total += 1
        if isinstance(element, DataElement) and element.VR == "SQ":
            total += sum(_count(item.values()) for item in element.value)
    return total


def _scanned(received: Received) -> Received:
    """``received`` with its scan, which every import of it would otherwise repeat."""
    kept = KeptScan.of(received.dataset, received.transfer_syntax)
    return dataclasses.replace(received, scanned=kept)


@dataclass(frozen=True)
class EncodedPatient:
    """One synthetic patient's objects as encoded, in ``datasets()`` order.

    Only the encoded objects, their scans and readings are kept; ``template`` holds the patient's
    scalar fields with no data sets, so the budget counts what the cache holds.
    """

    template: SyntheticPatient
    #: Each object as :func:`~simdaemon.importer.received_from` encodes it (no calling AE).
    objects: tuple[Received, ...]
    cts: int
    rt_images: int
    #: Each object read from its file, in the same order: what :meth:`fresh` copies.
    readings: tuple[_Reading, ...] = field(repr=False, compare=False)

    @classmethod
    def of(cls, patient: SyntheticPatient) -> EncodedPatient:
        """Encode ``patient``'s objects, as ``import_patient`` would."""
        objects = tuple(_scanned(received_from(d, "")) for d in patient.datasets())
        empty = Dataset()
        template = dataclasses.replace(
            patient, ct=[], structure_set=empty, plan=empty, dose=empty, rt_images=[],
            registration=empty, files=[],
        )  # fmt: skip
        readings = tuple(_Reading.of(o) for o in objects)
        return cls(template, objects, len(patient.ct), len(patient.rt_images), readings)

    @property
    def size(self) -> int:
        """About the bytes held: the encoded data sets, their scans and their readings (each
        top-level element scanned counted as one read, :data:`ELEMENT_BYTES`: more than it is)."""
        scanned = sum(len(o.scanned.packed) for o in self.objects if o.scanned is not None)
        return (
            sum(len(o.dataset) for o in self.objects)
            + ELEMENT_BYTES * scanned
            + sum(r.size for r in self.readings)
        )

    def received(self, calling_ae: str) -> list[Received]:
        """Each object as if it had arrived from ``calling_ae``, its bytes as kept."""
        return [dataclasses.replace(o, calling_ae=calling_ae) for o in self.objects]

    def fresh(self) -> SyntheticPatient:
        """A copy of the patient whose data sets are those ``dcmread`` gives for the kept
        bytes, each the caller's own."""
        decoded: list[Dataset] = [reading.copy() for reading in self.readings]
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
