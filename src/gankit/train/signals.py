"""Stopping a run on request: Ctrl-C, SIGTERM and SIGUSR1 finish the iteration and snapshot.

A first Ctrl-C or SIGTERM stops after the current iteration with a snapshot; a second one aborts
at once (KeyboardInterrupt; the last complete checkpoint stands). SIGUSR1 only ever stops softly:
a batch scheduler's warning before its time limit, or an experiment stopping its workers.
"""

from __future__ import annotations

import signal
from typing import Any, Protocol


class Stoppable(Protocol):
    """What the handlers stop: a trainer's request flag, its stop signal and its log."""

    stop_requested: bool
    stop_signal: int | None

    def note(self, message: str) -> None: ...


#: `kill -USR1 PID` stops a run like a first Ctrl-C and never aborts it: a batch scheduler's
#: warning before its time limit (SLURM's `--signal=USR1@120`), or an experiment stopping its
#: worker processes (benchmarks/experiments.py). None where the platform has no SIGUSR1.
SOFT_STOP_SIGNAL = getattr(signal, "SIGUSR1", None)

#: A SIGUSR1 that came while no loop ran, in a process that called `keep_stop_requests()`.
_stop_pending = False


def keep_stop_requests() -> None:
    """From now on a SIGUSR1 that arrives while no training loop runs (loading data, scoring)
    stops the next loop at its start instead of being lost, or killing the process: for worker
    processes that run one job after another (benchmarks/experiments.py)."""

    def remember(signum: int, frame: Any) -> None:
        global _stop_pending
        _stop_pending = True

    if SOFT_STOP_SIGNAL is not None:
        signal.signal(SOFT_STOP_SIGNAL, remember)


class graceful_interrupt:
    """First Ctrl-C, SIGTERM or SIGUSR1: finish the iteration, snapshot, stop. A second Ctrl-C
    or SIGTERM: stop at once (KeyboardInterrupt; the last complete checkpoint stands).

    SIGTERM is handled only where nobody installed a handler of their own (a process pool's
    worker that must die on its pool's terminate keeps its own). A SIGUSR1 that
    `keep_stop_requests()` kept before the loop began stops it at its start.
    """

    def __init__(self, trainer: Stoppable) -> None:
        self.trainer, self.hard_stops = trainer, 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        global _stop_pending
        try:
            self.previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._interrupt)
        except ValueError:  # not the main thread: signals stay as they are
            return
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._interrupt)
        if SOFT_STOP_SIGNAL is not None:
            self.previous[SOFT_STOP_SIGNAL] = signal.signal(SOFT_STOP_SIGNAL, self._soft_stop)
        if _stop_pending:  # checked after the handler is in place, so no stop falls between
            _stop_pending = False
            self._stop("asked to stop (SIGUSR1) before the loop began", "Ctrl-C to abort")

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.hard_stops += 1
        if self.hard_stops > 1:  # only a second Ctrl-C/SIGTERM aborts: not one after a SIGUSR1
            raise KeyboardInterrupt
        if self.trainer.stop_signal is None:
            self.trainer.stop_signal = signum
        name = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
        self._stop(name, "Ctrl-C again to abort")

    def _soft_stop(self, signum: int, frame: Any) -> None:
        self._stop("asked to stop (SIGUSR1)", "Ctrl-C to abort")

    def _stop(self, why: str, then: str) -> None:
        if self.trainer.stop_requested:
            return
        self.trainer.stop_requested = True
        self.trainer.log.info(f"{why}: finishing this iteration and writing a snapshot ({then})")

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
