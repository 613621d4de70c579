"""The archive's lookup: a :class:`~simdaemon.query.Query` run against the index, rows by name.

:mod:`simdaemon.query` says in DICOM terms what an identifier matches and answers; this module,
part of the archive layer with :mod:`simdaemon.archive`, is the one that turns it into SQL
over the archive's tables (joined through :data:`simdaemon.archive.HIERARCHY`), runs it on a
read connection, and hands back typed rows:

* :func:`find` - the C-FIND matches at the query's level, as :class:`IndexRow` values;
* :func:`instances` - what a C-MOVE of the query sends, as :class:`InstanceFile` values;
* :func:`extent` - how much that is (:class:`~simdaemon.query.Extent`), counted, not read.

Every value reaches SQL as a bound parameter. Wildcards compile to ``GLOB``, which is
case-sensitive and treats ``%``, ``_`` and ``\\`` as ordinary characters; ``[`` is escaped as
``[[]``. PN keys compare case-folded values, from an indexed folded column where there is one.
Rows stream from SQLite a batch at a time, so a query matching a hundred thousand instances
holds a batch in memory, not the result; the read connection is held until the generator is
exhausted or closed.

Some matching is Python, applied here as rows stream past, so C-FIND, C-MOVE and the move's
count match alike: the filters on stored attributes (:attr:`Query.post_filters`), and the
keys the ``[quirks]`` response shape derives (:attr:`Shape.derived`: StudyID as the course ID,
ARIA's series descriptions). Those are computed by :class:`~simdaemon.query.Shape`'s rules from
the stored values, so each row carries - and each constraint is matched against - the value
the daemon answers with; no quirk is written in SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple, assert_never

from pydicom.dataset import Dataset

from simdaemon.archive import HIERARCHY, Archive, below, count_below, joined
from simdaemon.attributes import read as read_attributes
from simdaemon.budget import Stopped
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

__all__ = [
    "Check",
    "IndexRow",
    "InstanceFile",
    "Statement",
    "extent",
    "find",
    "instances",
    "select",
]

#: What a query calls to learn whether to stop: raises :class:`~simdaemon.budget.Stopped`.
Check = Callable[[], None]

#: Rows fetched from SQLite at a time.
BATCH = 64


class IndexRow(NamedTuple):
    """One C-FIND match: the values the archive's index holds for it, by name.

    Values are as answered: ``study_id`` and ``series_description`` already have the query's
    response shape applied. A field is ``None`` when nothing asked for it (or, for the computed
    list, when there is nothing to list). ``stored`` is the decoded stored attributes of the
    row's instance - at levels above IMAGE, of its first instance - when keys or filters need
    them. ``course_number`` is the study's place among its patient's studies, read only to
    derive a course ID, and counted only for a study without a StudyID (else 0).
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
    course_number: int | None

    def value(self, keyword: str) -> str | int | None:
        """The value answering the index key ``keyword`` (see :data:`simdaemon.query.INDEXED`)."""
        value: str | int | None = getattr(self, _BY_KEYWORD[keyword].name)
        return value


class InstanceFile(NamedTuple):
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
    """An :class:`IndexRow` field: the key it answers (none: read for a rule) and its SQL.

    ``folded`` names an indexed column holding the case-folded value, for PN matching;
    ``condition``, when set, is how a :class:`~simdaemon.query.ValueList` on the key is
    matched instead of comparing ``sql`` (``{marks}`` stands for the placeholders).
    """

    name: str
    keyword: str
    sql: str
    folded: str = ""
    condition: str = ""


def _course_number() -> str:
    # Counted only for a study without a StudyID, the only kind whose course ID is derived
    # (Shape.study_id); SQLite tests that before walking the patient's studies.
    tables, under = below(1, 0, "3")
    return f"(SELECT count(*) FROM {tables} WHERE s.study_id = '' AND {under} AND s3.id <= s.id)"


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
    _Field("course_number", "", _course_number()),
)
_BY_KEYWORD = {f.keyword: f for f in _FIELDS if f.keyword}
_POSITION = {f.name: IndexRow._fields.index(f.name) for f in _FIELDS}

# The row type, the SQL and the DICOM side must agree; say so at import, not in a response.
if IndexRow._fields[1:] != tuple(f.name for f in _FIELDS):
    raise RuntimeError("lookup: IndexRow's fields and _FIELDS differ; keep them in one order")
if set(_BY_KEYWORD) != INDEXED:
    raise RuntimeError(
        "lookup: the keys simdaemon.query indexes and the fields here differ: "
        f"{sorted(set(_BY_KEYWORD) ^ INDEXED)}"
    )

