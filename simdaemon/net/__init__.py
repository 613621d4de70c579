"""The network layer: where simdaemon extends or replaces pynetdicom's internals.

Modules, by job (each imports only those listed before it, and nothing else of simdaemon):

- :mod:`simdaemon.net.commands`: DIMSE command sets encoded by hand for the messages sent per
  slice (``command_set``, ``send_move_pending``, ``store_request``, ``store_response``), and
  the acceptor's C-STORE-RSPs sent that way (``hand_encode_store_responses``).
- :mod:`simdaemon.net.outgoing`: what each association needs to be quick and reliable
  (``keep_responses``, ``no_delay``, ``quick_ack``, ``quiet_standard_logging``), for services,
  tests and benchmarks, and the AE whose requested associations are event-driven and ask for
  quick ACKs (``QuickAckAE``, ``QuickAckSocket``, ``WakingDUL``), for the daemon's C-MOVE
  sub-operations.
- :mod:`simdaemon.net.direct`: a C-MOVE sub-operation's C-STORE exchange done on the
  association's socket itself, lent by its ``WakingDUL`` (``DirectStore``).
- :mod:`simdaemon.net.guard`: the bounds on what a peer may take (``Limits``), and the
  daemon's callbacks that judge a request's context and report a refusal, rate-limited
  (``Guard``, ``Incident``).
- :mod:`simdaemon.net.sabotage`: ending an association the daemon serves as an injected
  fault (``fail_association``, ``fail_on_pdu`` with a ``PduTrap``), on its DUL thread.
- :mod:`simdaemon.net.acceptor`: the associations the daemon accepts: the event-driven DUL
  and association loops (``EventDrivenRequestHandler``), and ending associations at
  ``stop()`` (``end_association``, ``force_close``, ``is_serving``).
- :mod:`simdaemon.net.listener`: the listening socket, accepting connections until ``stop()``
  without polling (``Listener``); it carries the daemon's own services to the acceptor.
- :mod:`simdaemon.net.sop_classes`: teaching pynetdicom to serve C-STORE for private SOP
  classes (``register_private_storage``), and an AE's supported contexts built once per
  process (``support``).

What differs from upstream pynetdicom 3.0 (pinned ``>=3.0,<3.1`` in pyproject.toml;
``tests/test_net_canary.py`` hashes the source of every function named here and fails, saying
what to re-check, when an upgrade changes one):

Copied and changed (ours replaces the upstream code):

- ``pynetdicom.dul.DULServiceProvider.run_reactor`` -> ``acceptor.EventDrivenDUL.run_reactor``:
  waits in ``select`` on the socket and a wake-up socket (at most ``MAX_WAIT_S``, 50 ms; before
  the A-ASSOCIATE-RQ until the request deadline or the ARTIM timer is due, at most
  ``PRE_REQUEST_MAX_WAIT_S``, 1 s, so idle connections cost no CPU) where upstream sleeps 1 ms,
  and asks for a TCP quick ACK whenever data arrived; does not sleep once after setting
  ``_dul_ready`` (upstream does, for single-stepping tests); when the event queue is empty it
  both queues the next primitive's event and reads the socket in one turn, where upstream does
  one or the other (so a C-CANCEL does not wait behind every pending C-FIND response); closes a
  connection whose A-ASSOCIATE-RQ is not complete within ``[limits] associate_request_timeout``
  (reported); hands each received event to the ``Saboteur`` before the state machine; on
  reaching Sta1 releases an association thread still waiting for its request; on an exception
  logs one error line (upstream adds the traceback), then aborts as upstream does; on an
  exception in the state machine's action (a P-DATA whose command set cannot be decoded),
  which upstream lets end the thread with the connection open, reports it (rule
  ``malformed-pdu``), sends an A-ABORT and closes the connection; on exit
  closes the wake-up socket and wakes the association thread.
- ``pynetdicom.dul.DULServiceProvider.run_reactor`` -> ``outgoing.WakingDUL.run_reactor`` (the
  associations a ``QuickAckAE`` requests: the daemon's to a C-MOVE destination): upstream's
  loop, waiting in ``select`` on the connected socket and a wake-up socket (at most
  ``outgoing.MAX_WAIT_S``, 50 ms, for the ARTIM timer) where upstream sleeps 1 ms; a wake-up
  is written only while the loop waits; logs one error line where upstream adds the
  traceback; on exit closes the wake-up socket and sets ``user_wake``.
- ``pynetdicom.association.Association._run_reactor`` -> ``outgoing._requestor_reactor`` (the
  associations a ``QuickAckAE`` requests): upstream's requestor loop, waiting on
  ``dul.user_wake`` (set when the DUL hands the association a primitive, or ends; at most
  ``MAX_WAIT_S``) where upstream sleeps 1 ms; counts as paused while it waits, so
  ``send_*`` and ``release`` go ahead at once, and does nothing in a turn whose pause was
  asked for as it woke; logs "Association Aborted" without "(A-P-ABORT)".
- ``pynetdicom.association.Association._run_reactor`` -> ``acceptor._association_reactor``
  (acceptor only): waits on ``dul.user_wake`` (at most
  ``MAX_WAIT_S``) where upstream sleeps 1 ms, and looks again at once after a message; hands
  a request whose primitive type is in ``assoc.simdaemon_services`` (the daemon's C-MOVE) to
  that callable instead of ``_serve_request``, mirroring what ``_serve_request`` does around a
  service class (``_is_paused`` set, ``dimse.cancel_req`` cleared before and after) but without
  its checks (valid request, extended negotiation, accepted context) or its log-and-abort on
  an exception - the callable answers every case itself - and silently ignoring the request
  once a release was sent; answers a request sent on a context of another service
  (a C-MOVE on a FIND context) 0x0122 itself, before either dispatch, and reports it; logs
  "Association Aborted" without upstream's "(A-P-ABORT)".
- ``pynetdicom.dul.DULServiceProvider._read_pdu_data`` ->
  ``acceptor.EventDrivenDUL._read_pdu_data``: never blocks (reads what has arrived, with
  ``MSG_DONTWAIT``, and keeps a partial PDU for the next turn) where upstream blocks in ``recv``
  until the whole PDU is in; checks the header's length against ``[limits]``
  (``max_associate_request`` before the A-ASSOCIATE-RQ, ``max_pdu_length`` plus 6 after) and
  aborts the association over it; grows the buffer by what arrived, never by the claim; rejects
  an A-ASSOCIATE-RQ whose AE titles hold control or non-ASCII bytes (A-ASSOCIATE-RJ, reported)
  before decoding it; logs one line where upstream adds tracebacks. ``AssociationSocket.recv``
  is no longer called.
- ``pynetdicom.transport.AssociationSocket.recv`` -> ``outgoing.QuickAckSocket.recv`` (the
  daemon's association to a C-MOVE destination only): asks for a TCP quick ACK after every
  partial receive, and reads with ``recv_into`` one buffer in pieces of up to 64 KiB where
  upstream appends 4 KiB pieces to a bytearray; blocks and returns what arrived when the peer
  closes, as upstream.
- ``pynetdicom.dimse_messages.DIMSEMessage.encode_msg`` and ``pynetdicom.fsm.DT_1`` ->
  ``direct.DirectStore.store`` (the daemon's association to a C-MOVE destination only, on
  plain TCP): the C-STORE-RQ's command set encoded by hand and its fragments written with one
  ``sendmsg`` on the socket the ``WakingDUL`` lends, the data set's PDVs being views of the
  stored file; the state machine is not run and stays in Sta6. The C-STORE-RSP is read and
  its command set parsed by hand; any other PDU is fed to the state machine as upstream's
  ``_read_pdu_data`` would (``WakingDUL.hand_over``: decode, queue the event and the PDU).
  EVT_PDU_SENT, EVT_PDU_RECV, EVT_DIMSE_SENT and EVT_DIMSE_RECV do not fire for it.
- ``pynetdicom.ae.ApplicationEntity._create_socket`` -> ``outgoing.QuickAckAE._create_socket``:
  builds a ``QuickAckSocket`` where upstream builds an ``AssociationSocket``, and first gives
  the association (not yet requested) a ``WakingDUL`` and ``_requestor_reactor``.

Extended (ours calls upstream, then adds):

- ``pynetdicom.dul.DULServiceProvider.__init__``: replaces ``to_user_queue`` with a queue that
  wakes the association loop; adds the wake-up socket pair, ``ending`` and the ``saboteur``
  (``outgoing.WakingDUL``: the queue and the socket pair).
- ``pynetdicom.dul.DULServiceProvider.send_pdu``: a P-DATA of at most ``SEND_NOW_MAX`` bytes
  from a thread other than the DUL's (acceptor only) is sent at once by that thread
  (``EventDrivenDUL._send_now``) when the association is in Sta6, no event and no primitive
  waits, the socket is writable and the DUL loop ends its turn within ``SEND_NOW_WAIT_S``
  (the lock it holds for each): it queues it and runs the state machine's Evt9 (DT-1)
  itself, under that lock (EVT_PDU_SENT, EVT_DATA_SENT and EVT_FSM_TRANSITION then fire on
  that thread); an exception there is logged and aborts the association (reason 0x00), as
  the DUL loop does for one outside the state machine. Otherwise, and for every other
  primitive, upstream's: it marks ``ending`` for a primitive that ends the association
  (A-ABORT, A-P-ABORT, ``EndAsFault``, A-RELEASE response, A-ASSOCIATE reject), calls
  upstream's, then wakes the DUL loop (``outgoing.WakingDUL``: wakes it if it waits; its
  ``send_pdus`` calls upstream's for each fragment of a message, then wakes it once).
- ``pynetdicom.dul.DULServiceProvider.kill_dul``: wakes both loops (acceptor and
  ``WakingDUL``).
- ``pynetdicom.dul.DULServiceProvider._is_transport_event``: ``WakingDUL`` calls upstream's
  under a lock, and not at all while its socket is lent to a ``DirectStore``.
- ``pynetdicom.dul.DULServiceProvider._process_recv_primitive``: drops what the user queued
  after the association was aborted or its connection closed (Sta1, Sta13; upstream's state
  machine would raise on it, ending the DUL thread) and carries out an ``EndAsFault`` itself.
- ``pynetdicom.transport.RequestHandler._create_association``: swaps in an ``EventDrivenDUL``
  (taking over the socket and the event queue holding Evt5), a waking DIMSE ``msg_queue``,
  ``_association_reactor``, the server's ``services`` and ``guard`` (with the A-ASSOCIATE-RQ
  deadline); unbinds the standard log handlers while pynetdicom's log is quiet; re-applies
  the ACSE and network timeouts.
- ``pynetdicom.dimse.DIMSEServiceProvider.send_msg`` (accepted associations):
  ``commands.hand_encode_store_responses`` wraps it; a C-STORE response whose fields
  ``commands.store_response`` knows is encoded by hand and sent as one P-DATA, without
  EVT_DIMSE_SENT, when nothing is bound to that event; everything else goes to upstream's.
- ``pynetdicom.association.Association._serve_request``: ``outgoing.keep_responses`` wraps it
  on requested associations to put back the responses it would drop (pynetdicom issue #875).
- ``pynetdicom.transport.AssociationSocket.ready.fget`` (the property ``ready``):
  ``outgoing.QuickAckSocket.ready`` calls it and asks for a TCP quick ACK when data is
  waiting, so a peer that keeps Nagle's algorithm on (DCMTK, Orthanc) and writes a response
  in two pieces does not wait 40 ms for the delayed ACK of the first.

Relied on unchanged (ours feeds or copies their behaviour):

- ``pynetdicom.ae.ApplicationEntity.add_supported_context``: ``sop_classes.support`` calls it
  once per process and copies the contexts it stored into each daemon's AE.
- ``pynetdicom.dul.DULServiceProvider._is_transport_event``: called on every turn that finds
  the event queue empty, even when a primitive's event was just queued.
- ``pynetdicom.transport.AssociationSocket.send``: a failed send queues Evt17 instead of
  raising, so ``EventDrivenDUL._send_now`` leaves a lost connection to the DUL loop.
- ``pynetdicom.fsm.StateMachine.do_action``: runs an action on the calling thread, so
  ``_send_now`` can run Evt9 under the DUL loop's lock.
- ``pynetdicom.dul.DULServiceProvider.receive_pdu``: passes on the ``None`` that
  ``give_up_waiting_for_request`` queues.
- ``pynetdicom.association.Association.run_reactor``: an acceptor ends its thread on ``None``
  instead of an A-ASSOCIATE-RQ, and skips negotiation when an EVT_REQUESTED handler set
  ``is_aborted`` (the daemon's refusals and association faults).
- ``pynetdicom.fsm.AA_1``: takes the A-ABORT that ``Saboteur.end`` puts at the front of
  ``to_provider_queue``.
- ``pynetdicom.acse.ACSE._negotiate_as_requestor``: checks the socket is connected only
  after the DUL thread may have read an A-ASSOCIATE-RJ and closed it, then aborts, leaving
  the rejection in ``to_user_queue``; ``outgoing.recover_rejection`` (and the client's copy)
  takes it from there.

From Python's standard library (not in the canary, which follows the pynetdicom pin):
``socketserver.BaseServer.serve_forever`` -> ``listener.Listener.serve_until_stopped``: waits
on the listening socket and a wake-up socket with no poll interval, and runs pynetdicom's
``AssociationServer.service_actions`` after each connection instead of after each poll; it
calls socketserver's private ``_handle_request_noblock``.
``socketserver.BaseServer.verify_request`` -> ``listener.Listener.verify_request``: refuses
a connection beyond ``[limits] max_connections`` (socketserver closes it).

Private pynetdicom names used: the module ``pynetdicom._handlers`` (its standard log
handlers); ``Association._dul_ready``, ``._is_paused``, ``._kill``, ``._reactor_checkpoint``,
``._run_reactor``, ``._sent_release``, ``._serve_request``; ``DULServiceProvider._idle_timer``,
``._is_transport_event``, ``._kill_thread``, ``._process_recv_primitive``, ``._recv_pdu``;
``RequestHandler._create_association``; ``ApplicationEntity._create_socket``,
``._supported_contexts`` (``sop_classes.support``); ``PresentationContext._transfer_syntax``;
``AssociationSocket._is_connected``. Public
attributes that ours replaces or reaches into: ``Association.dul``,
``DIMSEServiceProvider.msg_queue`` and ``.cancel_req``, ``DULServiceProvider.to_user_queue``,
``.to_provider_queue`` (its deque and mutex), ``.event_queue``,
``.state_machine.current_state`` (state names Sta1-Sta13) and the event names Evt5, Evt9, Evt10,
Evt15, Evt17, Evt18, Evt19; ``AssociationSocket.socket`` and ``.close``;
``DULServiceProvider._decode_pdu``; ``Association.accepted_contexts``.
"""
