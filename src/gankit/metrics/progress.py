"""Progress of long metric passes: a bar on a terminal, else a line every few seconds with the ETA.

A metric on 50,000 samples can run for hours on a CPU; in a log file (SLURM, nohup, CI) a tqdm
bar is either absent or a wall of carriage returns, so there the same progress is printed as plain
lines, `PROGRESS_SECONDS` apart.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType

from tqdm import tqdm

#: Seconds between two progress lines when stderr is not a terminal.
PROGRESS_SECONDS = 5.0


def say(message: str) -> None:
    """Print a note or progress line to stderr (results go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    """12.3 -> '12 s', 185 -> '3 min 5 s', 4000 -> '1 h 7 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest and minutes < 10 else f"{minutes} min"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min"


def on_terminal() -> bool:
    """True when stderr is a terminal (where tqdm draws its bar)."""
    return sys.stderr.isatty()


class Progress:
    """Counts `total` items of work as `update(n)` reports them; use as a context manager."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        enabled: bool = True,
        log: Callable[[str], None] = say,
        unit: str = "img",
    ) -> None:
        self.total, self.desc, self.log, self.done = total, desc, log, 0
        self.start = self.last = time.monotonic()
        terminal = enabled and on_terminal()
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False) if terminal else None
        self.lines = enabled and not terminal

    def update(self, n: int) -> None:
        """`n` more items are done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if self.lines and self.done < self.total and now - self.last >= PROGRESS_SECONDS:
            self.last = now
            self.log(self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        """'DESC: 1,024/16,384 (6%), 12 s so far, about 3 min left'."""
        left = elapsed / max(self.done, 1) * (self.total - self.done)
        return (
            f"{self.desc}: {self.done:,}/{self.total:,} ({100 * self.done / self.total:.0f}%), "
            f"{format_seconds(elapsed)} so far, about {format_seconds(left)} left"
        )

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()
