"""Timing for the benchmarks: functions called in alternation, so that a slow spell of the machine
(these cores' speed varies within minutes) hits every one of them alike. No PyTorch."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable


def alternating_ms(calls: dict[Hashable, Callable[[], object]], rounds: int = 7, per_round: int = 200,
                   warmup: int = 20) -> dict[Hashable, float]:
    """Median milliseconds per call of each function: ``warmup`` calls each, then ``rounds`` rounds of
    ``per_round`` calls, the functions alternating so that a slow spell of the machine hits them all."""
    times: dict[Hashable, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(warmup):
            call()
    for _ in range(rounds):
        for name, call in calls.items():
            t = time.perf_counter()
            for _ in range(per_round):
                call()
            times[name].append(1000 * (time.perf_counter() - t) / per_round)
    return {name: statistics.median(v) for name, v in times.items()}
