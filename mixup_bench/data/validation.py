"""The validation split: images held out of the training set to choose settings on.

Choosing alpha (or a method) by test accuracy makes the chosen setting's test
accuracy optimistic. `data.val_fraction` holds out a class-stratified share of
the training set first, chosen by its own seed (`data.val_seed`), so every run
of a sweep sees the same validation images whatever its `seed`,
`data.fraction` or `data.subset_seed`; the training subset is then drawn from
the rest. The test set is never touched.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import DataError
from .subsets import stratified_subset
from .types import Split


def validation_options(data: Any) -> dict[str, Any]:
    """val_fraction and val_seed of a `data` config section; a section without them (built
    by hand, or from before the split existed) has no validation split."""
    return {"val_fraction": data.get("val_fraction", 0.0), "val_seed": data.get("val_seed", 0)}


def hold_out(labels: torch.Tensor, val_fraction: float,
             val_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation indices, the rest's indices), both sorted; no validation for fraction 0.

    round(val_fraction * n_c) images of each class c (at least one) are held out;
    a class left with no training image is refused with one line.
    """
    if val_fraction <= 0:
        return torch.zeros(0, dtype=torch.long), torch.arange(labels.shape[0])
    held = stratified_subset(labels, val_fraction, val_seed)
    is_held = torch.zeros(labels.shape[0], dtype=torch.bool)
    is_held[held] = True
    rest = torch.nonzero(~is_held).flatten()
    emptied = sorted(set(torch.unique(labels).tolist()) - set(torch.unique(labels[rest]).tolist()))
    if emptied:
        raise DataError(f"data.val_fraction={val_fraction}: holds out every training image of "
                        f"class {emptied[0]}; lower it")
    return held, rest


def training_and_validation(labels: torch.Tensor, fraction: float, subset_seed: int,
                            val_fraction: float,
                            val_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) into `labels`, sorted and disjoint.

    The validation split is held out first (hold_out); `fraction` then takes a
    class-stratified share of the rest, chosen by `subset_seed`.
    """
    held, rest = hold_out(labels, val_fraction, val_seed)
    chosen = stratified_subset(labels[rest], fraction, subset_seed)
    return rest[chosen], held


def validation_split(train: Split, held: torch.Tensor) -> Split | None:
    """The held-out images with their clean labels (label noise is for training only);
    None when nothing is held out."""
    if held.numel() == 0:
        return None
    return Split(train.images[held], train.labels[held])
