"""The daemon: a pynetdicom application entity with the DB Daemon's access rules.

``Daemon(config).start()`` binds and listens in the caller's thread, so when it returns the
port is open and :attr:`Daemon.port` is the real one (port 0 asks for an ephemeral port):
no readiness race, no sleeping. Serving happens on a background thread; ``stop()`` wakes
it at once through a socket pair instead of waiting for socketserver's half-second poll, so
a test can start and stop daemons by the hundred.

Exceptions raised on server threads are logged and kept; :meth:`Daemon.raise_errors` re-raises
the first one in the caller, so a bug in a handler fails the test that triggered it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND, C_MOVE

from simdaemon.access import (
    ABSTRACT_SYNTAXES,
    STORAGE,
    TRANSFER_SYNTAXES,
    AssociationRequest,
    Reason,
    Rejection,
    Result,
    Source,
    decide,
    request_fits_context,
)
from simdaemon.archive import Archive, ArchiveError, Consistency
from simdaemon.audit import AuditTrail
from simdaemon.config import Config, TrustedEntity, normalize_ae_title
from simdaemon.console.settings import ConsoleSettings
from simdaemon.faults import NO_FAULTS, Faults, Stopped
from simdaemon.injection import Injector
from simdaemon.investigation import Investigator
from simdaemon.net.acceptor import (
    EventDrivenRequestHandler,
    end_association,
    force_close,
    is_serving,
)
from simdaemon.net.guard import Guard, Incident
from simdaemon.net.guard import Limits as NetLimits
from simdaemon.net.listener import Listener
from simdaemon.net.outgoing import no_delay
from simdaemon.net.sabotage import PduTrap, fail_on_pdu
from simdaemon.net.sop_classes import register_private_storage, support
from simdaemon.printable import install as escape_log_records
from simdaemon.reporting import Reporter
from simdaemon.services import fail_move, handle_find, handle_store, serve_move
from simdaemon.services.context import ServiceContext, failure, status_answer
from simdaemon.services.echo import handle_echo
from simdaemon.services.peer import describe_peer
from simdaemon.services.sessions import AssociationWatch

if TYPE_CHECKING:
    # The console (FastAPI) is imported only when a daemon starts one; the import pipeline
    # (patient matching, validation) on the first import, as the services load on first use.
    from simdaemon.console.app import Console
    from simdaemon.importer import Importer

__all__ = ["Daemon", "DaemonError"]

LOGGER = logging.getLogger(__name__)

#: pynetdicom enforces its own limit after our access decision; ours is the one that counts.
_UNLIMITED = 1_000_000
_JOIN_TIMEOUT_S = 5.0
#: How long stop() lets the peers close their side after an A-ABORT before closing the
#: sockets: one deadline shared by all of them, not per peer.
_PEER_GRACE_S = 1.0

_F = TypeVar("_F", bound=Callable[..., Any])

#: How an association is refused when the decision itself failed: transient, so a caller
#: retries; source presentation, reason 2 (local limit exceeded), as issue 15 asks.
_DECISION_FAILED = Rejection(
    Result.REJECTED_TRANSIENT, Source.SERVICE_PROVIDER_PRESENTATION, Reason.LOCAL_LIMIT_EXCEEDED
)


register_private_storage(STORAGE)  # on import: a daemon must answer every class it accepts


def _join_all(threads: list[Association], timeout: float) -> None:
    """Join threads against one deadline shared by all of them."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


class DaemonError(RuntimeError):
    """The daemon could not start, or one of its threads failed."""


