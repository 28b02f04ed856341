"""The worker's cyclic-GC tuning: only the young generation's threshold moves."""

from __future__ import annotations

import gc

from tollway.node import worker


def test_tune_gc_raises_gen0_and_keeps_the_older_generations() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 7, 9)
        worker.tune_gc()
        assert gc.get_threshold() == (worker.GC_GEN0_THRESHOLD, 7, 9)
        assert worker.GC_GEN0_THRESHOLD > 700
    finally:
        gc.set_threshold(*before)
