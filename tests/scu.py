"""A bare pynetdicom SCU for the network tests: they check the daemon's exact PDUs."""

from __future__ import annotations

from collections.abc import Sequence

from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification

from simdaemon import Daemon


def associate(
    daemon: Daemon,
    calling: str = "SIMCLIENT",
    called: str | None = None,
    *,
    bind_address: tuple[str, int] | None = None,
    contexts: Sequence[tuple[str, Sequence[str] | None]] = ((Verification, None),),
) -> Association:
    """Request an association with the daemon; the caller releases it."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.connection_timeout = 5
    for abstract, syntaxes in contexts:
        if syntaxes is None:
            ae.add_requested_context(abstract)
        else:
            ae.add_requested_context(abstract, list(syntaxes))
    return ae.associate(
        daemon.host,
        daemon.port,
        ae_title=called if called is not None else daemon.ae_title,
        bind_address=bind_address,
    )


def rejection(assoc: Association) -> tuple[int, int, int]:
    """Return (result, source, reason) of an A-ASSOCIATE-RJ the daemon sent."""
    assert assoc.is_rejected, "the association was not rejected"
    answer = assoc.acceptor.primitive
    assert answer is not None
    return (answer.result or 0, answer.result_source or 0, answer.diagnostic or 0)
