"""Is an encoded data set well-formed for its transfer syntax? Checked on the raw bytes.

SPEC section 5 step 1. pydicom reads almost anything: a group 0002 element inside the data
set (later merged into the stored file's meta information), duplicate elements (the last one
wins, so an object was filed under its second Patient ID), elements out of order, an unknown
VR, Implicit VR bytes on an Explicit VR context (filed, then unreadable when moved). Each of
those made an object the daemon acknowledged but could not later find, read or move, so the
import refuses them before decoding anything (0xA900, the element named).

The walk follows PS3.5 section 7: elements in ascending tag order without repeats, in every
data set and every sequence item; a VR from the standard's list (Explicit VR); lengths that
fit inside what holds them; undefined lengths only for sequences (and their items), each
ended by its delimiter. Little endian only: the daemon accepts no other transfer syntax.
It keeps an explicit stack rather than recursing, so no nesting depth can exhaust it.

The same pass notes whether the object's sequence items are *plain* (:class:`Scan`): every
text value in them US-ASCII without an escape sequence, every binary value a whole number of
its VR's width. Such items read alike in every character set whose first 128 codes are
ASCII, so the import decodes the object's top-level text only
(:func:`simdaemon.charset.decode_dataset`) and leaves its items, most of a plan's or a
structure set's elements, as they arrived.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.uid import UID

from simdaemon.charset import TEXT_VRS, VALUE_WIDTHS
from simdaemon.validation import Problem

__all__ = [
    "UNDEFINED_LENGTH",
    "VRS",
    "KeptScan",
    "Scan",
    "TopLevel",
    "check",
    "element_name",
    "scan",
]

#: The value representations of PS3.5 table 6.2-1.
VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD",
     "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI",
     "UL", "UN", "UR", "US", "UT", "UV"}
)  # fmt: skip
#: Explicit VRs with two reserved bytes and a 32-bit length (PS3.5 table 7.1-1).
_LONG = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
#: The value length of an element or item that ends at a delimitation item.
UNDEFINED_LENGTH = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TAG = struct.Struct("<HH")
_ESCAPE = b"\x1b"


def _say(template: str, tag: int) -> str:
    """An Error Comment naming ``tag``: with its keyword when that fits in 64 characters."""
    full = template.format(element_name(tag))
    return full if len(full) <= 64 else template.format(element_name(tag, keyword=False))[:64]


def element_name(tag: int, *, keyword: bool = True) -> str:
    """``(gggg,eeee) Keyword`` (the keyword when the dictionary knows the tag)."""
    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    word = keyword_for_tag(tag) if keyword else ""
    return f"{text} {word}" if word else text


class _Malformed(Exception):
    def __init__(self, rule: str, comment: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = Problem(rule, comment, detail)


@dataclass
class _Level:
    """A data set (or item) whose elements are being walked, or a sequence's items."""

    end: int | None  # where it ends; None: at its delimiter
    items: bool  # the items of a sequence, not the elements of a data set
    implicit: bool
    #: The sequence (or element) holding it; ``None`` for the data set itself (a tag may be 0).
    owner: int | None = None
    last: int = -1
    seen: set[int] = field(default_factory=set)


class TopLevel(NamedTuple):
    """A top-level element as the walk found it."""

    tag: int
    #: ``None``: Implicit VR.
    vr: str | None
    #: The value's length; :data:`UNDEFINED_LENGTH` for a sequence ended by its delimiter.
    length: int
    #: Where the element's tag starts.
    header: int
    #: Where its value starts.
    value: int


@dataclass(frozen=True)
class Scan:
    """What walking an encoded data set found."""

    #: Why it is not well-formed; ``None`` when it is.
    problem: Problem | None
    #: In every sequence item (at any depth), every text value
    #: (:data:`~simdaemon.charset.TEXT_VRS`) is US-ASCII without ESC and every binary
    #: value's length is a multiple of its VR's width (:data:`~simdaemon.charset.VALUE_WIDTHS`).
    #: ``False`` when not, or not known (the walk stopped at a problem, or a UN of undefined
    #: length that pydicom may read otherwise than this walk). The top-level elements do not
    #: count: the import decodes and checks those in any case.
    plain_items: bool
    #: Each top-level element, in order; empty when the walk stopped at a problem. What
    #: :func:`simdaemon.reading.read_scanned` builds pydicom's reading from.
    elements: tuple[TopLevel, ...] = ()


