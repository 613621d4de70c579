"""``python -m simdaemon``: the same as the ``simdaemon`` command."""

from simdaemon.launch import main

raise SystemExit(main())
