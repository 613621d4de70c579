"""A small archive with known contents, for the query tests (pynetdicom and DCMTK alike).

Patient PAT-A   Doe^John       1960-01-01 M
  study A1  course C1  2026-01-10 "Prostate"
    CT    3 slices (content dates 2026-01-10, -11, -12)
    RTSTRUCT  RS1
    RTPLAN    PLAN1 (approved, 10 beams), PLAN2 (unapproved, 3 beams)
    RTDOSE    referencing PLAN1
    REG       one registration
  study A2  no StudyID      2026-03-01
    CT    1 slice
Patient PAT-B   Dupont^Jeanne  1975-12-31 F
  study B1  course C1  2026-02-15 "Head [and] neck"
    MR    2 slices
Patient PAT_C%  doe^jane       1980-06-15 F   (characters that mean something to SQL)
  study C1   2025-12-24
    CT    1 slice
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from simdaemon import Daemon
from simdaemon.archive import NewInstance, NewSeries, NewStudy
from simdaemon.matching import Demographics
from tests import objects, scu


@dataclass
class Known:
    """Every stored object, by a short name, plus the names per patient/study/series."""

    objects: dict[str, Dataset] = field(default_factory=dict)

    def uid(self, name: str, level: str = "SOPInstanceUID") -> str:
        return str(getattr(self.objects[name], level))


def _patient(pid: str, name: str, birth: str, sex: str) -> dict[str, str]:
    return {"PatientID": pid, "PatientName": name, "PatientBirthDate": birth, "PatientSex": sex}


def build() -> Known:
    known = Known()
    a = _patient("PAT-A", "Doe^John", "19600101", "M")
    b = _patient("PAT-B", "Dupont^Jeanne", "19751231", "F")
    c = _patient("PAT_C%", "doe^jane", "19800615", "F")
    study_a1 = {"StudyInstanceUID": objects.uid(), "StudyID": "C1", "StudyDate": "20260110",
                "StudyDescription": "Prostate", "AccessionNumber": "ACC1"}  # fmt: skip
    study_a2 = {"StudyInstanceUID": objects.uid(), "StudyID": "", "StudyDate": "20260301"}
    study_b1 = {"StudyInstanceUID": objects.uid(), "StudyID": "C1", "StudyDate": "20260215",
                "StudyDescription": "Head [and] neck"}  # fmt: skip
    study_c1 = {"StudyInstanceUID": objects.uid(), "StudyID": "C1", "StudyDate": "20251224"}

    ct_a1 = {"SeriesInstanceUID": objects.uid(), "SeriesNumber": 1,
             "SeriesDescription": "CT Planning"}  # fmt: skip
    for number, day in enumerate(("20260110", "20260111", "20260112"), start=1):
        known.objects[f"ct{number}"] = objects.ct(
            **a, **study_a1, **ct_a1, InstanceNumber=number, ContentDate=day, ContentTime="0900"
        )
    known.objects["rs"] = objects.rt_struct(
        **a, **study_a1, SeriesInstanceUID=objects.uid(), SeriesNumber=2
    )
    plans = {"SeriesInstanceUID": objects.uid(), "SeriesNumber": 3, "SeriesDescription": "plans"}
    known.objects["plan1"] = objects.rt_plan(
        "PLAN1", "APPROVED", 10, known.uid("rs"), **a, **study_a1, **plans, ContentDate="20260112"
    )
    known.objects["plan2"] = objects.rt_plan(
        "PLAN2", "UNAPPROVED", 3, known.uid("rs"), **a, **study_a1, **plans, InstanceNumber=2,
        ContentDate="20260113",
    )  # fmt: skip
    known.objects["dose"] = objects.rt_dose(
        known.uid("plan1"), **a, **study_a1, SeriesInstanceUID=objects.uid(), SeriesNumber=4
    )
    known.objects["reg"] = objects.registration(
        **a, **study_a1, SeriesInstanceUID=objects.uid(), SeriesNumber=5
    )
    known.objects["ct_a2"] = objects.ct(**a, **study_a2, SeriesInstanceUID=objects.uid())
    mr = {"SeriesInstanceUID": objects.uid(), "SeriesNumber": 1}
    for number in (1, 2):
        known.objects[f"mr{number}"] = objects.ct(
            **b, **study_b1, **mr, Modality="MR", InstanceNumber=number,
            SOPClassUID="1.2.840.10008.5.1.4.1.1.4",
        )  # fmt: skip
    known.objects["ct_c"] = objects.ct(**c, **study_c1, SeriesInstanceUID=objects.uid())
    return known


def store(daemon: Daemon, known: Known) -> None:
    answers = scu.store(daemon, list(known.objects.values()))
    assert [scu.status_of(a) for a in answers] == [(0, "")] * len(known.objects)


def bulk_series(daemon: Daemon, patient_id: str, count: int) -> None:
    """Index ``count`` CT instances of one new patient directly (no files, no C-STORE).

    Enough for queries, which never open files; a fast way to make a search long.
    """
    template = objects.ct(PatientID=patient_id)
    attributes = b""
    with daemon.archive.transaction() as tx:
        patient = tx.add_patient(Demographics(patient_id), "Bulk^Patient", "O", "", "")
        study = tx.add_study(patient, NewStudy(str(template.StudyInstanceUID), study_id="C1"))
        series = tx.add_series(study, NewSeries(str(template.SeriesInstanceUID), modality="CT"))
        for number in range(count):
            uid = f"{template.SeriesInstanceUID}.{number}"
            tx.index_instance(
                series,
                NewInstance(uid, objects.CT, "1.2.840.10008.1.2.1", instance_number=str(number)),
                f"files/bulk/{uid}.dcm",
                attributes,
            )
