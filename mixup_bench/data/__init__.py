"""The data stage of a run: images on disk -> uint8 tensors on the device -> batches.

The whole dataset is small (150 MB as uint8), so it is read once into uint8
tensors that live on the training device; each epoch's batches are slices of
a seeded permutation, cropped, flipped and normalised there as batched
tensor operations (no per-image Python, no DataLoader workers).

Public face: `load_dataset(cfg.data)`, `DeviceLoader`, `Split`, `Dataset`,
the CIFAR specs and normalisation constants.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from .cifar import CIFAR10, CIFAR100, CIFAR_SPECS, CifarSpec, load_cifar
from .loader import DeviceLoader
from .subsets import stratified_subset
from .types import CIFAR10_MEAN, CIFAR10_STD, MIXUP_AUTHORS_STD, Dataset, Split
from .validation import validation_options


def load_dataset(data: Any) -> Dataset:
    """The dataset a `data` config section names (cifar10, cifar100, imagefolder)."""
    if data.name == "imagefolder":
        from .imagefolder import load_imagefolder

        dataset = load_imagefolder(data)
    else:
        dataset = load_cifar(data.root, CIFAR_SPECS[data.name], download=data.download,
                             verify=data.verify, fraction=data.fraction,
                             subset_seed=data.subset_seed, label_noise=data.label_noise,
                             noise_seed=data.subset_seed,
                             label_noise_mode=data.get("label_noise_mode", "flip"),
                             normalization=data.get("normalization", "dataset"),
                             **validation_options(data))
    return with_test_subset(dataset, data.get("test_subset"), data.subset_seed)


def with_test_subset(dataset: Dataset, count: int | None, seed: int) -> Dataset:
    """Evaluate on a class-stratified part of about `count` test images (None: all of them).

    A quick check (the smoke preset) trades the whole test set for time; the run's
    summary.json then says so, and its accuracy is never set against a published claim.
    """
    if count is None:
        return dataset
    total = len(dataset.test)
    if count >= total:
        raise ConfigError(f"data.test_subset={count}: the test set has only {total} images; "
                          "drop the key to evaluate on all of them")
    chosen = stratified_subset(dataset.test.labels, count / total, seed)
    test = Split(dataset.test.images[chosen], dataset.test.labels[chosen])
    return replace(dataset, test=test, test_subset_of=total)


__all__ = ["CIFAR10", "CIFAR100", "CIFAR10_MEAN", "CIFAR10_STD", "CIFAR_SPECS", "CifarSpec",
           "Dataset", "DeviceLoader", "MIXUP_AUTHORS_STD", "Split", "load_cifar", "load_dataset",
           "with_test_subset"]
