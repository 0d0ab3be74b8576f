"""The mixing step alone on the CPU: draws plus mix, in ms per step of batch 128.

The bench times whole training steps, in which mixing is a fraction of a percent on a
CPU and lost in step-to-step noise; this times only what the mixer does, over whole
epochs (so a mixer that draws an epoch at a time pays for it in the epoch it serves).
Compare two commits by running it from each checkout in turn:

    PYTHONPATH=<checkout> python scripts/mixing_step_time.py <label>
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from mixup_bench.mixing import build_mixer

BATCH, STEPS_PER_EPOCH = 128, 78  # 10,000 images a batch of 128 at a time
CASES = [("none", None, {}), ("mixup", 0.2, {}), ("cutmix", 1.0, {}),
         ("mixup", 0.2, {"lam_per": "sample"}), ("cutmix", 1.0, {"lam_per": "sample"}),
         ("mixup_cutmix", 1.0, {"lam_per": "sample"})]


class EpochOfBatches:
    """What a mixer needs of a loader: its length (the steps in an epoch)."""

    generator = None

    def __len__(self) -> int:
        return STEPS_PER_EPOCH


def milliseconds_per_step(name: str, alpha: float | None, options: dict, epochs: int = 21,
                          warm_up: int = 1) -> float:
    """The median over epochs (the first left out) of an epoch's mixing time per step."""
    mixer = build_mixer(name, 10, alpha, **options)
    mixer.bind(EpochOfBatches())
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(10, (BATCH,))
    times = []
    for epoch in range(1, epochs + 1):
        mixer.set_epoch(epoch, epochs)
        start = time.perf_counter()
        for _ in range(STEPS_PER_EPOCH):
            mixer(images, labels, generator)
        if epoch > warm_up:
            times.append((time.perf_counter() - start) / STEPS_PER_EPOCH)
    return statistics.median(times) * 1e3


if __name__ == "__main__":
    torch.set_num_threads(2)
    label = sys.argv[1] if len(sys.argv) > 1 else "this checkout"
    for name, alpha, options in CASES:
        print(f"{label} {name} {options or ''}: "
              f"{milliseconds_per_step(name, alpha, options):.3f} ms/step")
