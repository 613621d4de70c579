"""The network layer: where simdaemon extends or replaces pynetdicom's internals.

Modules, by job (each imports only those listed before it, and nothing else of simdaemon):

- :mod:`simdaemon.net.outgoing`: what each association needs to be quick and reliable
  (``keep_responses``, ``no_delay``, ``quiet_standard_logging``), for services, tests and
  benchmarks.
- :mod:`simdaemon.net.sabotage`: ending an association the daemon serves as an injected
  fault (``fail_association``, ``fail_on_pdu`` with a ``PduTrap``), on its DUL thread.
- :mod:`simdaemon.net.acceptor`: the associations the daemon accepts: the event-driven DUL
  and association loops (``EventDrivenRequestHandler``), and ending associations at
  ``stop()`` (``end_association``, ``force_close``, ``is_serving``).
"""
