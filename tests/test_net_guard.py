"""The guard's reporting: refusals of one kind are rate-limited and counted, never lost."""

from __future__ import annotations

from simdaemon.net.guard import Guard, Incident, escape_title


def incident(rule: str, number: int) -> Incident:
    return Incident("associate", "refused", rule, f"refusal {number}", f"127.0.0.1:{number}")


def test_a_burst_of_refusals_is_one_report_then_a_count() -> None:
    reported: list[Incident] = []
    guard = Guard(report=reported.append)
    for number in range(50):
        guard.refuse(incident("connection-limit", number))
    guard.refuse(incident("request-timeout", 99))

    assert [i.detail for i in reported] == ["refusal 0", "refusal 99"]
    guard.flush()
    assert reported[-1].rule == "connection-limit"
    assert "49 more refusals" in reported[-1].detail
    guard.flush()
    assert len(reported) == 3, "a flush reports what was left out once"


def test_ae_titles_are_shown_with_bad_bytes_escaped() -> None:
    assert escape_title(b"SIM\x00CLIENT") == "SIM\\x00CLIENT"
    assert escape_title("É\n\\".encode()) == "\\xc3\\x89\\x0a\\x5c"
    assert escape_title(b"PLAIN AE") == "PLAIN AE"


def test_a_report_that_fails_does_not_stop_the_refusal() -> None:
    def broken(incident: Incident) -> None:
        raise OSError("disk full")

    guard = Guard(report=broken)
    guard.refuse(incident("pdu-size", 1))  # must not raise: the caller still closes
    guard.refuse(incident("pdu-size", 2))
    guard.flush()


def test_refusals_on_accepted_associations_are_each_reported() -> None:
    reported: list[Incident] = []
    guard = Guard(report=reported.append)
    for number in range(3):
        guard.record(incident("context", number))
    assert [i.detail for i in reported] == ["refusal 0", "refusal 1", "refusal 2"]


def test_forget_starts_the_rate_limit_afresh() -> None:
    reported: list[Incident] = []
    guard = Guard(report=reported.append)
    guard.refuse(incident("connection-limit", 1))
    guard.refuse(incident("connection-limit", 2))
    guard.forget()
    guard.refuse(incident("connection-limit", 3))
    guard.flush()
    assert [i.detail for i in reported] == ["refusal 1", "refusal 3"]
