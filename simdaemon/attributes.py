"""The attributes of an instance kept in the archive row, so queries never open the file.

Everything a C-FIND return key can ask for is small: names, dates, UIDs, labels, counts,
short sequences of references. What is large - pixel data, contour points, control point
lists of hundreds of items - stays only in the file.

The kept attributes are stored as an encoded DICOM data set in the instance's transfer
syntax. For an image that is simply every byte in front of its Pixel Data, sliced from the
bytes being filed at no cost; for other objects (structure sets, plans) the small elements
are selected and encoded. pydicom reads either back lazily, converting only the elements a
query asks for.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from io import BytesIO

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import UID

__all__ = ["bulk_offset", "read", "summarize", "summarize_filed", "text_value"]

PIXEL_DATA = 0x7FE00010
_BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
#: Sequences with more items than this are bulk (contours, control points, frames).
MAX_ITEMS = 32
#: Values with more components than this are bulk (contour data, dose grid offsets).
MAX_VM = 64
#: Text longer than this is bulk.
MAX_TEXT = 1024
#: The bytes in front of Pixel Data are kept whole when there are no more than this.
MAX_PREFIX = 64 * 1024
#: Bytes (objects and their summaries) that :func:`summarize_filed` remembers, at most.
MEMO_BUDGET = 16 * 1024 * 1024
#: Objects larger than this are summarized each time (hashing them would cost more).
MEMO_MAX_OBJECT = 1024 * 1024


def bulk_offset(dataset: Dataset, transfer_syntax: str) -> int | None:
    """Where Pixel Data starts in the encoded data set, read before anything is converted."""
    element = dataset.get_item(PIXEL_DATA)
    if not isinstance(element, RawDataElement):
        return None
    header = 8 if UID(transfer_syntax).is_implicit_VR else 12
    return int(element.value_tell) - header


#: Bytes per value of the binary VRs, for counting a raw element's values without decoding.
_BINARY_SIZES = {"AT": 4, "FL": 4, "FD": 8, "SL": 4, "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}
#: String VRs whose values are ASCII (no Specific Character Set applies): a raw value's bytes
#: are its characters, and a backslash separates values.
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"})


def _raw_is_bulk(element: RawDataElement) -> bool | None:
    """Whether a still-encoded element is bulk, judged from its bytes; None: decode to tell.

    Decoding a contour's thousands of DS values only to find it too long to keep is most of
    the cost of summarizing a structure set, so what can be counted in the bytes is. Where
    decoding could change the answer - a VR pydicom may replace (UN, or none in Implicit VR
    for a private or unknown tag), padding a single long value may lose - it decides.
    """
    vr = element.VR
    if vr is None:
        if element.tag.is_private:
            return None
        try:
            vr = dictionary_VR(element.tag)
        except KeyError:
            return None
    if vr == "UN":
        return None
    if vr in _BULK_VRS:
        return True
    value = element.value or b""
    if vr in _BINARY_SIZES:
        return len(value) // _BINARY_SIZES[vr] > MAX_VM
    if vr in _ASCII_VRS:
        values = value.count(b"\\") + 1
        if values > MAX_VM:
            return True
        return None if values == 1 and len(value) > MAX_TEXT else False
    return None


def _keep(dataset: Dataset) -> Dataset:
    kept = Dataset()
    for raw in dataset.elements():
        if raw.tag.group in (0x0002, 0x7FE0):
            continue
        if isinstance(raw, RawDataElement):
            bulk = _raw_is_bulk(raw)
            if bulk:
                continue
            if bulk is False:
                kept[raw.tag] = raw  # written back as the same bytes
                continue
        element = dataset[raw.tag]
        if element.VR in _BULK_VRS:
            continue
        if element.VR == "SQ":
            items = element.value
            if len(items) > MAX_ITEMS:
                continue
            kept.add(DataElement(element.tag, "SQ", [_keep(item) for item in items]))
            continue
        if element.VM > MAX_VM:
            continue
        if isinstance(element.value, str) and len(element.value) > MAX_TEXT:
            continue
        kept.add(element)
    return kept


def summarize(dataset: Dataset, encoded: bytes, offset: int | None, transfer_syntax: str) -> bytes:
    """Return the non-bulk attributes, encoded in ``transfer_syntax``.

    ``encoded`` is the data set as filed and ``offset`` where its Pixel Data starts in it
    (``None`` when it has none, or when ``encoded`` is not the bytes ``offset`` was read from).
    """
    if offset is not None and 0 < offset <= MAX_PREFIX:
        return encoded[:offset]
    syntax = UID(transfer_syntax)
    out = DicomBytesIO()
    out.is_little_endian = syntax.is_little_endian
    out.is_implicit_VR = syntax.is_implicit_VR
    write_dataset(out, _keep(dataset))
    return out.getvalue()


class _Memo:
    """Summaries of recently filed objects, keyed by their exact bytes and transfer syntax.

    The same bytes always summarize alike (under the same pydicom settings, which the daemon
    never changes), and a test suite files the same objects over and over (a synthetic patient
    per test, from :mod:`simdaemon.patient_cache`): encoding a plan's or a structure set's
    small elements again is most of such an import. Least recently used entries go first once
    keys and summaries hold more than ``budget`` bytes.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._held = 0
        self._entries: OrderedDict[tuple[bytes, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[bytes, str]) -> bytes | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[bytes, str], summary: bytes) -> None:
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = summary
            self._held += len(key[0]) + len(summary)
            while self._held > self._budget:
                (old, _), dropped = self._entries.popitem(last=False)
                self._held -= len(old) + len(dropped)


