"""The mixing step alone on the CPU: draws plus mix, in ms per step of batch 128.

The bench times whole training steps, in which mixing is a fraction of a percent on a
CPU and lost in step-to-step noise; this times only what the mixer does, over whole
epochs (so a mixer that draws an epoch at a time pays for it in the epoch it serves).
Every case runs one epoch per round, the cases interleaved within a round so that a
change in the machine's load touches them all alike; the figure is the median over the
rounds (the first, a warm-up, left out). Every pixel-space method is timed, per batch and
per example (aug.lam_per=sample); Manifold Mixup mixes inside the network's forward pass,
which this does not run, so it is left out. Compare two commits by running it from each
checkout in turn:

    PYTHONPATH=<checkout> python scripts/mixing_step_time.py <label> [--rounds N] [--steps S]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mixup_bench.mixing import build_mixer

BATCH, STEPS_PER_EPOCH = 128, 78  # 10,000 images a batch of 128 at a time
# (aug, alpha, options): each method with OpenMixup's CIFAR alpha (mixup: the article's).
METHODS = [("mixup", 0.2), ("cutmix", 1.0), ("mixup_cutmix", 1.0), ("fmix", 0.2),
           ("resizemix", 1.0), ("saliencymix", 0.2), ("gridmix", 0.2), ("smoothmix", 0.5)]
CASES = [("none", None, {})] + [
    (name, alpha, options) for name, alpha in METHODS
    for options in ({}, {"lam_per": "sample"})]


class EpochOfBatches:
    """What a mixer needs of a loader: its length (the steps in an epoch)."""

    generator = None

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def __len__(self) -> int:
        return self.steps


def epoch_milliseconds_per_step(mixer, epoch: int, epochs: int, steps: int,
                                images: torch.Tensor, labels: torch.Tensor,
                                generator: torch.Generator) -> float:
    mixer.set_epoch(epoch, epochs)
    start = time.perf_counter()
    for _ in range(steps):
        mixer(images, labels, generator)
    return (time.perf_counter() - start) / steps * 1e3


def milliseconds_per_step(cases=CASES, rounds: int = 11, warm_up: int = 1,
                          steps: int = STEPS_PER_EPOCH) -> list[float]:
    """Per case, the median over rounds (the first `warm_up` left out) of an epoch's mixing
    time per step (`steps` steps an epoch), the cases interleaved within each round."""
    if rounds <= warm_up:
        raise ValueError(f"rounds={rounds}: expected more than the {warm_up} warm-up round(s)")
    images = torch.randn(BATCH, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(10, (BATCH,))
    mixers, generators = [], []
    for name, alpha, options in cases:
        mixer = build_mixer(name, 10, alpha, **options)
        mixer.bind(EpochOfBatches(steps))
        mixers.append(mixer)
        generators.append(torch.Generator().manual_seed(0))
    times: list[list[float]] = [[] for _ in cases]
    for epoch in range(1, rounds + 1):
        for index, mixer in enumerate(mixers):
            spent = epoch_milliseconds_per_step(mixer, epoch, rounds, steps, images, labels,
                                                generators[index])
            if epoch > warm_up:
                times[index].append(spent)
    return [statistics.median(case_times) for case_times in times]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label", nargs="?", default="this checkout")
    parser.add_argument("--rounds", type=int, default=11, help="epochs per case (the first "
                        "is a warm-up)")
    parser.add_argument("--steps", type=int, default=STEPS_PER_EPOCH,
                        help="steps per epoch (default 78: 10,000 images)")
    arguments = parser.parse_args()
    torch.set_num_threads(2)
    for (name, _, options), milliseconds in zip(CASES, milliseconds_per_step(
            rounds=arguments.rounds, steps=arguments.steps), strict=True):
        print(f"{arguments.label} {name} {options or ''}: {milliseconds:.3f} ms/step")
