"""Local import and inspection: ``simdaemon import``, ``seed`` and ``patients``.

Files from disk run through the same :class:`~simdaemon.importer.Importer` as C-STORE, so a
folder imported here meets the same rules, gets the same reasons and is audited the same way
(operation ``import``, peer ``local``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from simdaemon import status
from simdaemon.archive import Archive, PatientRow
from simdaemon.audit import AuditTrail
from simdaemon.config import Config, TrustedEntity
from simdaemon.importer import Importer, ImportResult, Received, received_from
from simdaemon.investigation import Investigator
from simdaemon.part10 import split
from simdaemon.progress import Progress
from simdaemon.synthetic import synthetic_patient

__all__ = ["ImportSummary", "dicom_files", "format_patients", "import_files", "seed_patients"]


@dataclass
class ImportSummary:
    """The outcome of a local import, file by file."""

    results: list[tuple[Path, ImportResult]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[Path, ImportResult]]:
        """Files that were not imported (parked)."""
        return [(p, r) for p, r in self.results if not r.stored]

    @property
    def warnings(self) -> list[tuple[Path, ImportResult]]:
        """Files imported with a warning."""
        return [(p, r) for p, r in self.results if r.stored and r.status != status.SUCCESS]


def _run(
    importer: Importer,
    audit: AuditTrail,
    config: Config,
    received: Received,
    entity: TrustedEntity | None,
    what: str,
) -> ImportResult:
    """Import one object and record it in the audit trail (operation ``import``)."""
    started = time.perf_counter()
    result = importer.run(received, entity)
    audit.record(
        "import",
        calling_ae=received.calling_ae,
        called_ae=config.daemon.ae_title,
        peer="local",
        detail=f"{what}: {result.detail}",
        duration_ms=(time.perf_counter() - started) * 1000,
        **result.audit_fields(),
    )
    return result


@contextlib.contextmanager
def _pipeline(config: Config) -> Iterator[tuple[Importer, AuditTrail]]:
    """The configured archive, opened for this process, and its importer and audit trail."""
    with Archive(
        config.daemon.archive, sql_trace=config.investigation.sql_trace, audit=config.audit
    ) as archive:
        investigator = Investigator(config.investigation, config.daemon.archive)
        yield Importer(config, archive, investigator), AuditTrail(sink=archive.record_audit)


def _looks_like_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    with path.open("rb") as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def dicom_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every file named, and every file under every folder named, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        else:
            yield path


def import_files(
    paths: Iterable[Path], config: Config, calling_ae: str, progress_label: str = "importing"
) -> ImportSummary:
    """Import files (folders recursively) into the configured archive."""
    entity = config.entity(calling_ae)
    files = list(dicom_files(paths))
    summary = ImportSummary()
    progress = Progress(len(files), progress_label)
    with _pipeline(config) as (importer, audit):
        for path in files:
            try:
                if not _looks_like_dicom(path):
                    summary.skipped.append((path, "not a DICOM file (no DICM prefix, not .dcm)"))
                    progress.advance()
                    continue
                meta, dataset = split(path.read_bytes())
            except OSError as error:
                summary.skipped.append((path, f"cannot read it: {error.strerror}"))
                progress.advance(failed=True)
                continue
            received = Received(
                dataset=dataset,
                transfer_syntax=str(meta.TransferSyntaxUID),
                calling_ae=calling_ae,
                peer="local",
                sop_class_uid=str(meta.get("MediaStorageSOPClassUID", "")),
                sop_instance_uid=str(meta.get("MediaStorageSOPInstanceUID", "")),
            )
            result = _run(importer, audit, config, received, entity, str(path))
            summary.results.append((path, result))
            progress.advance(failed=not result.stored)
    progress.close()
    return summary


def seed_patients(
    config: Config,
    patients: int,
    seed: int,
    *,
    slices: int = 100,
    matrix: int = 512,
    calling_ae: str = "SEED",
) -> ImportSummary:
    """Fill the configured archive with synthetic patients through the import pipeline.

    Patient ``n`` is built from seed ``seed + n``, so the same arguments give the same
    archive contents.
    """
    summary = ImportSummary()
    with _pipeline(config) as (importer, audit):
        progress = Progress(patients * (slices + 6), "seeding")
        for number in range(patients):
            patient = synthetic_patient(seed + number, slices=slices, matrix=matrix)
            for dataset in patient.datasets():
                received = received_from(dataset, calling_ae)
                result = _run(importer, audit, config, received, config.entity(calling_ae),
                              f"synthetic patient {patient.patient_id}")  # fmt: skip
                label = Path(f"{patient.patient_id}/{dataset.Modality}/{dataset.SOPInstanceUID}")
                summary.results.append((label, result))
                progress.advance(failed=not result.stored)
        progress.close()
    return summary


def format_patients(patients: list[PatientRow]) -> str:
    """The archive's patients as an aligned table."""
    if not patients:
        return "the archive holds no patients"
    header = ("Patient ID", "Name", "Birth date", "Sex", "Hospital / Department", "Studies",
              "Series", "Instances")  # fmt: skip
    rows = [
        (
            p.patient_id,
            p.name,
            p.birth_date,
            p.sex,
            " / ".join(v for v in (p.hospital, p.department) if v),
            str(p.studies),
            str(p.series),
            str(p.instances),
        )
        for p in patients
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    title = "  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))
    return "\n".join([title.rstrip(), *(line.rstrip() for line in lines)])
