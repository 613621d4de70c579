"""Small DICOM objects for tests, built in code so every test says what it sends.

``ct()`` etc. return complete, valid data sets with tiny pixel data unless asked for more;
keyword arguments override any attribute by keyword (``None`` deletes it).
"""

from __future__ import annotations

import itertools
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from simdaemon.synthetic import grayscale_pixels

CT = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"

_counter = itertools.count(1)
ROOT = "1.2.826.0.1.3680043.10.1234"


def uid() -> str:
    """A fresh, valid UID (unique within the test process)."""
    return f"{ROOT}.{next(_counter)}"


def _override(ds: Dataset, overrides: dict[str, Any]) -> None:
    """Set each keyword to its value; None removes the attribute."""
    for keyword, value in overrides.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def _base(sop_class: str, modality: str, **overrides: Any) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid()
    ds.PatientID = "PAT001"
    ds.PatientName = "Doe^John"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = uid()
    ds.StudyID = "C1"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = uid()
    ds.SeriesNumber = 1
    ds.Modality = modality
    ds.InstanceNumber = 1
    _override(ds, overrides)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def ct(size: int = 4, **overrides: Any) -> Dataset:
    """A CT slice of ``size`` x ``size`` 16-bit pixels."""
    ds = _base(CT, "CT")
    ds.FrameOfReferenceUID = ds.StudyInstanceUID + ".1"
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 2
    pixels = bytes(range(256)) * (size * size * 2 // 256) + bytes(size * size * 2 % 256)
    grayscale_pixels(ds, size, 16, True, pixels)
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    _override(ds, overrides)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    return ds


def rt_struct(**overrides: Any) -> Dataset:
    """An RT Structure Set with one ROI."""
    ds = _base(RT_STRUCT, "RTSTRUCT", **overrides)
    ds.StructureSetLabel = "RS1"
    roi = Dataset()
    roi.ROINumber = 1
    roi.ROIName = "BODY"
    ds.StructureSetROISequence = [roi]
    return ds


def rt_image(**overrides: Any) -> Dataset:
    """An RT Image (a treatment image: the daemon can open a review task for it)."""
    ds = _base(RT_IMAGE, "RTIMAGE", **overrides)
    ds.RTImageLabel = "MV1"
    grayscale_pixels(ds, 2, 16, False, b"\0" * 8)
    return ds


def rt_plan(label: str = "PLAN1", approval: str = "APPROVED", beams: int = 2,
            structure_set: str | None = None, **overrides: Any) -> Dataset:  # fmt: skip
    """An RT Plan with ``beams`` beams, referencing a structure set when given."""
    ds = _base(RT_PLAN, "RTPLAN", **overrides)
    ds.RTPlanLabel = label
    ds.RTPlanName = f"{label} name"
    ds.RTPlanDate = ds.get("RTPlanDate", "20260112")
    ds.RTPlanTime = "101500"
    ds.ApprovalStatus = approval
    ds.PlanIntent = "CURATIVE"
    beam_items = []
    for number in range(1, beams + 1):
        beam = Dataset()
        beam.BeamNumber = number
        beam.BeamName = f"G{number}"
        beam_items.append(beam)
    ds.BeamSequence = beam_items
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfBeams = beams
    ds.FractionGroupSequence = [group]
    if structure_set is not None:
        reference = Dataset()
        reference.ReferencedSOPClassUID = RT_STRUCT
        reference.ReferencedSOPInstanceUID = structure_set
        ds.ReferencedStructureSetSequence = [reference]
    return ds


def rt_dose(plan: str, summation: str = "PLAN", **overrides: Any) -> Dataset:
    """An RT Dose referencing the plan with SOP Instance UID ``plan``."""
    ds = _base(RT_DOSE, "RTDOSE", **overrides)
    ds.DoseSummationType = summation
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    reference = Dataset()
    reference.ReferencedSOPClassUID = RT_PLAN
    reference.ReferencedSOPInstanceUID = plan
    ds.ReferencedRTPlanSequence = [reference]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.PixelData = b"\0" * 16
    return ds


def registration(**overrides: Any) -> Dataset:
    """A Spatial Registration (series modality REG)."""
    return _base(REGISTRATION, "REG", **overrides)


def same_patient(template: Dataset, ds: Dataset) -> Dataset:
    """Give ``ds`` the patient, study and series of ``template``."""
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    ):
        setattr(ds, keyword, getattr(template, keyword))
    return ds
