"""``/api/patients/...``, ``/api/instances/...``, ``/api/failed``: what the archive holds.

Objects are named by their DICOM identifiers (Patient ID, UIDs); a failed import by the
name the daemon gave it. No route takes a filesystem path.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from simdaemon.console import browse
from simdaemon.console.control import Control
from simdaemon.console.errors import ApiError
from simdaemon.console.pictures import picture
from simdaemon.console.png import ThumbnailError

__all__ = ["router"]


def router(control: Control) -> APIRouter:
    """The routes, bound to ``control``."""
    api = APIRouter(prefix="/api")

    def known(patient_id: str) -> str:
        if not any(p.patient_id == patient_id for p in control.archive.patients()):
            raise ApiError(404, f"no patient with Patient ID {patient_id!r}", "patient_id")
        return patient_id

    @api.get("/patients", summary="Every stored patient with its counts")
    def get_patients() -> list[dict[str, Any]]:
        return browse.patients(control.archive)

    @api.get("/patients/{patient_id}/studies", summary="A patient's studies")
    def get_studies(patient_id: str) -> list[dict[str, Any]]:
        return browse.studies(control.archive, known(patient_id))

    @api.get("/patients/{patient_id}/series", summary="A patient's series (?study_uid=)")
    def get_series(patient_id: str, study_uid: str | None = None) -> list[dict[str, Any]]:
        return browse.series(control.archive, known(patient_id), study_uid)

    @api.get("/patients/{patient_id}/instances", summary="A patient's instances (?series_uid=)")
    def get_instances(patient_id: str, series_uid: str | None = None) -> list[dict[str, Any]]:
        return browse.instances(control.archive, known(patient_id), series_uid)

    def row(uid: str) -> Any:
        found = control.archive.instance(uid)
        if found is None:
            raise ApiError(404, f"no instance with SOP Instance UID {uid!r}", "uid")
        return found

    @api.get(
        "/instances/{uid}/file",
        summary="The stored DICOM file (application/dicom)",
        response_class=FileResponse,
    )
    def get_file(uid: str) -> FileResponse:
        found = row(uid)
        return FileResponse(
            found.path, media_type="application/dicom", filename=f"{found.sop_instance_uid}.dcm"
        )

    @api.get(
        "/instances/{uid}/thumbnail.png",
        summary="An image's first frame, or a structure set's contours on its CT, as PNG",
        response_class=Response,
    )
    def get_thumbnail(uid: str) -> Response:
        found = row(uid)
        try:
            png = picture(control.archive, found.sop_instance_uid)
        except ThumbnailError as error:
            raise ApiError(422, f"uid: {error}", "uid") from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=60"})

    @api.get("/failed", summary="Objects that failed to import, newest first, with reasons")
    def get_failed() -> list[dict[str, Any]]:
        return browse.failed_imports(control.investigator.settings.failed_import_folder)

    @api.get("/review-tasks", summary="Treatment image review tasks created on import")
    def get_review_tasks() -> list[dict[str, Any]]:
        return [dataclasses.asdict(task) for task in control.archive.review_tasks()]

    return api
