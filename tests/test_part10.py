"""Part-10 files: where the data set starts, read off the meta information's group length."""

from __future__ import annotations

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from simdaemon.part10 import dataset_offset, split, wrap

DATA_SET = b"\x10\x00\x20\x00\x04\x00\x00\x00ID01"


@pytest.mark.parametrize("source_ae", ["", "STORESCU"])
def test_the_offset_is_where_split_finds_the_data_set(source_ae: str) -> None:
    stored = wrap(DATA_SET, sop_class_uid=CTImageStorage, sop_instance_uid="1.2.3",
                  transfer_syntax=ExplicitVRLittleEndian, source_ae=source_ae)  # fmt: skip
    offset = dataset_offset(stored)
    assert offset is not None
    assert stored[offset:] == split(stored)[1] == DATA_SET


def test_pydicoms_files_are_read_the_same_way() -> None:
    ds = Dataset()
    ds.PatientID = "ID01"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = DicomBytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    stored = out.getvalue()
    offset = dataset_offset(stored)
    assert offset is not None
    assert stored[offset:] == split(stored)[1]


@pytest.mark.parametrize(
    "stored",
    [
        DATA_SET,  # a bare data set: no preamble
        bytes(128) + b"DICM" + b"\x02\x00\x01\x00OB\x00\x00" + bytes(8),  # no group length
        bytes(128) + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + b"\xff\x00\x00\x00",  # too long
        bytes(100),
    ],
)
def test_files_without_a_usable_group_length_have_no_offset(stored: bytes) -> None:
    assert dataset_offset(stored) is None
