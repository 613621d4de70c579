"""Decoding an incoming object's text with the character set the daemon was told to use.

SPEC section 5 step 2: the calling entity's ``import_charset`` applies when an object has no
Specific Character Set, or always when ``override_import_charset`` is set. Text that cannot be
decoded is kept with replacement characters and reported, so the import answers warning 0xB000
instead of silently storing mojibake.

pydicom decodes the default repertoire (ISO_IR 6) as Latin-1 and so never notices a byte above
0x7F; here ISO_IR 6 is strict US-ASCII, as the standard and the real daemon have it.

C-MOVE export: ``export_bytes`` patches only (0008,0005) into a stored data set's bytes when
its text is ASCII; ``export_dataset`` re-encodes a read data set for the export character set.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom import config
from pydicom.charset import convert_encodings, decode_bytes, python_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

__all__ = [
    "TEXT_VRS",
    "VALUE_WIDTHS",
    "Decoded",
    "decode_dataset",
    "decode_text",
    "effective_charset",
    "export_bytes",
    "export_dataset",
    "export_pieces",
    "value_representation",
]

#: Value representations whose bytes are text in the Specific Character Set.
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
#: Bytes per value of the binary value representations: a length that is not a multiple
#: means the object was encoded wrongly (and the elements after it are misread).
VALUE_WIDTHS = {"US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "FD": 8, "AT": 4, "UV": 8, "SV": 8,
           "OW": 2, "OF": 4, "OD": 8, "OL": 4, "OV": 8}  # fmt: skip
_MULTI_VALUED = frozenset({"SH", "LO", "UC", "PN"})
_ASCII_TERMS = frozenset({"", "ISO_IR 6", "ISO 2022 IR 6"})
_ESCAPE = 0x1B
#: Where ISO 2022 code extensions may switch character sets inside a value.
_DELIMITERS = {0x5C, 0x3D, 0x5E, 0x0D, 0x0A, 0x09, 0x0C}
UTF8 = "ISO_IR 192"


@dataclass(frozen=True)
class Decoded:
    """What :func:`decode_dataset` did: the character set applied and the text it replaced.

    ``unknown`` holds the Specific Character Set terms no codec exists for; their text was
    decoded as US-ASCII, so it counts as coerced even when nothing had to be replaced.
    """

    charset: tuple[str, ...]
    declared: tuple[str, ...]
    undecodable: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    #: The text values holding bytes above 0x7F (for the findings on undeclared text).
    non_ascii: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """Every text value decoded without replacement characters, in a known character set."""
        return not self.undecodable and not self.unknown

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
    """Decode one value's bytes; return the text and whether it decoded without replacement.

    An escape sequence the ISO 2022 decoder did not understand stays in pydicom's result as
    a raw ESC; it is replaced (U+FFFD) and the value counted as undecodable.
    """
    single = len(terms) <= 1 and _ESCAPE not in raw
    if single:
        codec = _codec(terms[0] if terms else "")
        try:
            return raw.decode(codec), True
        except (UnicodeDecodeError, LookupError):
            return raw.decode(codec, errors="replace"), False
    text = decode_bytes(raw, convert_encodings(list(terms)), _DELIMITERS)
    if "\x1b" in text:
        text = text.replace("\x1b", "\ufffd")
    return text, "\ufffd" not in text


@functools.lru_cache(maxsize=64)
def _codec(term: str) -> str:
    """The Python codec for one Specific Character Set term (ISO_IR 6: strict US-ASCII)."""
    return "ascii" if term in _ASCII_TERMS else convert_encodings([term])[0]


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
    width = VALUE_WIDTHS.get(vr)
    if width is None or not isinstance(element, RawDataElement):
        return
    length = element.length
    if length != 0xFFFFFFFF and length % width:
        raise ValueError(
            f"element {BaseTag(element.tag)} has VR {vr} but a length of {length} bytes, "
            f"not a multiple of {width}"
        )


def _walk(
    dataset: Dataset,
    terms: Sequence[str],
    bad: list[str],
    path: str,
    wide: list[str],
    *,
    deep: bool = True,
) -> None:
    """Decode every text value of ``dataset`` in place; its items' too when ``deep``."""
    # items() gives the elements as stored, without converting them (unlike iterating).
    for tag, element in list(dataset.items()):
        if tag == 0x00080005 or element is None:
            continue
        vr = value_representation(element)
        if vr == "SQ":
            if deep:
                for number, item in enumerate(dataset[tag].value):
                    _walk(item, terms, bad, f"{path}{tag}[{number}].", wide)
            continue
        if vr not in TEXT_VRS or not isinstance(element, RawDataElement):
            _check_width(element, vr)
            continue
        raw = element.value or b""
        if not raw.isascii():
            wide.append(f"{path}{tag}")
        text, ok = decode_text(raw, terms)
        if not ok:
            bad.append(f"{path}{tag}")
        values = [v.rstrip(" \x00") for v in text.split("\\")] if vr in _MULTI_VALUED else []
        value: object = (
            (values[0] if len(values) == 1 else values) if values else text.rstrip(" \x00")
        )
        # pydicom's reading validation only warns (an over-long LO, an odd PN), and the
        # daemon does not act on those warnings; skipping it halves the cost of decoding
        # an object's text. What the daemon refuses, simdaemon.validation decides. (Items
        # left as read, when plain, are validated by pydicom when something converts them.)
        dataset[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)


