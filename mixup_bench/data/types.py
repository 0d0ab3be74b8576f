"""What the data stage hands on: uint8 splits and the dataset with its normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Per-channel mean and std of the official training images (pixel values in
# [0, 1]); the std is the per-pixel one, not the 0.2023/0.1994/0.2010 spread
# through older repositories. Source: computed over the official train sets.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
# data.normalization=mixup_authors: the constants of the Mixup authors' code
# (facebookresearch/mixup-cifar10, train.py: Normalize((0.4914, 0.4822, 0.4465),
# (0.2023, 0.1994, 0.2010))), also OpenMixup's CIFAR configs' img_norm_cfg. Their std is
# about 18% below the per-pixel one, so the network's inputs are about 18% larger.
MIXUP_AUTHORS_MEAN = (0.4914, 0.4822, 0.4465)
MIXUP_AUTHORS_STD = (0.2023, 0.1994, 0.2010)
# dataset: the dataset's own statistics (the CIFAR constants above, an image folder's
# training images); mixup_authors: the constants above (CIFAR-10 only).
NORMALIZATIONS = ("dataset", "mixup_authors")


@dataclass
class Split:
    """Images as uint8 (N, 3, 32, 32) and labels as int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class Dataset:
    train: Split
    test: Split
    num_classes: int
    checksums: str  # "verified", "not_verified", "mismatch_accepted" or "none" (own data)
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    noisy_labels: int = 0  # training labels that differ from the true ones (data.label_noise)
    val: Split | None = None  # held out of the training set by data.val_fraction
    # The whole test set's size when data.test_subset evaluates on part of it (0: all of it).
    test_subset_of: int = 0
