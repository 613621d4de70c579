"""A canary for pynetdicom upgrades: the upstream code simdaemon.net copies or builds on.

simdaemon.net replaces pynetdicom 3.0's DUL and association loops and reaches into their
internals (the list, with what differs, is simdaemon/net/__init__.py's docstring). Nothing
else would notice an upgrade that changes those functions: the suite might still pass while
the daemon had quietly lost a fix. So each function's source is hashed as it was when ours
was written (pynetdicom 3.0.4), and a change fails here, naming the function, our code that
depends on it and what to re-check.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pynetdicom
import pytest
from packaging.requirements import Requirement

import simdaemon.net

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
#: The pynetdicom release whose sources the hashes below were taken from.
RECORDED_WITH = "3.0.4"


@dataclass(frozen=True)
class Upstream:
    """An upstream function, our code built on it, what to re-check if it changes."""

    name: str
    ours: tuple[str, ...]
    recheck: str
    sha256: str


UPSTREAM = (
    # Copied and changed.
    Upstream(
        "pynetdicom.dul.DULServiceProvider.run_reactor",
        (
            "simdaemon.net.acceptor.EventDrivenDUL.run_reactor",
            "simdaemon.net.outgoing.WakingDUL.run_reactor",
        ),
        "compare the new loop with ours line by line (ARTIM check, primitive, socket read, "
        "state machine action, exception path) and carry every change into ours, keeping the "
        "select() wait instead of the sleep.",
        "e3a10eb3a0931e4854af33b9496e92d9679522aca26b0e04da8967559b9e2803",
    ),
    Upstream(
        "pynetdicom.association.Association._run_reactor",
        (
            "simdaemon.net.acceptor._association_reactor",
            "simdaemon.net.outgoing._requestor_reactor",
            "simdaemon.net.outgoing.keep_responses",
        ),
        "carry any new check (release, abort, DUL alive, idle timer) into ours, keeping the "
        "wait on dul.user_wake; if the requestor's race of pynetdicom issue #875 is fixed, "
        "keep_responses (and its copy in client/transport.py) can go.",
        "f28838c5559e462a563750cfc9f3790027f4bb7e2223baf42c9f5d682c359dee",
    ),
    Upstream(
        "pynetdicom.dul.DULServiceProvider._read_pdu_data",
        (
            "simdaemon.net.acceptor.EventDrivenDUL._read_pdu_data",
            "simdaemon.net.outgoing.WakingDUL.hand_over",
        ),
        "ours reads without blocking and checks the header's length against [limits] before "
        "reading the rest: carry over any new event (Evt17, Evt19 cases), PDU type or decode "
        "step, keeping the non-blocking read and the size check; WakingDUL.hand_over copies its "
        "decode-and-queue tail for PDUs a DirectStore read.",
        "19f2d4e38c13c83586365d93dd5cd96a0c7c665cb37251054b3e1f246e9f431b",
    ),
    Upstream(
        "pynetdicom.transport.AssociationSocket.recv",
        ("simdaemon.net.outgoing.QuickAckSocket.recv",),
        "ours reads the same number of bytes, blocking, and returns what arrived when the "
        "peer closes, asking for a quick ACK after each piece: carry over any new error "
        "handling or TLS case.",
        "6bc20a33b1b7cfe76d4ad4407ca242563bc6206fde4b4e1cf7a2fbb1f11d621d",
    ),
    Upstream(
        "pynetdicom.ae.ApplicationEntity._create_socket",
        ("simdaemon.net.outgoing.QuickAckAE._create_socket",),
        "ours builds a QuickAckSocket the same way: carry over whatever new state upstream "
        "sets on the socket (today: tls_args).",
        "f56bca8888e1ce9f3d64f30608db5d89f003b0b1b31106d3178a550871a4030f",
    ),
    # Extended: ours calls these and relies on what they do.
    Upstream(
        "pynetdicom.dul.DULServiceProvider.__init__",
        (
            "simdaemon.net.acceptor.EventDrivenDUL.__init__",
            "simdaemon.net.outgoing.WakingDUL.__init__",
        ),
        "ours replaces to_user_queue after it and uses event_queue, to_provider_queue, "
        "_recv_pdu, _idle_timer and artim_timer: check they keep their meaning and that no "
        "new queue needs to wake the loops.",
        "c82dafa9438ddf70685917cb15d2bfbc814aa0ad5233ffb0ae650faedc7570f0",
    ),
    Upstream(
        "pynetdicom.dul.DULServiceProvider.send_pdu",
        (
            "simdaemon.net.acceptor.EventDrivenDUL.send_pdu",
            "simdaemon.net.outgoing.WakingDUL.send_pdu",
        ),
        "ours sends a small P-DATA itself when nothing waits (EventDrivenDUL._send_now), else "
        "marks the association as ending, calls it, then wakes the DUL loop: check "
        "primitives still go through to_provider_queue.",
        "7cbce5da8594124e9e70c790a68df640d21df11af4220783e752bc607de8dde6",
    ),
    Upstream(
        "pynetdicom.dul.DULServiceProvider.kill_dul",
        (
            "simdaemon.net.acceptor.EventDrivenDUL.kill_dul",
            "simdaemon.net.outgoing.WakingDUL.kill_dul",
        ),
        "ours calls it, then wakes both loops: check it still only asks the loop to stop.",
        "5ceccf8dd01c2072c377d18bb1be284941a345bd40f03bd1e03a864ab0817842",
    ),
    Upstream(
        "pynetdicom.dul.DULServiceProvider._process_recv_primitive",
        ("simdaemon.net.acceptor.EventDrivenDUL._process_recv_primitive",),
        "ours peeks at to_provider_queue.queue[0] first and takes EndAsFault, and whatever "
        "comes after Sta1/Sta13, itself: check upstream still peeks without taking.",
        "4c0ebbb3e646e35e8e5bbc27ee2f1e6b2c82bbf619232f47639a6cbae092ed39",
    ),
    Upstream(
        "pynetdicom.transport.RequestHandler._create_association",
        ("simdaemon.net.acceptor.EventDrivenRequestHandler._create_association",),
        "ours swaps in another DUL after it: whatever new state it puts on assoc.dul or the "
        "socket must be carried over (today: the socket, the event queue holding Evt5, the "
        "timeouts).",
        "05c8d12b79863cdbdb901ce37187b7030a0434c5cd89d219ed0bedbda679a61e",
    ),
    Upstream(
        "pynetdicom.association.Association._serve_request",
        ("simdaemon.net.outgoing.keep_responses", "simdaemon.net.acceptor._association_reactor"),
        "keep_responses relies on it dropping responses; the C-MOVE side door mirrors its "
        "pause and C-CANCEL handling around a service class: carry changes over to both.",
        "2f24c1759cdf6c8c433094f2a8dd8144f76f5547f03daed7b94e0f78bc12f877",
    ),
    Upstream(
        "pynetdicom.transport.AssociationSocket.ready.fget",
        ("simdaemon.net.outgoing.QuickAckSocket.ready.fget",),
        "ours calls it and asks for a quick ACK when it says data is waiting: check it still "
        "only looks (select with no wait) and reads nothing.",
        "3eb58e3d39dc076df7a04c804ca183ffd3f4d1b34361039e9e6f11de3d45579c",
    ),
    Upstream(
        "pynetdicom.dimse_messages.DIMSEMessage.encode_msg",
        ("simdaemon.net.direct.DirectStore.store", "simdaemon.net.direct._fragments"),
        "ours fragments a C-STORE-RQ's command and data set into P-DATA-TF PDUs by hand: carry "
        "over any change to the fragment size (maximum PDU length less 6), the message control "
        "header flags or the command/data set split.",
        "73000c902c52832dab302ddb3bc274ea93d205a810a197225dd87d4c1212ba57",
    ),
    Upstream(
        "pynetdicom.dimse.DIMSEServiceProvider.send_msg",
        ("simdaemon.net.commands.hand_encode_store_responses",),
        "ours sends a C-STORE-RSP's command set encoded by hand, skipping EVT_DIMSE_SENT only "
        "when nothing is bound to it: carry over any new step (an event, a check, the "
        "fragmenting) into the hand-encoded path.",
        "a839cf2fb46976d9da29cf06fea41c04416b38d14fab612af12e5d869bd5b3f0",
    ),
    Upstream(
        "pynetdicom.fsm.DT_1",
        (
            "simdaemon.net.direct.DirectStore.store",
            "simdaemon.net.acceptor.EventDrivenDUL._send_now",
        ),
        "a DirectStore sends P-DATA on the lent socket without the state machine, which stays "
        "in Sta6, and _send_now runs DT-1 on the association thread: check DT-1 still only "
        "takes the front of to_provider_queue, sends the PDU and stays in Sta6.",
        "82e5c5d4114534fa9ac86124c7c7ef11ff2b98bc73069372cbe413af9df19081",
    ),
    # Relied on unchanged.
    Upstream(
        "pynetdicom.ae.ApplicationEntity.add_supported_context",
        ("simdaemon.net.sop_classes.support",),
        "support() calls it once per process, then copies the contexts it stored in "
        "_supported_contexts (their _transfer_syntax lists too) into each AE: check it still "
        "stores one PresentationContext per abstract syntax there and nothing elsewhere.",
        "2932641f457f3240c3c3c7c870b723872fdef410d3dff9d7457277b96c4830f0",
    ),
    Upstream(
        "pynetdicom.dul.DULServiceProvider._is_transport_event",
        (
            "simdaemon.net.acceptor.EventDrivenDUL._turn",
            "simdaemon.net.outgoing.WakingDUL._is_transport_event",
        ),
        "ours calls it on every turn that finds the event queue empty, even right after "
        "queuing a primitive's event, and WakingDUL skips it while the socket is lent: check "
        "it still reads at most one PDU and is safe then.",
        "8725ed03bb8fbdefef249d5d9888c120e6277d7b6aa2c4f537e23027186e1253",
    ),
    Upstream(
        "pynetdicom.transport.AssociationSocket.send",
        ("simdaemon.net.acceptor.EventDrivenDUL._send_now",),
        "_send_now sends on the association thread and counts on a failed send queuing Evt17 "
        "for the reactor, not raising: check it still catches the error and queues Evt17.",
        "1ea8158c0b51facac667a0340b93f495b947fdc4f55663946fb30d456c804e09",
    ),
    Upstream(
        "pynetdicom.fsm.StateMachine.do_action",
        ("simdaemon.net.acceptor.EventDrivenDUL._send_now",),
        "_send_now runs Evt9 from the association thread under the lock the reactor holds for "
        "its turns: check the action still only runs the transition's function, fires "
        "EVT_FSM_TRANSITION and sets the state, with no thread of its own.",
        "9a883f44c7f31641b7847b97b51a72abdd31a3c8a9d31031cae7f7d929383dd9",
    ),
    Upstream(
        "pynetdicom.dul.DULServiceProvider.receive_pdu",
        ("simdaemon.net.acceptor.EventDrivenDUL.give_up_waiting_for_request",),
        "ours queues None to end the acceptor's wait for an A-ASSOCIATE-RQ: check None still "
        "comes back out as 'nothing received'.",
        "fa67339834ca998cb31eb1806a854864200464b0a9991333d387aa419478c4e6",
    ),
    Upstream(
        "pynetdicom.association.Association.run_reactor",
        (
            "simdaemon.net.acceptor.EventDrivenDUL.give_up_waiting_for_request",
            "simdaemon.server.Daemon._on_requested",
        ),
        "an acceptor must still end its thread on None instead of an A-ASSOCIATE-RQ, and skip "
        "negotiation when an EVT_REQUESTED handler set is_aborted (refusals, faults).",
        "ed8bbbe3b3d6ddaee3e8673ba25b2ab2a4c45f25bc1d8ae7b48ebafd09499e6d",
    ),
    Upstream(
        "pynetdicom.fsm.AA_1",
        ("simdaemon.net.sabotage.Saboteur.end",),
        "Saboteur.end puts an A-ABORT at the front of to_provider_queue and queues Evt15: "
        "check AA-1 still sends the abort it finds there.",
        "8495a4665f7ad3c96c426eb10dfd0ee6864e630d6e17918a3fd3393ec0b1781a",
    ),
    Upstream(
        "pynetdicom.acse.ACSE._negotiate_as_requestor",
        (
            "simdaemon.net.outgoing.recover_rejection",
            "dbdaemon_client.transport._recover_rejection",
        ),
        "a requestor whose DUL read an A-ASSOCIATE-RJ and closed before the connected check "
        "aborts and leaves the rejection in to_user_queue: if upstream fixed that race, drop "
        "both copies; else check the rejection still waits there as an A_ASSOCIATE.",
        "507959152c5896c634fad04f075f213f281840809017c48844f401c66c410a92",
    ),
)


def resolve(dotted: str) -> Any:
    """The module attribute ``dotted`` names: a module path, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise ModuleNotFoundError(dotted)


