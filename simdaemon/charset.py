"""Decoding an incoming object's text with the character set the daemon was told to use.

SPEC section 5 step 2: the calling entity's ``import_charset`` applies when an object has no
Specific Character Set, or always when ``override_import_charset`` is set. Text that cannot be
decoded is kept with replacement characters and reported, so the import answers warning 0xB000
instead of silently storing mojibake.

pydicom decodes the default repertoire (ISO_IR 6) as Latin-1 and so never notices a byte above
0x7F; here ISO_IR 6 is strict US-ASCII, as the standard and the real daemon have it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

__all__ = [
    "TEXT_VRS",
    "Decoded",
    "decode_dataset",
    "decode_text",
    "effective_charset",
    "value_representation",
]

#: Value representations whose bytes are text in the Specific Character Set.
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
#: Bytes per value of the binary value representations: a length that is not a multiple
#: means the object was encoded wrongly (and the elements after it are misread).
_WIDTHS = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "UV": 8, "SV": 8,
           "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8}  # fmt: skip
_MULTI_VALUED = frozenset({"SH", "LO", "UC", "PN"})
_ASCII_TERMS = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6"})
_ESCAPE = 0x1B
#: Where ISO 2022 code extensions may switch character sets inside a value.
_DELIMITERS = {0x5C, 0x3D, 0x5E, 0x0D, 0x0A, 0x09, 0x0C}
UTF8 = "ISO_IR 192"


@dataclass(frozen=True)
class Decoded:
    """What :func:`decode_dataset` did: the character set applied and the text it replaced."""

    charset: tuple[str, ...]
    declared: tuple[str, ...]
    undecodable: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """Every text value decoded without replacement characters."""
        return not self.undecodable

    @property
    def as_declared(self) -> bool:
        """The object's own Specific Character Set was used (absent meaning US-ASCII)."""
        return self.charset == (self.declared or ("ISO_IR 6",))


def effective_charset(
    declared: Sequence[str], import_charset: str, override: bool
) -> tuple[str, ...]:
    """Return the character set terms the daemon decodes an object's text with."""
    if override or not [term for term in declared if term]:
        return tuple(import_charset.split("\\"))
    return tuple(declared)


def decode_text(raw: bytes, terms: Sequence[str]) -> tuple[str, bool]:
    """Decode one value's bytes; return the text and whether it decoded without replacement."""
    single = len(terms) <= 1 and _ESCAPE not in raw
    if single:
        term = terms[0] if terms else ""
        codec = "ascii" if term in _ASCII_TERMS else convert_encodings([term])[0]
        try:
            return raw.decode(codec), True
        except (UnicodeDecodeError, LookupError):
            return raw.decode(codec, errors="replace"), False
    text = decode_bytes(raw, convert_encodings(list(terms)), _DELIMITERS)
    return text, "\ufffd" not in text


def _declared(dataset: Dataset) -> tuple[str, ...]:
    raw = dataset.get_item(0x00080005)
    if raw is None or raw.value is None:
        return ()
    value = raw.value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):
        return tuple(term.strip() for term in value.split("\\"))
    return tuple(str(term).strip() for term in value)


def value_representation(element: RawDataElement | DataElement) -> str:
    """The element's VR; for an implicit VR element read raw, the dictionary's (else UN)."""
    if element.VR:
        return str(element.VR)
    try:
        return str(dictionary_VR(element.tag))
    except KeyError:
        return "UN"


def _check_width(element: RawDataElement | DataElement, vr: str) -> None:
    """Raise when a binary value's length does not fit its value representation."""
    width = _WIDTHS.get(vr)
    if width is None or not isinstance(element, RawDataElement):
        return
    length = element.length
    if length != 0xFFFFFFFF and length % width:
        raise ValueError(
            f"element {BaseTag(element.tag)} has VR {vr} but a length of {length} bytes, "
            f"not a multiple of {width}"
        )


def _walk(dataset: Dataset, terms: Sequence[str], bad: list[str], path: str) -> None:
    """Decode every text value of ``dataset`` in place, items included."""
    for tag in list(dataset.keys()):
        tag = BaseTag(tag)
        if tag == 0x00080005:
            continue
        element = dataset.get_item(tag)
        if element is None:
            continue
        vr = value_representation(element)
        if vr == "SQ":
            for number, item in enumerate(dataset[tag].value):
                _walk(item, terms, bad, f"{path}{tag}[{number}].")
            continue
        if vr not in TEXT_VRS or not isinstance(element, RawDataElement):
            _check_width(element, vr)
            continue
        raw = element.value or b""
        text, ok = decode_text(raw, terms)
        if not ok:
            bad.append(f"{path}{tag}")
        values = [v.rstrip(" \x00") for v in text.split("\\")] if vr in _MULTI_VALUED else []
        value: object = (
            (values[0] if len(values) == 1 else values) if values else text.rstrip(" \x00")
        )
        dataset[tag] = DataElement(tag, vr, value)


def decode_dataset(dataset: Dataset, import_charset: str, override: bool) -> Decoded:
    """Decode all text of a freshly read dataset to Unicode, in place.

    Binary values are checked against the width of their value representation on the way,
    so a wrongly encoded object fails here, during the import's validation; converting
    every element to find out would cost more than the rest of the import together.
    """
    declared = _declared(dataset)
    terms = effective_charset(declared, import_charset, override)
    bad: list[str] = []
    _walk(dataset, terms, bad, "")
    return Decoded(charset=terms, declared=declared, undecodable=tuple(bad))
