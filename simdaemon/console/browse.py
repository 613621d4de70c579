"""The archive as the console shows it: patients, studies, series, instances, failed imports.

JSON-ready dictionaries built from the archive's typed rows (no SQL here: that stays in
``archive.py``), shared by the API and the pages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from simdaemon.archive import Archive, InstanceRow

__all__ = ["failed_imports", "instances", "patients", "series", "studies"]

#: Failed imports listed at most (newest first): the folder may hold thousands.
FAILED_SHOWN = 500


def patients(archive: Archive) -> list[dict[str, Any]]:
    """Every patient with its counts, in the order created."""
    return [dataclasses.asdict(row) for row in archive.patients()]


def _text(row: InstanceRow, keyword: str) -> str:
    return str(row.attributes.get(keyword, "") or "")


def studies(archive: Archive, patient_id: str) -> list[dict[str, Any]]:
    """A patient's studies (course in ARIA terms), with their series and instance counts."""
    found: dict[str, dict[str, Any]] = {}
    for row in archive.instances(patient_id):
        study = found.setdefault(
            row.study_uid,
            {
                "study_uid": row.study_uid,
                "study_id": _text(row, "StudyID"),
                "date": _text(row, "StudyDate"),
                "description": _text(row, "StudyDescription"),
                "series": set(),
                "instances": 0,
                "modalities": set(),
            },
        )
        study["series"].add(row.series_uid)
        study["instances"] += 1
        study["modalities"].add(_text(row, "Modality"))
    return [
        {**s, "series": len(s["series"]), "modalities": sorted(s["modalities"] - {""})}
        for s in found.values()
    ]


def series(archive: Archive, patient_id: str, study_uid: str | None = None) -> list[dict[str, Any]]:
    """A patient's series (of one study, when given)."""
    return [
        {**dataclasses.asdict(row), "user_origin": row.user_origin}
        for row in archive.series()
        if row.patient_id == patient_id and (study_uid is None or row.study_uid == study_uid)
    ]


def instances(
    archive: Archive, patient_id: str, series_uid: str | None = None
) -> list[dict[str, Any]]:
    """A patient's instances (of one series, when given), in the order received."""
    return [
        {
            "sop_instance_uid": row.sop_instance_uid,
            "sop_class_uid": row.sop_class_uid,
            "series_uid": row.series_uid,
            "study_uid": row.study_uid,
            "modality": _text(row, "Modality"),
            "instance_number": _text(row, "InstanceNumber"),
            "calling_ae": row.calling_ae,
            "received": row.received,
            "transfer_syntax": row.transfer_syntax,
        }
        for row in archive.instances(patient_id)
        if series_uid is None or row.series_uid == series_uid
    ]


def _reason(path: Path) -> dict[str, Any]:
    """One ``.reason.txt`` as its fields; the name is the file's stem, never a path."""
    fields: dict[str, Any] = {"name": path.name.removesuffix(".reason.txt")}
    names = {"status": "status", "answered": "answered", "rule": "rule",
             "calling AE": "calling_ae", "SOP Instance UID": "sop_instance_uid",
             "reason": "reason"}  # fmt: skip
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        label, colon, value = line.partition(": ")
        if colon and label in names:
            fields[names[label]] = value
    return fields


def failed_imports(folder: Path) -> list[dict[str, Any]]:
    """The objects that failed to import, newest first, each with its reason."""
    if not folder.is_dir():
        return []
    reasons = sorted(folder.glob("*.reason.txt"), reverse=True)[:FAILED_SHOWN]
    return [_reason(path) for path in reasons]
