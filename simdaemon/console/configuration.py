"""The configuration as JSON (the TOML's tables and keys) and back, with the console's limits.

Writing goes through :func:`simdaemon.config.from_mapping`, so the console's validation
messages are the TOML loader's. Folders are the one thing the console never changes: no
endpoint takes a filesystem path from a client, so a folder given in a PUT must equal the
one in force (or be left out).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from simdaemon.config import Config, ConfigError, TrustedEntity, from_mapping

__all__ = ["FOLDERS", "as_mapping", "entity_from", "merged"]

#: The configuration's folders: read-only through the console.
FOLDERS = (("daemon", "archive"), ("investigation", "iod_folder"),
           ("investigation", "failed_import_folder"))  # fmt: skip


def _json(value: object) -> object:
    return value.as_posix() if isinstance(value, Path) else value


def _table(item: Any) -> dict[str, Any]:
    return {f.name: _json(getattr(item, f.name)) for f in dataclasses.fields(item)}


def as_mapping(config: Config) -> dict[str, Any]:
    """The configuration as the TOML's tables: ``{"daemon": {"ae_title": ...}, ...}``."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "trusted":
            data[f.name] = [_table(entity) for entity in value]
        elif f.name == "faults":
            data[f.name] = [rule.as_mapping() for rule in value]
        else:
            data[f.name] = _table(value)
    return data


def merged(current: Config, given: object) -> Config:
    """Check a whole configuration given as JSON; folders must stay as they are.

    Raises :class:`ConfigError` naming the key, as loading the TOML would.
    """
    if not isinstance(given, dict):
        raise ConfigError("(configuration)", given, "expected a JSON object of TOML tables")
    data = copy.deepcopy(given)
    for table, key in FOLDERS:
        section = data.setdefault(table, {})
        if not isinstance(section, dict):
            continue  # from_mapping names the table
        kept = getattr(getattr(current, table), key)
        if key in section and (
            not isinstance(section[key], str) or Path(section[key]) != Path(kept)
        ):
            raise ConfigError(
                f"{table}.{key}",
                section[key],
                f"the console does not change folders (it is {kept.as_posix()!r}); "
                "change it in the configuration file and restart simdaemon",
            )
        section[key] = kept.as_posix()
    config = from_mapping(data, None)
    # Exactly the folders in force (from_mapping would make a relative one absolute).
    return dataclasses.replace(
        config,
        daemon=dataclasses.replace(config.daemon, archive=current.daemon.archive),
        investigation=dataclasses.replace(
            config.investigation,
            iod_folder=current.investigation.iod_folder,
            failed_import_folder=current.investigation.failed_import_folder,
        ),
    )


def entity_from(given: object) -> TrustedEntity:
    """Check one ``[[trusted]]`` table given as JSON; errors name the key (``ip``)."""
    if not isinstance(given, dict):
        raise ConfigError("(trusted entity)", given, "expected a JSON object with ae_title, ...")
    try:
        return from_mapping({"trusted": [given]}).trusted[0]
    except ConfigError as error:
        key = error.key.removeprefix("trusted[1].")
        raise ConfigError(key, error.value, error.allowed) from None