class Daemon:
    """A simulated ARIA DB Daemon; a context manager, usable without pytest."""

    #: Whether the archive fsyncs (SQLite ``synchronous = NORMAL``; see :mod:`simdaemon.archive`).
    #: The pytest plugin's daemons, whose archives go with the test's temporary folder, don't.
    durable_archive = True

    def __init__(
        self,
        config: Config | None = None,
        *,
        command_line: bool = False,
        console: ConsoleSettings | None = None,
    ) -> None:
        """``command_line``: started by ``simdaemon serve``, so hints name its flags too.

        ``console``: serve the HTTP control plane and web console too (off by default).
        """
        self.command_line = command_line
        self.console_settings = console
        #: The running console (``daemon.console.url``), once started with one.
        self.console: Console | None = None
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._thread: threading.Thread | None = None
        self._archive: Archive | None = None
        self._importer: Importer | None = None
        #: What the start-up consistency check found (and repaired), once started.
        self.consistency: Consistency | None = None
        #: Set while stopping: injected delays end at once and their requests are aborted.
        self._stopping = threading.Event()
        self._configure(config if config is not None else Config())

    def _configure(self, config: Config) -> None:
        """Take ``config``: trail, trusted entities, faults and the AE made from it."""
        self.config = config
        self.audit = AuditTrail(limit=self.config.audit.memory_events)
        self._trusted: dict[str, TrustedEntity] = {e.ae_title: e for e in self.config.trusted}
        self.investigator = Investigator(self.config.investigation, self.config.daemon.archive)
        #: Injected faults (``daemon.faults.add(operation=..., ...)``); ``[[faults]]`` first.
        self.faults = Faults(self.config.faults)
        self._injector = Injector(self.faults, self.audit, lambda: self.archive, self._stopping)
        #: Where findings go: audit, log, refusal at ``[findings] fail_on``.
        self.findings = Reporter(self.audit, self.config.findings)
        self._watch: AssociationWatch | None = None
        self._ae = self._make_ae()

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> Daemon:
        """Bind, listen and start serving; return once connections are accepted."""
        self._listen()
        if self.console_settings is not None and self.console is None:
            try:
                self.start_console(self.console_settings)
            except DaemonError:
                self.stop()
                raise
        return self

    def _listen(self) -> None:
        """The DICOM side of :meth:`start`."""
        if self._listener is not None:
            return
        escape_log_records()  # a peer's newline or ANSI escape never reaches a log raw
        self._stopping.clear()
        settings = self.config.daemon
        archive = self.archive
        self.consistency = archive.repair(archive.check(at_start=True))
        if self.consistency.ok:
            LOGGER.info(self.consistency.describe())
        else:
            LOGGER.warning("archive check at start: %s (repaired)", self.consistency.describe())
        context = self._context()
        self._watch = watch = AssociationWatch(context, self.config.findings.churn_per_second)
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._guard(no_delay)),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._guard(watch.accepted)),
            (evt.EVT_RELEASED, self._guard(watch.ended)),
            (evt.EVT_ABORTED, self._guard(watch.ended)),
            (evt.EVT_C_ECHO, self._answering(self._injector.wrap("echo", handle_echo, context))),
            (evt.EVT_C_STORE, self._answering(self._injector.wrap("store", handle_store, context))),
            (evt.EVT_C_FIND, self._answering(self._injector.wrap("find", handle_find, context))),
        ]
        try:
            listener: Listener = self._ae.make_server(
                (settings.host, settings.port),
                ae_title=self.ae_title,
                evt_handlers=handlers,
                server_class=Listener,
                request_handler=EventDrivenRequestHandler,
                on_error=self._keep_error,
            )  # type: ignore[assignment]
        except OSError as error:
            raise DaemonError(
                f"cannot listen on {settings.host}:{settings.port}: {error.strerror}; "
                "choose another [daemon] port (0 picks a free one) or host"
                + (" (--port, --host)" if self.command_line else "")
            ) from error
        listener.services = {C_MOVE: functools.partial(self._serve_move, context)}
        limits = self.config.limits
        listener.guard = Guard(
            limits=NetLimits(
                max_connections=limits.max_connections,
                associate_request_timeout=limits.associate_request_timeout,
                max_associate_request=limits.max_associate_request,
                max_pdu_length=limits.max_pdu_length,
            ),
            report=self._report_incident,
            fits=request_fits_context,
        )
        self._listener = listener
        self._thread = threading.Thread(
            target=self._serve, name=f"simdaemon@{self.port}", daemon=True
        )
        self._thread.start()
        LOGGER.info("listening on %s:%d as %s", self.host, self.port, self.ae_title)

    def start_console(self, settings: ConsoleSettings) -> Console:
        """Serve the HTTP console beside the DICOM side (stopped by :meth:`stop`)."""
        from simdaemon.console.app import Console  # FastAPI loads only for a console

        if self.console is not None:
            return self.console
        try:
            self.console = Console(self, settings).start()
        except OSError as error:
            raise DaemonError(
                f"cannot serve the console on {settings.host}:{settings.port}: "
                f"{error.strerror}; choose another console port (0 picks a free one)"
                + (" (--console HOST:PORT, or --no-console)" if self.command_line else "")
            ) from error
        LOGGER.info("console on %s", self.console.url)
        return self.console

    def restart(self, config: Config) -> None:
        """Stop the DICOM side and start it again on ``config``; the console stays up.

        What the configuration dialog's OK does ("Service will restart"): the archive is
        kept, run-time trust and faults give way to the configuration's, and the audit
        trail starts afresh (the archive keeps the old one).
        """
        self._close()
        self._configure(config)
        self._listen()
        LOGGER.info("restarted with a new configuration")

    def stop(self) -> None:
        """Stop listening, abort open associations and wait for their threads; idempotent."""
        console, self.console = self.console, None
        if console is not None:
            console.stop()
            if console.error is not None:
                self.errors.append(console.error)
        self._close()

    def _close(self) -> None:
        """The DICOM side of :meth:`stop`."""
        listener, thread = self._listener, self._thread
        if listener is None or thread is None:
            return
        self._listener = self._thread = None
        self._stopping.set()
        listener.stop_serving()
        thread.join(_JOIN_TIMEOUT_S)
        # Closing joins the connection threads, so every association they created has started
        # and can be ended and joined below.
        listener.server_close()
        associations = listener.active_associations
        for assoc in associations:
            end_association(assoc)
        _join_all(associations, _PEER_GRACE_S)
        stalled = [assoc for assoc in associations if assoc.is_alive()]
        for assoc in stalled:  # the peer ignored the A-ABORT; do not wait for its timer
            force_close(assoc)
        _join_all(stalled, _JOIN_TIMEOUT_S)
        listener.guard.flush()
        self._close_archive()
        LOGGER.info("stopped %s on port %d", self.ae_title, listener.server_address[1])

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Empty the archive and the audit trail; configured trusted entities and faults only.

        What a session-wide daemon needs between tests to look freshly started, in a few
        milliseconds instead of a restart.
        """
        self.archive.clear()
        self.audit.clear()
        if self._listener is not None:
            self._listener.guard.forget()
        if self._watch is not None:
            self._watch.forget()
        self.faults.reset(self.config.faults)
        with self._lock:
            self._trusted = {e.ae_title: e for e in self.config.trusted}

    def raise_errors(self) -> None:
        """Re-raise, in the caller, the first exception a server thread hit."""
        if self.errors:
            raise DaemonError(f"a daemon thread failed: {self.errors[0]!r}") from self.errors[0]

    # --- the archive ------------------------------------------------------------------------

    @property
    def archive(self) -> Archive:
        """The archive; opened on first use (start() also checks and repairs it)."""
        with self._lock:
            return self._open_archive()

    @property
    def importer(self) -> Importer:
        """The import pipeline into this daemon's archive (what C-STORE runs objects through)."""
        return self._get_importer()

    def _get_importer(self) -> Importer:
        """The importer, made on first use: a daemon only queried never loads the pipeline."""
        from simdaemon.importer import Importer

        with self._lock:
            archive = self._open_archive()
            if self._importer is None:
                self._importer = Importer(self.config, archive, self.investigator)
            return self._importer

    def _open_archive(self) -> Archive:
        """Open the archive unless open; the caller holds ``_lock``."""
        if self._archive is None:
            folder = self.config.daemon.archive
            try:
                archive = Archive(
                    folder,
                    sql_trace=self.config.investigation.sql_trace,
                    audit=self.config.audit,
                    durable=self.durable_archive,
                )
            except (ArchiveError, OSError) as error:
                raise DaemonError(f"[daemon] archive = {str(folder)!r}: {error}") from error
            self._archive = archive
            self.audit.sink = archive.record_audit
        return self._archive

    def _context(self) -> ServiceContext:
        """What every service is handed: the daemon's parts as they are now."""
        return ServiceContext(
            archive=lambda: self.archive,
            importer=self._get_importer,
            entity=self._entity,
            audit=self.audit,
            ae_title=self.ae_title,
            investigator=self.investigator,
            quirks=self.config.quirks,
            limits=self.config.limits,
            findings=self.findings,
        )

    def _serve_move(
        self, context: ServiceContext, assoc: Association, request: C_MOVE, context_id: int
    ) -> None:
        """Serve a C-MOVE (through the acceptor's side door) with its fault plan."""
        plan = self._injector.move_plan(assoc, request, context_id)
        watch = self._watch
        if watch is not None:
            watch.used(assoc, assoc._accepted_cx[context_id].abstract_syntax)
        try:
            serve_move(context, plan, assoc, request, context_id)
            if watch is not None:
                watch.answered(assoc)
        except Stopped:  # a sub-operation's delay ended by stop(); the move was aborted
            return
        except Exception as error:  # noqa: BLE001 - kept for raise_errors; the peer is answered
            self._keep_error(error)
            try:
                fail_move(assoc, request, context_id)
            except Exception as answering:  # noqa: BLE001 - e.g. the move module cannot load
                # Not even the failure can be answered: abort, so the requester is not left
                # waiting for its DIMSE timeout.
                self._keep_error(answering)
                assoc.abort()

    def _report_incident(self, incident: Incident) -> None:
        """Record a refusal at the network level (limits, bad titles, wrong context)."""
        self.audit.record(
            incident.operation,
            calling_ae=incident.calling_ae,
            called_ae=incident.called_ae,
            peer=incident.peer,
            outcome=incident.outcome,
            detail=incident.detail,
            rule=incident.rule,
            status=incident.status,
        )
        LOGGER.warning("%s %s: %s", incident.operation, incident.outcome, incident.detail)

    def _entity(self, ae_title: str) -> TrustedEntity | None:
        with self._lock:
            return self._trusted.get(ae_title)

    def _close_archive(self) -> None:
        with self._lock:
            archive, self._archive, self._importer = self._archive, None, None
            self.audit.sink = None
        if archive is not None:
            archive.close()

    # --- what a test or the CLI reads ------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the daemon is accepting connections."""
        return self._listener is not None

    @property
    def ae_title(self) -> str:
        """The daemon's AE title, as callers must address it."""
        return normalize_ae_title(self.config.daemon.ae_title)

    @property
    def host(self) -> str:
        """The address the daemon listens on."""
        return self.config.daemon.host

    @property
    def port(self) -> int:
        """The bound port; the ephemeral one when the configuration asked for port 0."""
        if self._listener is None:
            raise DaemonError("the daemon is not running, so it has no port; call start()")
        return int(self._listener.server_address[1])

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` to connect to."""
        return self.host, self.port

    @property
    def trusted(self) -> tuple[TrustedEntity, ...]:
        """The trusted entities in force now, including runtime changes."""
        with self._lock:
            return tuple(self._trusted.values())

    def trust(self, entity: TrustedEntity) -> None:
        """Trust an entity from now on (replacing one with the same AE title); no restart."""
        with self._lock:
            self._trusted[entity.ae_title] = entity
        LOGGER.info("now trusting '%s' from %s (port %d)", entity.ae_title, entity.ip, entity.port)

    def untrust(self, ae_title: str) -> None:
        """Stop trusting an AE title; unknown titles raise :class:`KeyError`."""
        title = normalize_ae_title(ae_title)
        with self._lock:
            if title not in self._trusted:
                known = ", ".join(self._trusted) or "none"
                raise KeyError(f"'{title}' is not a trusted entity (trusted: {known})")
            del self._trusted[title]
        LOGGER.info("no longer trusting '%s'", title)

    # --- protocol glue ---------------------------------------------------------------------

    def _make_ae(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = _UNLIMITED
        ae.maximum_pdu_size = self.config.limits.max_pdu_length
        support(ae, ABSTRACT_SYNTAXES, TRANSFER_SYNTAXES)
        return ae

    def _serve(self) -> None:
        assert self._listener is not None
        listener = self._listener
        try:
            listener.serve_until_stopped()
        except BaseException as error:  # noqa: BLE001 - kept for the caller, see raise_errors
            self._keep_error(error)

    def _keep_error(self, error: BaseException) -> None:
        LOGGER.error("daemon thread failed: %r", error, exc_info=error)
        self.errors.append(error)

    def _guard(self, handler: _F) -> _F:
        """Wrap a notification handler so its exceptions are kept, then re-raised to pynetdicom."""

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except Exception as error:
                self._keep_error(error)
                raise

        guarded.__name__ = getattr(handler, "__name__", "handler")
        return guarded  # type: ignore[return-value]

    def _answering(self, handler: Callable[[evt.Event], Any]) -> Callable[[evt.Event], Any]:
        """Wrap a DIMSE handler so an exception is kept and answered, never left bare.

        pynetdicom would answer its own 0xC2xx/0xC3xx codes with no Error Comment; the daemon
        answers :func:`~simdaemon.services.context.failure`'s status and comment instead. A
        C-FIND's responses are a stream: an exception while streaming ends it the same way.
        """

        def answering(event: evt.Event) -> Any:
            watch = self._watch
            if watch is not None:
                watch.used(event.assoc, event.context.abstract_syntax)
            try:
                answer = handler(event)
            except Exception as error:  # noqa: BLE001 - kept for raise_errors; the peer is answered
                failed = self._failed(event, error)
                # A C-FIND is answered by a stream of (status, identifier) pairs, even to fail.
                return iter([(failed, None)]) if isinstance(event.request, C_FIND) else failed
            if isinstance(answer, Iterator):
                return self._answering_stream(event, answer)
            return answer

        answering.__name__ = getattr(handler, "__name__", "handler")
        return answering

    def _answering_stream(
        self, event: evt.Event, responses: Iterator[Any]
    ) -> Iterator[tuple[Dataset, Dataset | None]]:
        try:
            yield from responses
        except Exception as error:  # noqa: BLE001 - kept for raise_errors; the peer is answered
            yield self._failed(event, error), None
        watch = self._watch
        if watch is not None:  # the last pending response is out: was another request sent?
            watch.answered(event.assoc)

    def _failed(self, event: evt.Event, error: Exception) -> Dataset:
        """Keep a handler's exception for :meth:`raise_errors`; the failure answering it."""
        self._keep_error(error)
        code, comment = failure(error)
        LOGGER.error(
            "%s from '%s' answered 0x%04X: %r",
            type(event.request).__name__.replace("_", "-"),
            describe_peer(event.assoc).calling_ae,
            code,
            error,
        )
        return status_answer(code, comment)

    def _on_requested(self, event: evt.Event) -> None:
        """Accept or reject an A-ASSOCIATE-RQ; fail closed: any exception rejects it.

        pynetdicom logs an exception raised by this handler and goes on to accept the
        association, so an audit write that fails (a full disk, a locked database) or a bug
        in the decision would let anyone in. Here it rejects (transient), says why in one log
        line, and keeps the exception for :meth:`raise_errors`.
        """
        assoc: Association = event.assoc
        try:
            self._decide(assoc)
        except Exception as error:
            self.errors.append(error)
            LOGGER.error(
                "rejected association from %s (transient): the access decision failed: %r",
                assoc.requestor.address,
                error,
            )
            LOGGER.debug("the access decision failed", exc_info=error)
            try:
                if not (assoc.is_rejected or assoc.is_aborted):
                    rejection = _DECISION_FAILED
                    assoc.acse.send_reject(rejection.result, rejection.source, rejection.reason)
            finally:
                if not assoc.is_rejected:
                    assoc.is_aborted = True  # so pynetdicom does not go on to accept it
                assoc.kill()

    def _decide(self, assoc: Association) -> None:
        """The access decision, the association's fault plan, the audit event, the answer."""
        started = time.perf_counter()
        peer = describe_peer(assoc)
        listener = self._listener
        active = 0
        if listener is not None:
            active = sum(
                1 for a in listener.active_associations if a is not assoc and is_serving(a)
            )
        decision = decide(
            AssociationRequest(peer.calling_ae, peer.called_ae, peer.ip, peer.port),
            daemon_ae=self.ae_title,
            trusted=self.trusted,
            active=active,
            limit=self.config.daemon.max_associations,
            command_line=self.command_line,
        )
        plan = NO_FAULTS
        if decision.accepted:
            plan = self._injector.plan("associate", assoc, {"calling_ae": peer.calling_ae})
            if plan.stopped:
                assoc.is_aborted = True  # so pynetdicom does not go on to accept it
                assoc.kill()
                return
            if plan.refuse:
                decision = dataclasses.replace(
                    decision,
                    rule="fault",
                    explanation=f"refused by an injected fault ({plan.described})",
                    rejection=Rejection(
                        Result.REJECTED_TRANSIENT,
                        Source.SERVICE_PROVIDER_PRESENTATION,
                        Reason.NO_REASON,
                    ),
                )
        outcome = "accepted" if decision.accepted else "rejected"
        if plan.aborts(0):
            outcome = "aborted"
            explanation = f"{decision.explanation}, then aborted by an injected fault"
            decision = dataclasses.replace(
                decision, rule="fault", explanation=f"{explanation} ({plan.described})"
            )
        # Record before answering: a client that has its answer can already read the audit.
        self.audit.record(
            "associate",
            **peer.audit_fields(),
            outcome=outcome,
            detail=decision.explanation,
            rule=decision.rule,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        if plan.abort_after is not None:
            if outcome != "aborted":
                fail_on_pdu(assoc, PduTrap(plan.abort_after, plan.close, plan.record))
            else:  # the A-ASSOCIATE-RQ itself is answered by the abort
                LOGGER.warning(decision.explanation)
                plan.abort()
                assoc.is_aborted = True  # so pynetdicom does not go on to accept it
                assoc.kill()
                return
        rejection = decision.rejection
        if rejection is None:
            LOGGER.info(decision.explanation)
            if self._watch is not None:
                self._watch.opened(peer)
            return
        LOGGER.warning("rejected association: %s", decision.explanation)
        assoc.acse.send_reject(rejection.result, rejection.source, rejection.reason)
        assoc.kill()
