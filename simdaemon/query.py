"""C-FIND and C-MOVE identifiers as lookups: PS3.4 C.2.2.2 matching, in DICOM terms (pure).

An identifier names a level and carries keys. Keys with a value filter the result when they
belong to the query level or any level above it - leniently, as client code uses the real
daemon (SERIES with only a StudyInstanceUID, IMAGE with a PatientID and a Modality). Keys the
daemon cannot match on, and keys below the level, never cause an error: they are returned
(empty when unknown) and listed in :attr:`Query.ignored`.

Matching, per PS3.4 C.2.2.2: single value (:class:`Single`); universal (an empty value: no
constraint, the key is only returned); wildcard ``*`` and ``?`` (:class:`Wildcard`); UID list,
backslash separated, for any VR (:class:`ValueList`); DA/TM/DT range ``A-B``, ``-B``, ``A-``
(:class:`Range`); sequence matching with one item (:class:`SequenceMatch`); PN compared
case-insensitively (:attr:`Constraint.folded`), everything else case-sensitively.

This module says *what* to match and answer; it writes no SQL. Keys the archive indexes become
:class:`Constraint` objects that :mod:`simdaemon.lookup` compiles to SQL, and each match type
also answers :meth:`~Single.accepts` in Python with the same rules. A few RT keys that live only
in the stored attributes (RTPlanLabel, StructureSetLabel, ...) and sequence matching are
:attr:`Query.post_filters`, applied in Python as rows stream past. Everything else -
NumberOfBeams, say, which Evil DICOM sends as "0" expecting plans with any number of beams - is
ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from simdaemon.attributes import text_value
from simdaemon.wildcard import is_wild, wildcard_match

__all__ = [
    "ARIA_SERIES_DESCRIPTIONS",
    "ATTRIBUTES",
    "COMPUTED",
    "INDEXED",
    "MODELS",
    "UNIQUE_KEYS",
    "VALUE_LENGTHS",
    "AnyOf",
    "Attribute",
    "Constraint",
    "Extent",
    "Level",
    "Matching",
    "Query",
    "QueryError",
    "Range",
    "ReturnKey",
    "SequenceMatch",
    "Shape",
    "Single",
    "StoredFilter",
    "StoredMatch",
    "UniversalKey",
    "ValueList",
    "Wildcard",
    "check_lengths",
    "compile_query",
    "describe",
    "matches",
    "parse_level",
    "sent_values",
    "universal_key",
]


class Level(IntEnum):
    """Query/Retrieve levels, highest first."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    IMAGE = 3


#: The unique key of each level (PS3.4 C.6.1.1, C.6.2.1): what names a level's objects.
UNIQUE_KEYS: dict[Level, str] = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}

#: The levels each information model allows.
MODELS: dict[str, tuple[Level, ...]] = {
    "patient": (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE),
    "study": (Level.STUDY, Level.SERIES, Level.IMAGE),
}
_MODEL_NAMES = {"patient": "Patient Root", "study": "Study Root"}


#: How ARIA describes the series of these modalities, whatever the objects say
#: (``[quirks] aria_series_descriptions``).
ARIA_SERIES_DESCRIPTIONS: dict[str, str] = {
    "RTPLAN": "ARIA RadOnc Plans",
    "RTSTRUCT": "ARIA RadOnc Structure Sets",
    "REG": "Image Registration",
}


