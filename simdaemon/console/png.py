"""A slice of a stored image as a small grayscale PNG, with zlib and struct only (no Pillow).

Uncompressed pixel data (8 or 16 bits, signed or not, one sample per pixel) is sampled down
to at most :data:`THUMBNAIL` pixels a side and windowed from its own darkest to its
brightest sampled value, so any CT or RT Image shows something without a window setting.
"""

from __future__ import annotations

import array
import struct
import sys
import zlib

from pydicom.dataset import Dataset

__all__ = ["THUMBNAIL", "ThumbnailError", "encode_gray", "thumbnail"]

#: The longest side of a thumbnail, in pixels.
THUMBNAIL = 128


class ThumbnailError(ValueError):
    """The object has no pixel data this module can draw; the message says why."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_gray(width: int, height: int, pixels: bytes) -> bytes:
    """Encode 8-bit grayscale ``pixels`` (row by row) as a PNG file."""
    if len(pixels) != width * height or width < 1 or height < 1:
        raise ValueError(f"{len(pixels)} bytes is not {width} x {height} pixels")
    rows = b"".join(b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows, 6)),
            _chunk(b"IEND", b""),
        ]
    )


def thumbnail(dataset: Dataset) -> bytes:
    """The first frame of ``dataset``'s pixel data as a PNG thumbnail."""
    if "PixelData" not in dataset:
        raise ThumbnailError("the object has no pixel data")
    if dataset.file_meta.get("TransferSyntaxUID", "") not in (
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
    ):
        raise ThumbnailError("only uncompressed little-endian pixel data is drawn")
    if int(dataset.get("SamplesPerPixel", 1)) != 1:
        raise ThumbnailError("only grayscale (one sample per pixel) is drawn")
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    bits = int(dataset.BitsAllocated)
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    if bits not in (8, 16):
        raise ThumbnailError(f"{bits} bits allocated: only 8 and 16 are drawn")
    values = array.array(("b" if signed else "B") if bits == 8 else ("h" if signed else "H"))
    frame = rows * columns * (bits // 8)
    data = bytes(dataset.PixelData[:frame])
    if len(data) < frame:
        raise ThumbnailError("the pixel data is shorter than Rows x Columns")
    values.frombytes(data)
    if bits == 16 and sys.byteorder == "big":
        values.byteswap()
    step = max(1, -(-max(rows, columns) // THUMBNAIL))
    sampled = [
        values[y * columns + x] for y in range(0, rows, step) for x in range(0, columns, step)
    ]
    width, height = len(range(0, columns, step)), len(range(0, rows, step))
    low, high = min(sampled), max(sampled)
    span = (high - low) or 1
    return encode_gray(width, height, bytes((v - low) * 255 // span for v in sampled))
