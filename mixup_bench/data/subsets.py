"""Which training images a run sees: class-stratified subsets and label noise.

Both draw from their own seeded generators, so every run of a sweep sees the
same subset and the same corrupted labels whatever its training seed.
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


LABEL_NOISE_MODES = ("flip", "random")


def corrupt_labels(labels: torch.Tensor, fraction: float, num_classes: int, seed: int,
                   mode: str = "flip") -> tuple[torch.Tensor, int]:
    """Corrupt round(fraction * N) randomly chosen labels; returns the labels and how many
    now differ from the true ones.

    mode "flip": each chosen label becomes another class, uniformly (exactly that many
    labels are wrong). mode "random": each chosen label is replaced by a class drawn
    uniformly from all K, which may be the old one (about fraction * (K - 1) / K of the
    labels end up wrong): the Mixup paper's corrupted-label experiment, which "replaces
    labels with random ones". Seeded by its own seed, only ever applied to the training split.
    """
    if mode not in LABEL_NOISE_MODES:
        raise ValueError(f"label noise mode {mode!r}: expected one of {LABEL_NOISE_MODES}")
    if fraction <= 0:
        return labels, 0
    generator = torch.Generator().manual_seed(seed)
    count = round(fraction * labels.numel())
    chosen = torch.randperm(labels.numel(), generator=generator)[:count]
    noisy = labels.clone()
    if mode == "flip":
        # An offset in 1..K-1 always lands on another class, each equally likely.
        offsets = torch.randint(1, num_classes, (count,), generator=generator)
        noisy[chosen] = (labels[chosen] + offsets) % num_classes
    else:
        noisy[chosen] = torch.randint(0, num_classes, (count,), generator=generator)
    return noisy, int((noisy != labels).sum())
