"""Grid requests of several tabs drawn in one generator call (`Coalescer`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gankit import generate as gen
from gankit.explore.params import MAX_GRID


@dataclass
class _Job:
    """One request's seeds waiting in the `Coalescer`, and then its samples (or the error)."""

    key: tuple[Any, ...]
    seeds: list[int]
    samples: gen.Samples | None = None
    error: BaseException | None = None


class Coalescer:
    """Grid requests that wait for the nets together are drawn together: whichever gets the
    nets first draws the seeds of every waiting request with the same options in one call
    (at most `MAX_BATCH` seeds), and each request takes its part. Several tabs then share G
    calls instead of queueing one small call each."""

    MAX_BATCH = 4 * MAX_GRID

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.pending: list[_Job] = []
        self.guard = threading.Lock()  # around `pending` only

    def run(
        self, key: tuple[Any, ...], seeds: list[int], draw: Callable[[list[int]], gen.Samples]
    ) -> gen.Samples:
        """The samples of `seeds`, drawn by `draw(seeds of a batch)` with other waiting
        requests of the same `key`."""
        job = _Job(key, list(seeds))
        with self.guard:
            self.pending.append(job)
        with self.lock:
            batch = self._take(job)
            if batch:
                self._draw(batch, draw)
        if job.error is not None:
            raise job.error
        assert job.samples is not None
        return job.samples

    def _take(self, job: _Job) -> list[_Job]:
        """The waiting jobs of `job`'s key, `job` first, removed from the queue; empty when
        another request has drawn `job` already."""
        with self.guard:
            if job not in self.pending:
                return []
            batch, count = [], 0
            for other in [job, *(j for j in self.pending if j is not job and j.key == job.key)]:
                if batch and count + len(other.seeds) > self.MAX_BATCH:
                    break
                batch.append(other)
                count += len(other.seeds)
            self.pending = [j for j in self.pending if all(j is not b for b in batch)]
            return batch

    @staticmethod
    def _draw(batch: list[_Job], draw: Callable[[list[int]], gen.Samples]) -> None:
        try:
            samples = draw([seed for job in batch for seed in job.seeds])
        except BaseException as err:  # every request of the batch gets the error
            for job in batch:
                job.error = err
            return
        start = 0
        for job in batch:
            end = start + len(job.seeds)
            labels = None if samples.labels is None else samples.labels[start:end]
            job.samples = gen.Samples(
                samples.values[start:end], labels, samples.kind, samples.c_dim,
                samples.class_index, samples.mixture,
            )  # fmt: skip
            start = end