#: For each key a response shape may derive, the fields its rule reads, in its order (two
#: or more, so that ``itemgetter`` hands them over as a tuple).
_RULE_INPUTS: dict[str, tuple[str, ...]] = {
    "StudyID": ("study_id", "course_number"),
    "SeriesDescription": ("modality", "series_description"),
}


def _rule(keyword: str, shape: Shape) -> Callable[..., str]:
    """The shape's rule deriving ``keyword`` from the values of its :data:`_RULE_INPUTS`."""
    if keyword == "StudyID":
        return shape.study_id
    if keyword == "SeriesDescription":
        return shape.series_description
    raise ValueError(f"lookup: no rule derives {keyword}")


if set(_RULE_INPUTS) != Shape().derived:
    raise RuntimeError("lookup: every key a Shape derives needs its rule's inputs here")


@dataclass
class _Check:
    """A constraint on a derived key, checked on a row's columns.

    Rows of one study or series share the rule's inputs, so each verdict is remembered by
    them: a search over many instances derives and matches once per study or series.
    """

    inputs: Callable[[Sequence[Any]], tuple[Any, ...]]
    rule: Callable[..., str]
    constraint: Constraint
    verdicts: dict[tuple[Any, ...], bool]

    #: Verdicts kept at most (then forgotten, so memory stays flat however many rows).
    LIMIT = 4096

    def __call__(self, raw: Sequence[Any]) -> bool:
        key = self.inputs(raw)
        verdict = self.verdicts.get(key)
        if verdict is None:
            if len(self.verdicts) >= self.LIMIT:
                self.verdicts.clear()
            verdict = self.verdicts[key] = self.constraint.accepts(self.rule(*key))
        return verdict


# --- constraints to SQL ---------------------------------------------------------------------


def _glob(pattern: str) -> str:
    """A DICOM wildcard pattern as a GLOB pattern: ``*`` and ``?`` kept, ``[`` made literal."""
    return pattern.replace("[", "[[]")


def _compare(column: str, match: Single | Wildcard) -> tuple[str, list[str]]:
    if isinstance(match, Wildcard):
        return f"{column} GLOB ?", [_glob(match.pattern)]
    return f"{column} = ?", [match.value]


def _condition(constraint: Constraint, *, steer: bool = True) -> tuple[str, list[str]]:
    """SQL (with ``?`` placeholders) matching one constraint, and its parameters.

    ``steer=False`` keeps the condition from choosing an index: SQLite's unary ``+`` makes a
    column an expression, which it filters with but never searches by.
    """
    field = _BY_KEYWORD[constraint.keyword]
    match = constraint.match
    if field.condition:
        if not isinstance(match, ValueList):
            raise TypeError(f"{constraint.keyword} is matched by a value list, not {match}")
        return field.condition.format(marks=", ".join("?" for _ in match.values)), [*match.values]
    column = field.sql
    if constraint.folded:
        column = field.folded or f"casefold({column})"
    if not steer:
        column = f"+{column}"
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


def _where(
    constraints: Sequence[Constraint], shape: Shape, derived: Sequence[Constraint]
) -> tuple[str, tuple[str, ...]]:
    """The WHERE condition (empty when none) and its parameters.

    ``constraints`` are matched exactly. A constraint on a key the ``shape`` derives
    (``derived``) is matched in Python afterwards; here it only narrows the search, to rows
    whose stored value it accepts or where the shape's rules may derive one it accepts. It
    does not steer the plan: a stored StudyID or Modality says little about the derived
    value, so an index on it could have SQLite search many rows, then sort them.
    """
    conditions: list[str] = []
    params: list[str] = []
    for constraint in constraints:
        sql, values = _condition(constraint)
        conditions.append(f"({sql})")
        params.extend(values)
    for constraint in derived:
        either = [_condition(c, steer=False) for c in (constraint, *shape.derivable(constraint))]
        conditions.append("(" + " OR ".join(f"({sql})" for sql, _ in either) + ")")
        params.extend(value for _, values in either for value in values)
    return " AND ".join(conditions), tuple(params)


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


