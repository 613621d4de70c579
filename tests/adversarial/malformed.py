"""Hand-made encodings and a C-STORE that sends them as they are, on any context.

pydicom writes only well-formed data sets and pynetdicom's ``send_c_store`` picks the
context from the object's own SOP class; an attacker does neither. These helpers build the
bytes element by element and send them on the presentation context the test names.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian
from pynetdicom import _config, association
from pynetdicom.dsutils import split_dataset
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification

from simdaemon import Daemon
from simdaemon.part10 import header
from tests import scu

_LONG = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def encode(ds: Dataset, *, implicit: bool = False) -> bytes:
    """``ds`` encoded in (Implicit or Explicit VR) Little Endian, without meta information."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, implicit
    write_dataset(out, ds)
    return out.getvalue()


def explicit(tag: int, vr: str, value: bytes) -> bytes:
    """One Explicit VR Little Endian element, written as given (any VR, even ``ZZ``)."""
    if len(value) % 2:
        value += b" "
    if vr in _LONG:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def implicit(tag: int, value: bytes) -> bytes:
    """One Implicit VR Little Endian element."""
    if len(value) % 2:
        value += b" "
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def splice(ds: Dataset, *raw: bytes, at: int, implicit: bool = False) -> bytes:
    """``ds`` encoded with the element ``at`` replaced by the ``raw`` bytes, in its place."""
    before, after = Dataset(), Dataset()
    for element in ds:
        if element.tag < at:
            before.add(element)
        elif element.tag > at:
            after.add(element)
    return encode(before, implicit=implicit) + b"".join(raw) + encode(after, implicit=implicit)


def send(
    daemon: Daemon,
    data: bytes,
    folder: Path,
    *,
    sop_class: str,
    sop_instance: str,
    context: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """C-STORE ``data`` as it is; return the daemon's answer.

    ``sop_class``/``sop_instance`` are the request's Affected SOP Class/Instance UIDs;
    ``context`` is the abstract syntax of the presentation context it goes on (by default
    the SOP class's own), negotiated with ``transfer_syntax`` only.
    """
    head = header(
        sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=transfer_syntax
    )
    path = folder / "sent.dcm"
    path.write_bytes(head + data)
    abstract = context or sop_class
    assoc = scu.associate(daemon, contexts=[(abstract, [transfer_syntax]), (Verification, None)])
    assert assoc.is_established, "the daemon refused the association"
    (chosen,) = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == UID(abstract)]

    def on_chosen_context(*_: object, **__: object) -> PresentationContext:
        return chosen

    # pynetdicom would look for a context of the file's SOP class; a peer sends on any.
    assoc._get_valid_context = on_chosen_context  # type: ignore[method-assign]

    def split_after_header(path: Path) -> tuple[FileMetaDataset, int]:
        # pynetdicom takes a group 0002 element at the start of the data set for more meta
        # information; the data set starts where the header written above ends.
        meta, _ = split_dataset(path)
        return meta, len(head)

    chunked = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True  # the file's bytes as they are, not re-encoded
    association.split_dataset = split_after_header
    try:
        answer = assoc.send_c_store(path)
        assert "Status" in answer, "no C-STORE response"
        return answer
    finally:
        association.split_dataset = split_dataset
        _config.STORE_SEND_CHUNKED_DATASET = chunked
        assoc.release()
