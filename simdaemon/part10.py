"""DICOM Part-10 files: wrapping a received data set in file meta information, and back.

The network delivers a data set encoded in the negotiated transfer syntax; a file needs the
preamble, ``DICM`` and the group 0002 meta information in front. Writing the received bytes
behind a freshly built header keeps pixel data byte-for-byte and costs no re-encoding.
"""

from __future__ import annotations

import struct
import uuid
from io import BytesIO

from pydicom.dataset import FileMetaDataset
from pydicom.filereader import read_preamble
from pydicom.uid import ImplicitVRLittleEndian

__all__ = ["IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION", "header", "split", "wrap"]

#: simdaemon's implementation class UID, derived (UUID-based, PS3.5 B.2) from its name.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'simdaemon').int}"
IMPLEMENTATION_VERSION = "SIMDAEMON_0_1"


def _element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """One Explicit VR Little Endian element of the file meta information."""
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB") else b" "
    if vr == b"OB":
        return struct.pack("<HH2sHI", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def header(
    *, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, source_ae: str = ""
) -> bytes:
    """Preamble, ``DICM`` and the file meta information for one object.

    Encoded by hand: it is a handful of fixed elements, and building it through a pydicom
    Dataset cost more than filing the whole CT slice behind it.
    """
    elements = [
        _element(0x0002, 0x0001, b"OB", b"\x00\x01"),
        _element(0x0002, 0x0002, b"UI", sop_class_uid.encode("ascii")),
        _element(0x0002, 0x0003, b"UI", sop_instance_uid.encode("ascii")),
        _element(0x0002, 0x0010, b"UI", transfer_syntax.encode("ascii")),
        _element(0x0002, 0x0012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii")),
        _element(0x0002, 0x0013, b"SH", IMPLEMENTATION_VERSION.encode("ascii")),
    ]
    if source_ae:
        elements.append(_element(0x0002, 0x0016, b"AE", source_ae.encode("ascii", "replace")))
    body = b"".join(elements)
    length = _element(0x0002, 0x0000, b"UL", struct.pack("<I", len(body)))
    return b"".join((b"\0" * 128, b"DICM", length, body))


def wrap(
    dataset: bytes,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    source_ae: str = "",
) -> bytes:
    """Return a Part-10 file: preamble, prefix, file meta information, then ``dataset``."""
    return header(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        transfer_syntax=transfer_syntax,
        source_ae=source_ae,
    ) + bytes(dataset)


_GROUP_LENGTH = struct.Struct("<4s2sHI")


def dataset_offset(data: bytes | memoryview) -> int | None:
    """Where the data set starts in a Part-10 file whose meta information begins with its
    group length (0002,0000), as every file the daemon writes does; ``None`` otherwise.

    Read off 144 bytes, so a move can send a stored file's data set without parsing its meta.
    """
    if len(data) < 144 or bytes(data[128:132]) != b"DICM":
        return None
    tag, vr, size, length = _GROUP_LENGTH.unpack_from(data, 132)
    if tag != b"\x02\x00\x00\x00" or vr != b"UL" or size != 4 or 144 + length > len(data):
        return None
    return 144 + int(length)


def split(data: bytes) -> tuple[FileMetaDataset, bytes]:
    """Split a file into its meta information and the encoded data set that follows.

    A file without preamble and meta information (a bare data set, as some tools write) is
    taken as Implicit VR Little Endian, the default transfer syntax.
    """
    from pydicom.filereader import _read_file_meta_info

    stream = BytesIO(data)
    preamble = read_preamble(stream, force=True)
    if preamble is None:
        meta = FileMetaDataset()
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
        return meta, data
    meta = _read_file_meta_info(stream)
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return meta, data[stream.tell() :]
