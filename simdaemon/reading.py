"""pydicom's reading of a received data set, built from what the well-formedness walk found.

The import walks every element of an object to check its encoding
(:func:`simdaemon.wellformed.scan`), then needs the data set pydicom's ``read_dataset``
would give for the same bytes: every later step (text decoding, validation, placement,
the stored summary) reads that, and a peer's object must be read exactly as pydicom reads
it. ``read_dataset`` walks the bytes a second time, through a file object, to find what the
scan has already found: where each top-level element starts, its VR and its length. That
second walk was a quarter of parsing an object (0.24 ms of a 512 KiB CT slice).

:func:`read_scanned` builds the data set from the scan's positions instead, with the same
pieces pydicom uses: a :class:`~pydicom.dataelem.RawDataElement` for each element of
defined length (its value the same bytes, read no further), pydicom's own
``read_sequence`` for a sequence of undefined length (which pydicom parses at once), and
the same character set bookkeeping. Where pydicom would do something the scan does not
model, it is simply asked to read the bytes itself:

- Implicit VR whose first element looks Explicit (pydicom then switches to Explicit VR,
  with a warning);
- a top-level element of undefined length that is not an Explicit VR sequence (a UN, or
  an Implicit VR element pydicom must look up or look ahead at).

``tests/test_reading.py`` holds the two readings equal, element by element, over objects
of every shape the import accepts.
"""

from __future__ import annotations

from collections.abc import MutableSequence
from io import BytesIO
from typing import cast

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset, read_sequence
from pydicom.tag import BaseTag
from pydicom.values import convert_string

from simdaemon.wellformed import Scan

__all__ = ["read_scanned"]

_UNDEFINED = 0xFFFFFFFF
_CHARSET = 0x00080005


def _looks_explicit(data: bytes) -> bool:
    """Whether pydicom would read Implicit VR ``data`` as Explicit: its first element's
    bytes 4 and 5 are two capital letters (``pydicom.filereader._is_implicit_vr``)."""
    return len(data) >= 6 and 0x40 < data[4] < 0x5B and 0x40 < data[5] < 0x5B


def read_scanned(data: bytes, scanned: Scan, implicit: bool) -> Dataset:
    """The data set ``read_dataset(BytesIO(data), implicit, True)`` returns, from ``scanned``.

    ``scanned`` must be :func:`~simdaemon.wellformed.scan` of ``data`` (Little Endian) and
    found no problem.
    """
    if scanned.problem is not None:
        raise ValueError("read_scanned needs a scan that found the data set well-formed")
    if implicit and _looks_explicit(data):
        return _pydicom(data, implicit)
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    #: What pydicom's element generator reads later sequences with.
    encoding: str | MutableSequence[str] = default_encoding
    for tag, vr, length, start in scanned.elements:
        if length == _UNDEFINED:
            if vr != "SQ":
                return _pydicom(data, implicit)
            source = BytesIO(data)
            source.seek(start)
            sequence = read_sequence(source, implicit, True, length, encoding)
            elements[BaseTag(tag)] = DataElement(
                BaseTag(tag), vr, sequence, start, is_undefined_length=True
            )
            continue
        value = (
            data[start : start + length]
            if length > 0
            else cast(bytes | None, empty_value_for_VR(vr, raw=True))
        )
        if tag == _CHARSET:
            encoding = convert_encodings(convert_string(value or b"", True))
        elements[BaseTag(tag)] = RawDataElement(
            BaseTag(tag), vr, length, value, start, implicit, True
        )
    dataset = Dataset(elements, parent_encoding=default_encoding)
    charset = elements.get(BaseTag(_CHARSET))
    if isinstance(charset, RawDataElement):  # as read_dataset takes it, converted
        terms = cast(str | MutableSequence[str] | None, convert_raw_data_element(charset).value)
        dataset.set_original_encoding(implicit, True, convert_encodings(terms))
    else:
        dataset.set_original_encoding(implicit, True, default_encoding)
    return dataset


def _pydicom(data: bytes, implicit: bool) -> Dataset:
    """pydicom's own reading, for what :func:`read_scanned` leaves to it."""
    return read_dataset(BytesIO(data), implicit, True)
