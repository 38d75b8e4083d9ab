"""CPU threads: the warning when other work already keeps the cores a run's threads need."""

from __future__ import annotations

import os
import time


def busy_cpu_warning(threads: int, busy: float | None, cores: int) -> str | None:
    """A warning when other work already keeps the cores that `threads` torch threads need
    busy (`busy`: how many cores other processes use, measured before this run does any work).
    Threads that wait for each other on busy cores slow training down many times (see README)."""
    if threads < 2 or busy is None or busy + threads <= cores + 0.5:
        return None
    return (
        f"warning: the CPU is busy (other work keeps {busy:.1f} of {cores} cores busy) and "
        f"training uses {threads} threads, which then wait for each other and can train many "
        f"times slower; if the ticks show a low img/s, restart with --threads 1 (or as many as "
        f"there are idle cores)"
    )


def busy_cores(window_s: float = 0.2) -> float | None:
    """Cores kept busy by other processes now: from Linux's /proc/stat over `window_s` (this
    process is idle meanwhile), not the 1-minute load average, which still counts work that
    just ended (a `make test` before `make demo`). None where /proc/stat is missing."""
    try:
        first = _cpu_times()
        time.sleep(window_s)
        second = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (total - idle) / total * (os.cpu_count() or 1) if total > 0 else None


def _cpu_times(path: str = "/proc/stat") -> tuple[int, int]:
    """(all, idle + iowait) clock ticks since boot, summed over the CPUs."""
    with open(path) as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return sum(ticks[:8]), ticks[3] + ticks[4]  # user .. steal; guest is inside user
