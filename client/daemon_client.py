"""DaemonClient: talk to an ARIA DB Daemon (or simdaemon) as a trusted entity."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE

from client.errors import (
    AssociationAborted,
    AssociationRejected,
    ClientError,
    ConnectionTimeout,
    DaemonStatusError,
)
from client.results import (
    ImageResult,
    MoveResult,
    PatientResult,
    SeriesResult,
    StoredObject,
    StoreResult,
    StudyResult,
)
from client.transport import open_association, start_receiver

__all__ = ["DaemonClient", "Entity"]

VERIFICATION = "1.2.840.10008.1.1"
FIND_MODELS = {
    "study": "1.2.840.10008.5.1.4.1.2.2.1",
    "patient": "1.2.840.10008.5.1.4.1.2.1.1",
}
MOVE_MODELS = {
    "study": "1.2.840.10008.5.1.4.1.2.2.2",
    "patient": "1.2.840.10008.5.1.4.1.2.1.2",
}
#: What a move can be given: a result of one of the find_* calls.
Target = PatientResult | StudyResult | SeriesResult | ImageResult
#: The return keys Evil DICOM's CFinder asks for at each level.
PATIENT_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex")
STUDY_KEYS = ("StudyInstanceUID", "StudyID", "StudyDate", "StudyTime", "StudyDescription",
              "AccessionNumber", "PatientID", "PatientName")  # fmt: skip
SERIES_KEYS = ("SeriesInstanceUID", "StudyInstanceUID", "Modality", "SeriesNumber",
               "SeriesDescription")  # fmt: skip
IMAGE_KEYS = ("SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "InstanceNumber")
#: Evil DICOM's modality-specific image keys.
MODALITY_KEYS: dict[str, tuple[str, ...]] = {
    "CT": ("ImagePositionPatient", "SliceLocation"),
    "MR": ("ImagePositionPatient", "SliceLocation"),
    "PT": ("ImagePositionPatient", "SliceLocation"),
    "RTIMAGE": ("RTImageLabel", "ReferencedRTPlanSequence"),
    "RTPLAN": ("RTPlanLabel", "RTPlanName", "RTPlanDate", "RTPlanTime", "NumberOfBeams",
               "ApprovalStatus", "ReferencedRTPlanSequence"),
    "RTDOSE": ("DoseSummationType", "ReferencedRTPlanSequence"),
    "RTRECORD": ("TreatmentDate", "TreatmentTime", "ReferencedRTPlanSequence"),
    "RTSTRUCT": ("StructureSetLabel", "StructureSetDate"),
}  # fmt: skip


@dataclass(frozen=True)
class Entity:
    """A DICOM application entity: AE title, host and port."""

    ae_title: str
    host: str
    port: int


class DaemonClient:
    """Operations against the daemon, from ``local`` (a trusted entity of the daemon)."""

    def __init__(
        self,
        local: Entity,
        daemon: Entity,
        *,
        connect_timeout: float = 3.0,
        idle_timeout: float = 60.0,
        max_pdu: int = 16382,
    ) -> None:
        self.local = local
        self.daemon = daemon
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        #: The largest PDU this client receives (0: no limit); pynetdicom's default.
        self.max_pdu = max_pdu

    def _associate(self, contexts: list[str]) -> Association:
        started = time.monotonic()
        connected = threading.Event()
        assoc = open_association(
            self.local.ae_title,
            self.daemon.host,
            self.daemon.port,
            self.daemon.ae_title,
            contexts,
            connect_timeout=self.connect_timeout,
            idle_timeout=self.idle_timeout,
            max_pdu=self.max_pdu,
            on_connect=connected.set,
        )
        if assoc.is_established:
            return assoc
        if assoc.is_rejected and assoc.acceptor.primitive is not None:
            answer = assoc.acceptor.primitive
            raise AssociationRejected(
                answer.result or 0, answer.result_source or 0, answer.diagnostic or 0
            )
        if connected.is_set() and time.monotonic() - started < self.connect_timeout:
            raise AssociationAborted("association request")
        raise ConnectionTimeout(
            f"no association with {self.daemon.ae_title} at {self.daemon.host}:{self.daemon.port}"
            f" within {self.connect_timeout} s (daemon down, wrong address or not answering)"
        )

    def _lost(self, operation: str, since: float, partial: tuple[Any, ...] = ()) -> ClientError:
        """The error for a request left unanswered: the daemon ended it, or it timed out.

        pynetdicom reports both as a response without a status; a wait shorter than the
        idle timeout means the association ended under it.
        """
        if time.monotonic() - since < self.idle_timeout:
            return AssociationAborted(operation, partial)
        return ConnectionTimeout(
            f"the daemon did not answer the {operation} within {self.idle_timeout} s"
        )

    def echo(self) -> None:
        """Send a C-ECHO; raise unless the daemon answers success."""
        assoc = self._associate([VERIFICATION])
        since = time.monotonic()
        try:
            status = assoc.send_c_echo()
        finally:
            if assoc.is_established:
                assoc.release()
        if "Status" not in status:
            raise self._lost("C-ECHO", since)
        if status.Status != 0x0000:
            comment = str(status.get("ErrorComment", ""))
            raise DaemonStatusError("C-ECHO", int(status.Status), comment)

    def find(self, level: str, model: str = "study", **keys: Any) -> list[Dataset]:
        """C-FIND at ``level``; ``keys`` are attributes by keyword (``""`` asks for a key).

        Returns the identifiers of every pending response; a failure or cancel status raises
        :class:`DaemonStatusError` with the daemon's comment, a lost daemon
        :class:`ConnectionTimeout` - never an empty list instead of an answer.
        """
        sop_class = FIND_MODELS[model]
        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            if value is None:  # a return key without a value: empty, or a sequence of none
                value = [] if dictionary_VR(tag_for_keyword(keyword) or 0) == "SQ" else ""
            setattr(identifier, keyword, value)
        assoc = self._associate([sop_class])
        found: list[Dataset] = []
        final: Dataset | None = None
        since = time.monotonic()
        try:
            for status, answer in assoc.send_c_find(identifier, sop_class):
                if "Status" not in status:
                    break
                since = time.monotonic()
                if status.Status in (0xFF00, 0xFF01):
                    if answer is not None:
                        found.append(answer)
                    continue
                final = status
        finally:
            if assoc.is_established:
                assoc.release()
        if final is None:
            raise self._lost("C-FIND", since, tuple(found))
        if final.Status != 0x0000:
            raise DaemonStatusError("C-FIND", int(final.Status), str(final.get("ErrorComment", "")))
        return found

    def find_patients(self, patient_id: str = "", name: str = "") -> list[PatientResult]:
        """Patients by ID and/or name (wildcards allowed), Patient Root."""
        keys = dict.fromkeys(PATIENT_KEYS, "")
        keys.update(PatientID=patient_id, PatientName=name)
        return [PatientResult.of(i) for i in self.find("PATIENT", "patient", **keys)]

    def find_studies(self, patient_id: str) -> list[StudyResult]:
        """The studies (courses) of a patient, as Evil DICOM's FindStudies asks."""
        keys = dict.fromkeys(STUDY_KEYS, "")
        keys["PatientID"] = patient_id
        return [StudyResult.of(i) for i in self.find("STUDY", **keys)]

    def find_series(
        self, study: StudyResult | str, modality: str | None = None
    ) -> list[SeriesResult]:
        """The series of a study (a result or its UID), of one modality when given."""
        keys = dict.fromkeys(SERIES_KEYS, "")
        keys["StudyInstanceUID"] = study if isinstance(study, str) else study.study_uid
        keys["Modality"] = modality or ""
        return [SeriesResult.of(i) for i in self.find("SERIES", **keys)]

    def find_images(self, series: SeriesResult) -> list[ImageResult]:
        """The instances of a series with the keys Evil DICOM asks for its modality."""
        keys: dict[str, Any] = dict.fromkeys(IMAGE_KEYS, "")
        for keyword in MODALITY_KEYS.get(series.modality, ()):
            keys[keyword] = None
        if series.modality == "RTPLAN":
            keys["NumberOfBeams"] = "0"  # as Evil DICOM sends it; the daemon ignores it
        keys["SeriesInstanceUID"] = series.series_uid
        return [ImageResult.of(i) for i in self.find("IMAGE", **keys)]

    def move(
        self,
        target: Target,
        destination_ae: str,
        *,
        progress: Callable[[int, int, int, int], None] | None = None,
    ) -> MoveResult:
        """C-MOVE a patient, study, series or image (a find_* result) to a trusted entity.

        ``progress(remaining, completed, failed, warning)`` is called on each pending
        response. Returns the counts; a refusal of the whole move (unknown destination
        0xA801, unreachable 0xA702, bad identifier) raises :class:`DaemonStatusError`.
        """
        level, keys = _move_keys(target)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
        sop_class = MOVE_MODELS["study" if level != "PATIENT" else "patient"]
        assoc = self._associate([sop_class])
        final: Dataset | None = None
        failed_uids: tuple[str, ...] = ()
        pending: tuple[MoveResult, ...] = ()
        since = time.monotonic()
        try:
            for status, answer in assoc.send_c_move(identifier, destination_ae, sop_class):
                if "Status" not in status:
                    break
                since = time.monotonic()
                counts = _counts(status)
                if status.Status == 0xFF00:
                    pending = (MoveResult(0xFF00, *counts),)
                    if progress is not None:
                        progress(int(status.get("NumberOfRemainingSuboperations", 0)), *counts)
                    continue
                final = status
                if answer is not None and "FailedSOPInstanceUIDList" in answer:
                    listed = answer.FailedSOPInstanceUIDList
                    failed_uids = (listed,) if isinstance(listed, str) else tuple(listed)
        finally:
            if assoc.is_established:
                assoc.release()
        if final is None:
            raise self._lost("C-MOVE", since, pending)
        code = int(final.Status)
        comment = str(final.get("ErrorComment", ""))
        if code not in (0x0000, 0xB000, 0xFE00):
            raise DaemonStatusError("C-MOVE", code, comment)
        completed, failed, warning = _counts(final)
        return MoveResult(code, completed, failed, warning, failed_uids, comment)

    def store(self, objects: Sequence[Dataset | Path | str]) -> StoreResult:
        """C-STORE data sets or files over one association; the answer for each, in order."""
        datasets = [o if isinstance(o, Dataset) else dcmread(o) for o in objects]
        classes = list(dict.fromkeys(str(ds.SOPClassUID) for ds in datasets))
        assoc = self._associate(classes)
        answers: list[StoredObject] = []
        try:
            for ds in datasets:
                since = time.monotonic()
                status = assoc.send_c_store(ds)
                if "Status" not in status:
                    raise self._lost(f"C-STORE of {ds.SOPInstanceUID}", since, tuple(answers))
                answers.append(
                    StoredObject(
                        str(ds.SOPInstanceUID),
                        int(status.Status),
                        str(status.get("ErrorComment", "")),
                    )
                )
        finally:
            if assoc.is_established:
                assoc.release()
        return StoreResult(tuple(answers))

    def retrieve(self, target: Target, into: Path | None = None) -> list[Any]:
        """Move ``target`` to this client itself and return what arrived.

        A storage receiver listens on ``local.port`` for the duration (the daemon connects
        back to the trusted entity's port). With ``into`` each object is written there as a
        Part-10 file, byte for byte as received, and the paths are returned; without, the
        data sets. A partial move raises :class:`DaemonStatusError` naming the failed UIDs.
        """
        received: list[tuple[str, bytes]] = []
        lock = threading.Lock()

        def on_store(event: evt.Event) -> int:
            data = event.encoded_dataset()
            with lock:
                received.append((str(cast(C_STORE, event.request).AffectedSOPInstanceUID), data))
            return 0x0000

        server = start_receiver(self.local, on_store)
        try:
            result = self.move(target, self.local.ae_title)
        finally:
            server.shutdown()
        if not result.ok:
            failed = ", ".join(result.failed_uids) or "none listed"
            raise DaemonStatusError(
                "C-MOVE to self", result.status, f"{result.failed} failed ({failed})"
            )
        if into is None:
            return [dcmread(BytesIO(data)) for _, data in received]
        into.mkdir(parents=True, exist_ok=True)
        paths = []
        for uid, data in received:
            path = into / f"{uid}.dcm"
            path.write_bytes(data)
            paths.append(path)
        return paths

    def export_plan(self, patient_id: str, plan: str, into: Path) -> list[Path]:
        """Write a plan and everything it references: structure set, its images, the doses.

        ``plan`` is the RT Plan's SOP Instance UID or its label. The references are followed
        in the retrieved objects themselves, as a planning system would: the plan's
        Referenced Structure Set, that structure set's referenced image series, and every
        RT Dose of the patient's studies that references the plan.
        """
        studies = self.find_studies(patient_id)
        plans = [
            image
            for study in studies
            for series in self.find_series(study, modality="RTPLAN")
            for image in self.find_images(series)
            if plan in (image.sop_instance_uid, image.label)
        ]
        if len(plans) != 1:
            raise ClientError(
                f"{len(plans)} RT Plans of patient '{patient_id}' have UID or label '{plan}'; "
                "expected exactly one"
            )
        (found,) = plans
        files = self.retrieve(found, into)
        stored_plan = dcmread(files[0])
        structure_uid = str(stored_plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID)
        (structure_set,) = [ImageResult.of(i) for i in self.find(
            "IMAGE", SOPInstanceUID=structure_uid, SeriesInstanceUID=None, SOPClassUID=None,
            StudyInstanceUID=None)]  # fmt: skip
        files += self.retrieve(structure_set, into)
        stored_structures = dcmread(files[-1])
        for frame in stored_structures.get("ReferencedFrameOfReferenceSequence", []):
            for study in frame.get("RTReferencedStudySequence", []):
                for series in study.get("RTReferencedSeriesSequence", []):
                    images = self.find("SERIES", SeriesInstanceUID=series.SeriesInstanceUID,
                                       StudyInstanceUID=None, Modality=None)  # fmt: skip
                    for image_series in images:
                        files += self.retrieve(SeriesResult.of(image_series), into)
        for study in studies:
            for series in self.find_series(study, modality="RTDOSE"):
                for dose in self.find_images(series):
                    if dose.referenced_plan == found.sop_instance_uid:
                        files += self.retrieve(dose, into)
        return files

    def ping(self) -> bool:
        """Return True only when a C-ECHO response with success arrives."""
        try:
            self.echo()
        except ClientError:
            return False
        return True


def _counts(status: Dataset) -> tuple[int, int, int]:
    return (
        int(status.get("NumberOfCompletedSuboperations", 0)),
        int(status.get("NumberOfFailedSuboperations", 0)),
        int(status.get("NumberOfWarningSuboperations", 0)),
    )


def _move_keys(target: Target) -> tuple[str, dict[str, str]]:
    """The level and unique keys that name ``target`` (Study Root, or Patient Root)."""
    if isinstance(target, PatientResult):
        return "PATIENT", {"PatientID": target.patient_id}
    if isinstance(target, StudyResult):
        return "STUDY", {"StudyInstanceUID": target.study_uid}
    if isinstance(target, SeriesResult):
        return "SERIES", {"StudyInstanceUID": target.study_uid,
                          "SeriesInstanceUID": target.series_uid}  # fmt: skip
    keys = {"SOPInstanceUID": target.sop_instance_uid}
    if target.series_uid:
        keys["SeriesInstanceUID"] = target.series_uid
    return "IMAGE", keys
