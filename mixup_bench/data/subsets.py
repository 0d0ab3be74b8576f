"""Which training images a run sees: class-stratified subsets and label noise.

Both draw from their own seeded generators, so every run of a sweep sees the
same subset and the same flipped labels whatever its training seed.
"""

from __future__ import annotations

import torch


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of a class-stratified subset: round(fraction * n_c) per class.

    Chosen by its own seed so that every run of a sweep sees the same subset.
    Each class keeps at least one image.
    """
    if fraction >= 1.0:
        return torch.arange(labels.shape[0])
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        keep = max(1, round(fraction * members.numel()))
        order = torch.randperm(members.numel(), generator=generator)
        chosen.append(members[order[:keep]])
    return torch.sort(torch.cat(chosen)).values


def flip_labels(labels: torch.Tensor, fraction: float, num_classes: int,
                seed: int) -> tuple[torch.Tensor, int]:
    """Give round(fraction * N) randomly chosen labels a different class, uniformly.

    The Mixup paper's corrupted-label experiment; seeded by its own seed, and
    only ever applied to the training split.
    """
    if fraction <= 0:
        return labels, 0
    generator = torch.Generator().manual_seed(seed)
    count = round(fraction * labels.numel())
    chosen = torch.randperm(labels.numel(), generator=generator)[:count]
    # An offset in 1..K-1 always lands on another class, each equally likely.
    offsets = torch.randint(1, num_classes, (count,), generator=generator)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + offsets) % num_classes
    return noisy, count
