"""Synthetic RT patients: deterministic, valid IODs, references that resolve, importable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydicom import dcmread, dcmwrite
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO

from simdaemon import Daemon
from simdaemon.synthetic import CHARSETS, SyntheticPatient, synthetic_patient
from tests import scu

SMALL = {"slices": 12, "matrix": 32}

#: Type 1 and 2 attributes of the main modules of each IOD (PS3.3 A.3, A.19, A.20, A.18, A.17,
#: A.39): what every synthetic object must carry.
COMMON = ["SOPClassUID", "SOPInstanceUID", "PatientName", "PatientID", "PatientBirthDate",
          "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
          "ReferringPhysicianName", "AccessionNumber", "SeriesInstanceUID", "SeriesNumber",
          "Modality", "Manufacturer", "SpecificCharacterSet"]  # fmt: skip
REQUIRED = {
    "CT": ["FrameOfReferenceUID", "PositionReferenceIndicator", "ImageType", "InstanceNumber",
           "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
           "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
           "BitsStored", "HighBit", "PixelRepresentation", "RescaleIntercept", "RescaleSlope",
           "KVP", "PixelData"],
    "RTSTRUCT": ["StructureSetLabel", "StructureSetDate", "StructureSetTime",
                 "ReferencedFrameOfReferenceSequence", "StructureSetROISequence",
                 "ROIContourSequence", "RTROIObservationsSequence"],
    "RTPLAN": ["RTPlanLabel", "RTPlanDate", "RTPlanTime", "RTPlanGeometry",
               "ReferencedStructureSetSequence", "PatientSetupSequence", "FractionGroupSequence",
               "BeamSequence", "ApprovalStatus"],
    "RTDOSE": ["FrameOfReferenceUID", "DoseUnits", "DoseType", "DoseSummationType",
               "ReferencedRTPlanSequence", "GridFrameOffsetVector", "DoseGridScaling",
               "NumberOfFrames", "FrameIncrementPointer", "Rows", "Columns", "PixelData"],
    "RTIMAGE": ["RTImageLabel", "RTImagePlane", "ImageType", "ConversionType",
                "ReferencedRTPlanSequence", "Rows", "Columns", "PixelData"],
    "REG": ["FrameOfReferenceUID", "ContentDate", "ContentTime", "RegistrationSequence"],
}  # fmt: skip


def digest(patient: SyntheticPatient) -> str:
    sha = hashlib.sha256()
    for dataset in patient.datasets():
        out = DicomBytesIO()
        dcmwrite(out, dataset, enforce_file_format=True)
        sha.update(out.getvalue())
    return sha.hexdigest()


def test_the_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    assert digest(synthetic_patient(11, **SMALL)) == digest(synthetic_patient(11, **SMALL))
    assert digest(synthetic_patient(11, **SMALL)) != digest(synthetic_patient(12, **SMALL))


def test_files_on_disk_are_identical_for_the_same_seed(tmp_path: Path) -> None:
    first = synthetic_patient(5, **SMALL).write(tmp_path / "a")
    second = synthetic_patient(5, **SMALL).write(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


@pytest.mark.parametrize("locale", sorted(CHARSETS))
def test_every_object_has_its_iods_required_attributes(locale: str) -> None:
    patient = synthetic_patient(3, locale=locale, **SMALL)
    for dataset in patient.datasets():
        out = DicomBytesIO()
        dcmwrite(out, dataset, enforce_file_format=True)
        out.seek(0)
        read = dcmread(out)  # survives a round trip through pydicom
        missing = [k for k in [*COMMON, *REQUIRED[str(read.Modality)]] if k not in read]
        assert missing == [], f"{read.Modality}: {missing}"
        assert str(read.PatientName) == patient.name
        assert read.SpecificCharacterSet == patient.charset


def test_references_resolve() -> None:
    patient = synthetic_patient(4, **SMALL)
    ct = {str(ds.SOPInstanceUID) for ds in patient.ct}
    rs = patient.structure_set
    listed = {
        str(item.ReferencedSOPInstanceUID)
        for item in rs.ReferencedFrameOfReferenceSequence[0]
        .RTReferencedStudySequence[0]
        .RTReferencedSeriesSequence[0]
        .ContourImageSequence
    }
    assert listed == ct
    for roi in rs.ROIContourSequence:
        for contour in roi.ContourSequence:
            (image,) = contour.ContourImageSequence
            assert str(image.ReferencedSOPInstanceUID) in ct
            assert len(contour.ContourData) == 3 * contour.NumberOfContourPoints
    roi_numbers = {roi.ROINumber for roi in rs.StructureSetROISequence}
    assert {c.ReferencedROINumber for c in rs.ROIContourSequence} == roi_numbers
    assert [r.ROIName for r in rs.StructureSetROISequence] == ["BODY", "PTV", "Bladder", "Rectum"]
    assert patient.plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == (
        rs.SOPInstanceUID
    )
    assert patient.plan.FractionGroupSequence[0].NumberOfBeams == len(patient.plan.BeamSequence)
    beams = {b.BeamNumber for b in patient.plan.BeamSequence}
    assert {r.ReferencedBeamNumber for r in patient.plan.FractionGroupSequence[0]
            .ReferencedBeamSequence} == beams  # fmt: skip
    for dataset in [patient.dose, *patient.rt_images]:
        assert dataset.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == patient.plan_uid
    for image in patient.rt_images:
        assert image.ReferencedBeamNumber in beams
    assert len(patient.dose.PixelData) == 4 * patient.dose.Rows * patient.dose.Columns * (
        patient.dose.NumberOfFrames
    )
    frames = {str(ds.FrameOfReferenceUID) for ds in [*patient.ct, patient.plan, patient.dose]}
    assert frames == {patient.frame_of_reference_uid}


def test_names_come_in_their_locales_character_set() -> None:
    greek = synthetic_patient(1, locale="el_GR", **SMALL)
    assert greek.charset == "ISO_IR 126"
    assert any("\u0370" <= c <= "\u03ff" for c in greek.name)
    japanese = synthetic_patient(1, locale="ja_JP", **SMALL)
    assert japanese.charset == "ISO_IR 192"


def test_a_synthetic_patient_imports_into_the_daemon(daemon: Daemon) -> None:
    patient = synthetic_patient(9, **SMALL)
    answers = scu.store(daemon, patient.datasets())
    assert [scu.status_of(a) for a in answers] == [(0, "")] * len(patient.datasets())
    (stored,) = daemon.archive.patients()
    assert (stored.patient_id, stored.name) == (patient.patient_id, patient.name)
    assert stored.instances == len(patient.datasets())


def test_a_dataset_is_never_shared_between_objects() -> None:
    patient = synthetic_patient(2, **SMALL)
    objects: list[Dataset] = patient.datasets()
    assert len({id(ds) for ds in objects}) == len(objects)
    assert len({str(ds.SOPInstanceUID) for ds in objects}) == len(objects)


def _uids(patient: SyntheticPatient) -> set[str]:
    return {str(ds[key].value) for ds in patient.datasets() for key in
            ("SOPInstanceUID", "SeriesInstanceUID")}  # fmt: skip


@pytest.mark.parametrize(
    "option",
    [
        {"matrix": 16},
        {"slices": 13},
        {"beams": 2},
        {"rt_images": 1},
        {"slice_thickness": 3.0},
        {"patient_id": "OTHER"},
    ],
    ids=lambda option: next(iter(option)),
)
def test_objects_that_differ_never_share_a_uid(option: dict[str, object]) -> None:
    """The demo's patient 0 and `simdaemon seed`'s differ only in size: re-importing one into
    an archive holding the other must not collide as duplicates (0xC004)."""
    base = synthetic_patient(11, **SMALL)
    other = synthetic_patient(11, **{**SMALL, **option})  # type: ignore[arg-type]
    assert not _uids(base) & _uids(other)
    assert other.study_uid != base.study_uid
    assert other.name == base.name, "the patient is the same person; only the objects differ"


def test_demo_objects_import_into_a_seeded_archive_without_duplicates(tmp_path: Path) -> None:
    from simdaemon import local
    from simdaemon.config import from_mapping

    config = from_mapping({"daemon": {"archive": str(tmp_path / "archive")}}, tmp_path)
    seeded = local.seed_patients(config, 1, 0, slices=4, matrix=16)
    assert not seeded.failed
    again = local.seed_patients(config, 1, 0, slices=4, matrix=32)
    assert [(label, r.status) for label, r in again.failed] == []