_MEMO = _Memo(MEMO_BUDGET)


def summarize_filed(
    dataset: Dataset, encoded: bytes, offset: int | None, transfer_syntax: str
) -> bytes:
    """:func:`summarize` for an object about to be filed as ``encoded``.

    ``encoded`` must be ``dataset``'s exact encoding (as read from it, or written from it),
    so the summary follows from the bytes alone: an object filed before, byte for byte, gets
    the summary it got then.
    """
    if (offset is not None and 0 < offset <= MAX_PREFIX) or len(encoded) > MEMO_MAX_OBJECT:
        return summarize(dataset, encoded, offset, transfer_syntax)
    key = (encoded, transfer_syntax)
    summary = _MEMO.get(key)
    if summary is None:
        summary = summarize(dataset, encoded, offset, transfer_syntax)
        _MEMO.put(key, summary)
    return summary


def read(attributes: bytes, transfer_syntax: str) -> Dataset:
    """The kept attributes as a data set (elements convert when first accessed)."""
    syntax = UID(transfer_syntax)
    return read_dataset(BytesIO(attributes), syntax.is_implicit_VR, syntax.is_little_endian)


#: VRs whose still-encoded values :func:`text_value` reads itself: the default repertoire,
#: converted by pydicom without a character set. UI values are stripped one by one; CS, DA,
#: TM, DT and AS values only of the padding at the end (as pydicom converts them); IS values
#: only when they are one plain integer of at most 12 characters, the VR's limit (pydicom's
#: reading of anything else is intricate: a longer one may come back as ``1e+23``).
_READ_RAW = frozenset({"UI", "CS", "DA", "TM", "DT", "AS", "IS"})
_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")


@functools.lru_cache(maxsize=512)
def _raw_readable(keyword: str) -> int | None:
    """The tag of ``keyword`` when its dictionary VR is one :func:`text_value` reads raw."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    try:
        return tag if dictionary_VR(tag) in _READ_RAW else None
    except KeyError:
        return None


def _raw_text(element: RawDataElement, strip: bool) -> str | None:
    """What :func:`text_value` gives for a still-encoded element of a :data:`_READ_RAW` VR;
    None: convert it.

    The same text pydicom's conversion yields, without converting (and validating) the
    element: pydicom validates each UID against a regular expression on the way, and that
    was half of importing a small object (7% of a CT slice's); dates, times and instance
    numbers cost as much again.
    """
    explicit = element.VR
    if explicit is not None and explicit not in _READ_RAW:
        return None  # an explicit VR other than the dictionary's (UN, a wrong one): pydicom's
    vr = explicit if explicit is not None else dictionary_VR(element.tag)
    text = (element.value or b"").decode("iso8859").rstrip(" \x00")
    if vr == "UI":
        values = [value.strip() for value in text.split("\\")]
        return "\\".join(values)
    if vr == "IS":
        return text if len(text) <= 12 and _PLAIN_INTEGER.fullmatch(text) else None
    if strip and "\\" not in text:
        return text.strip()
    return text


def text_value(dataset: Dataset, keyword: str, *, strip: bool = True) -> str:
    """An attribute's value as text: "" when absent, multiple values joined by backslashes
    as DICOM encodes them; ``strip`` (the default) removes the padding of a single value."""
    tag = _raw_readable(keyword)
    if tag is not None:
        element = dataset.get_item(tag)
        if isinstance(element, RawDataElement):
            text = _raw_text(element, strip)
            if text is not None:
                return text
    value = dataset.get(keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip() if strip else str(value)
