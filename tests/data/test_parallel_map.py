"""`parallel_map` inside a worker of another process pool: daemonic processes may not start
children, so it maps in the worker itself (found when a benchmark's pool scanned a folder)."""

from __future__ import annotations

import multiprocessing

from gankit.data.prepare import POOL_MIN_ITEMS, parallel_map


def _square(x: int) -> int:
    return x * x


def _map_in_worker(count: int) -> list[int]:
    return list(parallel_map(_square, range(count), count, "squares"))


def test_parallel_map_runs_inside_a_pool_worker() -> None:
    count = POOL_MIN_ITEMS + 5  # large enough to ask for a pool of its own
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply(_map_in_worker, (count,))
    assert result == [x * x for x in range(count)]


def test_parallel_map_keeps_the_order_in_a_pool_of_its_own() -> None:
    count = POOL_MIN_ITEMS + 5
    assert list(parallel_map(_square, range(count), count, "squares")) == [
        x * x for x in range(count)
    ]