def changed(entry: Upstream, source: str) -> str | None:
    """What to tell the person upgrading pynetdicom if ``source`` is not the recorded one."""
    actual = hashlib.sha256(source.encode()).hexdigest()
    if actual == entry.sha256:
        return None
    return (
        f"pynetdicom {pynetdicom.__version__} changed {entry.name}: its source differs from "
        f"the one recorded with pynetdicom {RECORDED_WITH}. Built on it: "
        f"{', '.join(entry.ours)}. Re-check: {entry.recheck} Then update the list in "
        f"simdaemon/net/__init__.py and record the new sha256 here: {actual}"
    )


@pytest.mark.parametrize("entry", UPSTREAM, ids=lambda entry: entry.name)
def test_upstream_code_is_what_simdaemon_net_was_written_against(entry: Upstream) -> None:
    problem = changed(entry, inspect.getsource(resolve(entry.name)))
    assert problem is None, problem


def test_a_changed_upstream_function_fails_saying_what_to_recheck() -> None:
    entry = UPSTREAM[0]
    source = inspect.getsource(resolve(entry.name))
    upgraded = source.replace("time.sleep(self._run_loop_delay)", "self._wait_for_socket()")
    assert upgraded != source

    problem = changed(entry, upgraded)

    assert problem is not None
    assert "pynetdicom.dul.DULServiceProvider.run_reactor" in problem
    assert "simdaemon.net.acceptor.EventDrivenDUL.run_reactor" in problem
    assert entry.recheck in problem
    assert changed(entry, source) is None


@pytest.mark.parametrize("entry", UPSTREAM, ids=lambda entry: entry.name)
def test_our_code_named_by_the_canary_exists(entry: Upstream) -> None:
    for ours in entry.ours:
        assert callable(resolve(ours)), f"{ours} moved: update the canary entry {entry.name}"


def test_the_canary_checks_every_upstream_function_the_net_docstring_names() -> None:
    documented = set(re.findall(r"``(pynetdicom\.[\w.]+)``", simdaemon.net.__doc__ or ""))
    functions = {name for name in documented if inspect.isfunction(resolve(name))}
    checked = {entry.name for entry in UPSTREAM}
    assert functions == checked


def test_installed_pynetdicom_is_in_the_pinned_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = [Requirement(d) for d in dependencies if Requirement(d).name == "pynetdicom"]
    assert len(pins) == 1, f"pyproject.toml pins pynetdicom {len(pins)} times"
    pin = pins[0].specifier
    assert pin.contains(RECORDED_WITH), f"the hashes were taken from {RECORDED_WITH}, outside {pin}"
    assert pin.contains(pynetdicom.__version__), (
        f"pynetdicom {pynetdicom.__version__} is installed but pyproject.toml pins {pin}: "
        "simdaemon.net was written against that range"
    )