@dataclass(frozen=True)
class Shape:
    """The ARIA response-shape quirks of SPEC section 6 (``[quirks]``), as Python rules.

    Keys in :attr:`derived` are answered - and matched - with the value the rules give,
    computed from stored values by :mod:`simdaemon.lookup` as rows stream past.
    """

    course_id_as_study_id: bool = True
    aria_series_descriptions: bool = True
    series_without_study_keys: bool = True

    @property
    def derived(self) -> frozenset[str]:
        """The keys whose answers these quirks derive from other stored values."""
        keys = []
        if self.course_id_as_study_id:
            keys.append("StudyID")
        if self.aria_series_descriptions:
            keys.append("SeriesDescription")
        return frozenset(keys)

    def study_id(self, stored: str, course: int) -> str:
        """StudyID as answered: the imported one, else the course ID ``C1``, ``C2``, ...

        ``course`` is the study's place among its patient's studies, in the order they were
        created: ARIA numbers a patient's courses so.
        """
        if stored or not self.course_id_as_study_id:
            return stored
        return f"C{course}"

    def series_description(self, modality: str, stored: str) -> str:
        """SeriesDescription as answered: ARIA's own for plans, structure sets, registrations."""
        if not self.aria_series_descriptions:
            return stored
        return ARIA_SERIES_DESCRIPTIONS.get(modality, stored)

    def derivable(self, constraint: Constraint) -> tuple[Constraint, ...]:
        """Where these rules may answer a value ``constraint`` accepts, whatever is stored.

        Constraints on stored keys; a row satisfying any of them, or whose stored value
        ``constraint`` accepts, may match - the archive narrows a search on a derived key
        with them before the rules decide. StudyID is derived only where none is stored;
        a series description only for the modalities whose ARIA description is accepted.
        """
        if constraint.keyword == "StudyID" and self.course_id_as_study_id:
            return (Constraint("StudyID", Single("")),)
        if constraint.keyword == "SeriesDescription" and self.aria_series_descriptions:
            modalities = tuple(
                modality
                for modality, description in ARIA_SERIES_DESCRIPTIONS.items()
                if constraint.accepts(description)
            )
            return (Constraint("Modality", ValueList(modalities)),) if modalities else ()
        return ()


@dataclass(frozen=True)
class Attribute:
    """A key the daemon can match on: its level, its VR and whether the archive indexes it.

    ``indexed`` keys are kept in the archive's index and matched by :mod:`simdaemon.lookup`;
    the others live only in the stored attributes of an instance and are matched in Python.
    """

    keyword: str
    level: Level
    vr: str
    indexed: bool = True


_ENTRIES = [
    Attribute("PatientID", Level.PATIENT, "LO"),
    Attribute("PatientName", Level.PATIENT, "PN"),
    Attribute("PatientBirthDate", Level.PATIENT, "DA"),
    Attribute("PatientSex", Level.PATIENT, "CS"),
    Attribute("OtherPatientIDs", Level.PATIENT, "LO"),
    Attribute("StudyInstanceUID", Level.STUDY, "UI"),
    Attribute("StudyID", Level.STUDY, "SH"),
    Attribute("StudyDate", Level.STUDY, "DA"),
    Attribute("StudyTime", Level.STUDY, "TM"),
    Attribute("AccessionNumber", Level.STUDY, "SH"),
    Attribute("StudyDescription", Level.STUDY, "LO"),
    Attribute("ReferringPhysicianName", Level.STUDY, "PN"),
    Attribute("SeriesInstanceUID", Level.SERIES, "UI"),
    Attribute("Modality", Level.SERIES, "CS"),
    Attribute("SeriesNumber", Level.SERIES, "IS"),
    Attribute("SeriesDescription", Level.SERIES, "LO"),
    Attribute("SeriesDate", Level.SERIES, "DA"),
    Attribute("SeriesTime", Level.SERIES, "TM"),
    Attribute("FrameOfReferenceUID", Level.SERIES, "UI"),
    Attribute("SOPInstanceUID", Level.IMAGE, "UI"),
    Attribute("SOPClassUID", Level.IMAGE, "UI"),
    Attribute("InstanceNumber", Level.IMAGE, "IS"),
    Attribute("ContentDate", Level.IMAGE, "DA"),
    Attribute("ContentTime", Level.IMAGE, "TM"),
    # Kept in the stored attributes only; matched in Python.
    Attribute("RTPlanLabel", Level.IMAGE, "SH", indexed=False),
    Attribute("RTPlanName", Level.IMAGE, "LO", indexed=False),
    Attribute("RTPlanDate", Level.IMAGE, "DA", indexed=False),
    Attribute("RTPlanTime", Level.IMAGE, "TM", indexed=False),
    Attribute("StructureSetLabel", Level.IMAGE, "SH", indexed=False),
    Attribute("StructureSetName", Level.IMAGE, "LO", indexed=False),
    Attribute("StructureSetDate", Level.IMAGE, "DA", indexed=False),
    Attribute("RTImageLabel", Level.IMAGE, "SH", indexed=False),
    Attribute("DoseSummationType", Level.IMAGE, "CS", indexed=False),
]
ATTRIBUTES: dict[str, Attribute] = {a.keyword: a for a in _ENTRIES}

