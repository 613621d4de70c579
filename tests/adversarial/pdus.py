"""Hand-built PDUs and raw-socket helpers for the adversarial tests.

pynetdicom's SCU cannot send what these tests need (a header claiming a gigabyte, half a
request, an AE title with a NUL byte), so the PDUs are built here from PS3.8 section 9.3,
byte by byte, and read back just as plainly.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

#: PDU types (PS3.8 Table 9-11).
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)


def item(kind: int, value: bytes) -> bytes:
    """A variable item: type, reserved byte, 2-byte length, value."""
    return struct.pack(">BBH", kind, 0, len(value)) + value


def header(kind: int, length: int) -> bytes:
    """A PDU header: type, reserved byte, 4-byte length (which may claim anything)."""
    return struct.pack(">BBL", kind, 0, length)


def associate_rq(
    calling: bytes | str = b"SIMCLIENT",
    called: bytes | str = b"VMSDBD",
    contexts: tuple[str, ...] = (VERIFICATION,),
) -> bytes:
    """A complete A-ASSOCIATE-RQ PDU offering ``contexts`` in Implicit VR Little Endian."""
    calling_raw = calling.encode() if isinstance(calling, str) else calling
    called_raw = called.encode() if isinstance(called, str) else called
    items = item(0x10, APPLICATION_CONTEXT.encode())
    for number, abstract in enumerate(contexts):
        syntaxes = item(0x30, abstract.encode()) + item(0x40, IMPLICIT_VR_LITTLE_ENDIAN.encode())
        items += item(0x20, bytes([1 + 2 * number, 0, 0, 0]) + syntaxes)
    user = item(0x51, struct.pack(">L", 16382)) + item(0x52, b"1.2.826.0.1.3680043.9.9999")
    items += item(0x50, user)
    body = (
        struct.pack(">HH", 1, 0)
        + called_raw.ljust(16, b" ")[:16]
        + calling_raw.ljust(16, b" ")[:16]
        + bytes(32)
        + items
    )
    return header(ASSOCIATE_RQ, len(body)) + body


def connect(address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    """A TCP connection to the daemon; reads time out after ``timeout`` seconds."""
    return socket.create_connection(address, timeout=timeout)


def read_pdu(raw: socket.socket) -> tuple[int, bytes] | None:
    """The next PDU's type and body, or None when the daemon closed the connection."""
    head = _read_exactly(raw, 6)
    if len(head) < 6:
        return None
    kind, _, length = struct.unpack(">BBL", head)
    body = _read_exactly(raw, length)
    return (kind, body) if len(body) == length else None


def closed_by_peer(raw: socket.socket, timeout: float = 10.0) -> bytes:
    """Read until the daemon closes the connection; return what it sent first.

    Raises :class:`TimeoutError` if it is still open after ``timeout`` seconds.
    """
    received = bytearray()
    raw.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = raw.recv(65536)
        except ConnectionResetError:
            return bytes(received)
        except TimeoutError:
            break
        if not chunk:
            return bytes(received)
        received += chunk
    raise TimeoutError(f"the daemon kept the connection open for {timeout} s")


def is_open(raw: socket.socket) -> bool:
    """Whether the daemon has neither closed the connection nor sent anything on it."""
    raw.setblocking(False)
    try:
        raw.recv(1, socket.MSG_PEEK)  # returns: closed (b"") or something was sent
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        raw.setblocking(True)
    return False


def join_acceptor_threads(timeout: float = 10.0) -> None:
    """Wait for the association threads of this process to end (one shared deadline)."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("AcceptorThread"):
            thread.join(max(0.0, deadline - time.monotonic()))


def close_all(sockets: list[socket.socket]) -> None:
    """Close test-side sockets, ignoring ones the daemon already reset."""
    for raw in sockets:
        with contextlib.suppress(OSError):
            raw.close()


def _read_exactly(raw: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        try:
            chunk = raw.recv(min(count - len(data), 65536))
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)
