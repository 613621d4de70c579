"""Malformed objects over a real association: refused, audited, parked, nothing archived.

Issue 15 items 6 and 7. Each of these objects used to be acknowledged 0x0000 and archived,
after which it could not be found, read or moved. Every case here asserts what a user of the
daemon would check: the failure status and its Error Comment, the audit event, an empty
archive (no row, no file), the object parked with its reason, and a trusted echo answered
afterwards on a new association.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.sop_class import BasicTextSRStorage, CTImageStorage, RTPlanStorage

from simdaemon import Daemon
from simdaemon.printable import EscapingFilter
from tests import objects, scu
from tests.adversarial.malformed import encode, explicit, send, splice


@dataclass(frozen=True)
class Case:
    """A malformed object: how to make it, how it is sent, and what the daemon must answer."""

    make: Callable[[Dataset], bytes]
    rule: str
    comment: str
    sop_class: str = CTImageStorage
    context: str | None = None
    transfer_syntax: str = ExplicitVRLittleEndian


def _sr(ds: Dataset) -> bytes:
    ds.SOPClassUID = BasicTextSRStorage
    return encode(ds)


CASES: dict[str, Case] = {
    "an SR object over the CT context": Case(
        _sr,
        "context-mismatch",
        "SOP Class UID (0008,0016) is not the context's abstract syntax",
        sop_class=BasicTextSRStorage,
        context=CTImageStorage,
    ),
    "a CT over the RT Plan context": Case(
        encode,
        "context-mismatch",
        "SOP Class UID (0008,0016) is not the context's abstract syntax",
        context=RTPlanStorage,
    ),
    "a Study UID of fullwidth digits": Case(
        lambda ds: splice(ds, explicit(0x0020000D, "UI", "１.２.３.４".encode()), at=0x0020000D),  # noqa: RUF001
        "uid-syntax",
        "invalid Study Instance UID (0020,000D)",
    ),
    "a Study UID with a leading zero": Case(
        lambda ds: splice(ds, explicit(0x0020000D, "UI", b"1.2.03.4\0"), at=0x0020000D),
        "uid-syntax",
        "invalid Study Instance UID (0020,000D)",
    ),
    "group 0002 inside the data set": Case(
        lambda ds: splice(ds, explicit(0x00020016, "AE", b"FORGED"), at=0x00020016),
        "group-0002",
        "group 0002 element (0002,0016) in the data set",
    ),
    "Implicit VR bytes on an Explicit VR context": Case(
        lambda ds: encode(ds, implicit=True),
        "vr-encoding",
        "Implicit VR data on an Explicit VR context at (0008,0016)",
    ),
    "Explicit VR bytes on an Implicit VR context": Case(
        encode,
        "vr-encoding",
        "Explicit VR data on an Implicit VR context at (0008,0016)",
        transfer_syntax=ImplicitVRLittleEndian,
    ),
    "two Patient IDs": Case(
        lambda ds: splice(
            ds,
            explicit(0x00100020, "LO", b"FIRST"),
            explicit(0x00100020, "LO", b"SECOND"),
            at=0x00100020,
        ),
        "duplicate-element",
        "duplicate element (0010,0020) PatientID",
    ),
    "elements out of ascending order": Case(
        lambda ds: splice(
            ds,
            explicit(0x00100020, "LO", b"ID1"),
            explicit(0x00081030, "LO", b"late"),
            at=0x00100020,
        ),
        "tag-order",
        "element (0008,1030) StudyDescription out of ascending order",
    ),
    "unknown VR ZZ": Case(
        lambda ds: splice(ds, explicit(0x00081030, "ZZ", b"desc"), at=0x00081030),
        "unknown-vr",
        "unknown VR 'ZZ' in element (0008,1030) StudyDescription",
    ),
    "NUL in the Patient ID": Case(
        lambda ds: splice(ds, explicit(0x00100020, "LO", b"ID\0EVIL"), at=0x00100020),
        "control-character",
        "control character in Patient ID (0010,0020)",
    ),
    "a newline in the Patient ID": Case(
        lambda ds: splice(
            ds, explicit(0x00100020, "LO", b"ID\n2026 INFO accepted 'ADMIN'"), at=0x00100020
        ),
        "control-character",
        "control character in Patient ID (0010,0020)",
    ),
    "truncated Pixel Data": Case(
        lambda ds: encode(ds)[:-100],
        "truncated",
        "Pixel Data (7FE0,0010) is truncated: 412 of 512 bytes",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.filterwarnings("ignore")  # pydicom warns about what the cases break on purpose
def test_malformed_object_is_refused_parked_and_nothing_archived(
    daemon: Daemon, tmp_path: Path, case: str
) -> None:
    spec = CASES[case]
    ds = objects.ct(size=16)
    sop_instance = str(ds.SOPInstanceUID)

    answer = send(
        daemon,
        spec.make(ds),
        tmp_path,
        sop_class=spec.sop_class,
        sop_instance=sop_instance,
        context=spec.context,
        transfer_syntax=spec.transfer_syntax,
    )

    assert scu.status_of(answer) == (0xA900, spec.comment)
    (event,) = daemon.audit.events("store")
    assert (event.outcome, event.status, event.rule) == ("failure", 0xA900, spec.rule)
    assert daemon.archive.count() == 0
    assert not [p for p in (tmp_path / "archive" / "files").rglob("*") if p.is_file()]
    (parked,) = (tmp_path / "failed").glob("*.dcm")
    reason = parked.with_name(f"{parked.stem}.reason.txt").read_text(encoding="utf-8")
    assert "status: 0xA900" in reason
    assert f"rule: {spec.rule}" in reason
    assert len(reason.splitlines()) == 6  # the peer's text never adds a line
    assert parked.read_bytes().endswith((tmp_path / "sent.dcm").read_bytes()[-64:])

    assoc = scu.associate(daemon)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_the_same_sender_stores_a_well_formed_object(
    daemon: Daemon, tmp_path: Path, syntax: str
) -> None:
    ds = objects.ct(size=16)
    data = encode(ds, implicit=syntax == ImplicitVRLittleEndian)
    answer = send(
        daemon, data, tmp_path, sop_class=CTImageStorage, sop_instance=str(ds.SOPInstanceUID),
        transfer_syntax=syntax,
    )  # fmt: skip
    assert scu.status_of(answer) == (0x0000, "")
    stored = daemon.archive.read(str(ds.SOPInstanceUID))
    assert stored.PatientID == ds.PatientID
    assert stored.PixelData == ds.PixelData


@pytest.mark.filterwarnings("ignore:Unknown encoding")
def test_an_unknown_character_set_term_is_coerced_with_b000(daemon: Daemon) -> None:
    ds = objects.ct(SpecificCharacterSet="ISO_IR 999")
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (
        0xB000,
        "unknown Specific Character Set 'ISO_IR 999' (0008,0005)",
    )
    (event,) = daemon.audit.events("store")
    assert (event.outcome, event.rule) == ("warning", "import-charset")
    stored = daemon.archive.read(str(ds.SOPInstanceUID))
    assert stored.SpecificCharacterSet == "ISO_IR 192"  # it now describes its own bytes
    assert stored.PatientID == ds.PatientID


@pytest.mark.filterwarnings("ignore:Found unknown escape sequence", "ignore:Failed to decode")
def test_a_broken_iso_2022_escape_is_coerced_with_b000(daemon: Daemon) -> None:
    ds = objects.ct(SpecificCharacterSet=["", "ISO 2022 IR 87"])
    ds.add_new(0x00081030, "LO", b"Plan \x1b$Zbroken\x1b(B")
    (answer,) = scu.store(daemon, [ds])
    status, comment = scu.status_of(answer)
    assert (status, comment) == (0xB000, "text not valid in /ISO 2022 IR 87 replaced")
    stored = daemon.archive.read(str(ds.SOPInstanceUID))
    assert "\x1b" not in stored.StudyDescription
    assert "\ufffd" in stored.StudyDescription


def test_the_daemons_log_records_are_escaped(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("simdaemon.services.store")
    assert any(isinstance(f, EscapingFilter) for f in logger.filters)
    with caplog.at_level(logging.WARNING, logger="simdaemon"):
        logger.warning("import from '%s' failed", "EVIL\n2026 INFO forged")
    (record,) = caplog.records
    assert record.getMessage() == "import from 'EVIL\\x0a2026 INFO forged' failed"