#: Keys answered with a count or a list computed over the levels below, and the level from
#: which down they can be asked. Only ModalitiesInStudy can be matched (on any of its values).
COMPUTED: dict[str, Level] = {
    "ModalitiesInStudy": Level.STUDY,
    "NumberOfPatientRelatedStudies": Level.PATIENT,
    "NumberOfPatientRelatedSeries": Level.PATIENT,
    "NumberOfPatientRelatedInstances": Level.PATIENT,
    "NumberOfStudyRelatedSeries": Level.STUDY,
    "NumberOfStudyRelatedInstances": Level.STUDY,
    "NumberOfSeriesRelatedInstances": Level.SERIES,
}

#: Every key the archive's index answers (and :mod:`simdaemon.lookup` must know).
INDEXED: frozenset[str] = frozenset([a.keyword for a in _ENTRIES if a.indexed] + list(COMPUTED))
_NOT_KEYS = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"})


class QueryError(ValueError):
    """An identifier the daemon cannot run: the message is the Error Comment (<= 64 chars)."""


# --- matching one value ---------------------------------------------------------------------


def _split_range(value: str) -> tuple[str, str] | None:
    if value.count("-") != 1:
        return None
    low, high = (part.strip() for part in value.split("-"))
    return (low, high) if (low or high) else None


@dataclass(frozen=True)
class Single:
    """Single value matching: the stored value is ``value``, character for character."""

    value: str

    def accepts(self, stored: str) -> bool:
        """Whether ``stored`` matches."""
        return stored == self.value


@dataclass(frozen=True)
class ValueList:
    """List of UID matching (PS3.4 C.2.2.2.2), taken for any VR: one of ``values``, exactly.

    Inside a list no value is a wildcard or a range, and an empty value matches only an
    empty stored value: ``\\`` cannot widen a query to everything.
    """

    values: tuple[str, ...]

    def accepts(self, stored: str) -> bool:
        """Whether ``stored`` matches."""
        return stored in self.values


@dataclass(frozen=True)
class Wildcard:
    """Wild card matching: ``*`` is any run of characters, ``?`` any one; nothing else is wild.

    Matched by :func:`simdaemon.wildcard.wildcard_match`, in time at most proportional to
    pattern length times value length (no regular expression: no catastrophic backtracking).
    """

    pattern: str

    def accepts(self, stored: str) -> bool:
        """Whether ``stored`` matches."""
        return wildcard_match(self.pattern, stored)


@dataclass(frozen=True)
class Range:
    """Range matching of DA, TM and DT: ``low-high``, ``-high`` or ``low-``; never an empty value.

    Either bound may be empty (open). The upper bound holds at any precision: ``-1230``
    includes 12:30:45, so stored values are compared with :attr:`ceiling`.
    """

    low: str
    high: str

    @property
    def ceiling(self) -> str:
        """The upper bound as compared: ``~`` sorts after every digit and the dot."""
        return f"{self.high}~"

    def accepts(self, stored: str) -> bool:
        """Whether ``stored`` matches."""
        return (
            bool(stored)
            and (not self.low or stored >= self.low)
            and (not self.high or stored <= self.ceiling)
        )


@dataclass(frozen=True)
class AnyOf:
    """Any of several matches: a name given with one component group may be stored with more."""

    options: tuple[Single | Wildcard, ...]

    def accepts(self, stored: str) -> bool:
        """Whether ``stored`` matches."""
        return any(option.accepts(stored) for option in self.options)


#: How one indexed key matches (universal matching is no constraint at all).
Matching = Single | ValueList | Wildcard | Range | AnyOf


