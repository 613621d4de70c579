"""C-FIND identifiers as archive queries: PS3.4 C.2.2.2 matching, compiled to SQL (pure).

An identifier names a level and carries keys. Keys with a value filter the result when they
belong to the query level or any level above it - leniently, as client code uses the real
daemon (SERIES with only a StudyInstanceUID, IMAGE with a PatientID and a Modality). Keys the
daemon cannot match on, and keys below the level, never cause an error: they are returned
(empty when unknown) and listed in :attr:`Query.ignored`.

Matching, per PS3.4 C.2.2.2: single value; universal (empty); wildcard ``*`` and ``?``; UID
list (backslash separated); DA/TM/DT range (``A-B``, ``-B``, ``A-``); sequence matching with
one item; PN compared case-insensitively, everything else case-sensitively. Every value
reaches SQL as a bound parameter. Wildcards compile to ``GLOB`` (case-sensitive, and ``%``,
``_`` and ``\\`` are ordinary characters there); ``[`` is escaped as ``[[]``.

Keys kept in columns are matched in SQL. A few RT keys that live in the stored attributes
(RTPlanLabel, StructureSetLabel, ...) are matched in Python as rows stream past
(:attr:`Query.post_filters`); so is sequence matching. Everything else - NumberOfBeams, say,
which Evil DICOM sends as "0" expecting plans with any number of beams - is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from simdaemon.attributes import text_value

__all__ = [
    "ATTRIBUTES",
    "MODELS",
    "UNIQUE_KEYS",
    "Attribute",
    "Extent",
    "Level",
    "Query",
    "QueryError",
    "ReturnKey",
    "Shape",
    "UniversalKey",
    "compile_query",
    "describe",
    "matches",
    "parse_level",
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

#: SQL naming each level's table; later levels join the earlier ones.
_FROM = {
    Level.PATIENT: "patients p",
    Level.STUDY: "studies s JOIN patients p ON p.id = s.patient",
    Level.SERIES: "series r JOIN studies s ON s.id = r.study JOIN patients p ON p.id = s.patient",
    Level.IMAGE: (
        "instances i JOIN series r ON r.id = i.series JOIN studies s ON s.id = r.study "
        "JOIN patients p ON p.id = s.patient"
    ),
}
_KEY = {Level.PATIENT: "p.id", Level.STUDY: "s.id", Level.SERIES: "r.id", Level.IMAGE: "i.id"}
#: Where the first instance below a row at each level is found (for attribute-backed keys).
_FIRST_INSTANCE = {
    Level.PATIENT: (
        "(SELECT i2.id FROM instances i2 JOIN series r2 ON r2.id = i2.series "
        "JOIN studies s2 ON s2.id = r2.study WHERE s2.patient = p.id ORDER BY i2.id LIMIT 1)"
    ),
    Level.STUDY: (
        "(SELECT i2.id FROM instances i2 JOIN series r2 ON r2.id = i2.series "
        "WHERE r2.study = s.id ORDER BY i2.id LIMIT 1)"
    ),
    Level.SERIES: "(SELECT i2.id FROM instances i2 WHERE i2.series = r.id ORDER BY i2.id LIMIT 1)",
    Level.IMAGE: "i.id",
}

_COURSE_ID = (
    "CASE WHEN s.study_id <> '' THEN s.study_id ELSE 'C' || "
    "(SELECT count(*) FROM studies s3 WHERE s3.patient = s.patient AND s3.id <= s.id) END"
)
_ARIA_SERIES_DESCRIPTION = (
    "CASE r.modality WHEN 'RTPLAN' THEN 'ARIA RadOnc Plans' "
    "WHEN 'RTSTRUCT' THEN 'ARIA RadOnc Structure Sets' "
    "WHEN 'REG' THEN 'Image Registration' ELSE r.description END"
)


@dataclass(frozen=True)
class Shape:
    """The ARIA response-shape quirks of SPEC section 6 (``[quirks]``)."""

    course_id_as_study_id: bool = True
    aria_series_descriptions: bool = True
    series_without_study_keys: bool = True


@dataclass(frozen=True)
class Attribute:
    """A key the daemon can match on: its level, its VR and where its value is kept.

    ``column`` is an SQL expression; ``None`` means the key lives in the stored attributes of
    an instance and is matched in Python. ``folded`` names the column holding the case-folded
    value of a PN key (indexed), when there is one.
    """

    keyword: str
    level: Level
    vr: str
    column: str | None = None
    folded: str | None = None


def _attributes(shape: Shape) -> dict[str, Attribute]:
    study_id = _COURSE_ID if shape.course_id_as_study_id else "s.study_id"
    description = _ARIA_SERIES_DESCRIPTION if shape.aria_series_descriptions else "r.description"
    entries = [
        Attribute("PatientID", Level.PATIENT, "LO", "p.patient_id"),
        Attribute("PatientName", Level.PATIENT, "PN", "p.patient_name", "p.patient_name_key"),
        Attribute("PatientBirthDate", Level.PATIENT, "DA", "p.birth_date"),
        Attribute("PatientSex", Level.PATIENT, "CS", "p.sex"),
        Attribute("OtherPatientIDs", Level.PATIENT, "LO", "p.patient_id2"),
        Attribute("StudyInstanceUID", Level.STUDY, "UI", "s.study_uid"),
        Attribute("StudyID", Level.STUDY, "SH", study_id),
        Attribute("StudyDate", Level.STUDY, "DA", "s.study_date"),
        Attribute("StudyTime", Level.STUDY, "TM", "s.study_time"),
        Attribute("AccessionNumber", Level.STUDY, "SH", "s.accession_number"),
        Attribute("StudyDescription", Level.STUDY, "LO", "s.description"),
        Attribute("ReferringPhysicianName", Level.STUDY, "PN", "s.referring_physician"),
        Attribute("SeriesInstanceUID", Level.SERIES, "UI", "r.series_uid"),
        Attribute("Modality", Level.SERIES, "CS", "r.modality"),
        Attribute("SeriesNumber", Level.SERIES, "IS", "r.series_number"),
        Attribute("SeriesDescription", Level.SERIES, "LO", description),
        Attribute("SeriesDate", Level.SERIES, "DA", "r.series_date"),
        Attribute("SeriesTime", Level.SERIES, "TM", "r.series_time"),
        Attribute("FrameOfReferenceUID", Level.SERIES, "UI", "r.frame_of_reference_uid"),
        Attribute("SOPInstanceUID", Level.IMAGE, "UI", "i.sop_instance_uid"),
        Attribute("SOPClassUID", Level.IMAGE, "UI", "i.sop_class_uid"),
        Attribute("InstanceNumber", Level.IMAGE, "IS", "i.instance_number"),
        Attribute("ContentDate", Level.IMAGE, "DA", "i.content_date"),
        Attribute("ContentTime", Level.IMAGE, "TM", "i.content_time"),
        # Kept in the stored attributes; matched in Python.
        Attribute("RTPlanLabel", Level.IMAGE, "SH"),
        Attribute("RTPlanName", Level.IMAGE, "LO"),
        Attribute("RTPlanDate", Level.IMAGE, "DA"),
        Attribute("RTPlanTime", Level.IMAGE, "TM"),
        Attribute("StructureSetLabel", Level.IMAGE, "SH"),
        Attribute("StructureSetName", Level.IMAGE, "LO"),
        Attribute("StructureSetDate", Level.IMAGE, "DA"),
        Attribute("RTImageLabel", Level.IMAGE, "SH"),
        Attribute("DoseSummationType", Level.IMAGE, "CS"),
    ]
    return {a.keyword: a for a in entries}


ATTRIBUTES = _attributes(Shape())

#: Keys answered with a count or a list computed over the levels below.
_COMPUTED: dict[str, tuple[Level, str]] = {
    "ModalitiesInStudy": (
        Level.STUDY,
        "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT r2.modality AS m FROM series r2 "
        "WHERE r2.study = s.id AND r2.modality <> '' ORDER BY r2.modality))",
    ),
    "NumberOfPatientRelatedStudies": (
        Level.PATIENT,
        "(SELECT count(*) FROM studies s2 WHERE s2.patient = p.id)",
    ),
    "NumberOfPatientRelatedSeries": (
        Level.PATIENT,
        "(SELECT count(*) FROM series r2 JOIN studies s2 ON s2.id = r2.study "
        "WHERE s2.patient = p.id)",
    ),
    "NumberOfPatientRelatedInstances": (
        Level.PATIENT,
        "(SELECT count(*) FROM instances i2 JOIN series r2 ON r2.id = i2.series "
        "JOIN studies s2 ON s2.id = r2.study WHERE s2.patient = p.id)",
    ),
    "NumberOfStudyRelatedSeries": (
        Level.STUDY,
        "(SELECT count(*) FROM series r2 WHERE r2.study = s.id)",
    ),
    "NumberOfStudyRelatedInstances": (
        Level.STUDY,
        "(SELECT count(*) FROM instances i2 JOIN series r2 ON r2.id = i2.series "
        "WHERE r2.study = s.id)",
    ),
    "NumberOfSeriesRelatedInstances": (
        Level.SERIES,
        "(SELECT count(*) FROM instances i2 WHERE i2.series = r.id)",
    ),
}
_NOT_KEYS = frozenset({"QueryRetrieveLevel", "SpecificCharacterSet", "RetrieveAETitle"})


class QueryError(ValueError):
    """An identifier the daemon cannot run: the message is the Error Comment (<= 64 chars)."""


@dataclass(frozen=True)
class ReturnKey:
    """A key to answer: its element as requested, and where its value comes from.

    ``source`` is ``"column"`` (``select`` names the SQL result column), ``"attribute"`` (read
    from the stored attributes) or ``"empty"`` (a key below the level: answered empty).
    """

    element: DataElement
    source: str
    select: int = -1


@dataclass(frozen=True)
class Query:
    """A compiled C-FIND: SQL with its parameters, Python filters and the keys to answer."""

    level: Level
    model: str
    sql: str
    params: tuple[str, ...]
    keys: tuple[ReturnKey, ...]
    post_filters: tuple[Callable[[Dataset], bool], ...] = ()
    ignored: tuple[str, ...] = ()
    matched: tuple[str, ...] = field(default=())
    where: str = ""

    @property
    def needs_attributes(self) -> bool:
        """Whether rows must bring their stored attributes (filters or return keys)."""
        return bool(self.post_filters) or any(k.source == "attribute" for k in self.keys)

    def instances_sql(self) -> str:
        """SQL selecting every instance at or below the matched level (for C-MOVE).

        Columns: SOP Instance UID, SOP Class UID, file, transfer syntax, stored attributes.
        The same keys filter as for C-FIND at this level, so a move retrieves exactly what
        the equivalent query would list, with everything below it.
        """
        sql = (
            "SELECT i.sop_instance_uid, i.sop_class_uid, i.file, i.transfer_syntax, "
            f"i.attributes FROM {_FROM[Level.IMAGE]}"
        )
        if self.where:
            sql += f" WHERE {self.where}"
        return f"{sql} ORDER BY i.id"

    def extent_sql(self) -> str:
        """SQL counting what :meth:`instances_sql` selects, without selecting it.

        One row: distinct patients, studies, series and instances. Exact when there are no
        :attr:`post_filters`; otherwise an upper bound (see :meth:`members_sql`).
        """
        sql = (
            "SELECT count(DISTINCT p.id), count(DISTINCT s.id), count(DISTINCT r.id), "
            f"count(i.id) FROM {_FROM[Level.IMAGE]}"
        )
        return f"{sql} WHERE {self.where}" if self.where else sql

    def members_sql(self) -> str:
        """SQL listing what :meth:`instances_sql` selects by row keys, for :attr:`post_filters`.

        Columns: patient, study, series and instance keys, stored attributes, transfer
        syntax. No file names and no ordering: enough to count the matches that keys kept in
        the stored attributes (RTPlanLabel, sequences) leave, as the move would filter them.
        """
        sql = (
            "SELECT p.id, s.id, r.id, i.id, i.attributes, i.transfer_syntax "
            f"FROM {_FROM[Level.IMAGE]}"
        )
        return f"{sql} WHERE {self.where}" if self.where else sql


# --- matching one value ---------------------------------------------------------------------


def _glob(value: str) -> str:
    """A DICOM wildcard value as a GLOB pattern: ``*`` and ``?`` kept, ``[`` made literal."""
    return value.replace("[", "[[]")


def _is_wild(value: str) -> bool:
    return "*" in value or "?" in value


def _split_range(value: str) -> tuple[str, str] | None:
    if value.count("-") != 1:
        return None
    low, high = (part.strip() for part in value.split("-"))
    return (low, high) if (low or high) else None


def _condition(attribute: Attribute, values: Sequence[str]) -> tuple[str, list[str]]:
    """SQL (with ``?`` placeholders) matching ``values`` against a column attribute."""
    assert attribute.column is not None
    column = attribute.column
    if len(values) > 1:  # value list (UID list matching, and lists of any other VR)
        marks = ", ".join("?" for _ in values)
        return f"{column} IN ({marks})", list(values)
    value = values[0]
    if attribute.vr in ("DA", "TM", "DT") and (bounds := _split_range(value)) is not None:
        low, high = bounds
        parts, params = [], []
        if low:
            parts.append(f"{column} >= ?")
            params.append(low)
        if high:
            # "-1230" includes 12:30:45; "~" sorts after every digit and the dot.
            parts.append(f"{column} <= ?")
            params.append(f"{high}~")
        parts.append(f"{column} <> ''")
        return " AND ".join(parts), params
    if attribute.vr == "PN":
        folded = attribute.folded or f"casefold({column})"
        needle = value.casefold()
        wild = _is_wild(needle)
        if "=" in needle:  # several component groups given: compare the whole name
            return (f"{folded} GLOB ?", [_glob(needle)]) if wild else (f"{folded} = ?", [needle])
        # One group, the alphabetic one as a rule: a stored name may carry more after "=".
        if wild:
            return f"({folded} GLOB ? OR {folded} GLOB ?)", [_glob(needle), f"{_glob(needle)}=*"]
        return f"({folded} = ? OR {folded} GLOB ?)", [needle, f"{_glob(needle)}=*"]
    if _is_wild(value):
        return f"{column} GLOB ?", [_glob(value)]
    return f"{column} = ?", [value]


def _regex(value: str) -> str:
    """A DICOM wildcard value as a regular expression matching the whole stored value."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)


def matches(vr: str, query: str, stored: str) -> bool:
    """Match one stored value in Python with the same rules as the SQL (post-filters)."""
    values = query.split("\\")
    if len(values) > 1:
        return any(matches(vr, v, stored) for v in values)
    value = values[0]
    if not value:
        return True
    if vr in ("DA", "TM", "DT") and (bounds := _split_range(value)) is not None:
        low, high = bounds
        return bool(stored) and (not low or stored >= low) and (not high or stored <= high + "~")
    if vr == "PN":
        value, stored = value.casefold(), stored.casefold()
        if "=" not in value:
            stored = stored.split("=")[0]
    if _is_wild(value):
        return re.fullmatch(_regex(value), stored, re.DOTALL) is not None
    return value == stored


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


def _attribute_filter(attribute: Attribute, query: str) -> Callable[[Dataset], bool]:
    def accept(stored: Dataset) -> bool:
        return matches(attribute.vr, query, text_value(stored, attribute.keyword, strip=False))

    accept.__name__ = f"match_{attribute.keyword}"
    return accept


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


def _sequence_filter(element: DataElement) -> Callable[[Dataset], bool]:
    def accept(stored: Dataset) -> bool:
        return _sequence_matches(element, stored)

    accept.__name__ = f"match_{element.keyword}"
    return accept


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
    """Compile a C-FIND identifier for ``model`` (``"patient"`` or ``"study"``)."""
    shape = shape if shape is not None else Shape()
    catalogue = ATTRIBUTES if shape == Shape() else _attributes(shape)
    level = parse_level(identifier, model)
    selects: list[str] = []
    where: list[str] = []
    params: list[str] = []
    keys: list[ReturnKey] = []
    filters: list[Callable[[Dataset], bool]] = []
    ignored: list[str] = []
    matched: list[str] = []

    def select(expression: str) -> int:
        selects.append(expression)
        return len(selects) - 1

    for element in identifier:
        keyword = element.keyword
        if keyword in _NOT_KEYS or element.tag.group in (0x0000, 0x0002):
            continue
        if not keyword:  # private or unknown tags: nothing to match, answered as sent
            keys.append(ReturnKey(element, "empty"))
            continue
        attribute = catalogue.get(keyword)
        if element.VR == "SQ":
            filtering = level is Level.IMAGE and any(_has_values(i) for i in element.value)
            if filtering and len(element.value) == 1:
                filters.append(_sequence_filter(element))
                matched.append(keyword)
            elif filtering:
                ignored.append(keyword)
            keys.append(ReturnKey(element, "attribute"))
            continue
        values = _strings(element)
        if keyword in _COMPUTED:
            computed_level, expression = _COMPUTED[keyword]
            if computed_level <= level:
                keys.append(ReturnKey(element, "column", select(expression)))
                if values and keyword == "ModalitiesInStudy":
                    marks = ", ".join("?" for _ in values)
                    where.append(
                        "EXISTS (SELECT 1 FROM series r4 WHERE r4.study = s.id "
                        f"AND r4.modality IN ({marks}))"
                    )
                    params.extend(values)
                    matched.append(keyword)
                elif values:
                    ignored.append(keyword)
            else:
                keys.append(ReturnKey(element, "empty"))
                if values:
                    ignored.append(keyword)
            continue
        if attribute is None or attribute.level > level:
            source = "empty" if attribute is not None else "attribute"
            keys.append(ReturnKey(element, source))
            if values:
                ignored.append(keyword)
            continue
        if attribute.column is None:
            keys.append(ReturnKey(element, "attribute"))
            if values:
                filters.append(_attribute_filter(attribute, "\\".join(values)))
                matched.append(keyword)
            continue
        keys.append(ReturnKey(element, "column", select(attribute.column)))
        if values:
            condition, condition_params = _condition(attribute, values)
            where.append(condition)
            params.extend(condition_params)
            matched.append(keyword)

    if shape.series_without_study_keys and level is Level.SERIES:

        def study_level(keyword: str) -> bool:
            attribute = catalogue.get(keyword)
            computed = _COMPUTED.get(keyword)
            return (attribute is not None and attribute.level is Level.STUDY) or (
                computed is not None and computed[0] is Level.STUDY
            )

        keys = [
            k
            for k in keys
            if k.element.keyword == "StudyInstanceUID" or not study_level(k.element.keyword)
        ]

    # Fixed result columns: the row key, then (for attribute-backed keys and filters) the
    # stored attributes of the row's instance - its own at IMAGE level, else the first below.
    fixed = [_KEY[level]]
    needs = bool(filters) or any(k.source == "attribute" for k in keys)
    if needs:
        first = _FIRST_INSTANCE[level]
        fixed += [
            f"(SELECT ia.attributes FROM instances ia WHERE ia.id = {first})",
            f"(SELECT ia.transfer_syntax FROM instances ia WHERE ia.id = {first})",
        ]
    offset = len(fixed)
    keys = [
        ReturnKey(k.element, k.source, k.select + offset) if k.source == "column" else k
        for k in keys
    ]
    columns = ", ".join([*fixed, *selects])
    sql = f"SELECT {columns} FROM {_FROM[level]}"
    condition = " AND ".join(f"({w})" for w in where)
    if condition:
        sql += f" WHERE {condition}"
    # No ORDER BY: sorting makes SQLite read every match before the first response. The
    # index walk already yields rows grouped down the hierarchy, oldest first within it.
    return Query(
        level=level,
        model=model,
        sql=sql,
        params=tuple(params),
        keys=tuple(keys),
        post_filters=tuple(filters),
        ignored=tuple(ignored),
        matched=tuple(matched),
        where=condition,
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
    if any(_is_wild(value) for value in values):
        return UniversalKey(level, keyword, "wildcard", "\\".join(values))
    return None


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
