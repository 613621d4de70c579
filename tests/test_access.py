"""The association rules of SPEC section 3 as a pure function, without sockets."""

from __future__ import annotations

import pytest

from simdaemon.access import (
    ABSTRACT_SYNTAXES,
    AssociationRequest,
    Decision,
    Reason,
    Rejection,
    Result,
    Source,
    canonical_address,
    decide,
    request_fits_context,
)
from simdaemon.config import TrustedEntity

CLIENT = TrustedEntity("MYCLIENT", "10.130.10.133", 9999)
SUBNET = TrustedEntity("WARD", "10.20.0.0/16", 104)


def ask(
    calling: str,
    called: str = "VMSDBD",
    ip: str = "10.130.10.133",
    active: int = 0,
    command_line: bool = False,
) -> Decision:
    """Decide a request to VMSDBD, which trusts CLIENT and SUBNET, with a limit of 2."""
    return decide(
        AssociationRequest(calling, called, ip, 40000),
        daemon_ae="VMSDBD",
        trusted=[CLIENT, SUBNET],
        active=active,
        limit=2,
        command_line=command_line,
    )


PERMANENT_USER = (Result.REJECTED_PERMANENT, Source.SERVICE_USER)


@pytest.mark.parametrize(
    ("calling", "called", "ip", "active", "rule", "rejection"),
    [
        ("MYCLIENT", "VMSDBD", "10.130.10.133", 0, "trusted", None),
        ("MYCLIENT  ", "VMSDBD  ", "10.130.10.133", 1, "trusted", None),
        ("WARD", "VMSDBD", "10.20.7.9", 0, "trusted", None),
        ("MYCLIENT", "OTHER", "10.130.10.133", 0, "called-ae", (*PERMANENT_USER, 7)),
        ("STRANGER", "VMSDBD", "10.130.10.133", 0, "calling-ae", (*PERMANENT_USER, 3)),
        ("myclient", "VMSDBD", "10.130.10.133", 0, "calling-ae", (*PERMANENT_USER, 3)),
        ("MYCLIENT", "VMSDBD", "127.0.0.1", 0, "peer-address", (*PERMANENT_USER, 3)),
        ("WARD", "VMSDBD", "10.21.0.1", 0, "peer-address", (*PERMANENT_USER, 3)),
        (
            "MYCLIENT",
            "VMSDBD",
            "10.130.10.133",
            2,
            "limit",
            (Result.REJECTED_TRANSIENT, Source.SERVICE_PROVIDER_PRESENTATION, 2),
        ),
    ],
)
def test_the_association_table(
    calling: str,
    called: str,
    ip: str,
    active: int,
    rule: str,
    rejection: tuple[int, int, int] | None,
) -> None:
    decision = ask(calling, called, ip, active)
    assert decision.rule == rule
    assert decision.accepted is (rejection is None)
    if rejection is not None:
        assert decision.rejection == Rejection(
            Result(rejection[0]), Source(rejection[1]), Reason(rejection[2])
        )


def test_checks_run_in_the_daemons_order() -> None:
    # Wrong called AE *and* unknown calling AE *and* over the limit: the called AE decides.
    assert ask("STRANGER", "OTHER", "1.2.3.4", active=5).rule == "called-ae"
    # An unknown caller at the limit is told it is unknown, not that the daemon is busy.
    assert ask("STRANGER", active=5).rule == "calling-ae"
    assert ask("MYCLIENT", ip="1.2.3.4", active=5).rule == "peer-address"


def test_explanations_say_what_to_change() -> None:
    assert ask("STRANGER", ip="127.0.0.1").explanation == (
        "calling AE 'STRANGER' is not a trusted entity; add it under [[trusted]] with "
        "ae_title = 'STRANGER', ip = '127.0.0.1' and the port of its storage SCP"
    )
    wrong_ip = ask("MYCLIENT", ip="127.0.0.1").explanation
    assert "trusted only from 10.130.10.133; this call came from 127.0.0.1" in wrong_ip
    assert "set ip = '127.0.0.1'" in wrong_ip
    assert "[daemon] ae_title = 'OTHER'" in ask("MYCLIENT", "OTHER").explanation
    assert "max_associations" in ask("MYCLIENT", active=2).explanation
    assert "--" not in ask("STRANGER").explanation, "a daemon from Python has no flags"