@dataclass(frozen=True)
class Constraint:
    """A valued key the archive's index matches: its keyword and how it matches.

    ``folded``: compare case-folded values (PN); the values in ``match`` are folded already.
    """

    keyword: str
    match: Matching
    folded: bool = False

    def accepts(self, stored: str) -> bool:
        """Whether a stored value matches, by the rules the SQL of :mod:`simdaemon.lookup` uses."""
        return self.match.accepts(stored.casefold() if self.folded else stored)


def _constraint(attribute: Attribute, values: Sequence[str]) -> Constraint:
    """How a valued key kept in the index matches ``values`` (at least one)."""
    keyword = attribute.keyword
    if len(values) > 1:  # value list (UID list matching, and lists of any other VR)
        return Constraint(keyword, ValueList(tuple(values)))
    value = values[0]
    if attribute.vr in ("DA", "TM", "DT") and (bounds := _split_range(value)) is not None:
        return Constraint(keyword, Range(*bounds))
    if attribute.vr == "PN":
        needle = value.casefold()
        exact: Single | Wildcard = Wildcard(needle) if is_wild(needle) else Single(needle)
        if "=" in needle:  # several component groups given: compare the whole name
            return Constraint(keyword, exact, folded=True)
        # One group, the alphabetic one as a rule: a stored name may carry more after "=".
        return Constraint(keyword, AnyOf((exact, Wildcard(f"{needle}=*"))), folded=True)
    if is_wild(value):
        return Constraint(keyword, Wildcard(value))
    return Constraint(keyword, Single(value))


def matches(vr: str, query: str, stored: str) -> bool:
    """Match one value of the stored attributes (:class:`StoredMatch`, sequence items).

    Unlike an indexed key's :class:`Constraint`, each value of a backslash list is matched
    by itself here (so it may be a wildcard or a range), and an empty one matches anything.
    """
    values = query.split("\\")
    if len(values) > 1:
        return any(matches(vr, v, stored) for v in values)
    value = values[0]
    if not value:
        return True
    if vr in ("DA", "TM", "DT") and (bounds := _split_range(value)) is not None:
        return Range(*bounds).accepts(stored)
    if vr == "PN":
        value, stored = value.casefold(), stored.casefold()
        if "=" not in value:
            stored = stored.split("=")[0]
    if is_wild(value):
        return Wildcard(value).accepts(stored)
    return value == stored


@dataclass(frozen=True)
class ReturnKey:
    """A key to answer: its element as requested, and where its value comes from.

    ``source`` is ``"index"`` (a value the archive's index holds or computes: a field of
    :class:`simdaemon.lookup.IndexRow`), ``"attribute"`` (read from the stored attributes) or
    ``"empty"`` (a key below the level, or a private one: answered empty). ``keyword`` is the
    element's, looked up once here rather than for every response.
    """

    element: DataElement
    source: Literal["index", "attribute", "empty"]
    keyword: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keyword", self.element.keyword)


@dataclass(frozen=True)
class StoredMatch:
    """A valued key kept only in the stored attributes (RTPlanLabel, ...): :func:`matches`."""

    keyword: str
    vr: str
    value: str

    def __call__(self, stored: Dataset) -> bool:
        """Whether an instance's stored attributes match."""
        return matches(self.vr, self.value, text_value(stored, self.keyword, strip=False))


@dataclass(frozen=True)
class SequenceMatch:
    """Sequence matching (C.2.2.2.6): a stored item matches every valued key of the query's item."""

    element: DataElement

    def __call__(self, stored: Dataset) -> bool:
        """Whether an instance's stored attributes match."""
        return _sequence_matches(self.element, stored)


#: A match applied in Python to an instance's stored attributes.
StoredFilter = StoredMatch | SequenceMatch


