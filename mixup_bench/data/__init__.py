"""The data stage of a run: images on disk -> uint8 tensors on the device -> batches.

The whole dataset is small (150 MB as uint8), so it is read once into uint8
tensors that live on the training device; each epoch's batches are slices of
a seeded permutation, cropped, flipped and normalised there as batched
tensor operations (no per-image Python, no DataLoader workers).

Public face: `load_dataset(cfg.data)`, `DeviceLoader`, `Split`, `Dataset`,
the CIFAR specs and normalisation constants.
"""

from __future__ import annotations

from typing import Any

from .cifar import CIFAR10, CIFAR100, CIFAR_SPECS, CifarSpec, load_cifar
from .loader import DeviceLoader
from .types import CIFAR10_MEAN, CIFAR10_STD, MIXUP_AUTHORS_STD, Dataset, Split


def load_dataset(data: Any) -> Dataset:
    """The dataset a `data` config section names (cifar10, cifar100, imagefolder)."""
    if data.name == "imagefolder":
        from .imagefolder import load_imagefolder

        return load_imagefolder(data)
    return load_cifar(data.root, CIFAR_SPECS[data.name], download=data.download,
                      verify=data.verify, fraction=data.fraction, subset_seed=data.subset_seed,
                      label_noise=data.label_noise, noise_seed=data.subset_seed,
                      label_noise_mode=data.get("label_noise_mode", "flip"),
                      normalization=data.get("normalization", "dataset"))


__all__ = ["CIFAR10", "CIFAR100", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR_SPECS", "CifarSpec",
           "Dataset", "DeviceLoader", "MIXUP_AUTHORS_STD", "Split", "load_cifar", "load_dataset"]
