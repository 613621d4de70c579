"""The ``simdaemon`` command's entry point: trim what this process imports, then run the CLI.

pydicom imports three optional libraries whenever they are installed, each only for work
this command never asks of it:

- ``numpy``, for ``Dataset.pixel_array`` and pixel data conversion: simdaemon never decodes
  pixels through pydicom (the console's thumbnails read Pixel Data itself, in
  :mod:`simdaemon.console.png`);
- ``requests`` (and through it urllib3, certificate bundles, character-set detection) and
  ``tqdm``, to download pydicom's own test files with a progress bar; it falls back to
  ``urllib`` when they are absent.

Together they cost 200-250 ms of every start on a 2-core machine, a third of ``simdaemon
serve``'s time to its first answered C-ECHO (``benchmarks/startup.py``). So this process
marks them as absent before pydicom is imported, as issue 17 asks ("no faker or numpy unless
used"). Only the command's own process: importing :mod:`simdaemon` as a library, or the
pytest plugin, leaves the user's libraries alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["OPTIONAL_IMPORTS_SKIPPED", "main"]

#: Modules pydicom imports if it can, which the command never uses.
OPTIONAL_IMPORTS_SKIPPED = ("numpy", "requests", "tqdm")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (:func:`simdaemon.cli.main`) in a process that skips those imports."""
    if "pydicom" not in sys.modules:  # too late to matter once pydicom is in
        for name in OPTIONAL_IMPORTS_SKIPPED:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # "absent", by design
    from simdaemon.cli import main as cli_main

    return cli_main(argv)