#: A :class:`TopLevel`'s fields as a plain tuple: what :class:`KeptScan` holds.
_Packed = tuple[int, str | None, int, int, int]


@dataclass(frozen=True)
class KeptScan:
    """A scan kept with the very bytes object and the transfer syntax it was made of.

    For bytes imported again and again (the patient cache's): :meth:`made_of` tells whether
    it is these bytes' scan by identity, so a copy with other bytes is never taken for them.

    Only a well-formed data set's scan is kept, its elements as plain tuples of ints and
    strings: Python's garbage collector stops tracking those (after a collection or two),
    where it would walk every
    :class:`TopLevel` (a named tuple) of every kept scan at each full collection, for as
    long as the process keeps them. :attr:`scan` makes the named tuples again, each time.
    """

    #: Compared by identity in :meth:`made_of`, never by value.
    data: bytes = field(repr=False, compare=False)
    transfer_syntax: str
    plain_items: bool
    packed: tuple[_Packed, ...] = field(repr=False)

    @classmethod
    def of(cls, data: bytes, transfer_syntax: str) -> KeptScan | None:
        """The scan of ``data``, kept; ``None`` when ``data`` is not well-formed (the
        import scans it again, and refuses it)."""
        found = scan(data, transfer_syntax)
        if found.problem is not None:
            return None
        packed = tuple((e.tag, e.vr, e.length, e.header, e.value) for e in found.elements)
        return cls(data, transfer_syntax, found.plain_items, packed)

    @property
    def scan(self) -> Scan:
        """The scan, as :func:`scan` returned it."""
        return Scan(None, self.plain_items, tuple(map(TopLevel._make, self.packed)))

    def made_of(self, data: bytes, transfer_syntax: str) -> bool:
        """Whether this is the scan of ``data`` (this very object) in ``transfer_syntax``."""
        return data is self.data and transfer_syntax == self.transfer_syntax


def check(data: bytes, transfer_syntax: str) -> Problem | None:
    """Return why ``data`` is not a well-formed data set in ``transfer_syntax``, or ``None``."""
    return scan(data, transfer_syntax).problem


def scan(data: bytes, transfer_syntax: str) -> Scan:
    """Check that ``data`` is well-formed in ``transfer_syntax``; say if its items are plain."""
    syntax = UID(transfer_syntax)
    if not syntax.is_little_endian or syntax.is_deflated or syntax.is_compressed:
        return Scan(
            Problem(
                "transfer-syntax",
                f"transfer syntax {transfer_syntax} is not supported",
                f"the data set is in {syntax.name}; only Implicit and Explicit VR Little "
                "Endian are accepted",
            ),
            plain_items=False,
        )
    elements: list[TopLevel] = []
    try:
        plain_items = _walk(data, bool(syntax.is_implicit_VR), elements)
    except _Malformed as malformed:
        return Scan(malformed.problem, plain_items=False)
    return Scan(None, plain_items=plain_items, elements=tuple(elements))


def _is_sequence(tag: int, vr: str | None) -> bool:
    """Whether an element's value is a sequence of items (Implicit VR: by the dictionary)."""
    if vr is not None:
        return vr == "SQ"
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def _walk(data: bytes, implicit: bool, elements: list[TopLevel]) -> bool:
    """Raise :class:`_Malformed` at the first element that breaks the encoding rules.

    Return whether the data set's items are plain (:attr:`Scan.plain_items`); append each
    top-level element to ``elements`` (:attr:`Scan.elements`).
    """
    size = len(data)
    stack = [_Level(end=size, items=False, implicit=implicit)]
    pos = 0
    plain = [True]
    while stack:
        level = stack[-1]
        if level.end is not None and pos >= level.end:
            stack.pop()
            continue
        limit = level.end if level.end is not None else size
        if pos + 8 > limit:
            _unterminated(level, pos, limit, size)
        group, number = _TAG.unpack_from(data, pos)
        tag = group << 16 | number
        if level.items:
            pos = _item(data, pos, tag, limit, level, stack)
        else:
            pos = _element(data, pos, tag, limit, level, stack, plain, elements)
    return plain[0]


