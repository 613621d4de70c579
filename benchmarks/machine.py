"""How fast the machine was while a benchmark ran: a pace probe and the hypervisor's steal.

On a shared virtual machine the same code measures a third faster or slower from one run
to the next, and goals near their thresholds pass or fail with it. The ratios of one run
(simdaemon against a peer measured beside it) carry over; absolute figures do not. So the
scripts whose goals are absolute (the fixtures' milliseconds) or sit near 1.0 x print, with
their tables, what the machine itself did meanwhile:

- the pace: milliseconds for a fixed pure-Python workload, the median of seven runs, before
  and after the run; lower is faster. On the guests of RESULTS.md one run of it takes from
  50 to 95 ms within seconds (the host's doing: the guest's own load is nil then), so a
  single run says little and the median is printed;
- the CPU steal: the share of CPU time the hypervisor gave to other guests during the run
  (``/proc/stat``), which a busy host shows and the load average does not.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

#: Iterations of the pace workload: about 0.1 s on the 2-core guests of RESULTS.md.
PACE_ITERATIONS = 300_000


def pace_ms(runs: int = 7) -> float:
    """Milliseconds for a fixed pure-Python workload (dict, list, string and integer
    work, like the daemon's), the median of ``runs`` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        table: dict[int, str] = {}
        values: list[int] = []
        for n in range(PACE_ITERATIONS):
            table[n & 1023] = str(n)
            values.append(len(table[n & 511]) * n)
        del table, values
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@dataclass(frozen=True)
class CpuTicks:
    """The machine's CPU time so far, from the first line of ``/proc/stat``."""

    total: int
    steal: int

    @classmethod
    def now(cls) -> CpuTicks:
        """The counters now (zeros where ``/proc/stat`` cannot be read)."""
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return cls(0, 0)
        ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
        return cls(sum(ticks), ticks[7] if len(ticks) > 7 else 0)


@dataclass(frozen=True)
class Probe:
    """The machine's pace and CPU counters at the start of a run."""

    pace: float
    ticks: CpuTicks

    @classmethod
    def start(cls) -> Probe:
        """Probe the machine before a run."""
        return cls(pace_ms(), CpuTicks.now())

    def describe(self) -> str:
        """One line: the pace before and now, and the steal in between."""
        after, ticks = pace_ms(), CpuTicks.now()
        elapsed = ticks.total - self.ticks.total
        steal = (ticks.steal - self.ticks.steal) / elapsed if elapsed > 0 else 0.0
        return (
            f"host pace {self.pace:.0f} ms before, {after:.0f} ms after (a fixed Python "
            f"workload, median of 7; lower is faster); CPU steal during the run {steal:.1%}"
        )
