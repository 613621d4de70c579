"""DaemonClient: talk to an ARIA DB Daemon (or simdaemon) as a trusted entity."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Literal, cast

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE

from dbdaemon_client.errors import (
    AssociationAborted,
    AssociationRejected,
    ClientError,
    ConnectionRefused,
    ConnectionTimeout,
    DaemonStatusError,
    NothingMoved,
    Unreachable,
    UnsafeMove,
)
from dbdaemon_client.results import (
    ImageResult,
    MoveResult,
    PatientResult,
    SeriesResult,
    StoredObject,
    StoreResult,
    StudyResult,
)
from dbdaemon_client.transport import open_association, start_receiver

__all__ = ["DaemonClient", "Entity", "QueryShapes"]

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
IMAGE_KEYS = ("SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "StudyInstanceUID",
              "InstanceNumber")  # fmt: skip
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


#: How queries are shaped. ``conformant`` (the default) sends the unique keys of every level
#: above the query level and only the values the caller asked to match on, which every
#: conformant Query/Retrieve SCP answers. ``evil-dicom`` copies Evil DICOM's CFinder exactly
#: (IMAGE queries by SeriesInstanceUID alone, NumberOfBeams = "0" as a matching value), to
#: reproduce what a C# script sends; lenient servers such as the ARIA daemon answer both.
QueryShapes = Literal["conformant", "evil-dicom"]


class DaemonClient:
    """Operations against the daemon, from ``local`` (a trusted entity of the daemon).

    Works against any conformant Query/Retrieve SCP too: queries carry the unique keys of
    the levels above, moves name exactly what they move and never fall back to universal
    matching.
    """

    def __init__(
        self,
        local: Entity,
        daemon: Entity,
        *,
        connect_timeout: float = 3.0,
        idle_timeout: float = 60.0,
        max_pdu: int = 16382,
        query_shapes: QueryShapes = "conformant",
    ) -> None:
        self.local = local
        self.daemon = daemon
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        #: The largest PDU this client receives (0: no limit); pynetdicom's default.
        self.max_pdu = max_pdu
        if query_shapes not in ("conformant", "evil-dicom"):
            raise ValueError(
                f"query_shapes={query_shapes!r}: expected 'conformant' or 'evil-dicom'"
            )
        self.query_shapes: QueryShapes = query_shapes

    @property
    def _where(self) -> str:
        return f"{self.daemon.ae_title} at {self.daemon.host}:{self.daemon.port}"

    def _associate(self, contexts: list[str]) -> Association:
        started = time.monotonic()
        opened = open_association(
            self.local.ae_title,
            self.daemon.host,
            self.daemon.port,
            self.daemon.ae_title,
            contexts,
            connect_timeout=self.connect_timeout,
            idle_timeout=self.idle_timeout,
            max_pdu=self.max_pdu,
        )
        assoc = opened.assoc
        if assoc.is_established:
            return assoc
        host, port = self.daemon.host, self.daemon.port
        if assoc.is_rejected and assoc.acceptor.primitive is not None:
            answer = assoc.acceptor.primitive
            result, source = answer.result or 0, answer.result_source or 0
            reason = answer.diagnostic or 0
            raise AssociationRejected(
                result, source, reason, where=self._where,
                hint=self._rejection_hint(result, source, reason),
            )  # fmt: skip
        error = opened.connect_error
        if isinstance(error, ConnectionRefusedError):
            raise ConnectionRefused(
                f"nothing listens on {host}:{port} (connection refused): is {self.daemon.ae_title}"
                f" running, and is {port} its DICOM port?"
            )
        if isinstance(error, TimeoutError):
            raise ConnectionTimeout(
                f"no TCP connection to {host}:{port} within {self.connect_timeout} s: the host "
                "does not answer (wrong address, a firewall, or an overloaded server)"
            )
        if error is not None:
            raise Unreachable(
                f"cannot reach {host}:{port}: {error.strerror or error} (check the address and "
                "the network route to the server)"
            )
        if opened.connected and time.monotonic() - started < self.connect_timeout:
            raise AssociationAborted("association request", where=self._where)
        raise ConnectionTimeout(
            f"{self._where} took the TCP connection but did not answer the association "
            f"request from {self.local.ae_title} within {self.connect_timeout} s (is it a DICOM "
            "server, and is it overloaded?)"
        )

    def _rejection_hint(self, result: int, source: int, reason: int) -> str:
        """What to change, for an A-ASSOCIATE-RJ's result, source and reason."""
        calling, called = self.local.ae_title, self.daemon.ae_title
        if result == 2 or source == 3:
            return "the server is busy (too many associations); try again later"
        if (source, reason) == (1, 3):
            return (
                f"the server does not accept '{calling}' from this machine: add '{calling}' "
                f"with this machine's IP address and port {self.local.port} to its trusted "
                "entities (ARIA: the DB Daemon's Trusted Application Entities)"
            )
        if (source, reason) == (1, 7):
            return (
                f"the server at {self.daemon.host}:{self.daemon.port} is not '{called}': use "
                "its AE title (the ARIA DB Daemon's default is VMSDBD)"
            )
        return (
            f"check the calling ('{calling}') and called ('{called}') AE titles and this "
            "machine's address against the server's configuration"
        )

    def _lost(self, operation: str, since: float, partial: tuple[Any, ...] = ()) -> ClientError:
        """The error for a request left unanswered: the daemon ended it, or it timed out.

        pynetdicom reports both as a response without a status; a wait shorter than the
        idle timeout means the association ended under it.
        """
        if time.monotonic() - since < self.idle_timeout:
            return AssociationAborted(operation, partial, where=self._where)
        return ConnectionTimeout(
            f"{self._where} did not answer the {operation} within {self.idle_timeout} s"
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
        study_uid = study if isinstance(study, str) else study.study_uid
        _require_unique("a series query", StudyInstanceUID=study_uid)
        keys = dict.fromkeys(SERIES_KEYS, "")
        keys["StudyInstanceUID"] = study_uid
        keys["Modality"] = modality or ""
        found = self.find("SERIES", **keys)
        return [SeriesResult.of(_keep(i, StudyInstanceUID=study_uid)) for i in found]

    def find_images(self, series: SeriesResult) -> list[ImageResult]:
        """The instances of a series with the keys Evil DICOM asks for its modality.

        The query carries the study's and the series' UIDs (a hierarchical server needs
        both); with ``query_shapes="evil-dicom"``, Evil DICOM's own shape instead.
        """
        _require_unique("an image query", StudyInstanceUID=series.study_uid,
                        SeriesInstanceUID=series.series_uid)  # fmt: skip
        keys: dict[str, Any] = dict.fromkeys(IMAGE_KEYS, "")
        for keyword in MODALITY_KEYS.get(series.modality, ()):
            keys[keyword] = None
        keys["SeriesInstanceUID"] = series.series_uid
        if self.query_shapes == "evil-dicom":
            del keys["StudyInstanceUID"]  # CFinder names the series alone
            if series.modality == "RTPLAN":
                keys["NumberOfBeams"] = "0"  # and sends this as a value
        else:
            keys["StudyInstanceUID"] = series.study_uid
        parents = {"StudyInstanceUID": series.study_uid, "SeriesInstanceUID": series.series_uid}
        return [ImageResult.of(_keep(i, **parents)) for i in self.find("IMAGE", **keys)]

    def move(
        self,
        target: Target,
        destination_ae: str,
        *,
        progress: Callable[[int, int, int, int], None] | None = None,
    ) -> MoveResult:
        """C-MOVE a patient, study, series or image (a find_* result) to a trusted entity.

        The identifier names ``target`` by the unique keys of its level and of every level
        above; a target with one of those empty, a wildcard or a list raises
        :class:`UnsafeMove` before anything is sent. ``progress(remaining, completed, failed,
        warning)`` is called on each pending response. Returns the counts; a refusal of the
        whole move (unknown destination 0xA801, unreachable 0xA702, bad identifier) raises
        :class:`DaemonStatusError`, and a success that moved nothing :class:`NothingMoved`.
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
        counted = "NumberOfCompletedSuboperations" in final or not pending
        last = pending[-1] if pending else MoveResult(code, 0, 0, 0)
        completed, failed, warning = (
            _counts(final) if counted else (last.completed, last.failed, last.warning)
        )
        if code == 0x0000 and completed + failed + warning == 0:
            named = ", ".join(f"{k}={v}" for k, v in keys.items())
            raise NothingMoved(
                f"{self._where} answered success to the C-MOVE at {level} level ({named}) but "
                "moved nothing (0 sub-operations): it found nothing under those keys"
            )
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
        received = self._receive(target)
        if into is None:
            return [dcmread(BytesIO(data)) for _, data in received]
        return [_write(into, uid, data) for uid, data in received]

    def _receive(self, target: Target) -> list[tuple[str, bytes]]:
        """Move ``target`` to this client; each object's SOP Instance UID and Part-10 bytes."""
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
        return received

    def export_plan(self, patient_id: str, plan: str, into: Path) -> list[Path]:
        """Write a plan and everything it references: structure set, its images, the doses.

        ``plan`` is the RT Plan's SOP Instance UID or its label. The references are followed
        in the retrieved objects themselves, as a planning system would: the plan's
        Referenced Structure Set, that structure set's referenced image series, and every
        RT Dose of the patient's studies that references the plan. Every query names the
        study and series it looks in, and keys a server does not return (a plan's label, a
        dose's referenced plan) are read from the retrieved objects instead, so the export
        is the same against any conformant server.
        """
        studies = self.find_studies(patient_id)
        found = self._find_plan(patient_id, plan, studies)
        files = [_write(into, *obj) for obj in self._receive(found)]
        stored_plan = dcmread(files[0])
        structure_uid = str(stored_plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID)
        structure_sets = [
            image
            for study in studies
            for series in self.find_series(study, modality="RTSTRUCT")
            for image in self.find_images(series)
            if image.sop_instance_uid == structure_uid
        ]
        if len(structure_sets) != 1:
            raise ClientError(
                f"the plan references structure set {structure_uid}, which {self._where} lists "
                f"{len(structure_sets)} time(s) among patient '{patient_id}''s studies"
            )
        files += [_write(into, *obj) for obj in self._receive(structure_sets[0])]
        stored_structures = dcmread(files[-1])
        for frame in stored_structures.get("ReferencedFrameOfReferenceSequence", []):
            for study in frame.get("RTReferencedStudySequence", []):
                for referenced in study.get("RTReferencedSeriesSequence", []):
                    for series in self.find_series(str(study.ReferencedSOPInstanceUID)):
                        if series.series_uid == referenced.SeriesInstanceUID:
                            files += [_write(into, *obj) for obj in self._receive(series)]
        for study in studies:
            for series in self.find_series(study, modality="RTDOSE"):
                for dose in self.find_images(series):
                    if dose.referenced_plan and dose.referenced_plan != found.sop_instance_uid:
                        continue
                    for uid, data in self._receive(dose):  # a reference not returned: read it
                        references = dcmread(BytesIO(data)).get("ReferencedRTPlanSequence", [])
                        plans = {str(r.get("ReferencedSOPInstanceUID", "")) for r in references}
                        if found.sop_instance_uid in plans:
                            files.append(_write(into, uid, data))
        return files

    def _find_plan(self, patient_id: str, plan: str, studies: list[StudyResult]) -> ImageResult:
        """The patient's one RT Plan whose SOP Instance UID or label is ``plan``."""
        plans = [
            image
            for study in studies
            for series in self.find_series(study, modality="RTPLAN")
            for image in self.find_images(series)
        ]
        chosen = [p for p in plans if plan in (p.sop_instance_uid, p.label)]
        if not chosen:  # the server may not return RTPlanLabel: read the labels it did not give
            for candidate in (p for p in plans if not p.label):
                ((_, data),) = self._receive(candidate)
                if str(dcmread(BytesIO(data)).get("RTPlanLabel", "")) == plan:
                    chosen.append(candidate)
        if len(chosen) != 1:
            raise ClientError(
                f"{len(chosen)} RT Plans of patient '{patient_id}' at {self._where} have UID or "
                f"label '{plan}'; expected exactly one"
            )
        return chosen[0]

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
    """The level and the unique keys that name ``target`` and the levels above it.

    PATIENT is asked in Patient Root, the other levels in Study Root. Raises
    :class:`UnsafeMove` when a key is empty, a wildcard or a list: such a C-MOVE matches
    more than the one target, and on a lenient server everything.
    """
    level, keys = _identify(target)
    _require_unique(f"a C-MOVE at {level} level", **keys)
    return level, keys


def _identify(target: Target) -> tuple[str, dict[str, str]]:
    if isinstance(target, PatientResult):
        return "PATIENT", {"PatientID": target.patient_id}
    if isinstance(target, StudyResult):
        return "STUDY", {"StudyInstanceUID": target.study_uid}
    if isinstance(target, SeriesResult):
        return "SERIES", {"StudyInstanceUID": target.study_uid,
                          "SeriesInstanceUID": target.series_uid}  # fmt: skip
    return "IMAGE", {"StudyInstanceUID": target.study_uid, "SeriesInstanceUID": target.series_uid,
                     "SOPInstanceUID": target.sop_instance_uid}  # fmt: skip


def _require_unique(request: str, **keys: str) -> None:
    """Raise :class:`UnsafeMove` unless every key has one value and no wildcard."""
    for keyword, value in keys.items():
        if not value.strip() or any(c in value for c in "*?\\"):
            said = "empty" if not value.strip() else f"'{value}'"
            raise UnsafeMove(
                f"{request} needs a single {keyword}, not {said}: as a matching key it would "
                "match every object at that level (on a clinical database, every patient); "
                f"take the target from a find_* result, or ask for {keyword} as a return key"
            )


def _keep(identifier: Dataset, **parents: str) -> Dataset:
    """``identifier`` with the unique keys above it that the server left empty, filled in."""
    for keyword, value in parents.items():
        if not str(identifier.get(keyword, "") or ""):
            setattr(identifier, keyword, value)
    return identifier


def _write(into: Path, uid: str, data: bytes) -> Path:
    """Write a received object as ``<SOP Instance UID>.dcm`` in ``into``, byte for byte."""
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{uid}.dcm"
    path.write_bytes(data)
    return path