def _holder(level: _Level) -> str:
    """What holds the elements of ``level``, in words: the data set or an item of a sequence."""
    return "the data set" if level.owner is None else f"an item of {element_name(level.owner)}"


def _unterminated(level: _Level, pos: int, limit: int, size: int) -> None:
    """Raise for a data set, item or sequence whose bytes stop short."""
    where = element_name(level.owner) if level.owner is not None else "the data set"
    if level.end is None:
        raise _Malformed(
            "truncated",
            _say("{} is not terminated", level.owner)
            if level.owner is not None
            else "the data set is not terminated",
            f"{where} has undefined length, but the data set ends ({size} bytes) before its "
            "delimitation item",
        )
    raise _Malformed(
        "truncated",
        "the data set ends inside an element header",
        f"{where} ends {limit - pos} byte(s) after the last complete element, too few for "
        "another element's tag and length: the data set is truncated or misencoded",
    )


def _item(data: bytes, pos: int, tag: int, limit: int, level: _Level, stack: list[_Level]) -> int:
    """Step over one item of a sequence (pushing its data set); return the next position."""
    sequence = level.owner if level.owner is not None else 0  # always set on a sequence's level
    owner = element_name(sequence)
    if tag == _SEQUENCE_END and level.end is None:
        stack.pop()
        return pos + 8
    if tag != _ITEM:
        raise _Malformed(
            "sequence-structure",
            _say(f"{{}} where an item of {element_name(sequence, keyword=False)} must be", tag),
            f"sequence {owner} holds element {element_name(tag)} where an item (FFFE,E000) or, "
            "for an undefined length, its delimitation item must be",
        )
    (length,) = _U32.unpack_from(data, pos + 4)
    start = pos + 8
    if length == UNDEFINED_LENGTH:
        stack.append(_Level(end=None, items=False, implicit=level.implicit, owner=level.owner))
        return start
    if start + length > limit:
        raise _Malformed(
            "truncated",
            _say("an item of {} is truncated", sequence),
            f"an item of sequence {owner} declares {length} bytes but only "
            f"{max(limit - start, 0)} remain in what holds it",
        )
    stack.append(
        _Level(end=start + length, items=False, implicit=level.implicit, owner=level.owner)
    )
    return start


def _header(data: bytes, pos: int, tag: int, level: _Level) -> tuple[str | None, int, int]:
    """Return an element's VR (``None``: Implicit VR), its value length and header size."""
    if level.implicit:
        return None, _U32.unpack_from(data, pos + 4)[0], 8
    code = data[pos + 4 : pos + 6]
    if not (code.isalpha() and code.isupper()):
        raise _Malformed(
            "vr-encoding",
            _say("Implicit VR data on an Explicit VR context at {}", tag),
            f"element {element_name(tag)} has no VR (bytes {code.hex(' ')} where Explicit VR "
            "Little Endian puts two letters): the data set is Implicit VR encoded, but the "
            "presentation context negotiated Explicit VR",
        )
    vr = code.decode("ascii")
    if vr not in VRS:
        raise _Malformed(
            "unknown-vr",
            _say(f"unknown VR '{vr}' in element {{}}", tag),
            f"element {element_name(tag)} has VR '{vr}', which is not a DICOM value "
            "representation (PS3.5 table 6.2-1)",
        )
    if vr in _LONG:
        if pos + 12 > len(data):
            raise _Malformed(
                "truncated",
                "the data set ends inside an element header",
                f"element {element_name(tag)} has VR {vr} but the data set ends before its "
                "32-bit length",
            )
        return vr, _U32.unpack_from(data, pos + 8)[0], 12
    return vr, _U16.unpack_from(data, pos + 6)[0], 8


