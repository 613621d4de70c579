"""The import pipeline of SPEC section 5, shared by C-STORE and ``simdaemon import``.

Steps, in order: check the encoding on the raw bytes (:mod:`simdaemon.wellformed`), parse
(from what that check found, :mod:`simdaemon.reading`) and validate (0xA900), decode text in
the import character set (warning 0xB000 when text had to be replaced), place it
(:func:`simdaemon.matching.place`: match the patient, attach or create, or fail
0xC001/0xC002/0xC003; handle a duplicate SOP Instance UID, 0xC004, overwrite or ignore; keep
studies with their patient, series with their study), apply the image options (review task,
CT user origin), persist. Any failure parks the object as received in the failed-import
folder with a reason file, and the answer carries a short
Error Comment; the audit trail and the reason file carry the whole explanation.

Nothing here knows about associations: :class:`Received` is bytes plus who sent them, so a
file imported from disk goes through exactly the same rules as one sent over the network.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID

from simdaemon import status
from simdaemon.archive import Archive, NewInstance, NewSeries, NewStudy, Transaction
from simdaemon.attributes import bulk_offset, summarize_filed, text_value
from simdaemon.charset import UTF8, Decoded, decode_dataset
from simdaemon.config import Config, TrustedEntity
from simdaemon.findings import (
    Finding,
    Severity,
    TextValue,
    replaced_or_dropped,
    store_without_charset_non_ascii,
    text_charset_mismatch,
)
from simdaemon.investigation import Investigator
from simdaemon.matching import (
    Attach,
    Create,
    Demographics,
    Incoming,
    Keep,
    Refusal,
    Rules,
    place,
)
from simdaemon.part10 import header, split, wrap
from simdaemon.printable import CONTROL
from simdaemon.reading import read_scanned
from simdaemon.reporting import refusal_comment
from simdaemon.validation import is_valid_uid, validate
from simdaemon.wellformed import KeptScan, scan

__all__ = ["ImportResult", "Importer", "Received", "received_from"]

LOGGER = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
RT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.1"
#: Error Comment (0000,0902) is LO in the command set: default repertoire, 64 characters.
MAX_COMMENT = 64


@dataclass(frozen=True)
class Received:
    """An object as it arrived: the encoded data set and where it came from.

    ``context_sop_class`` is the abstract syntax of the presentation context the object came
    on, which its SOP Class must equal; empty for an object imported from a file.
    """

    dataset: bytes
    transfer_syntax: str
    calling_ae: str
    peer: str = "local"
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    context_sop_class: str = ""
    #: The well-formedness scan of ``dataset`` when whoever made this object has it already,
    #: so the import need not walk the bytes again: the patient cache
    #: (:mod:`simdaemon.patient_cache`) scans each object it encodes once and imports it into
    #: a daemon per test. Used only while it is the scan of this very ``dataset`` object in
    #: this ``transfer_syntax`` (:meth:`~simdaemon.wellformed.KeptScan.made_of`): a copy with
    #: other bytes or another syntax is scanned again. ``None``: the import scans.
    scanned: KeptScan | None = field(default=None, repr=False, compare=False)

    def as_file(self) -> bytes:
        """The object as a Part-10 file, exactly as received behind the meta information.

        UIDs the meta information cannot carry (invalid ones) are replaced there by
        ``2.25.0``; the data set itself is kept byte for byte.
        """
        return wrap(
            self.dataset,
            sop_class_uid=_meta_uid(self.sop_class_uid),
            sop_instance_uid=_meta_uid(self.sop_instance_uid),
            transfer_syntax=self.transfer_syntax,
            source_ae=self.calling_ae if len(self.calling_ae) <= 16 else "",
        )


def _meta_uid(value: str) -> str:
    return value if is_valid_uid(value) else "2.25.0"


@dataclass(frozen=True)
class ImportResult:
    """What became of one object."""

    status: int
    answered: int
    rule: str
    comment: str
    detail: str
    sop_instance_uid: str = ""
    patient_id: str = ""
    parked: Path | None = None
    #: What the findings rules said of the object's text (reported by the C-STORE service).
    findings: tuple[Finding, ...] = ()

    @property
    def stored(self) -> bool:
        """The object is in the archive (success or warning)."""
        return status.outcome(self.status) in ("success", "warning")

    def audit_fields(self) -> ImportAudit:
        """What the audit event of this import says about its outcome (C-STORE or local)."""
        return {
            "outcome": status.outcome(self.answered),
            "rule": self.rule,
            "status": self.answered,
            "sop_instance_uid": self.sop_instance_uid,
        }


class ImportAudit(TypedDict):
    """The fields of an import's audit event that say how it ended."""

    outcome: str
    rule: str
    status: int
    sop_instance_uid: str