def decode_dataset(
    dataset: Dataset, import_charset: str, override: bool, *, plain_items: bool = False
) -> Decoded:
    """Decode all text of a freshly read dataset to Unicode, in place.

    Binary values are checked against the width of their value representation on the way,
    so a wrongly encoded object fails here, during the import's validation; converting
    every element to find out would cost more than the rest of the import together.

    ``plain_items`` says the encoded object's sequence items hold only ASCII text without
    escape sequences and binary values of whole widths (:attr:`simdaemon.wellformed.Scan.
    plain_items`). When the character set applied also reads ASCII as ASCII, the items are
    left as read: decoding them would change nothing and find nothing, and parsing a plan's
    or a structure set's items costs more than the rest of its import. pydicom converts an
    item's element when something asks for it, in the character set it read the object
    with (the declared one, which may differ from ``terms`` under ``import_charset``: for
    ASCII text that reads the same), with its own reading validation (so an over-long value
    there may warn, as it does not at the top level). An object written again in UTF-8
    keeps such items' bytes as received, padding included: the values read the same.
    """
    declared = _declared(dataset)
    terms = effective_charset(declared, import_charset, override)
    unknown = tuple(term for term in terms if term not in python_encoding)
    if unknown:  # pydicom would guess a codec (with a warning); US-ASCII is the safe reading
        terms = tuple(term for term in terms if term in python_encoding) or ("ISO_IR 6",)
    bad: list[str] = []
    wide: list[str] = []
    deep = not (plain_items and not unknown and set(terms) <= _ASCII_SUPERSETS)
    _walk(dataset, terms, bad, "", wide, deep=deep)
    return Decoded(
        charset=terms,
        declared=declared,
        undecodable=tuple(bad),
        unknown=unknown,
        non_ascii=tuple(wide),
    )


#: Character sets whose first 128 codes are US-ASCII and that need no escape sequences:
#: text that is all ASCII is written identically in any of them.
_ASCII_SUPERSETS = frozenset(
    {"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144",
     "ISO_IR 127", "ISO_IR 126", "ISO_IR 138", "ISO_IR 148", "ISO_IR 203", "ISO_IR 166",
     "ISO_IR 192", "GB18030", "GBK"}
)  # fmt: skip


def _all_ascii(dataset: Dataset) -> bool:
    """Whether every text value of the (unconverted) data set is plain US-ASCII."""
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts its elements
        element = dataset.get_item(tag)
        if element is None:
            continue
        vr = value_representation(element)
        if vr == "SQ":
            if not all(_all_ascii(item) for item in dataset[tag].value):
                return False
        elif vr in TEXT_VRS:
            value = element.value
            if isinstance(value, (bytes, str)) and not value.isascii():
                return False
    return True


def export_dataset(dataset: Dataset, wanted: Sequence[str]) -> Dataset:
    """Change a read data set's text to the export character set ``wanted`` (in place).

    Decoding every text value to write it again costs a third of a sub-operation, so it is
    skipped when the text is plain ASCII and both character sets write ASCII the same way:
    then only the Specific Character Set changes.
    """
    wanted = list(wanted)
    stored = dataset.get("SpecificCharacterSet")
    stored_terms = (
        [str(stored)] if isinstance(stored, str) else [str(t) for t in stored] if stored else []
    )
    if stored_terms == wanted:
        return dataset
    compatible = set(stored_terms) | set(wanted) <= _ASCII_SUPERSETS
    if not (compatible and _all_ascii(dataset)):
        dataset.decode()  # text to str in the stored charset, written in the wanted one
    dataset.SpecificCharacterSet = wanted[0] if len(wanted) == 1 else wanted
    return dataset


def _charset_element(terms: list[str], implicit: bool) -> bytes:
    value = "\\".join(terms).encode("ascii")
    if len(value) % 2:
        value += b" "
    if implicit:
        return struct.pack("<HHI", 0x0008, 0x0005, len(value)) + value
    return struct.pack("<HH2sH", 0x0008, 0x0005, b"CS", len(value)) + value


_LONG_HEADER_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
                              "UT", "UV"})  # fmt: skip


#: Bytes an export may be made of: the stored file's own (viewed, not copied) and new ones.
Piece = bytes | memoryview

_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_UNDEFINED = 0xFFFFFFFF
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_CHARSET = 0x00080005


