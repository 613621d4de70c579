"""pydicom's reading of a received data set, built from what the well-formedness walk found.

The import walks every element of an object to check its encoding
(:func:`simdaemon.wellformed.scan`), then needs the data set pydicom's ``read_dataset``
would give for the same bytes: every later step (text decoding, validation, placement,
the stored summary) reads that, and a peer's object must be read exactly as pydicom reads
it. ``read_dataset`` walks the top level a second time, through a file object, to find what
the scan has already found: where each element starts, its VR and its length
(``benchmarks/RESULTS.md``, sixth session, has what that cost).

:func:`read_scanned` builds the data set from the scan's positions instead, with the same
pieces pydicom uses: a :class:`~pydicom.dataelem.RawDataElement` for each element of
defined length (its value the same bytes, read no further), pydicom's own
``read_sequence`` for a sequence of undefined length (which pydicom parses at once), and
the same character set bookkeeping. Where pydicom may read otherwise than the scan, it reads
the bytes itself:

- Implicit VR whose first element looks Explicit (pydicom then switches to Explicit VR,
  with a warning);
- a top-level element of undefined length that is not an Explicit VR sequence (a UN, or
  an Implicit VR element pydicom must look up or look ahead at), or that is the Specific
  Character Set (which pydicom then fails to read);
- a top-level sequence of undefined length whose items pydicom reads to another end than
  the scan did (a UN of undefined length inside, read by pydicom as Explicit VR where its
  bytes look so): the elements after it would differ. pydicom then reads the whole data
  set, and what it warned while reading that sequence it warns again.

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

from simdaemon.wellformed import UNDEFINED_LENGTH, Scan, TopLevel

__all__ = ["read_scanned"]

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
    found = scanned.elements
    if (implicit and _looks_explicit(data)) or any(map(_left_to_pydicom, found)):
        return _pydicom(data, implicit)
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    # What pydicom's element generator reads later sequences with.
    encoding: str | MutableSequence[str] = default_encoding
    for index, (tag, vr, length, _, start) in enumerate(found):
        key = BaseTag(tag)
        if length == UNDEFINED_LENGTH:  # an Explicit VR sequence (_left_to_pydicom)
            source = BytesIO(data)
            source.seek(start)
            sequence = read_sequence(source, implicit, True, length, encoding)
            after = found[index + 1].header if index + 1 < len(found) else len(data)
            if source.tell() != after:  # pydicom's items end elsewhere than the scan's
                return _pydicom(data, implicit)
            elements[key] = DataElement(key, "SQ", sequence, start, is_undefined_length=True)
            continue
        value = (
            data[start : start + length]
            if length > 0
            else cast(bytes | None, empty_value_for_VR(vr, raw=True))
        )
        if tag == _CHARSET:
            encoding = convert_encodings(convert_string(value or b"", True))
        elements[key] = RawDataElement(key, vr, length, value, start, implicit, True)
    dataset = Dataset(elements, parent_encoding=default_encoding)
    charset = elements.get(BaseTag(_CHARSET))
    if isinstance(charset, RawDataElement):  # as read_dataset takes it, converted
        terms = cast(str | MutableSequence[str] | None, convert_raw_data_element(charset).value)
        dataset.set_original_encoding(implicit, True, convert_encodings(terms))
    else:
        dataset.set_original_encoding(implicit, True, default_encoding)
    return dataset


def _left_to_pydicom(element: TopLevel) -> bool:
    """Whether pydicom must read the data set holding ``element`` itself: an undefined
    length on anything but an Explicit VR sequence other than the character set."""
    return element.length == UNDEFINED_LENGTH and (element.vr != "SQ" or element.tag == _CHARSET)


def _pydicom(data: bytes, implicit: bool) -> Dataset:
    """pydicom's own reading, for what :func:`read_scanned` leaves to it."""
    return read_dataset(BytesIO(data), implicit, True)
