"""simdaemon: a simulated Varian ARIA DICOM DB Daemon for developing and testing client code.

The names below are imported when first used (PEP 562), not when the package is: a command
such as ``simdaemon serve`` must not pay for the whole package before it can choose what it
needs (see :mod:`simdaemon.launch`), and ``__version__`` reads the installed metadata, which
costs ~25 ms, only when asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simdaemon.config import Config, ConfigError, TrustedEntity
    from simdaemon.console.settings import ConsoleSettings
    from simdaemon.server import Daemon, DaemonError

__all__ = [
    "Config",
    "ConfigError",
    "ConsoleSettings",
    "Daemon",
    "DaemonError",
    "TrustedEntity",
    "__version__",
]

#: Where each public name lives.
_HOMES = {
    "Config": "simdaemon.config",
    "ConfigError": "simdaemon.config",
    "TrustedEntity": "simdaemon.config",
    "ConsoleSettings": "simdaemon.console.settings",
    "Daemon": "simdaemon.server",
    "DaemonError": "simdaemon.server",
}


def _version() -> str:
    """The installed distribution's version: one source of truth, pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("simdaemon")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Import a public name on first use, and keep it."""
    if name == "__version__":
        value: Any = _version()
    elif name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'simdaemon' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