@dataclass
class _Scan:
    """What an export needs to know of a stored data set's text, read off its bytes."""

    #: Where the data set's (0008,0005) element starts and ends; ``None``: it has none.
    element: tuple[int, int] | None = None
    #: Its value, as stored.
    value: bytes = b""
    #: Where a (0008,0005) element would go: before the first top-level element after it.
    insert_at: int | None = None
    #: Every text value is US-ASCII and nothing prevents patching (0008,0005) alone: no
    #: group length (0008,0000), no element the scan cannot step over with certainty.
    plain: bool = True


def _implicit_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"  # a private or unknown element: never text, as pydicom reads it


def _scan(data: memoryview, implicit: bool, stop_after_charset: bool) -> _Scan:
    """Walk a stored (well-formed, little endian) data set's elements without decoding them.

    Items of every sequence are walked, with an explicit stack. The walk ends early: at the
    first non-ASCII text value or anything it cannot step over (``plain`` False), or, with
    ``stop_after_charset``, at the first top-level element after (0008,0005).
    """
    scan = _Scan()
    size = len(data)
    stack: list[tuple[int | None, bool]] = [(size, False)]  # (end, holds items)
    pos = 0
    while stack:
        end, items = stack[-1]
        if end is not None and pos >= end:
            stack.pop()
            continue
        group, number = _TAG.unpack_from(data, pos)
        tag = group << 16 | number
        if items:
            if tag == _SEQUENCE_END:
                stack.pop()
                pos += 8
                continue
            (length,) = _U32.unpack_from(data, pos + 4)
            pos += 8
            stack.append((None if length == _UNDEFINED else pos + length, False))
            continue
        if tag == _ITEM_END:
            stack.pop()
            pos += 8
            continue
        if implicit:
            vr = _implicit_vr(tag)
            (length,) = _U32.unpack_from(data, pos + 4)
            header = 8
        else:
            vr = bytes(data[pos + 4 : pos + 6]).decode("ascii", "replace")
            if vr in _LONG_HEADER_VRS:
                (length,) = _U32.unpack_from(data, pos + 8)
                header = 12
            else:
                (length,) = _U16.unpack_from(data, pos + 6)
                header = 8
        start = pos + header
        if len(stack) == 1:  # the data set's own elements
            if tag == 0x00080000:
                scan.plain = False
                return scan
            if tag == _CHARSET:
                scan.element = (pos, start + length)
                scan.value = bytes(data[start : start + length])
            elif tag > _CHARSET and scan.insert_at is None:
                scan.insert_at = pos
                if stop_after_charset:
                    return scan
        if vr == "SQ":
            stack.append((None if length == _UNDEFINED else start + length, True))
            pos = start
            continue
        if length == _UNDEFINED:  # UN or an unknown private sequence: pydicom's to judge
            scan.plain = False
            return scan
        if start + length > size:  # runs past the end: a truncated file is pydicom's to judge
            scan.plain = False
            return scan
        if vr in TEXT_VRS and not bytes(data[start : start + length]).isascii():
            scan.plain = False
            return scan
        pos = start + length
    return scan


def _terms(value: bytes) -> list[str]:
    text = value.decode("ascii", "replace")
    return [t.strip() for t in text.split("\\")] if text else []


def export_pieces(
    data: bytes | memoryview, implicit: bool, wanted: Sequence[str]
) -> list[Piece] | None:
    """A little-endian data set with (0008,0005) set to ``wanted``, text untouched, as pieces.

    The pieces, joined, are the bytes to send: views of ``data`` (nothing copied) around a new
    (0008,0005) element, or ``[data]`` when the stored character set is the wanted one.
    ``None`` when the text must change: a character set that is not an ASCII superset, a
    group length (0008,0000), non-ASCII text, or an element the walk cannot step over. The
    data set is read off its bytes, without pydicom: moving a 512 KiB slice must not parse it.
    """
    wanted = list(wanted)
    view = memoryview(data).cast("B")
    try:
        return _export(data, view, implicit, wanted)
    except struct.error:  # the walk ran off the end: a truncated file is pydicom's to judge
        return None


def _export(
    data: bytes | memoryview, view: memoryview, implicit: bool, wanted: list[str]
) -> list[Piece] | None:
    scan = _scan(view, implicit, stop_after_charset=True)
    if scan.plain and _terms(scan.value) == wanted:
        return [data]  # text in any encoding: nothing follows (0008,0005) yet in the walk
    if not (set(_terms(scan.value)) | set(wanted) <= _ASCII_SUPERSETS):
        return None
    scan = _scan(view, implicit, stop_after_charset=False)
    if not scan.plain:
        return None
    new = _charset_element(wanted, implicit)
    if scan.element is not None:
        begin, end = scan.element
        return [view[:begin], new, view[end:]]
    if scan.insert_at is not None:
        return [view[: scan.insert_at], new, view[scan.insert_at :]]
    return [data, new]


def export_bytes(data: bytes, implicit: bool, wanted: Sequence[str]) -> bytes | None:
    """:func:`export_pieces` joined: ``data`` itself when nothing changes."""
    pieces = export_pieces(data, implicit, wanted)
    if pieces is None:
        return None
    if len(pieces) == 1 and pieces[0] is data:
        return data
    return b"".join(pieces)
