"""A user's own images (one folder per class), as uint8 tensors for the device loader.

The article's first advice is to try Mixup on small datasets such as medical
images; `data=imagefolder` reads root/train/<class>/* and root/test/<class>/*,
or, when there is no train/ and test/, root/<class>/* with a stratified test
split chosen by data.split_seed alone, so that sweeps over data.fraction or
data.subset_seed (which choose the training subset and the noisy labels) are all
tested on the same images. Images are resized to data.image_size
squares once, at load time; normalisation uses the training set's own mean
and std. Folder scanning and decoding are torchvision's ImageFolder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import DataError
from .subsets import corrupt_labels, stratified_subset
from .types import Dataset, Split


def _read_folder(root: Path, size: int) -> tuple[Split, list[str]]:
    from PIL import Image
    from torchvision.datasets import ImageFolder
    from torchvision.transforms.functional import pil_to_tensor

    try:
        folder = ImageFolder(str(root), loader=lambda path: Image.open(path).convert("RGB"))
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(f"data.root={root}: {error}") from None
    images = torch.empty(len(folder), 3, size, size, dtype=torch.uint8)
    labels = torch.empty(len(folder), dtype=torch.long)
    for index in range(len(folder)):
        path, label = folder.samples[index]
        try:
            image = folder.loader(path).resize((size, size), Image.Resampling.BILINEAR)
        except OSError as error:
            raise DataError(f"{path}: not a readable image ({error})") from None
        images[index] = pil_to_tensor(image)
        labels[index] = label
    return Split(images, labels), list(folder.classes)


def _stratified_split(split: Split, test_fraction: float, seed: int) -> tuple[Split, Split]:
    test_index = stratified_subset(split.labels, test_fraction, seed)
    is_test = torch.zeros(len(split), dtype=torch.bool)
    is_test[test_index] = True
    return (Split(split.images[~is_test], split.labels[~is_test]),
            Split(split.images[is_test], split.labels[is_test]))


def load_imagefolder(data: Any) -> Dataset:
    """Read data.root as an image-folder dataset; see the module docstring."""
    root = Path(str(data.root)).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"data.root={root}: not a folder; data=imagefolder needs one folder "
                        "per class (or train/ and test/ folders holding them)")
    size = int(data.image_size)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train, classes = _read_folder(root / "train", size)
        test, test_classes = _read_folder(root / "test", size)
        if test_classes != classes:
            raise DataError(f"{root}: train/ and test/ have different class folders")
    else:
        everything, classes = _read_folder(root, size)
        train, test = _stratified_split(everything, data.test_fraction,
                                        data.get("split_seed", 0))
    if data.num_classes is not None and data.num_classes != len(classes):
        raise DataError(f"data.num_classes={data.num_classes}: {root} has {len(classes)} "
                        "class folders")
    subset = stratified_subset(train.labels, data.fraction, data.subset_seed)
    labels, flipped = corrupt_labels(train.labels[subset], data.label_noise, len(classes),
                                     data.subset_seed, data.get("label_noise_mode", "flip"))
    if data.get("normalization", "dataset") != "dataset":
        raise DataError(f"data.normalization={data.get('normalization')}: an image folder is "
                        "normalised with its own training images' statistics (dataset)")
    train = Split(train.images[subset], labels)
    pixels = train.images.float().div(255)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist())
    return Dataset(train=train, test=test, num_classes=len(classes), checksums="none",
                   mean=mean, std=std, noisy_labels=flipped)
