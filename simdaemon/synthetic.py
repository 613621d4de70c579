"""Synthetic radiotherapy patients: realistic, seeded, and never anyone real.

One call builds a whole treatment: a CT series, an RT Structure Set on it (body, PTV and two
organs at risk, contoured slice by slice), an RT Plan on the structure set (beams with control
points), an RT Dose on the plan (a grid over the CT), RT Images of the plan's beams and a
spatial registration. Names come from faker in the locale asked for, with the Specific
Character Set that can write them. Everything - UIDs, names, dates, pixel values - follows from
the seed, so the same seed gives byte-identical objects on every machine.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

__all__ = ["CHARSETS", "SyntheticPatient", "grayscale_pixels", "synthetic_patient"]

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
RT_DOSE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
SPATIAL_REGISTRATION = "1.2.840.10008.5.1.4.1.1.66.1"
MANUFACTURER = "simdaemon synthetic"

#: The Specific Character Set each faker locale's names need.
CHARSETS = {
    "en_US": "ISO_IR 100",
    "de_DE": "ISO_IR 100",
    "fr_FR": "ISO_IR 100",
    "el_GR": "ISO_IR 126",
    "ru_RU": "ISO_IR 144",
    "ja_JP": "ISO_IR 192",
}
_PYTHON_CODECS = {
    "ISO_IR 100": "latin_1",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 192": "utf_8",
}
#: (name, type, radius in mm of its cross-section, colour) of each contoured structure.
_STRUCTURES = (
    ("BODY", "EXTERNAL", 150.0, (0, 255, 0)),
    ("PTV", "PTV", 30.0, (255, 0, 0)),
    ("Bladder", "ORGAN", 25.0, (255, 255, 0)),
    ("Rectum", "ORGAN", 15.0, (165, 42, 42)),
)
#: Where each structure's centre sits in the slice (mm from the image centre).
_CENTRES = {"BODY": (0.0, 0.0), "PTV": (0.0, 10.0), "Bladder": (0.0, -45.0), "Rectum": (0.0, 55.0)}


@dataclass
class SyntheticPatient:
    """A synthetic patient's objects, with the UIDs and labels a test refers to."""

    patient_id: str
    name: str
    charset: str
    study_uid: str
    course_id: str
    frame_of_reference_uid: str
    ct: list[Dataset]
    structure_set: Dataset
    plan: Dataset
    dose: Dataset
    rt_images: list[Dataset]
    registration: Dataset
    files: list[Path] = field(default_factory=list)

    @property
    def ct_series_uid(self) -> str:
        """The CT series' Series Instance UID."""
        return str(self.ct[0].SeriesInstanceUID)

    @property
    def plan_uid(self) -> str:
        """The RT Plan's SOP Instance UID."""
        return str(self.plan.SOPInstanceUID)

    @property
    def plan_label(self) -> str:
        """The RT Plan's label."""
        return str(self.plan.RTPlanLabel)

    def datasets(self) -> list[Dataset]:
        """Every object, in the order a planning system exports them."""
        return [
            *self.ct,
            self.structure_set,
            self.plan,
            self.dose,
            *self.rt_images,
            self.registration,
        ]

    def write(self, folder: Path) -> list[Path]:
        """Write every object as a Part-10 file under ``folder``; return the paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for number, dataset in enumerate(self.datasets(), start=1):
            path = folder / f"{number:04d}_{dataset.Modality}_{dataset.SOPInstanceUID}.dcm"
            dataset.save_as(path, enforce_file_format=True)
            paths.append(path)
        self.files = paths
        return paths


class _Builder:
    """Holds the seeded sources of randomness and the patient-level values."""

    def __init__(self, seed: int, locale: str | None) -> None:
        self.random = random.Random(seed)
        self.locale = locale or self.random.choice(sorted(CHARSETS))
        # Imported here: faker takes ~75 ms to import, and most commands and every daemon
        # start import this module without building a patient.
        from faker import Faker

        self.faker = Faker(self.locale)
        self.faker.seed_instance(seed)
        self.seed = seed
        #: Every option that changes the objects, so that two different objects never share
        #: a UID (the demo's patient 0 and ``simdaemon seed``'s at another matrix size did).
        self.variant = ""

    def uid(self) -> str:
        """A UUID-derived UID (PS3.5 B.2) from the seeded generator and the variant."""
        drawn = self.random.getrandbits(128)
        digest = hashlib.sha256(f"{drawn}/{self.variant}".encode()).digest()
        return f"2.25.{int.from_bytes(digest[:16], 'big')}"

    def day(self, start: date, span_days: int) -> date:
        return start + timedelta(days=self.random.randrange(span_days))


def _name(builder: _Builder, sex: str) -> tuple[str, str]:
    """A person name in the builder's locale and the character set that writes it."""
    charset = CHARSETS[builder.locale]
    first = builder.faker.first_name_female() if sex == "F" else builder.faker.first_name_male()
    name = f"{builder.faker.last_name()}^{first}"
    try:
        name.encode(_PYTHON_CODECS[charset])
    except UnicodeEncodeError:
        charset = "ISO_IR 192"
    return name, charset