def _element(
    data: bytes,
    pos: int,
    tag: int,
    limit: int,
    level: _Level,
    stack: list[_Level],
    plain: list[bool],
    elements: list[TopLevel],
) -> int:
    """Check one element of a data set (pushing a sequence's items); return the next position.

    ``plain[0]`` turns ``False`` at the first value in an item that is not plain
    (:attr:`Scan.plain_items`); a top-level element is appended to ``elements``.
    """
    if tag == _ITEM_END and level.end is None:
        stack.pop()
        return pos + 8
    if tag >> 16 == 0xFFFE:
        raise _Malformed(
            "sequence-structure",
            _say("misplaced item tag {}", tag),
            f"element {element_name(tag)} is an item or delimitation tag, found among the "
            "elements of " + _holder(level),
        )
    if tag >> 16 == 0x0002 and level.owner is None:
        raise _Malformed(
            "group-0002",
            _say("group 0002 element {} in the data set", tag),
            f"element {element_name(tag)} belongs to the file meta information (group 0002), "
            "which is never part of a data set sent over the network",
        )
    if tag in level.seen:
        raise _Malformed(
            "duplicate-element",
            _say("duplicate element {}", tag),
            f"element {element_name(tag)} occurs twice in " + _holder(level),
        )
    if tag < level.last:
        raise _Malformed(
            "tag-order",
            _say("element {} out of ascending order", tag),
            f"element {element_name(tag)} follows {element_name(level.last)}: elements must be in "
            "ascending tag order (PS3.5 7.1)",
        )
    level.seen.add(tag)
    level.last = tag
    vr, length, header = _header(data, pos, tag, level)
    start = pos + header
    if level.owner is None:
        elements.append(TopLevel(tag, vr, length, pos, start))
    if length == UNDEFINED_LENGTH:
        if vr == "UN" or _is_sequence(tag, vr) or (vr is None and _private_unknown(tag)):
            implicit = True if vr == "UN" else level.implicit  # UN: CP-246, Implicit VR inside
            if vr == "UN":
                # pydicom reads inside such a UN as Explicit VR when the bytes look like it,
                # so this walk and its reading may part: the import must parse it early.
                plain[0] = False
            stack.append(_Level(end=None, items=True, implicit=implicit, owner=tag))
            return start
        raise _Malformed(
            "undefined-length",
            _say("{} has undefined length", tag),
            f"element {element_name(tag)} has undefined length, which only sequences may have in a "
            "native transfer syntax (encapsulated pixel data needs a compressed one)",
        )
    if start + length > limit:
        _overrun(data, pos, tag, start, length, limit, level)
    if _is_sequence(tag, vr):
        stack.append(_Level(end=start + length, items=True, implicit=level.implicit, owner=tag))
        return start
    if plain[0] and level.owner is not None:
        plain[0] = _plain(data, start, length, vr if vr is not None else _dictionary_vr(tag))
    return start + length


def _plain(data: bytes, start: int, length: int, vr: str) -> bool:
    """Whether one value is plain: ASCII text without ESC, or binary of a whole width."""
    if vr in TEXT_VRS:
        value = data[start : start + length]
        return value.isascii() and _ESCAPE not in value
    width = VALUE_WIDTHS.get(vr)
    return width is None or length % width == 0


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str:
    """An Implicit VR element's VR as the dictionary has it (``UN`` when it does not)."""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _private_unknown(tag: int) -> bool:
    """An Implicit VR element the dictionary does not know: undefined length means sequence."""
    try:
        dictionary_VR(tag)
    except KeyError:
        return True
    return False


def _overrun(
    data: bytes, pos: int, tag: int, start: int, length: int, limit: int, level: _Level
) -> None:
    """Raise for an element whose value runs past what holds it."""
    name = element_name(tag)
    code = data[pos + 4 : pos + 6]
    if level.implicit and code.isalpha() and code.decode("ascii") in VRS:
        raise _Malformed(
            "vr-encoding",
            _say("Explicit VR data on an Implicit VR context at {}", tag),
            f"element {name} starts with VR '{code.decode('ascii')}': the data set is "
            "Explicit VR encoded, but the presentation context negotiated Implicit VR",
        )
    held = max(limit - start, 0)
    comment = f"{'Pixel Data (7FE0,0010)' if tag == _PIXEL_DATA else name} is truncated"
    raise _Malformed(
        "truncated",
        _say(f"{{}} is truncated: {held} of {length} bytes", tag)
        if tag != _PIXEL_DATA
        else f"{comment}: {held} of {length} bytes",
        f"{comment}: it declares {length} bytes but {held} arrived"
        + (f" within its item of {element_name(level.owner)}" if level.owner is not None else ""),
    )