def test_a_daemon_started_from_the_command_line_names_its_flags_too() -> None:
    stranger = ask("STRANGER", ip="127.0.0.1", command_line=True).explanation
    assert stranger.endswith("its storage SCP (--trust STRANGER@127.0.0.1:PORT)")
    assert "[[trusted]]" in stranger
    wrong_ip = ask("MYCLIENT", ip="127.0.0.1", command_line=True).explanation
    assert wrong_ip.endswith(f"(--trust MYCLIENT@127.0.0.1:{CLIENT.port})")
    called = ask("MYCLIENT", "OTHER", command_line=True).explanation
    assert called.endswith("[daemon] ae_title = 'OTHER' (--ae-title OTHER)")


def test_offered_contexts_have_no_c_get() -> None:
    get_classes = {"1.2.840.10008.5.1.4.1.2.1.3", "1.2.840.10008.5.1.4.1.2.2.3"}
    assert not get_classes & set(ABSTRACT_SYNTAXES)
    assert "1.2.840.10008.1.1" in ABSTRACT_SYNTAXES
    assert {"1.2.246.352.70.1.10", "1.2.246.352.70.1.70"} <= set(ABSTRACT_SYNTAXES)
    assert len(ABSTRACT_SYNTAXES) == len(set(ABSTRACT_SYNTAXES)) == 1 + 4 + 18


@pytest.mark.parametrize(
    ("address", "canonical"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::FFFF:10.130.10.133", "10.130.10.133"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("fe80::1", "fe80::1"),
        ("::127.0.0.1", "::127.0.0.1"),  # IPv4-compatible, not mapped: a different address
        ("not an address", "not an address"),
    ],
)
def test_ipv4_mapped_addresses_compare_as_ipv4(address: str, canonical: str) -> None:
    assert canonical_address(address) == canonical


def test_an_ipv4_entity_is_trusted_from_its_mapped_address_on_a_dual_stack_daemon() -> None:
    assert ask("MYCLIENT", ip="::ffff:10.130.10.133").rule == "trusted"
    assert ask("WARD", ip="::ffff:10.20.7.9").rule == "trusted"
    refused = ask("MYCLIENT", ip="::ffff:10.130.10.134")
    assert refused.rule == "peer-address"
    assert "this call came from 10.130.10.134" in refused.explanation


def test_an_entity_written_as_a_mapped_address_still_matches() -> None:
    mapped = TrustedEntity("MAPPED", "::ffff:10.1.1.1", 104)
    decision = decide(
        AssociationRequest("MAPPED", "VMSDBD", "::ffff:10.1.1.1", 40000),
        daemon_ae="VMSDBD",
        trusted=[mapped],
        active=0,
        limit=2,
    )
    assert decision.accepted


FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"


@pytest.mark.parametrize(
    ("command", "syntax", "fits"),
    [
        ("C-FIND", FIND, True),
        ("C-MOVE", MOVE, True),
        ("C-STORE", CT, True),
        ("C-ECHO", VERIFICATION, True),
        ("C-MOVE", FIND, False),
        ("C-FIND", MOVE, False),
        ("C-STORE", VERIFICATION, False),
        ("C-ECHO", CT, False),
        ("C-GET", "1.2.840.10008.5.1.4.1.2.2.3", False),
        ("N-CREATE", CT, False),
    ],
)
def test_a_request_fits_only_the_contexts_of_its_service(
    command: str, syntax: str, fits: bool
) -> None:
    assert request_fits_context(command, syntax) is fits