def _base(
    builder: _Builder, patient: Dataset, sop_class: str, modality: str, series_uid: str
) -> Dataset:
    ds = Dataset()
    ds.update(patient)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = builder.uid()
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.Manufacturer = MANUFACTURER
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(ds.SOPInstanceUID)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _phantom(matrix: int) -> bytes:
    """A water cylinder in air with a bony ring, as 16-bit CT numbers + 1024."""
    centre = (matrix - 1) / 2
    radius = matrix * 0.4
    rows = []
    for row in range(matrix):
        values = []
        for column in range(matrix):
            distance = math.hypot(row - centre, column - centre)
            if distance > radius:
                value = 0  # air: -1024 HU
            elif distance > radius * 0.9:
                value = 1024 + 700  # bone
            else:
                value = 1024  # water
            values.append(value)
        rows.append(struct.pack(f"<{matrix}h", *values))
    return b"".join(rows)


def grayscale_pixels(ds: Dataset, size: int, bits: int, signed: bool, pixels: bytes) -> None:
    """Give ``ds`` square MONOCHROME2 pixels: the Image Pixel module's attributes and the data.

    One helper for every synthetic image (CT, RT Image, RT Dose) and the tests' small objects,
    so their pixel descriptions cannot drift apart.
    """
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = pixels


def _circle(centre: tuple[float, float], radius: float, z: float, points: int = 24) -> list[float]:
    coordinates: list[float] = []
    for step in range(points):
        angle = 2 * math.pi * step / points
        coordinates += [
            round(centre[0] + radius * math.cos(angle), 2),
            round(centre[1] + radius * math.sin(angle), 2),
            round(z, 2),
        ]
    return coordinates