@dataclass(frozen=True)
class Query:
    """An identifier as the archive's lookup takes it: what to match and what to answer.

    ``constraints`` are matched by the archive's index (:mod:`simdaemon.lookup` compiles them
    to SQL); ``post_filters`` by Python on each row's stored attributes; ``keys`` are answered
    in the order requested. ``shape`` is the response shape the answers take (``[quirks]``).
    """

    level: Level
    model: str
    constraints: tuple[Constraint, ...]
    keys: tuple[ReturnKey, ...]
    post_filters: tuple[StoredFilter, ...] = ()
    ignored: tuple[str, ...] = ()
    matched: tuple[str, ...] = field(default=())
    shape: Shape = field(default_factory=Shape)

    @property
    def needs_attributes(self) -> bool:
        """Whether rows must bring their stored attributes (filters or return keys)."""
        return bool(self.post_filters) or any(k.source == "attribute" for k in self.keys)


# --- identifiers ---------------------------------------------------------------------------


def _strings(element: DataElement) -> list[str]:
    """The element's values as strings; ``[]`` only for a zero-length value (universal).

    A value of backslashes alone is a list of empty values, not universal matching: it
    matches stored values that are empty, so ``\\`` cannot widen a query to everything.
    """
    value = element.value
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v).strip() for v in value]
    return [str(value).strip()]


def _item_matches(query_item: Dataset, stored_item: Dataset) -> bool:
    for element in query_item:
        if element.VR == "SQ":
            if len(element.value) and not _sequence_matches(element, stored_item):
                return False
            continue
        wanted = _strings(element)
        stored = text_value(stored_item, element.keyword, strip=False)
        if wanted and not matches(str(element.VR), "\\".join(wanted), stored):
            return False
    return True


def _sequence_matches(element: DataElement, stored: Dataset) -> bool:
    """Sequence matching: some stored item matches every valued key of the query's item."""
    query_item = element.value[0]
    stored_items = stored.get(element.keyword) if element.keyword else None
    if not stored_items:
        return False
    return any(_item_matches(query_item, item) for item in stored_items)


def _has_values(item: Dataset) -> bool:
    for element in item:
        if element.VR == "SQ":
            if any(_has_values(i) for i in element.value):
                return True
        elif _strings(element):
            return True
    return False


#: The longest value of each VR, in characters (PS3.5 table 6.2-1); PN per component group.
VALUE_LENGTHS: dict[str, int] = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 8,
    "DS": 16,
    "DT": 26,
    "IS": 12,
    "LO": 64,
    "LT": 10240,
    "PN": 64,
    "SH": 16,
    "ST": 1024,
    "TM": 14,
    "UI": 64,
}


def _too_long(vr: str, value: str) -> bool:
    """Whether one value (of a backslash list) is longer than its VR allows.

    A DA/TM/DT range is two values and a hyphen; a PN is checked per component group.
    """
    limit = VALUE_LENGTHS.get(vr)
    if limit is None:
        return False
    if vr in ("DA", "TM", "DT") and (bounds := _split_range(value)) is not None:
        return any(len(bound) > limit for bound in bounds)
    if vr == "PN":
        return any(len(group) > limit for group in value.split("="))
    return len(value) > limit


def check_lengths(identifier: Dataset) -> None:
    """Refuse a matching key longer than its VR allows, in the identifier or a sequence item.

    A value no stored attribute can hold matches nothing, and its length is what makes
    matching costly, so the identifier is refused (:class:`QueryError`, answered 0xC000
    "Unable to process" with the key named) before anything is matched.
    """
    for element in identifier:
        if element.keyword in _NOT_KEYS or element.tag.group in (0x0000, 0x0002):
            continue
        if element.VR == "SQ":
            for item in element.value:
                check_lengths(item)
            continue
        vr = str(element.VR)
        if any(_too_long(vr, value) for value in _strings(element)):
            name = element.keyword or str(element.tag)
            unit = " per component group" if vr == "PN" else ""
            raise QueryError(f"{name} longer than {VALUE_LENGTHS[vr]} chars{unit} ({vr})")


