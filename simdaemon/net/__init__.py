"""The network layer: where simdaemon extends or replaces pynetdicom's internals.

- :mod:`simdaemon.net.outgoing`: what each association needs to be quick and reliable
  (``keep_responses``, ``no_delay``, ``quiet_standard_logging``), for services, tests and
  benchmarks.
"""