def received_from(dataset: Dataset, calling_ae: str) -> Received:
    """An in-memory data set as if it had arrived: encoded, Explicit VR Little Endian."""
    out = DicomBytesIO()
    dcmwrite(out, dataset, enforce_file_format=True)
    meta, data = split(out.getvalue())
    return Received(
        dataset=data,
        transfer_syntax=str(meta.TransferSyntaxUID),
        calling_ae=calling_ae,
        sop_class_uid=str(dataset.SOPClassUID),
        sop_instance_uid=str(dataset.SOPInstanceUID),
    )


def _comment(text: str) -> str:
    """Make an Error Comment: default repertoire, no control characters, at most 64 characters.

    A backslash would split the LO value in two (``ISO 2022 IR 6\\ISO 2022 IR 87``): it
    becomes ``/``; a control character (LO has none) becomes ``?``, as other characters
    outside the repertoire do.
    """
    ascii_text = text.encode("ascii", errors="replace").decode("ascii").replace("\\", "/")
    ascii_text = CONTROL.sub("?", ascii_text)
    return ascii_text if len(ascii_text) <= MAX_COMMENT else f"{ascii_text[: MAX_COMMENT - 3]}..."


def _check_lengths(dataset: Dataset) -> None:
    """Raise when an element holds fewer bytes than its length says (a truncated object).

    pydicom reads a short last element without complaint; the daemon must not file half an
    image as if it were whole.
    """
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts its elements
        element = dataset.get_item(tag)
        if isinstance(element, RawDataElement) and element.length != 0xFFFFFFFF:
            held = len(element.value or b"")
            if held != element.length:
                raise ValueError(
                    f"element {BaseTag(tag)} declares {element.length} bytes but holds {held}: "
                    "the data set is truncated"
                )


def _incoming(dataset: Dataset) -> Incoming:
    """The object's patient demographics and UIDs, as placement compares them."""
    other_ids = dataset.get("OtherPatientIDs") or []
    if isinstance(other_ids, str):
        other_ids = [other_ids]
    return Incoming(
        demographics=Demographics.from_values(
            text_value(dataset, "PatientID"),
            [str(v) for v in other_ids],
            text_value(dataset, "PatientName"),
            text_value(dataset, "PatientBirthDate"),
        ),
        study_uid=text_value(dataset, "StudyInstanceUID"),
        series_uid=text_value(dataset, "SeriesInstanceUID"),
        sop_instance_uid=text_value(dataset, "SOPInstanceUID"),
    )


def _study(dataset: Dataset) -> NewStudy:
    """The study row an object creates when its study is new."""
    return NewStudy(
        study_uid=text_value(dataset, "StudyInstanceUID"),
        study_id=text_value(dataset, "StudyID"),
        study_date=text_value(dataset, "StudyDate"),
        study_time=text_value(dataset, "StudyTime"),
        accession_number=text_value(dataset, "AccessionNumber"),
        description=text_value(dataset, "StudyDescription"),
        referring_physician=text_value(dataset, "ReferringPhysicianName"),
    )