class _Plan:
    """One query at one depth: its SQL, and how its rows are checked and read.

    Constraints on keys the response shape derives are matched in Python, on the derived
    value (SQL only narrows the search for them); all others in SQL. ``head`` columns come
    first in each row (the caller's own), then the stored attributes and transfer syntax
    when ``stored``, then the fields that return keys (``asked``), Python constraints and
    the shape's rules read.
    """

    def __init__(
        self,
        query: Query,
        level: Level,
        head: Sequence[str],
        asked: set[str],
        stored: bool,
        order: str = "",
        group: str = "",
    ) -> None:
        derived = query.shape.derived
        self.query = query
        in_python = [c for c in query.constraints if c.keyword in derived]
        in_sql = [c for c in query.constraints if c.keyword not in derived]
        keywords = asked | {c.keyword for c in in_python}
        names = {_BY_KEYWORD[k].name for k in keywords}
        derive = sorted(derived & keywords)
        for keyword in derive:
            names.update(_RULE_INPUTS[keyword])
        fields = [f for f in _FIELDS if f.name in names]
        self.head = len(head)
        self.stored = stored
        first = self.head + (2 if stored else 0)
        at = {f.name: first + n for n, f in enumerate(fields)}
        #: (IndexRow position, row column) of each field read.
        self.positions = [(_POSITION[f.name], at[f.name]) for f in fields]
        inputs = {k: itemgetter(*(at[name] for name in _RULE_INPUTS[k])) for k in derive}
        #: (IndexRow position, row columns, rule) of each derived field.
        self.derivations = [
            (_POSITION[_BY_KEYWORD[k].name], inputs[k], _rule(k, query.shape)) for k in derive
        ]
        self.checks = [
            _Check(inputs[c.keyword], _rule(c.keyword, query.shape), c, {}) for c in in_python
        ]
        columns = [*head, *(_stored_columns(level) if stored else []), *(f.sql for f in fields)]
        where, params = _where(in_sql, query.shape, in_python)
        sql = f"SELECT {', '.join(columns) or '1'} FROM {joined(level)}"
        if where:
            sql += f" WHERE {where}"
        if group:
            sql += f" GROUP BY {group}"
        if order:
            sql += f" ORDER BY {order}"
        self.statement = Statement(sql, params)

    @property
    def all_in_sql(self) -> bool:
        """Whether every row the SQL yields is a match (nothing left to check in Python)."""
        return not (self.checks or self.query.post_filters)

    def _derived_values_match(self, raw: Sequence[Any]) -> bool:
        return all(check(raw) for check in self.checks)

    def admits(self, raw: Sequence[Any]) -> bool:
        """Whether a row is a match: its derived values and stored attributes pass."""
        if self.checks and not self._derived_values_match(raw):
            return False
        if not self.query.post_filters:
            return True
        attributes = raw[self.head]
        if attributes is None:
            return False
        stored = read_attributes(attributes, raw[self.head + 1])
        return all(accept(stored) for accept in self.query.post_filters)

    def row(self, raw: Sequence[Any]) -> IndexRow | None:
        """The row as answered, or ``None`` when it is no match (see :meth:`admits`)."""
        if self.checks and not self._derived_values_match(raw):
            return None
        values: list[Any] = [None] * len(IndexRow._fields)
        for position, column in self.positions:
            values[position] = raw[column]
        for position, inputs, rule in self.derivations:
            values[position] = rule(*inputs(raw))
        if self.stored:
            attributes = raw[self.head]
            if attributes is not None:
                stored = read_attributes(attributes, raw[self.head + 1])
                if not all(accept(stored) for accept in self.query.post_filters):
                    return None
                values[0] = stored
            elif self.query.post_filters:
                return None  # nothing stored to match against
        return IndexRow._make(values)


def _find_plan(query: Query) -> _Plan:
    asked = {k.keyword for k in query.keys if k.source == "index"}
    return _Plan(query, query.level, (), asked, query.needs_attributes)


def select(query: Query) -> Statement:
    """The C-FIND statement: one row per match at the query's level, before Python checks.

    Columns: the stored attributes and their transfer syntax when a key or filter needs them
    (:attr:`Query.needs_attributes`), then one per :class:`IndexRow` field that a return key,
    a constraint matched in Python or a quirk's rule reads, in the row's order (``1`` alone
    when nothing is). No ORDER BY: sorting makes SQLite read every match before the first
    response, and the index walk already yields rows grouped down the hierarchy, oldest first
    within it.
    """
    return _find_plan(query).statement


# --- running ------------------------------------------------------------------------------


#: SQLite virtual-machine steps between two calls of a query's check while a statement runs.
PROGRESS_STEPS = 10_000