def synthetic_patient(
    seed: int = 0,
    *,
    slices: int = 100,
    matrix: int = 512,
    slice_thickness: float = 2.5,
    beams: int = 4,
    rt_images: int = 2,
    locale: str | None = None,
    patient_id: str | None = None,
) -> SyntheticPatient:
    """Build a synthetic RT patient; the same arguments always give the same bytes.

    ``locale`` is one of :data:`CHARSETS` (chosen from the seed when omitted); the name is
    written in that locale's character set. ``matrix`` is the CT's rows and columns.
    """
    if slices < 1 or matrix < 8:
        raise ValueError("a synthetic CT needs at least 1 slice and a matrix of 8 or more")
    builder = _Builder(seed, locale)
    builder.variant = repr(
        (slices, matrix, slice_thickness, beams, rt_images, builder.locale, patient_id)
    )
    sex = builder.random.choice(["F", "M"])
    name, charset = _name(builder, sex)
    birth = builder.day(date(1935, 1, 1), 365 * 60)
    treatment = builder.day(date(2025, 1, 1), 365)
    patient = Dataset()
    patient.SpecificCharacterSet = charset
    patient.PatientID = patient_id or f"SYN{seed:06d}"
    patient.PatientName = name
    patient.PatientBirthDate = f"{birth:%Y%m%d}"
    patient.PatientSex = sex
    study_uid, frame_uid = builder.uid(), builder.uid()
    course = f"C{builder.random.randint(1, 3)}"
    patient.StudyInstanceUID = study_uid
    patient.StudyID = course
    patient.StudyDate = f"{treatment:%Y%m%d}"
    patient.StudyTime = "083000"
    patient.StudyDescription = f"Course {course}"
    patient.AccessionNumber = ""
    patient.ReferringPhysicianName = f"{builder.faker.last_name()}^{builder.faker.first_name()}"
    try:
        str(patient.ReferringPhysicianName).encode(_PYTHON_CODECS[charset])
    except UnicodeEncodeError:
        patient.ReferringPhysicianName = "Physician^Referring"

    ct = _ct_series(builder, patient, frame_uid, slices, matrix, slice_thickness)
    structure_set = _structure_set(builder, patient, frame_uid, ct)
    plan = _plan(builder, patient, frame_uid, structure_set, beams, ct)
    dose = _dose(builder, patient, frame_uid, plan, ct)
    images = [_rt_image(builder, patient, plan, n) for n in range(1, rt_images + 1)]
    registration = _registration(builder, patient, frame_uid, ct)
    return SyntheticPatient(
        patient_id=str(patient.PatientID),
        name=name,
        charset=charset,
        study_uid=study_uid,
        course_id=course,
        frame_of_reference_uid=frame_uid,
        ct=ct,
        structure_set=structure_set,
        plan=plan,
        dose=dose,
        rt_images=images,
        registration=registration,
    )


