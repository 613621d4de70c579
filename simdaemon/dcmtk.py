"""Find DCMTK's command-line tools, for the interop tests and the benchmarks that drive them.

pynetdicom installs console scripts named like DCMTK's (``echoscu``, ``storescu``...), which
shadow DCMTK on ``PATH`` inside a virtual environment; this finds the real ones.
"""

from __future__ import annotations

import shutil
import subprocess

__all__ = ["find_dcmtk"]


def find_dcmtk(tool: str) -> str | None:
    """DCMTK's ``tool``, not pynetdicom's console script of the same name that may shadow it.

    The system's copy is tried first; a candidate counts only if ``--version`` says DCMTK.
    """
    candidates = [f"/usr/bin/{tool}", f"/usr/local/bin/{tool}", shutil.which(tool)]
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            done = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "dcmtk" in (done.stdout + done.stderr).lower():
            return candidate
    return None
