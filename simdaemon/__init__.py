"""simdaemon: a simulated Varian ARIA DICOM DB Daemon for developing and testing client code."""

from simdaemon.config import Config, ConfigError, TrustedEntity
from simdaemon.server import Daemon, DaemonError

__all__ = ["Config", "ConfigError", "Daemon", "DaemonError", "TrustedEntity"]
