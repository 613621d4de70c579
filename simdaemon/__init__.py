"""simdaemon: a simulated Varian ARIA DICOM DB Daemon for developing and testing client code."""

from importlib import metadata

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

try:
    #: The installed distribution's version: one source of truth, pyproject.toml.
    __version__ = metadata.version("simdaemon")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