def _series(dataset: Dataset) -> NewSeries:
    """The series row an object creates when its series is new."""
    return NewSeries(
        series_uid=text_value(dataset, "SeriesInstanceUID"),
        modality=text_value(dataset, "Modality"),
        series_number=text_value(dataset, "SeriesNumber"),
        description=text_value(dataset, "SeriesDescription"),
        series_date=text_value(dataset, "SeriesDate"),
        series_time=text_value(dataset, "SeriesTime"),
        frame_of_reference_uid=text_value(dataset, "FrameOfReferenceUID"),
    )


def _text_findings(decoded: Decoded) -> list[Finding]:
    """The findings on how the object's text is encoded: invalid, or undeclared non-ASCII."""
    declared = tuple(term for term in decoded.declared if term)
    found: list[Finding] = []
    if declared and decoded.undecodable:
        where = decoded.undecodable[0]
        mismatch = text_charset_mismatch(TextValue(where, declared, valid=False, text=""))
        if mismatch is not None:
            found.append(mismatch)
    if decoded.non_ascii:
        value = TextValue(decoded.non_ascii[0], declared, valid=True, text="", non_ascii=True)
        undeclared = store_without_charset_non_ascii(value)
        if undeclared is not None:
            found.append(undeclared)
    return found


_NAME_PARTS = {"last_name": "PatientName (family)", "first_name": "PatientName (given)"}


def _lost_characters(refusal: Refusal, decoded: Decoded) -> Finding | None:
    """text-charset-mismatch when a name differs from the stored one only by lost accents."""
    for criterion, incoming, stored in refusal.compared:
        if criterion in _NAME_PARTS and stored and replaced_or_dropped(incoming, stored):
            value = TextValue(
                _NAME_PARTS[criterion], decoded.declared, valid=True, text=incoming, stored=stored
            )
            return text_charset_mismatch(value)
    return None


def _name_lost_characters(incoming: Incoming, attach: Attach, decoded: Decoded) -> Finding | None:
    """text-charset-mismatch when an attached object's name lost the stored one's accents."""
    stored = attach.patient.demographics
    for criterion in _NAME_PARTS:
        mine, theirs = getattr(incoming.demographics, criterion), getattr(stored, criterion)
        if theirs and replaced_or_dropped(mine, theirs):
            value = TextValue(_NAME_PARTS[criterion], decoded.declared, True, mine, theirs)
            return text_charset_mismatch(value)
    return None


