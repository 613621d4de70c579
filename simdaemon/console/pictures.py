"""Which picture an instance gets: its own pixels, or a structure set's contours on its CT.

A structure set has no pixels; people recognise it by its outlines on the CT slice it was
drawn on, so its picture is the slice it has the most contours on, with those contours.
"""

from __future__ import annotations

from collections import Counter

from pydicom import dcmread
from pydicom.dataset import Dataset

from simdaemon.archive import Archive
from simdaemon.console.png import ThumbnailError, contours_on, thumbnail

__all__ = ["picture"]

RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"


def _referenced(contour: Dataset) -> str:
    images = contour.get("ContourImageSequence") or []
    return str(images[0].get("ReferencedSOPInstanceUID", "")) if images else ""


def _structures(archive: Archive, structure_set: Dataset) -> bytes:
    drawn: list[tuple[int, Dataset]] = [
        (int(roi.get("ReferencedROINumber", 0)), contour)
        for roi in structure_set.get("ROIContourSequence") or []
        for contour in roi.get("ContourSequence") or []
    ]
    slices = Counter(uid for _, contour in drawn if (uid := _referenced(contour)))
    for uid, _ in slices.most_common():
        row = archive.instance(uid)
        if row is None:
            continue  # drawn on a slice the archive does not hold
        contours = [
            (number, [float(v) for v in contour.get("ContourData") or []])
            for number, contour in drawn
            if _referenced(contour) == uid
        ]
        return contours_on(dcmread(row.path), contours)
    raise ThumbnailError("the structure set has no contour on a CT slice the archive holds")


def picture(archive: Archive, sop_instance_uid: str) -> bytes:
    """The PNG of a stored instance; :class:`ThumbnailError` says why there is none."""
    row = archive.instance(sop_instance_uid)
    if row is None:
        raise KeyError(sop_instance_uid)
    dataset = dcmread(row.path)
    if row.sop_class_uid == RT_STRUCTURE_SET:
        return _structures(archive, dataset)
    return thumbnail(dataset)