def _stream(
    archive: Archive, statement: Statement, check: Check | None = None
) -> Generator[tuple[Any, ...], None, None]:
    """The statement's rows, :data:`BATCH` at a time, on a read connection held meanwhile.

    ``check``, when given, is called for every row and, through SQLite's progress handler,
    while SQLite works towards the next batch; what it raises ends the stream.
    """
    stopped: list[Stopped] = []

    def progress(check: Check) -> Callable[[], int]:
        def handler() -> int:
            try:
                check()
            except Stopped as reason:
                stopped.append(reason)
                return 1  # SQLite interrupts the statement
            return 0

        return handler

    with archive.reading() as db:
        if check is not None:
            db.set_progress_handler(progress(check), PROGRESS_STEPS)
        cursor = db.cursor()
        try:
            cursor.execute(statement.sql, statement.params)
            while rows := cursor.fetchmany(BATCH):
                for row in rows:
                    if check is not None:
                        check()
                    yield row
        except sqlite3.OperationalError:
            if stopped:
                raise stopped[0] from None
            raise
        finally:
            cursor.close()
            if check is not None:
                db.set_progress_handler(None, 0)


def find(
    archive: Archive, query: Query, check: Check | None = None
) -> Generator[IndexRow, None, None]:
    """Stream the C-FIND matches of ``query``; close the generator to stop early.

    ``check`` (a :meth:`simdaemon.budget.Budget.check`) is called for every row read,
    matched or not, so a C-CANCEL or the time budget ends a query that filters many rows
    in Python before it has one to answer: it raises :class:`simdaemon.budget.Stopped`.
    """
    plan = _find_plan(query)
    rows = _stream(archive, plan.statement, check)
    try:
        for raw in rows:
            row = plan.row(raw)
            if row is not None:
                yield row
    finally:
        rows.close()


def _members(query: Query, head: Sequence[str], order: str = "") -> _Plan:
    """The instances at or below the query's matched level, with ``head`` columns first.

    The same constraints and filters select as for C-FIND at the query's level, so a move
    retrieves exactly what the equivalent query would list, with everything below it.
    """
    return _Plan(query, Level.IMAGE, head, set(), bool(query.post_filters), order)


def instances(
    archive: Archive, query: Query, check: Check | None = None
) -> Generator[InstanceFile, None, None]:
    """Stream every instance a C-MOVE of ``query`` sends, oldest first (``check``: see find)."""
    head = ["i.sop_instance_uid", "i.sop_class_uid", "i.file", "i.transfer_syntax"]
    plan = _members(query, head, order="i.id")
    rows = _stream(archive, plan.statement, check)
    try:
        for raw in rows:
            if plan.all_in_sql or plan.admits(raw):
                uid, sop_class, file, syntax = raw[:4]
                yield InstanceFile(uid, sop_class, archive.folder / file, syntax)
    finally:
        rows.close()


def extent(archive: Archive, query: Query, check: Check | None = None) -> Extent:
    """What a C-MOVE of ``query`` would send, counted without reading a file.

    The same matcher as :func:`instances`. ``COUNT(DISTINCT ...)`` in SQL when SQL matches
    every key. When the response shape derives a matched key (StudyID, SeriesDescription:
    values of a series and its study), SQL counts each series' instances and Python checks
    one row per series. When a key is matched in the stored attributes (RTPlanLabel, a
    sequence), every instance the SQL keeps is checked as it streams past, as the move
    would check it; ``check`` (see :func:`find`) is called for each of those rows.
    """
    keys = [f"{table.alias}.id" for table in HIERARCHY[: Level.IMAGE]]
    derived = query.shape.derived
    if not (query.post_filters or any(c.keyword in derived for c in query.constraints)):
        counts = [f"count(DISTINCT {key})" for key in keys] + ["count(i.id)"]
        statement = _members(query, counts).statement
        with archive.reading() as db:
            patients, studies, series, objects = db.execute(
                statement.sql, statement.params
            ).fetchone()
        return Extent(int(patients), int(studies), int(series), int(objects))
    per_series = not query.post_filters
    if per_series:
        plan = _Plan(query, Level.IMAGE, [*keys, "count(i.id)"], set(), False, group="r.id")
    else:
        plan = _members(query, keys)
    seen: tuple[set[int], set[int], set[int]] = (set(), set(), set())
    objects = 0
    for raw in _stream(archive, plan.statement, check):
        if plan.admits(raw):
            for found, key in zip(seen, raw[:3], strict=True):
                found.add(key)
            objects += raw[3] if per_series else 1
    return Extent(len(seen[0]), len(seen[1]), len(seen[2]), objects)
