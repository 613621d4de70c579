"""Bad objects get a failure status and a parked file, and the daemon keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pynetdicom.sop_class import Verification

from simdaemon import Daemon
from simdaemon.part10 import wrap
from tests import objects, scu


def _encode(ds: Dataset) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)
    return out.getvalue()


def _truncated(ds: Dataset) -> bytes:
    return _encode(ds)[:-100]  # PixelData says 512 bytes; 412 arrive


def _wrong_vr_length(ds: Dataset) -> bytes:
    encoded = _encode(ds)
    rows = b"\x28\x00\x10\x00US\x02\x00"  # (0028,0010) Rows, US, length 2
    at = encoded.index(rows)
    return encoded[:at] + b"\x28\x00\x10\x00US\x03\x00\x10\x00\x00" + encoded[at + 10 :]


def _missing_study_uid(ds: Dataset) -> bytes:
    del ds.StudyInstanceUID
    return _encode(ds)


def _missing_sop_instance_uid(ds: Dataset) -> bytes:
    del ds.SOPInstanceUID
    return _encode(ds)


def _missing_series_uid(ds: Dataset) -> bytes:
    del ds.SeriesInstanceUID
    return _encode(ds)


def _missing_patient_id(ds: Dataset) -> bytes:
    del ds.PatientID
    return _encode(ds)


def _path_like_uid(ds: Dataset) -> bytes:
    ds.StudyInstanceUID = "../../etc"
    return _encode(ds)


def _huge_patient_id(ds: Dataset) -> bytes:
    ds.PatientID = "7" * 10_000
    return _encode(ds)


CASES: dict[str, tuple[Callable[[Dataset], bytes], str]] = {
    "truncated": (_truncated, "Pixel Data (7FE0,0010) is truncated: 412 of 512 bytes"),
    "wrong VR length": (_wrong_vr_length, "cannot parse the data set"),
    "missing Study UID": (_missing_study_uid, "missing Study Instance UID (0020,000D)"),
    "missing SOP Instance UID": (_missing_sop_instance_uid, "missing SOP Instance UID (0008,0018)"),
    "missing Series UID": (_missing_series_uid, "missing Series Instance UID (0020,000E)"),
    "missing Patient ID": (_missing_patient_id, "missing Patient ID (0010,0020)"),
    "UID ../../etc": (_path_like_uid, "invalid Study Instance UID (0020,000D)"),
    "10,000-char Patient ID": (_huge_patient_id, "Patient ID has 10000 chars, at most 64"),
}


@pytest.mark.parametrize("case", list(CASES))
# The test itself encodes the invalid values, and pydicom warns as it writes them.
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
def test_bad_object_fails_parks_and_the_daemon_still_echoes(
    daemon: Daemon, tmp_path: Path, case: str
) -> None:
    make, comment = CASES[case]
    ds = objects.ct(size=16)
    sop_class, sop_instance = ds.SOPClassUID, ds.SOPInstanceUID
    sent = tmp_path / "sent.dcm"
    sent.write_bytes(
        wrap(
            make(ds),
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
            transfer_syntax="1.2.840.10008.1.2.1",
        )
    )

    (answer,) = scu.store(daemon, [sent])

    status, got_comment = scu.status_of(answer)
    assert status == 0xA900
    assert got_comment.startswith(comment)
    assert len(got_comment) <= 64
    assert daemon.archive.count() == 0
    (parked,) = (tmp_path / "failed").glob("*.dcm")
    assert parked.read_bytes().endswith(sent.read_bytes()[-200:])  # kept as received
    reason = parked.with_name(parked.stem + ".reason.txt").read_text()
    assert "status: 0xA900" in reason
    assert not list(tmp_path.parent.glob("etc*"))
    (event,) = daemon.audit.events("store")
    assert event.outcome == "failure"

    assoc = scu.associate(daemon)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    assoc.release()


def test_a_data_set_naming_another_instance_than_the_request_is_refused(
    daemon: Daemon, tmp_path: Path
) -> None:
    ds = objects.ct()
    sent = tmp_path / "sent.dcm"
    sent.write_bytes(
        wrap(
            _encode(ds),
            sop_class_uid=ds.SOPClassUID,
            sop_instance_uid=objects.uid(),
            transfer_syntax="1.2.840.10008.1.2.1",
        )
    )
    (answer,) = scu.store(daemon, [sent])
    assert scu.status_of(answer) == (0xA900, "SOPInstanceUID differs from the request's")


def test_verification_context_is_unaffected_by_failed_imports(daemon: Daemon) -> None:
    scu.store(daemon, [objects.ct(PatientID="")])
    assoc = scu.associate(daemon, contexts=[(Verification, None)])
    assert assoc.send_c_echo().Status == 0
    assoc.release()