def parse_level(identifier: Dataset, model: str) -> Level:
    """The identifier's QueryRetrieveLevel, checked against the model."""
    raw = identifier.get("QueryRetrieveLevel")
    text = str(raw).strip().upper() if raw is not None else ""
    name = _MODEL_NAMES[model]
    if not text:
        raise QueryError("missing Query/Retrieve Level (0008,0052)")
    try:
        level = Level[text]
    except KeyError:
        raise QueryError(f"unknown Query/Retrieve Level '{text[:16]}'") from None
    if level not in MODELS[model]:
        raise QueryError(f"level {level.name} is not valid in {name}")
    return level


def compile_query(identifier: Dataset, model: str, shape: Shape | None = None) -> Query:
    """What a C-FIND or C-MOVE identifier for ``model`` (``"patient"``, ``"study"``) asks for."""
    shape = shape if shape is not None else Shape()
    level = parse_level(identifier, model)
    check_lengths(identifier)
    constraints: list[Constraint] = []
    keys: list[ReturnKey] = []
    filters: list[StoredFilter] = []
    ignored: list[str] = []
    matched: list[str] = []

    for element in identifier:
        keyword = element.keyword
        if keyword in _NOT_KEYS or element.tag.group in (0x0000, 0x0002):
            continue
        if not keyword:  # private or unknown tags: nothing to match, answered as sent
            keys.append(ReturnKey(element, "empty"))
            continue
        attribute = ATTRIBUTES.get(keyword)
        if element.VR == "SQ":
            filtering = level is Level.IMAGE and any(_has_values(i) for i in element.value)
            if filtering and len(element.value) == 1:
                filters.append(SequenceMatch(element))
                matched.append(keyword)
            elif filtering:
                ignored.append(keyword)
            keys.append(ReturnKey(element, "attribute"))
            continue
        values = _strings(element)
        if keyword in COMPUTED:
            if COMPUTED[keyword] <= level:
                keys.append(ReturnKey(element, "index"))
                if values and keyword == "ModalitiesInStudy":
                    # Any of the study's modalities, each value compared as it is.
                    constraints.append(Constraint(keyword, ValueList(tuple(values))))
                    matched.append(keyword)
                elif values:
                    ignored.append(keyword)
            else:
                keys.append(ReturnKey(element, "empty"))
                if values:
                    ignored.append(keyword)
            continue
        if attribute is None or attribute.level > level:
            keys.append(ReturnKey(element, "empty" if attribute is not None else "attribute"))
            if values:
                ignored.append(keyword)
            continue
        if not attribute.indexed:
            keys.append(ReturnKey(element, "attribute"))
            if values:
                filters.append(StoredMatch(keyword, attribute.vr, "\\".join(values)))
                matched.append(keyword)
            continue
        keys.append(ReturnKey(element, "index"))
        if values:
            constraints.append(_constraint(attribute, values))
            matched.append(keyword)

    if shape.series_without_study_keys and level is Level.SERIES:

        def study_level(keyword: str) -> bool:
            attribute = ATTRIBUTES.get(keyword)
            return (attribute is not None and attribute.level is Level.STUDY) or (
                COMPUTED.get(keyword) is Level.STUDY
            )

        keys = [k for k in keys if k.keyword == "StudyInstanceUID" or not study_level(k.keyword)]

    return Query(
        level=level,
        model=model,
        constraints=tuple(constraints),
        keys=tuple(keys),
        post_filters=tuple(filters),
        ignored=tuple(ignored),
        matched=tuple(matched),
        shape=shape,
    )


# --- moves that cannot over-reach -----------------------------------------------------------

#: Error Comment (0000,0902) is LO: at most 64 characters.
COMMENT_LIMIT = 64

#: What is wrong with a unique key that names no objects.
How = Literal["absent", "empty", "wildcard"]