class _Failed(Exception):
    """Ends an import at the step that failed, with the answer to give."""

    def __init__(
        self,
        code: int,
        rule: str,
        comment: str,
        detail: str,
        compared: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        super().__init__(detail)
        self.code, self.rule, self.comment, self.detail, self.compared = (
            code,
            rule,
            comment,
            detail,
            compared,
        )


class Importer:
    """Runs objects through the import pipeline into one archive."""

    def __init__(self, config: Config, archive: Archive, investigator: Investigator) -> None:
        self.config = config
        self.archive = archive
        self.investigator = investigator
        self._default_entity = TrustedEntity(ae_title="LOCAL", ip="127.0.0.1", port=1)

    @property
    def rules(self) -> Rules:
        """Where objects go: the placement rules of the configuration."""
        return Rules.from_config(self.config)

    def run(self, received: Received, entity: TrustedEntity | None = None) -> ImportResult:
        """Import one object; never raises for anything the object contains.

        The result carries the findings on the object's text (:mod:`simdaemon.findings`);
        one at least ``[findings] fail_on`` severe refuses the object (0xC000) unstored.
        """
        found: list[Finding] = []
        result = self._run(received, entity, found)
        return dataclasses.replace(result, findings=tuple(found)) if found else result

    def _run(
        self, received: Received, entity: TrustedEntity | None, found: list[Finding]
    ) -> ImportResult:
        source = entity if entity is not None else self._default_entity
        if self.config.investigation.save_all_iods:
            self.investigator.save_iod(
                "in", received.calling_ae, received.sop_instance_uid, received.as_file()
            )
        sop_uid, patient_id = received.sop_instance_uid, ""
        try:
            dataset, decoded, offset = self._read(received, source)
            sop_uid = text_value(dataset, "SOPInstanceUID")
            patient_id = text_value(dataset, "PatientID")
            if self.config.findings.enabled:
                found.extend(_text_findings(decoded))
                self._refuse_for(found)
            detail = self._store(received, dataset, decoded, offset, found)
        except _Failed as failed:
            return self._fail(received, failed, sop_uid, patient_id)
        except (OSError, sqlite3.Error) as error:
            # The archive cannot take the object (disk full, permissions, a locked database):
            # nothing was committed, so the peer may send it again later.
            LOGGER.error("cannot write %s to the archive: %r", sop_uid, error)
            refused = _Failed(
                status.OUT_OF_RESOURCES,
                "archive-write",
                _comment(f"archive cannot store it: {type(error).__name__}"),
                f"the archive could not store the object: {error}",
            )
            try:
                return self._fail(received, refused, sop_uid, patient_id)
            except OSError:  # the failed-import folder is on the same full disk, perhaps
                return ImportResult(
                    refused.code, refused.code, refused.rule, refused.comment, refused.detail,
                    sop_uid, patient_id,
                )  # fmt: skip
        warning = self._charset_warning(decoded, source)
        if warning:
            return ImportResult(
                status.COERCED, status.COERCED, "import-charset", _comment(warning[0]),
                f"{detail}; {warning[1]}", sop_uid, patient_id,
            )  # fmt: skip
        return ImportResult(
            status.SUCCESS, status.SUCCESS, "stored", "", detail, sop_uid, patient_id
        )

    # --- steps -----------------------------------------------------------------------------

    def _read(
        self, received: Received, source: TrustedEntity
    ) -> tuple[Dataset, Decoded, int | None]:
        """Parse, decode text and validate.

        Return the data set, how its text decoded and where its Pixel Data starts.
        """
        syntax = UID(received.transfer_syntax)
        kept = received.scanned
        if kept is not None and kept.made_of(received.dataset, received.transfer_syntax):
            scanned = kept.scan
        else:
            scanned = scan(received.dataset, received.transfer_syntax)
        malformed = scanned.problem
        if malformed is not None:
            raise _Failed(
                status.INVALID_OBJECT, malformed.rule, _comment(malformed.comment), malformed.detail
            )
        try:
            # The scan found every top-level element: built from it, as pydicom reads it.
            dataset = read_scanned(received.dataset, scanned, bool(syntax.is_implicit_VR))
            _check_lengths(dataset)
            offset = bulk_offset(dataset, received.transfer_syntax)
            decoded = decode_dataset(
                dataset,
                source.import_charset,
                source.override_import_charset,
                plain_items=scanned.plain_items,
            )
        except Exception as error:  # noqa: BLE001 - any parse error is the peer's bad data
            reason = f"{type(error).__name__}: {error}"
            raise _Failed(
                status.INVALID_OBJECT,
                "parse",
                _comment(f"cannot parse the data set: {reason}"),
                f"the data set cannot be parsed in {syntax.name}: {reason}",
            ) from None
        problem = validate(
            dataset,
            sop_class_uid=received.sop_class_uid,
            sop_instance_uid=received.sop_instance_uid,
            context_sop_class=received.context_sop_class,
        )
        if problem is not None:
            raise _Failed(
                status.INVALID_OBJECT, problem.rule, _comment(problem.comment), problem.detail
            )
        return dataset, decoded, offset

    @staticmethod
    def _charset_warning(decoded: Decoded, source: TrustedEntity) -> tuple[str, str] | None:
        """The Error Comment and explanation of warning 0xB000, when text was replaced."""
        if decoded.clean:
            return None
        charset = "\\".join(decoded.charset)
        if decoded.unknown:
            terms = "\\".join(decoded.unknown)
            return (
                f"unknown Specific Character Set '{terms}' (0008,0005)",
                f"Specific Character Set (0008,0005) term(s) '{terms}' are not DICOM defined "
                f"terms; text was read as {charset}"
                + (f" and replaced in {', '.join(decoded.undecodable[:5])}"
                   if decoded.undecodable else ""),
            )  # fmt: skip
        where = ", ".join(decoded.undecodable[:5])
        forced = source.override_import_charset and decoded.declared
        how = "forced by override_import_charset" if forced else "import_charset"
        return (
            f"text not valid in {charset} replaced",
            f"text in {where} is not valid {charset} ({how} of '{source.ae_title}') "
            "and was stored with replacement characters",
        )

    @staticmethod
    def _encode(received: Received, dataset: Dataset, decoded: Decoded) -> bytes | None:
        """The data set re-encoded in UTF-8; ``None`` when its text is as declared and the
        received bytes are filed as they are."""
        if decoded.clean and decoded.as_declared:
            return None
        dataset.SpecificCharacterSet = UTF8
        syntax = UID(received.transfer_syntax)
        out = DicomBytesIO()
        out.is_little_endian = syntax.is_little_endian
        out.is_implicit_VR = syntax.is_implicit_VR
        write_dataset(out, dataset)
        return out.getvalue()

    def _refuse_for(self, found: Sequence[Finding]) -> None:
        """Refuse the object (0xC000) for a finding at least ``[findings] fail_on`` severe."""
        fail_on = self.config.findings.fail_on
        if fail_on == "none":
            return
        least = Severity.parse(fail_on)
        for finding in found:
            if finding.severity >= least:
                raise _Failed(
                    status.UNABLE_TO_PROCESS,
                    finding.rule,
                    refusal_comment(finding),
                    f'refused for finding {finding.sentence()} ([findings] fail_on = "{fail_on}")',
                )

    def _store(
        self,
        received: Received,
        dataset: Dataset,
        decoded: Decoded,
        offset: int | None,
        found: list[Finding],
    ) -> str:
        """Stage the file, then decide where the object goes and write it; say what happened.

        The decision (:func:`simdaemon.matching.place`) and the writes share one transaction,
        so no other import changes what was decided on before it is written.
        """
        incoming = _incoming(dataset)
        encoded = self._encode(received, dataset, decoded)
        if encoded is None:
            encoded = received.dataset
        else:
            offset = None  # the Pixel Data offset was read from the bytes as received
        head = header(
            sop_class_uid=text_value(dataset, "SOPClassUID"),
            sop_instance_uid=incoming.sop_instance_uid,
            transfer_syntax=received.transfer_syntax,
            source_ae=received.calling_ae,
        )
        attributes = summarize_filed(dataset, encoded, offset, received.transfer_syntax)
        staged = self.archive.stage(head, encoded)
        try:
            with self.archive.transaction() as tx:
                rules = self.rules
                decision = place(tx.candidates(incoming, rules.criteria), incoming, rules)
                if isinstance(decision, Refusal):
                    comment = decision.comment
                    lost = (
                        _lost_characters(decision, decoded)
                        if self.config.findings.enabled
                        else None
                    )
                    if lost is not None:  # the likely cause, in the Error Comment too
                        found.append(lost)
                        comment = "name differs only by dropped accents: charset?"
                    raise _Failed(
                        decision.status, decision.rule, _comment(comment),
                        decision.explanation, decision.compared,
                    )  # fmt: skip
                if isinstance(decision, Attach) and self.config.findings.enabled:
                    lost = _name_lost_characters(incoming, decision, decoded)
                    if lost is not None:  # attached by other criteria, its name re-encoded
                        found.append(lost)
                if isinstance(decision, Keep):
                    staged.unlink(missing_ok=True)
                    return decision.explanation
                outcome, final = self._apply(
                    tx, decision, incoming, received, dataset, staged, attributes
                )
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        replaced = decision.replaces
        if replaced is not None and replaced.file != final:
            replaced.file.unlink(missing_ok=True)
        return outcome

    def _apply(
        self,
        tx: Transaction,
        decision: Attach | Create,
        incoming: Incoming,
        received: Received,
        dataset: Dataset,
        staged: Path,
        attributes: bytes,
    ) -> tuple[str, Path]:
        """Write what ``decision`` says; return what was done, in words, and the final file.

        Rows are created for whatever the decision does not name as stored: the patient, the
        study, the series; then the instance, whose staged file is renamed into place before
        the transaction commits.
        """
        if decision.replaces is not None:
            tx.remove_instance(decision.replaces.key)
        if isinstance(decision, Attach):
            patient = decision.patient.key
            study, series = decision.study, decision.series
        else:
            patient = tx.add_patient(
                incoming.demographics,
                text_value(dataset, "PatientName"),
                text_value(dataset, "PatientSex"),
                decision.hospital,
                decision.department,
            )
            study = series = None
        study_key = study.key if study is not None else tx.add_study(patient, _study(dataset))
        series_key = (
            series.key if series is not None else tx.add_series(study_key, _series(dataset))
        )
        sop_class = text_value(dataset, "SOPClassUID")
        outcome = decision.explanation + self._image_options(tx, dataset, sop_class, series_key)
        final = self.archive.path_for(
            incoming.study_uid, incoming.series_uid, incoming.sop_instance_uid
        )
        key = tx.add_instance(
            series_key,
            NewInstance(
                sop_instance_uid=incoming.sop_instance_uid,
                sop_class_uid=sop_class,
                transfer_syntax=received.transfer_syntax,
                instance_number=text_value(dataset, "InstanceNumber"),
                content_date=text_value(dataset, "ContentDate"),
                content_time=text_value(dataset, "ContentTime"),
                charset=text_value(dataset, "SpecificCharacterSet"),
                calling_ae=received.calling_ae,
            ),
            staged,
            final,
            attributes,
        )
        if self.config.images.create_review_task and sop_class == RT_IMAGE_STORAGE:
            tx.add_review_task(key, "RT Image review")
            outcome += "; review task created"
        return outcome, final

    def _image_options(self, tx: Transaction, dataset: Dataset, sop_class: str, series: int) -> str:
        """Apply ``[images]``: the CT user origin; return what was done, in words."""
        images = self.config.images
        if not images.user_origin_from_data_collection_center or sop_class not in (
            CT_IMAGE_STORAGE,
            ENHANCED_CT_IMAGE_STORAGE,
        ):
            return ""
        center = dataset.get("DataCollectionCenterPatient")
        if center is None or len(center) != 3:
            return "; no Data Collection Center (Patient) (0018,9313), so no user origin"
        origin = (float(center[0]), float(center[1]), float(center[2]) + images.z_offset_mm)
        tx.set_user_origin(series, origin)
        return f"; user origin {origin[0]:g}, {origin[1]:g}, {origin[2]:g} mm"

    # --- failure ---------------------------------------------------------------------------

    def _fail(
        self, received: Received, failed: _Failed, sop_uid: str, patient_id: str
    ) -> ImportResult:
        """Park the object as received and answer per the ``failed_import_status`` quirk."""
        answered = (
            status.SUCCESS if self.config.quirks.failed_import_status == "success" else failed.code
        )
        parked = self.investigator.park(
            received.as_file(),
            peer_ae=received.calling_ae,
            sop_instance_uid=sop_uid,
            status=failed.code,
            answered=answered,
            rule=failed.rule,
            detail=failed.detail,
            compared=failed.compared,
        )
        detail = f"{failed.detail}; parked as {parked.name}"
        if answered != failed.code:
            detail += ' (answered success: [quirks] failed_import_status = "success")'
        return ImportResult(
            failed.code, answered, failed.rule, failed.comment, detail, sop_uid, patient_id, parked
        )
