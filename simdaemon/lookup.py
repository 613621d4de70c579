"""The archive's lookup: a :class:`~simdaemon.query.Query` run against the index, rows by name.

:mod:`simdaemon.query` says in DICOM terms what an identifier matches and answers; this module,
part of the archive layer with :mod:`simdaemon.archive`, is the one that turns it into SQL
over the archive's tables (joined through :data:`simdaemon.archive.HIERARCHY`), runs it on a
read connection, and hands back typed rows:

* :func:`find` - the C-FIND matches at the query's level, as :class:`IndexRow` values;
* :func:`instances` - what a C-MOVE of the query sends, as :class:`StoredInstance` values;
* :func:`extent` - how much that is (:class:`~simdaemon.query.Extent`), counted, not read.

Every value reaches SQL as a bound parameter. Wildcards compile to ``GLOB``, which is
case-sensitive and treats ``%``, ``_`` and ``\\`` as ordinary characters; ``[`` is escaped as
``[[]``. PN keys compare case-folded values, from an indexed folded column where there is one.
Rows stream from SQLite a batch at a time, so a query matching a hundred thousand instances
holds a batch in memory, not the result; the read connection is held until the generator is
exhausted or closed. The filters on stored attributes (:attr:`Query.post_filters`) run here
too, as rows stream past, so C-FIND, C-MOVE and the move's count match alike.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, assert_never

from pydicom.dataset import Dataset

from simdaemon.archive import HIERARCHY, Archive, below, count_below, joined
from simdaemon.attributes import read as read_attributes
from simdaemon.query import (
    INDEXED,
    AnyOf,
    Constraint,
    Extent,
    Level,
    Query,
    Range,
    Shape,
    Single,
    ValueList,
    Wildcard,
)

__all__ = ["IndexRow", "Statement", "StoredInstance", "extent", "find", "instances", "select"]

#: Rows fetched from SQLite at a time.
BATCH = 64


class IndexRow(NamedTuple):
    """One C-FIND match: the values the archive's index holds for it, by name.

    A field is ``None`` when the query did not ask for it (or, for the computed lists, when
    there is nothing to list). ``stored`` is the decoded stored attributes of the row's
    instance - at levels above IMAGE, of its first instance - when keys or filters need them.
    """

    stored: Dataset | None
    patient_id: str | None
    patient_name: str | None
    birth_date: str | None
    sex: str | None
    other_patient_ids: str | None
    study_uid: str | None
    study_id: str | None
    study_date: str | None
    study_time: str | None
    accession_number: str | None
    study_description: str | None
    referring_physician: str | None
    series_uid: str | None
    modality: str | None
    series_number: str | None
    series_description: str | None
    series_date: str | None
    series_time: str | None
    frame_of_reference_uid: str | None
    sop_instance_uid: str | None
    sop_class_uid: str | None
    instance_number: str | None
    content_date: str | None
    content_time: str | None
    modalities_in_study: str | None
    patient_studies: int | None
    patient_series: int | None
    patient_instances: int | None
    study_series: int | None
    study_instances: int | None
    series_instances: int | None

    def value(self, keyword: str) -> str | int | None:
        """The value answering the index key ``keyword`` (see :data:`simdaemon.query.INDEXED`)."""
        value: str | int | None = getattr(self, _BY_KEYWORD[keyword].name)
        return value


class StoredInstance(NamedTuple):
    """An instance a C-MOVE sends: its UIDs, its file, the transfer syntax it is stored in."""

    sop_instance_uid: str
    sop_class_uid: str
    path: Path
    transfer_syntax: str


@dataclass(frozen=True)
class Statement:
    """One SQL statement with its parameters."""

    sql: str
    params: tuple[str, ...]


@dataclass(frozen=True)
class _Field:
    """An :class:`IndexRow` field: the key it answers and the SQL that reads it.

    ``folded`` names an indexed column holding the case-folded value, for PN matching;
    ``condition``, when set, is how a :class:`~simdaemon.query.ValueList` on the key is
    matched instead of comparing ``sql`` (``{marks}`` stands for the placeholders).
    """

    name: str
    keyword: str
    sql: str
    folded: str = ""
    condition: str = ""


def _modalities() -> str:
    tables, under = below(2, 1, "2")
    return (
        "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT r2.modality AS m "
        f"FROM {tables} WHERE {under} AND r2.modality <> '' ORDER BY r2.modality))"
    )


def _any_modality() -> str:
    tables, under = below(2, 1, "4")
    return f"EXISTS (SELECT 1 FROM {tables} WHERE {under} AND r4.modality IN ({{marks}}))"


#: Where each :class:`IndexRow` field comes from, in the order of its fields.
_FIELDS = (
    _Field("patient_id", "PatientID", "p.patient_id"),
    _Field("patient_name", "PatientName", "p.patient_name", folded="p.patient_name_key"),
    _Field("birth_date", "PatientBirthDate", "p.birth_date"),
    _Field("sex", "PatientSex", "p.sex"),
    _Field("other_patient_ids", "OtherPatientIDs", "p.patient_id2"),
    _Field("study_uid", "StudyInstanceUID", "s.study_uid"),
    _Field("study_id", "StudyID", "s.study_id"),
    _Field("study_date", "StudyDate", "s.study_date"),
    _Field("study_time", "StudyTime", "s.study_time"),
    _Field("accession_number", "AccessionNumber", "s.accession_number"),
    _Field("study_description", "StudyDescription", "s.description"),
    _Field("referring_physician", "ReferringPhysicianName", "s.referring_physician"),
    _Field("series_uid", "SeriesInstanceUID", "r.series_uid"),
    _Field("modality", "Modality", "r.modality"),
    _Field("series_number", "SeriesNumber", "r.series_number"),
    _Field("series_description", "SeriesDescription", "r.description"),
    _Field("series_date", "SeriesDate", "r.series_date"),
    _Field("series_time", "SeriesTime", "r.series_time"),
    _Field("frame_of_reference_uid", "FrameOfReferenceUID", "r.frame_of_reference_uid"),
    _Field("sop_instance_uid", "SOPInstanceUID", "i.sop_instance_uid"),
    _Field("sop_class_uid", "SOPClassUID", "i.sop_class_uid"),
    _Field("instance_number", "InstanceNumber", "i.instance_number"),
    _Field("content_date", "ContentDate", "i.content_date"),
    _Field("content_time", "ContentTime", "i.content_time"),
    _Field("modalities_in_study", "ModalitiesInStudy", _modalities(), condition=_any_modality()),
    _Field("patient_studies", "NumberOfPatientRelatedStudies", count_below(1, 0, "2")),
    _Field("patient_series", "NumberOfPatientRelatedSeries", count_below(2, 0, "2")),
    _Field("patient_instances", "NumberOfPatientRelatedInstances", count_below(3, 0, "2")),
    _Field("study_series", "NumberOfStudyRelatedSeries", count_below(2, 1, "2")),
    _Field("study_instances", "NumberOfStudyRelatedInstances", count_below(3, 1, "2")),
    _Field("series_instances", "NumberOfSeriesRelatedInstances", count_below(3, 2, "2")),
)
_BY_KEYWORD = {f.keyword: f for f in _FIELDS}
_POSITION = {f.name: IndexRow._fields.index(f.name) for f in _FIELDS}

# The row type, the SQL and the DICOM side must agree; say so at import, not in a response.
if IndexRow._fields[1:] != tuple(f.name for f in _FIELDS):
    raise RuntimeError("lookup: IndexRow's fields and _FIELDS differ; keep them in one order")
if set(_BY_KEYWORD) != INDEXED:
    raise RuntimeError(
        "lookup: the keys simdaemon.query indexes and the fields here differ: "
        f"{sorted(set(_BY_KEYWORD) ^ INDEXED)}"
    )

_ARIA_SERIES_DESCRIPTION = (
    "CASE r.modality WHEN 'RTPLAN' THEN 'ARIA RadOnc Plans' "
    "WHEN 'RTSTRUCT' THEN 'ARIA RadOnc Structure Sets' "
    "WHEN 'REG' THEN 'Image Registration' ELSE r.description END"
)


def _course_id() -> str:
    tables, under = below(1, 0, "3")
    return (
        "CASE WHEN s.study_id <> '' THEN s.study_id ELSE 'C' || "
        f"(SELECT count(*) FROM {tables} WHERE {under} AND s3.id <= s.id) END"
    )


def _expression(field: _Field, shape: Shape) -> str:
    """The SQL reading ``field`` under the response ``shape``."""
    if field.name == "study_id" and shape.course_id_as_study_id:
        return _course_id()
    if field.name == "series_description" and shape.aria_series_descriptions:
        return _ARIA_SERIES_DESCRIPTION
    return field.sql


# --- constraints to SQL ---------------------------------------------------------------------


def _glob(pattern: str) -> str:
    """A DICOM wildcard pattern as a GLOB pattern: ``*`` and ``?`` kept, ``[`` made literal."""
    return pattern.replace("[", "[[]")


def _compare(column: str, match: Single | Wildcard) -> tuple[str, list[str]]:
    if isinstance(match, Wildcard):
        return f"{column} GLOB ?", [_glob(match.pattern)]
    return f"{column} = ?", [match.value]


def _condition(constraint: Constraint, shape: Shape) -> tuple[str, list[str]]:
    """SQL (with ``?`` placeholders) matching one constraint, and its parameters."""
    field = _BY_KEYWORD[constraint.keyword]
    match = constraint.match
    if field.condition:
        if not isinstance(match, ValueList):
            raise TypeError(f"{constraint.keyword} is matched by a value list, not {match}")
        return field.condition.format(marks=", ".join("?" for _ in match.values)), [*match.values]
    column = _expression(field, shape)
    if constraint.folded:
        column = field.folded or f"casefold({column})"
    if isinstance(match, ValueList):
        marks = ", ".join("?" for _ in match.values)
        return f"{column} IN ({marks})", list(match.values)
    if isinstance(match, Range):
        parts, params = [], []
        if match.low:
            parts.append(f"{column} >= ?")
            params.append(match.low)
        if match.high:
            parts.append(f"{column} <= ?")
            params.append(match.ceiling)
        parts.append(f"{column} <> ''")
        return " AND ".join(parts), params
    if isinstance(match, AnyOf):
        compiled = [_compare(column, option) for option in match.options]
        return (
            "(" + " OR ".join(sql for sql, _ in compiled) + ")",
            [param for _, params in compiled for param in params],
        )
    if isinstance(match, Single | Wildcard):
        return _compare(column, match)
    assert_never(match)


def _where(query: Query) -> tuple[str, tuple[str, ...]]:
    """The WHERE condition of every constraint (empty when none), and its parameters."""
    conditions: list[str] = []
    params: list[str] = []
    for constraint in query.constraints:
        sql, values = _condition(constraint, query.shape)
        conditions.append(f"({sql})")
        params.extend(values)
    return " AND ".join(conditions), tuple(params)


def _statement(columns: Sequence[str], level: Level, query: Query, order: str = "") -> Statement:
    where, params = _where(query)
    sql = f"SELECT {', '.join(columns)} FROM {joined(level)}"
    if where:
        sql += f" WHERE {where}"
    if order:
        sql += f" ORDER BY {order}"
    return Statement(sql, params)


def _stored_columns(level: Level) -> list[str]:
    """The stored attributes and transfer syntax of a row's instance (the first one below)."""
    if level is Level.IMAGE:
        return ["i.attributes", "i.transfer_syntax"]
    tables, under = below(Level.IMAGE, level, "2")
    first = f"(SELECT i2.id FROM {tables} WHERE {under} ORDER BY i2.id LIMIT 1)"
    return [
        f"(SELECT ia.{column} FROM instances ia WHERE ia.id = {first})"
        for column in ("attributes", "transfer_syntax")
    ]


def _wanted(query: Query) -> list[_Field]:
    """The fields the query's return keys ask for, in :class:`IndexRow` order."""
    asked = {k.element.keyword for k in query.keys if k.source == "index"}
    return [f for f in _FIELDS if f.keyword in asked]


def select(query: Query) -> Statement:
    """The C-FIND statement: one row per match at the query's level.

    Columns: the stored attributes and their transfer syntax when a key or filter needs them
    (:attr:`Query.needs_attributes`), then one per :class:`IndexRow` field a return key asks
    for, in the row's order (``1`` alone when nothing is asked). No ORDER BY: sorting makes
    SQLite read every match before the first response, and the index walk already yields
    rows grouped down the hierarchy, oldest first within it.
    """
    stored = _stored_columns(query.level) if query.needs_attributes else []
    values = [_expression(f, query.shape) for f in _wanted(query)]
    return _statement([*stored, *values] or ["1"], query.level, query)


# --- running ------------------------------------------------------------------------------


def _stream(archive: Archive, statement: Statement) -> Generator[tuple[Any, ...], None, None]:
    """The statement's rows, :data:`BATCH` at a time, on a read connection held meanwhile."""
    with archive.reading() as db:
        cursor = db.execute(statement.sql, statement.params)
        try:
            while rows := cursor.fetchmany(BATCH):
                yield from rows
        finally:
            cursor.close()


def _accepted(query: Query, attributes: bytes | None, syntax: str | None) -> Dataset | None:
    """Whether stored attributes pass every post-filter: the decoded data set, else None."""
    if attributes is None or syntax is None:
        return None
    stored = read_attributes(attributes, syntax)
    return stored if all(accept(stored) for accept in query.post_filters) else None


def find(archive: Archive, query: Query) -> Generator[IndexRow, None, None]:
    """Stream the C-FIND matches of ``query`` (post-filters applied); close it to stop early."""
    # Where each selected column goes in the row; the fields not selected stay None.
    positions = [_POSITION[f.name] for f in _wanted(query)]
    empty: list[Any] = [None] * len(IndexRow._fields)
    first = 2 if query.needs_attributes else 0
    rows = _stream(archive, select(query))
    try:
        for row in rows:
            stored: Dataset | None = None
            if query.post_filters:
                stored = _accepted(query, row[0], row[1])
                if stored is None:
                    continue
            elif first and row[0] is not None:
                stored = read_attributes(row[0], row[1])
            values = empty.copy()
            values[0] = stored
            for position, value in zip(positions, row[first:], strict=False):
                values[position] = value
            yield IndexRow._make(values)
    finally:
        rows.close()


def instances(archive: Archive, query: Query) -> Generator[StoredInstance, None, None]:
    """Stream every instance at or below the matched level, oldest first: what a move sends.

    The same constraints and post-filters select as for C-FIND at the query's level, so a
    move retrieves exactly what the equivalent query would list, with everything below it.
    """
    columns = ["i.sop_instance_uid", "i.sop_class_uid", "i.file", "i.transfer_syntax"]
    if query.post_filters:
        columns.append("i.attributes")
    rows = _stream(archive, _statement(columns, Level.IMAGE, query, order="i.id"))
    try:
        for uid, sop_class, file, syntax, *attributes in rows:
            if query.post_filters and _accepted(query, attributes[0], syntax) is None:
                continue
            yield StoredInstance(uid, sop_class, archive.folder / file, syntax)
    finally:
        rows.close()


def extent(archive: Archive, query: Query) -> Extent:
    """What a C-MOVE of ``query`` would send, counted without reading a file.

    The same matcher as :func:`instances`: ``COUNT(DISTINCT ...)`` in SQL when every matched
    key is in the index; when some key is matched in the stored attributes (RTPlanLabel, a
    sequence), the rows the SQL keeps are filtered as they stream past, as the move would
    filter them, and their keys counted.
    """
    keys = [f"{table.alias}.id" for table in HIERARCHY[: Level.IMAGE]]
    if not query.post_filters:
        counts = [f"count(DISTINCT {key})" for key in keys] + ["count(i.id)"]
        statement = _statement(counts, Level.IMAGE, query)
        with archive.reading() as db:
            patients, studies, series, objects = db.execute(
                statement.sql, statement.params
            ).fetchone()
        return Extent(int(patients), int(studies), int(series), int(objects))
    seen: tuple[set[int], set[int], set[int]] = (set(), set(), set())
    objects = 0
    columns = [*keys, "i.attributes", "i.transfer_syntax"]
    for patient, study, series_key, attributes, syntax in _stream(
        archive, _statement(columns, Level.IMAGE, query)
    ):
        if _accepted(query, attributes, syntax) is not None:
            for found, key in zip(seen, (patient, study, series_key), strict=True):
                found.add(key)
            objects += 1
    return Extent(len(seen[0]), len(seen[1]), len(seen[2]), objects)