def _counted(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


@dataclass(frozen=True)
class Extent:
    """How much a C-MOVE would send: distinct patients, studies, series and objects."""

    patients: int = 0
    studies: int = 0
    series: int = 0
    objects: int = 0

    def describe(self, *, patients: bool = True, studies: bool = True, series: bool = False) -> str:
        """The counts in words, singular or plural: ``3 patients, 1 study, 78 objects``."""
        parts = []
        if patients:
            parts.append(_counted(self.patients, "patient", "patients"))
        if studies:
            parts.append(_counted(self.studies, "study", "studies"))
        if series:
            parts.append(_counted(self.series, "series", "series"))
        parts.append(_counted(self.objects, "object", "objects"))
        return ", ".join(parts)


@dataclass(frozen=True)
class UniversalKey:
    """Why a C-MOVE identifier does not name its level's objects by their unique key.

    ``how`` is ``"absent"`` (no element), ``"empty"`` (zero length: universal matching) or
    ``"wildcard"`` (a value with ``*`` or ``?``, which PS3.4 C.4.2.2.1 does not allow in a
    unique key); ``value`` is the value as sent.
    """

    level: Level
    keyword: str
    how: How
    value: str = ""

    def sentence(self, extent: Extent) -> str:
        """The refusal in full, for the log and the audit trail."""
        if self.how == "absent":
            instead = "leaving it out"
        elif self.how == "empty":
            instead = "an empty value"
        else:
            instead = f"the wildcard value '{self.value[:64]}'"
        return (
            f"C-MOVE at {self.level.name} level needs {self.keyword}; {instead} would move "
            f"{extent.describe(series=True)}"
        )

    def comment(self, extent: Extent) -> str:
        """The refusal as an Error Comment: the key, what is wrong, and what would move.

        ``StudyInstanceUID empty: would move 3 patients, 3 studies, 78 objects`` when that
        fits in :data:`COMMENT_LIMIT` characters; else the studies, then the patients are
        left out (the sentence keeps every count); the object count always stays.
        """
        head = f"{self.keyword} {self.how}: would move "
        for patients, studies in ((True, True), (True, False), (False, False)):
            text = head + extent.describe(patients=patients, studies=studies)
            if len(text) <= COMMENT_LIMIT:
                return text
        return text[:COMMENT_LIMIT]


def universal_key(identifier: Dataset, level: Level) -> UniversalKey | None:
    """Whether a C-MOVE identifier could over-reach: its level's unique key names nothing.

    ``None`` when the unique key of ``level`` (:data:`UNIQUE_KEYS`) has a value without
    wildcards - one UID (Patient ID at PATIENT level), or a backslash list of them - so the
    move takes exactly the named objects and what lies below them. Otherwise what is wrong
    with the key: it is absent, empty (the matcher would take every object), or holds
    ``*`` or ``?`` in any of its values. Keys of other levels do not count: a STUDY move
    with a PatientID and no StudyInstanceUID takes every study of the patient, which is
    not what a script moving one study meant. A list of empty values (``\\``) is not
    universal: it matches only stored empty values, and a unique key is never stored empty.
    """
    keyword = UNIQUE_KEYS[level]
    if keyword not in identifier:
        return UniversalKey(level, keyword, "absent")
    values = _strings(identifier[keyword])
    if not values:
        return UniversalKey(level, keyword, "empty")
    if any(is_wild(value) for value in values):
        return UniversalKey(level, keyword, "wildcard", "\\".join(values))
    return None


def sent_values(identifier: Dataset) -> dict[str, str]:
    """Each keyword of the identifier and its value as sent (``""`` when zero-length).

    Sequences and private tags are left out; a list is joined with backslashes. What the
    findings rules (:mod:`simdaemon.findings`) read of a C-FIND or C-MOVE.
    """
    sent: dict[str, str] = {}
    for element in identifier:
        if element.VR != "SQ" and element.keyword:
            sent[element.keyword] = "\\".join(_strings(element))
    return sent


def describe(identifier: Dataset) -> str:
    """The identifier's valued keys in one line, for the audit trail."""
    parts: list[str] = []
    for element in identifier:
        if element.keyword in ("SpecificCharacterSet", "QueryRetrieveLevel"):
            continue
        if element.VR == "SQ":
            if any(_has_values(i) for i in element.value):
                parts.append(f"{element.keyword}=[...]")
            continue
        values = _strings(element)
        if values:
            shown = "\\".join(values)
            parts.append(f"{element.keyword or element.tag}={shown[:64]}")
    return ", ".join(parts) or "(no keys)"
