"""The network layer: where simdaemon extends or replaces pynetdicom's internals.

- :mod:`simdaemon.net.outgoing`: what each association needs to be quick and reliable
  (``keep_responses``, ``no_delay``, ``quiet_standard_logging``), for services, tests and
  benchmarks.
- :mod:`simdaemon.net.sabotage`: ending an association the daemon serves as an injected
  fault (``fail_association``, ``fail_on_pdu`` with a ``PduTrap``), on its DUL thread.
"""
