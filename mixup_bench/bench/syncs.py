"""Host synchronisations per training step, counted under torch.cuda.set_sync_debug_mode.

A synchronisation makes the host wait for the GPU, so the next step's launches
stop overlapping with this step's work. The trainer aims at none per step
(metrics stay on the device, mixing draws are copied once per epoch, fp16
uses fused SGD); the bench counts them for each setting it trains on CUDA, and
bench.md reports the fast settings' count against that target of 0.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

SYNC_STEPS = 5  # training steps counted under torch.cuda.set_sync_debug_mode("warn")
EPOCH_END, OUTSIDE = "epoch end", "outside the phases"


@contextmanager
def _sync_debug_mode():
    import torch

    torch.cuda.set_sync_debug_mode("warn")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def count_syncs(steps: Callable[..., Any], count: int,
                debug_mode: Callable[[], Any] = _sync_debug_mode) -> dict[str, Any]:
    """Host synchronisations in `count` training steps, by the step's phase.

    Under torch.cuda.set_sync_debug_mode("warn") every synchronising CUDA call warns;
    each warning is counted in the phase (train_one_epoch's sections: batch, mix,
    forward, backward, optimizer, metrics, and "epoch end": the loss and accuracy read
    back once an epoch). Only "epoch end" is left out of the count per step; a sync
    outside every section (e.g. between two phases) counts as one of the steps'.
    """
    phases: Counter = Counter()
    examples: dict[str, str] = {}
    current = [OUTSIDE]

    @contextmanager
    def section(name: str):
        previous, current[0] = current[0], name
        try:
            yield
        finally:
            current[0] = previous

    def record(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if "synchroniz" in text:
            phases[current[0]] += 1
            examples.setdefault(current[0], text.splitlines()[0][:200])

    with warnings.catch_warnings():  # restores showwarning and the filters on exit
        warnings.simplefilter("always")
        warnings.showwarning = record
        with debug_mode():
            steps(count, section=section)
    per_step = sum(n for phase, n in phases.items() if phase != EPOCH_END)
    return {"steps": count, "syncs_per_step": per_step / count,
            "syncs_by_phase": dict(phases), "syncs_at_epoch_end": phases[EPOCH_END],
            "examples": examples}