def _ct_series(
    builder: _Builder,
    patient: Dataset,
    frame_uid: str,
    slices: int,
    matrix: int,
    thickness: float,
) -> list[Dataset]:
    series_uid = builder.uid()
    pixels = _phantom(matrix)
    spacing = round(500.0 / matrix, 4)
    origin = -spacing * (matrix - 1) / 2
    series = []
    for index in range(slices):
        ds = _base(builder, patient, CT_IMAGE, "CT", series_uid)
        z = round(index * thickness - (slices - 1) * thickness / 2, 2)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesNumber = 1
        ds.SeriesDescription = "Planning CT"
        ds.InstanceNumber = index + 1
        ds.ContentDate = patient.StudyDate
        ds.ContentTime = "083000"
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [origin, origin, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = z
        ds.SliceThickness = thickness
        ds.PixelSpacing = [spacing, spacing]
        ds.KVP = 120
        grayscale_pixels(ds, matrix, 16, True, pixels)
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        series.append(ds)
    return series


def _contour_image(ct: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ct.SOPClassUID
    item.ReferencedSOPInstanceUID = ct.SOPInstanceUID
    return item


def _structure_set(
    builder: _Builder, patient: Dataset, frame_uid: str, ct: list[Dataset]
) -> Dataset:
    ds = _base(builder, patient, RT_STRUCTURE_SET, "RTSTRUCT", builder.uid())
    ds.SeriesNumber = 2
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "RS1"
    ds.StructureSetName = "Structures"
    ds.StructureSetDate = patient.StudyDate
    ds.StructureSetTime = "090000"
    series_reference = Dataset()
    series_reference.SeriesInstanceUID = ct[0].SeriesInstanceUID
    series_reference.ContourImageSequence = [_contour_image(s) for s in ct]
    study_reference = Dataset()
    study_reference.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Mgmt
    study_reference.ReferencedSOPInstanceUID = patient.StudyInstanceUID
    study_reference.RTReferencedSeriesSequence = [series_reference]
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_uid
    frame.RTReferencedStudySequence = [study_reference]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    rois, contours, observations = [], [], []
    middle = len(ct) // 2
    for number, (name, kind, radius, colour) in enumerate(_STRUCTURES, start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame_uid
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        # The body spans every slice; the others the middle third of the series.
        third = len(ct) // 6
        span = ct if kind == "EXTERNAL" else ct[max(0, middle - third) : middle + third + 1]
        items = []
        for image in span:
            contour = Dataset()
            contour.ContourImageSequence = [_contour_image(image)]
            contour.ContourGeometricType = "CLOSED_PLANAR"
            points = _circle(_CENTRES[name], radius, float(image.ImagePositionPatient[2]))
            contour.NumberOfContourPoints = len(points) // 3
            contour.ContourData = points
            items.append(contour)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber = number
        roi_contour.ROIDisplayColor = list(colour)
        roi_contour.ContourSequence = items
        contours.append(roi_contour)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = kind
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = contours
    ds.RTROIObservationsSequence = observations
    return ds


def _plan(
    builder: _Builder,
    patient: Dataset,
    frame_uid: str,
    structure_set: Dataset,
    beams: int,
    ct: list[Dataset],
) -> Dataset:
    ds = _base(builder, patient, RT_PLAN, "RTPLAN", builder.uid())
    ds.SeriesNumber = 3
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = frame_uid
    ds.RTPlanLabel = f"PLAN{builder.random.randint(1, 9)}"
    ds.RTPlanName = "Prostate 78Gy"
    ds.RTPlanDate = patient.StudyDate
    ds.RTPlanTime = "100000"
    ds.RTPlanGeometry = "PATIENT"
    ds.PlanIntent = "CURATIVE"
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = patient.StudyDate
    ds.ReviewTime = "110000"
    ds.ReviewerName = "Physicist^Approving"
    reference = Dataset()
    reference.ReferencedSOPClassUID = RT_STRUCTURE_SET
    reference.ReferencedSOPInstanceUID = structure_set.SOPInstanceUID
    ds.ReferencedStructureSetSequence = [reference]
    setup = Dataset()
    setup.PatientSetupNumber = 1
    setup.PatientPosition = "HFS"
    ds.PatientSetupSequence = [setup]
    isocenter = [0.0, 10.0, float(ct[len(ct) // 2].ImagePositionPatient[2])]
    beam_items, references = [], []
    for number in range(1, beams + 1):
        angle = round(360.0 * (number - 1) / beams, 1)
        beam = Dataset()
        beam.BeamNumber = number
        beam.BeamName = f"G{int(angle):03d}"
        beam.BeamType = "STATIC"
        beam.RadiationType = "PHOTON"
        beam.TreatmentMachineName = "TrueBeam1"
        beam.PrimaryDosimeterUnit = "MU"
        beam.SourceAxisDistance = 1000
        beam.TreatmentDeliveryType = "TREATMENT"
        beam.NumberOfWedges = beam.NumberOfCompensators = beam.NumberOfBoli = 0
        beam.NumberOfBlocks = 0
        beam.FinalCumulativeMetersetWeight = 1
        beam.NumberOfControlPoints = 2
        beam.ReferencedPatientSetupNumber = 1
        points = []
        for index, weight in enumerate((0.0, 1.0)):
            point = Dataset()
            point.ControlPointIndex = index
            point.CumulativeMetersetWeight = weight
            if index == 0:
                point.NominalBeamEnergy = 6
                point.GantryAngle = angle
                point.GantryRotationDirection = "NONE"
                point.BeamLimitingDeviceAngle = 0
                point.PatientSupportAngle = 0
                point.IsocenterPosition = isocenter
            points.append(point)
        beam.ControlPointSequence = points
        beam_items.append(beam)
        meterset = Dataset()
        meterset.ReferencedBeamNumber = number
        meterset.BeamMeterset = round(50 + builder.random.random() * 50, 1)
        references.append(meterset)
    ds.BeamSequence = beam_items
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = 39
    group.NumberOfBeams = beams
    group.NumberOfBrachyApplicationSetups = 0
    group.ReferencedBeamSequence = references
    ds.FractionGroupSequence = [group]
    return ds


def _dose(
    builder: _Builder, patient: Dataset, frame_uid: str, plan: Dataset, ct: list[Dataset]
) -> Dataset:
    ds = _base(builder, patient, RT_DOSE, "RTDOSE", builder.uid())
    ds.SeriesNumber = 4
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    reference = Dataset()
    reference.ReferencedSOPClassUID = RT_PLAN
    reference.ReferencedSOPInstanceUID = plan.SOPInstanceUID
    ds.ReferencedRTPlanSequence = [reference]
    grid, frames = 32, min(len(ct), 16)
    first, last = ct[0].ImagePositionPatient, ct[-1].ImagePositionPatient
    step = (float(last[2]) - float(first[2])) / max(frames - 1, 1)
    ds.ImagePositionPatient = [float(first[0]), float(first[1]), float(first[2])]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [round(500.0 / grid, 4)] * 2
    ds.SliceThickness = round(step, 2)
    ds.GridFrameOffsetVector = [round(step * n, 2) for n in range(frames)]
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x3004000C
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = grid
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseGridScaling = 0.0001
    centre = (grid - 1) / 2
    values = []
    for frame in range(frames):
        depth = abs(frame - (frames - 1) / 2) / max(frames, 1)
        for row in range(grid):
            for column in range(grid):
                distance = math.hypot(row - centre, column - centre) / grid
                values.append(int(780000 * math.exp(-12 * distance * distance - 4 * depth * depth)))
    ds.PixelData = struct.pack(f"<{len(values)}I", *values)
    return ds


def _rt_image(builder: _Builder, patient: Dataset, plan: Dataset, number: int) -> Dataset:
    beam = plan.BeamSequence[(number - 1) % len(plan.BeamSequence)]
    ds = _base(builder, patient, RT_IMAGE, "RTIMAGE", builder.uid())
    ds.SeriesNumber = 10 + number
    ds.InstanceNumber = 1
    ds.RTImageLabel = f"MV {beam.BeamName}"
    ds.RTImagePlane = "NORMAL"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "PORTAL"]
    ds.ConversionType = "DI"
    ds.RadiationMachineSAD = 1000
    ds.RTImageSID = 1500
    ds.GantryAngle = beam.ControlPointSequence[0].GantryAngle
    ds.ImagePlanePixelSpacing = [0.392, 0.392]
    ds.ContentDate = plan.RTPlanDate
    ds.ContentTime = "120000"
    reference = Dataset()
    reference.ReferencedSOPClassUID = RT_PLAN
    reference.ReferencedSOPInstanceUID = plan.SOPInstanceUID
    ds.ReferencedRTPlanSequence = [reference]
    ds.ReferencedBeamNumber = beam.BeamNumber
    grayscale_pixels(ds, 64, 16, False, builder.random.randbytes(64 * 64 * 2))
    return ds


def _registration(
    builder: _Builder, patient: Dataset, frame_uid: str, ct: list[Dataset]
) -> Dataset:
    ds = _base(builder, patient, SPATIAL_REGISTRATION, "REG", builder.uid())
    ds.SeriesNumber = 5
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = frame_uid
    ds.ContentDate = patient.StudyDate
    ds.ContentTime = "093000"
    ds.ContentLabel = "REG1"
    matrix = Dataset()
    matrix.FrameOfReferenceTransformationMatrixType = "RIGID"
    matrix.FrameOfReferenceTransformationMatrix = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    matrices = Dataset()
    matrices.MatrixSequence = [matrix]
    registration = Dataset()
    registration.FrameOfReferenceUID = frame_uid
    registration.MatrixRegistrationSequence = [matrices]
    image = Dataset()
    image.ReferencedSOPClassUID = CT_IMAGE
    image.ReferencedSOPInstanceUID = ct[0].SOPInstanceUID
    registration.ReferencedImageSequence = [image]
    ds.RegistrationSequence = [registration]
    return ds
