"""DIMSE command sets encoded by hand, for the messages the daemon sends most often.

pynetdicom encodes every command set with pydicom, twice (once to measure its group length):
about a millisecond per message, paid per slice for a pending C-MOVE-RSP and a C-STORE-RSP.
These encoders write the same bytes (tests compare them with pynetdicom's) for the messages
whose fields they know, and hand them to the DUL as pynetdicom would (``send_pdu``: sent at
once or queued), without triggering EVT_DIMSE_SENT:
callers use them only when nothing is bound to it (pynetdicom's own log handlers are unbound
while its log is quiet). Anything else goes through ``assoc.dimse.send_msg``.
"""

from __future__ import annotations

import struct
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA

__all__ = [
    "command_set",
    "hand_encode_store_responses",
    "send_move_pending",
    "store_request",
    "store_response",
]

#: A command element's value: an unsigned short (US), or text (UI padded with NUL, AE with a
#: space, to an even length).
CommandValue = int | tuple[str, bytes]
_UI = b"\0"
_AE = b" "
_LO = b" "


def command_set(elements: list[tuple[int, CommandValue]]) -> bytes:
    """A DIMSE command set in Implicit VR Little Endian, its group length first.

    ``elements`` are (element number in group 0000, value), in ascending order: an ``int`` is
    a US, a ``(text, pad)`` pair a UI (pad NUL) or AE (pad space). The bytes are those
    pynetdicom encodes for the same message with pydicom, at a fraction of the cost (it
    encodes the whole set twice, once to measure its length).
    """
    parts = []
    for element, value in elements:
        if isinstance(value, int):
            parts.append(struct.pack("<HHIH", 0, element, 2, value))
        else:
            text, pad = value
            encoded = text.encode("ascii")
            if len(encoded) % 2:
                encoded += pad
            parts.append(struct.pack("<HHI", 0, element, len(encoded)) + encoded)
    body = b"".join(parts)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


def _send_command(assoc: Association, context_id: int, command: bytes) -> None:
    """Queue ``command`` as the one, last command fragment of a message (header 0x03)."""
    pdata = P_DATA()
    pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
    assoc.dul.send_pdu(pdata)


def _fits(assoc: Association, size: int) -> bool:
    """Whether a PDV value of ``size`` bytes (flag byte included) fits in one P-DATA the peer
    accepts: the PDU's length is the item's 4 length bytes, its context ID and the value."""
    maximum = int(assoc.dimse.maximum_pdu_size or 0)
    return maximum == 0 or 4 + 1 + size <= maximum


def send_move_pending(
    assoc: Association,
    context_id: int,
    message_id: int,
    sop_class: str,
    counts: tuple[int, int, int, int],
) -> bool:
    """Queue a pending (0xFF00) C-MOVE-RSP: ``counts`` remaining, completed, failed, warning.

    What ``assoc.dimse.send_msg`` does for a C-MOVE primitive, without its pydicom encoding
    of the command set (:func:`command_set`) and without triggering EVT_DIMSE_SENT (the daemon
    binds nothing to it); False, with nothing sent, when the peer's maximum PDU is too small
    for the command in one piece (the caller then uses ``send_msg``).
    """
    remaining, completed, failed, warning = counts
    command = command_set(
        [
            (0x0002, (sop_class, _UI)),
            (0x0100, 0x8021),  # C-MOVE-RSP
            (0x0120, message_id),
            (0x0800, 0x0101),  # no data set
            (0x0900, 0xFF00),
            (0x1020, remaining),
            (0x1021, completed),
            (0x1022, failed),
            (0x1023, warning),
        ]
    )
    if not _fits(assoc, len(command) + 1):
        return False
    _send_command(assoc, context_id, command)
    return True


def store_request(
    message_id: int, sop_class: str, sop_instance: str, originator: tuple[str, int]
) -> bytes:
    """A C-STORE-RQ's command set (priority medium, a data set following) for a C-MOVE
    sub-operation: ``originator`` is the Move Originator's AE title and message ID."""
    return command_set(
        [
            (0x0002, (sop_class, _UI)),
            (0x0100, 0x0001),  # C-STORE-RQ
            (0x0110, message_id),
            (0x0700, 0x0002),  # priority: medium
            (0x0800, 0x0001),  # a data set follows
            (0x1000, (sop_instance, _UI)),
            (0x1030, (originator[0], _AE)),
            (0x1031, originator[1]),
        ]
    )


def store_response(primitive: C_STORE) -> bytes | None:
    """A C-STORE-RSP primitive's command set, or ``None`` if it holds what this does not encode.

    Encoded: the two affected UIDs, the message ID responded to, the status and an ASCII
    Error Comment (what the daemon's answers hold). An Offending Element, a missing UID or a
    non-ASCII comment are left to pynetdicom.
    """
    status = primitive.Status
    replied = primitive.MessageIDBeingRespondedTo
    sop_class = primitive.AffectedSOPClassUID
    sop_instance = primitive.AffectedSOPInstanceUID
    if status is None or replied is None or not sop_class or not sop_instance:
        return None
    if primitive.OffendingElement:
        return None
    elements: list[tuple[int, CommandValue]] = [
        (0x0002, (str(sop_class), _UI)),
        (0x0100, 0x8001),  # C-STORE-RSP
        (0x0120, int(replied)),
        (0x0800, 0x0101),  # no data set
        (0x0900, int(status)),
    ]
    comment = primitive.ErrorComment
    if comment:
        if not str(comment).isascii():
            return None
        elements.append((0x0902, (str(comment), _LO)))
    elements.append((0x1000, (str(sop_instance), _UI)))
    return command_set(elements)


def hand_encode_store_responses(assoc: Association) -> None:
    """Make ``assoc`` send its C-STORE-RSPs through :func:`store_response` when it can.

    Wraps ``assoc.dimse.send_msg``: a C-STORE response is encoded by hand and sent as one
    P-DATA when nothing is bound to EVT_DIMSE_SENT and the peer's maximum PDU holds it; every
    other message, and those responses otherwise, go through pynetdicom unchanged.
    """
    dimse = assoc.dimse
    send = dimse.send_msg

    def send_msg(primitive: Any, context_id: int) -> None:
        if (
            type(primitive) is C_STORE
            and primitive.MessageIDBeingRespondedTo is not None
            and not assoc.get_handlers(evt.EVT_DIMSE_SENT)
        ):
            command = store_response(primitive)
            if command is not None and _fits(assoc, len(command) + 1):
                _send_command(assoc, context_id, command)
                return
        send(primitive, context_id)

    dimse.send_msg = send_msg  # type: ignore[method-assign]
