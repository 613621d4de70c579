"""The machine's network adapters, for the Configuration page's Network Interface drop-down.

The real dialog lists each adapter as "NAME (IP)" and stores the chosen IP in
``daemon.host``. This reads the adapters' IPv4 addresses without sending anything: on Linux
with the ``SIOCGIFADDR`` ioctl per interface name, elsewhere from the host name's addresses.
"All adapters (0.0.0.0)" is always offered, and the address in force stays selectable even
when no adapter has it (a configuration written for another machine).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["ALL_ADAPTERS", "Adapter", "adapters", "choices"]


class Adapter(NamedTuple):
    """One choice of the drop-down: the name shown and the address stored."""

    name: str
    ip: str

    def label(self) -> str:
        """As the dialog shows it: ``eth0 (10.22.86.64)``."""
        return f"{self.name} ({self.ip})"


ALL_ADAPTERS = Adapter("All adapters", "0.0.0.0")
#: ``SIOCGIFADDR`` of Linux's ``<linux/sockios.h>``: an interface's IPv4 address.
_SIOCGIFADDR = 0x8915


def _linux_ipv4(name: str) -> str | None:
    import fcntl  # POSIX only: imported where it is used

    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
        except OSError:  # no IPv4 address (down, or IPv6 only)
            return None
    return socket.inet_ntoa(answer[20:24])


def _by_interface() -> list[Adapter]:
    found = []
    for _, name in socket.if_nameindex():
        ip = _linux_ipv4(name)
        if ip is not None:
            found.append(Adapter(name, ip))
    return found


def _by_host_name() -> list[Adapter]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        infos = []
    addresses = dict.fromkeys(str(info[4][0]) for info in infos)
    return [Adapter("Loopback", "127.0.0.1")] + [
        Adapter(socket.gethostname(), ip) for ip in addresses if ip != "127.0.0.1"
    ]


def adapters() -> list[Adapter]:
    """This machine's adapters with an IPv4 address, loopback first."""
    read: Callable[[], list[Adapter]] = (
        _by_interface if sys.platform.startswith("linux") else _by_host_name
    )
    try:
        found = read()
    except OSError:
        found = []
    return sorted(found, key=lambda a: (not ipaddress.ip_address(a.ip).is_loopback, a.name))


def choices(current: str, found: list[Adapter]) -> list[Adapter]:
    """The drop-down's entries: every adapter, all adapters, and ``current`` if none has it."""
    entries = [*found, ALL_ADAPTERS]
    if current not in {a.ip for a in entries}:
        entries.append(Adapter("configured", current))
    return entries
