"""The attributes of an instance kept in the archive row, so queries never open the file.

Everything a C-FIND return key can ask for is small: names, dates, UIDs, labels, counts,
short sequences of references. What is large - pixel data, contour points, control point
lists of hundreds of items - stays only in the file. The kept subset is stored as DICOM JSON
(PS3.18 F.2), so a later release reads it back with pydicom's own ``Dataset.from_json``.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

__all__ = ["summarize"]

_BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
#: Sequences with more items than this are bulk (contours, control points, frames).
MAX_ITEMS = 32
#: Values with more components than this are bulk (contour data, dose grid offsets).
MAX_VM = 64
#: Text longer than this is bulk.
MAX_TEXT = 1024


def _keep(dataset: Dataset) -> Dataset:
    kept = Dataset()
    for element in dataset:
        if element.tag.group in (0x0002, 0x7FE0) or element.VR in _BULK_VRS:
            continue
        if element.VR == "SQ":
            items = element.value
            if len(items) > MAX_ITEMS:
                continue
            copy = type(element)(element.tag, "SQ", [_keep(item) for item in items])
            kept.add(copy)
            continue
        if element.VM > MAX_VM:
            continue
        if isinstance(element.value, str) and len(element.value) > MAX_TEXT:
            continue
        kept.add(element)
    return kept


def summarize(dataset: Dataset) -> dict[str, Any]:
    """Return the non-bulk attributes of a decoded data set as a DICOM JSON dictionary."""
    result: dict[str, Any] = _keep(dataset).to_json_dict(
        bulk_data_threshold=MAX_TEXT, bulk_data_element_handler=lambda _: ""
    )
    return result
