"""Typed results read multi-valued attributes as DICOM writes them: one backslash between."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from dbdaemon_client.results import SeriesResult, StudyResult, text, values


@pytest.mark.parametrize(
    ("keyword", "value", "as_text", "as_values"),
    [
        ("ModalitiesInStudy", ["CT", "RTPLAN"], "CT\\RTPLAN", ["CT", "RTPLAN"]),
        ("ModalitiesInStudy", ["CT", "RTPLAN", "RTDOSE"], "CT\\RTPLAN\\RTDOSE",
         ["CT", "RTPLAN", "RTDOSE"]),
        ("ModalitiesInStudy", "CT", "CT", ["CT"]),
        ("ModalitiesInStudy", "", "", []),
        ("ImageType", ["ORIGINAL", "PRIMARY", "AXIAL"], "ORIGINAL\\PRIMARY\\AXIAL",
         ["ORIGINAL", "PRIMARY", "AXIAL"]),
        ("OtherPatientIDs", ["A1", "B2"], "A1\\B2", ["A1", "B2"]),
        ("PatientName", "Doe^John", "Doe^John", ["Doe^John"]),
        ("ImagePositionPatient", ["-250", "-250", "12.5"], "-250\\-250\\12.5",
         ["-250", "-250", "12.5"]),
        ("SeriesNumber", 3, "3", ["3"]),
        ("SeriesNumber", None, "", []),
    ],
)  # fmt: skip
def test_text_and_values(keyword: str, value: object, as_text: str, as_values: list[str]) -> None:
    identifier = Dataset()
    setattr(identifier, keyword, value)
    assert text(identifier, keyword) == as_text
    assert values(identifier, keyword) == as_values
    assert as_text.split("\\") == (as_values or [""])  # the text splits back into the values


def test_an_absent_key_is_empty() -> None:
    assert text(Dataset(), "StudyDescription") == ""
    assert values(Dataset(), "StudyDescription") == []


def test_a_value_read_from_the_wire_keeps_one_backslash() -> None:
    identifier = Dataset()
    identifier.add_new(0x00080061, "CS", "CT\\RTPLAN\\RTSTRUCT")  # as a C-FIND answer decodes
    assert text(identifier, "ModalitiesInStudy") == "CT\\RTPLAN\\RTSTRUCT"
    assert len(values(identifier, "ModalitiesInStudy")) == 3


def test_results_carry_multi_valued_fields_as_text() -> None:
    study = Dataset()
    study.StudyInstanceUID = "1.2.3"
    study.StudyDescription = "Pelvis"
    study.PatientID = "P1"
    assert StudyResult.of(study).description == "Pelvis"
    series = Dataset()
    series.SeriesInstanceUID = "1.2.3.4"
    series.StudyInstanceUID = "1.2.3"
    series.Modality = "RTIMAGE"
    series.SeriesDescription = ["Portal", "MV"]  # VM 1 by the dictionary, but a server may send two
    assert SeriesResult.of(series).description == "Portal\\MV"
