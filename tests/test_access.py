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
    decide,
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
