"""DICOM Part-10 files: wrapping a received data set in file meta information, and back.

The network delivers a data set encoded in the negotiated transfer syntax; a file needs the
preamble, ``DICM`` and the group 0002 meta information in front. Writing the received bytes
behind a freshly built header keeps pixel data byte-for-byte and costs no re-encoding.
"""

from __future__ import annotations

import uuid
from io import BytesIO

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ImplicitVRLittleEndian

__all__ = ["IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION", "split", "wrap"]

#: simdaemon's implementation class UID, derived (UUID-based, PS3.5 B.2) from its name.
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'simdaemon').int}"
IMPLEMENTATION_VERSION = "SIMDAEMON_0_1"


def wrap(
    dataset: bytes,
    *,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax: str,
    source_ae: str = "",
) -> bytes:
    """Return a Part-10 file: preamble, prefix, file meta information, then ``dataset``."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    if source_ae:
        meta.SourceApplicationEntityTitle = source_ae
    header = DicomBytesIO()
    header.is_little_endian = True
    header.is_implicit_VR = False
    write_file_meta_info(header, meta, enforce_standard=True)
    return b"".join((b"\x00" * 128, b"DICM", header.getvalue(), dataset))


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
