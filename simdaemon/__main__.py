"""``python -m simdaemon``: the same as the ``simdaemon`` command."""

from simdaemon.cli import main

raise SystemExit(main())
