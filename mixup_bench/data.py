"""CIFAR-10 on the training device: reading, checking, subsets, and batches.

The whole dataset is small (150 MB as uint8), so it is read once into uint8
tensors that live on the training device; each epoch's batches are slices of
a seeded permutation, cropped, flipped and normalised there as batched
tensor operations (no per-image Python, no DataLoader workers).

We read the pickled batches ourselves instead of using
torchvision.datasets.CIFAR10 because that class refuses any copy whose MD5
differs from the official files (such as a JPEG-derived copy) and raises
tracebacks we cannot turn into one-line errors; its download and checksum
helpers are used as they are.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DataError

log = logging.getLogger(__name__)

# Per-channel mean and std of the official CIFAR-10 training images (pixel
# values in [0, 1]); the std is the per-pixel one, not the 0.2023/0.1994/0.2010
# spread through older repositories. Source: computed over the 50,000 images.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
# The official per-file MD5 sums (the same as torchvision.datasets.CIFAR10's).
CIFAR10_TRAIN_FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
}
CIFAR10_TEST_FILES = {"test_batch": "40351d587109b95175f43aff81a1287e"}

IMAGE_SHAPE = (3, 32, 32)
PIXELS_PER_IMAGE = 3 * 32 * 32


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
    checksums: str  # "verified", "not_verified" or "mismatch_accepted"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(root: Path) -> None:
    """Fetch and unpack the official archive into root, verifying its MD5."""
    from torchvision.datasets.utils import download_and_extract_archive

    log.info("downloading CIFAR-10 from %s into %s", CIFAR10_URL, root)
    try:
        download_and_extract_archive(CIFAR10_URL, str(root), md5=CIFAR10_ARCHIVE_MD5)
    except Exception as error:  # network errors come in many classes
        raise DataError(
            f"data.root={root}: CIFAR-10 is missing and the download from {CIFAR10_URL} "
            f"failed ({type(error).__name__}: {error}); put cifar-10-batches-py/ in {root} "
            "or set data.root to the folder that holds it"
        ) from None


def ensure_cifar10(root: Path, download: bool) -> Path:
    """Return the cifar-10-batches-py folder under root, downloading if allowed."""
    folder = root / CIFAR10_FOLDER
    if folder.is_dir():
        return folder
    if not download:
        raise DataError(
            f"data.root={root}: no {CIFAR10_FOLDER}/ there and data.download=false; "
            f"put the CIFAR-10 python batches in {folder} or allow data.download=true"
        )
    # One process downloads; parallel sweep jobs wait for it (a file lock).
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".cifar10.lock")):
        if not folder.is_dir():
            _download(root)
    if not folder.is_dir():
        raise DataError(f"data.root={root}: the download did not produce {CIFAR10_FOLDER}/")
    return folder


def verify_checksums(folder: Path) -> list[str]:
    """Names of the batch files whose MD5 differs from the official one."""
    expected = {**CIFAR10_TRAIN_FILES, **CIFAR10_TEST_FILES}
    return [name for name, md5 in expected.items()
            if (folder / name).is_file() and _md5(folder / name) != md5]


def read_batch(path: Path, num_classes: int) -> Split:
    """Read one pickled CIFAR batch file; refuse anything malformed."""
    if not path.is_file():
        raise DataError(f"data.root: {path} is missing; the CIFAR-10 folder is incomplete")
    try:
        with path.open("rb") as handle:
            entry = pickle.load(handle, encoding="latin1")
        data = entry["data"]
        labels = entry.get("labels", entry.get("fine_labels"))
    except Exception as error:  # truncated pickles raise EOFError, UnpicklingError, ...
        raise DataError(
            f"{path}: unreadable ({type(error).__name__}); the file is truncated or corrupt, "
            "delete the folder to download it again"
        ) from None
    import numpy as np

    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS_PER_IMAGE:
        raise DataError(f"{path}: data has shape {data.shape} and dtype {data.dtype}; "
                        f"expected (N, {PIXELS_PER_IMAGE}) uint8")
    labels_array = np.asarray(labels, dtype=np.int64)
    if labels_array.shape != (data.shape[0],):
        raise DataError(f"{path}: {labels_array.shape[0]} labels for {data.shape[0]} images")
    if labels_array.size and (labels_array.min() < 0 or labels_array.max() >= num_classes):
        raise DataError(f"{path}: label values outside 0..{num_classes - 1}")
    images = torch.from_numpy(data.reshape(-1, *IMAGE_SHAPE).copy())
    return Split(images, torch.from_numpy(labels_array))


def _concatenate(splits: list[Split]) -> Split:
    return Split(torch.cat([s.images for s in splits]), torch.cat([s.labels for s in splits]))


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


def load_cifar10(root: str | Path, *, download: bool, verify: bool, fraction: float,
                 subset_seed: int, num_classes: int = 10) -> Dataset:
    """Read CIFAR-10 into uint8 CPU tensors, checked, with the training subset applied."""
    root = Path(root).expanduser().resolve()
    folder = ensure_cifar10(root, download)
    for name in [*CIFAR10_TRAIN_FILES, *CIFAR10_TEST_FILES]:
        if not (folder / name).is_file():
            raise DataError(f"data.root: {folder / name} is missing; the CIFAR-10 folder is "
                            "incomplete (delete it to download it again)")
    checksums = "not_verified"
    if verify:
        mismatched = verify_checksums(folder)
        if mismatched:
            raise DataError(
                f"{folder / mismatched[0]}: MD5 differs from the official CIFAR-10 file "
                f"({len(mismatched)} file(s) differ); if this is a deliberate non-official "
                "copy, pass data.verify=false"
            )
        checksums = "verified"
    elif not verify_checksums(folder):
        checksums = "verified"
    else:
        checksums = "mismatch_accepted"
    train = _concatenate([read_batch(folder / name, num_classes) for name in CIFAR10_TRAIN_FILES])
    test = read_batch(folder / "test_batch", num_classes)
    subset = stratified_subset(train.labels, fraction, subset_seed)
    train = Split(train.images[subset], train.labels[subset])
    return Dataset(train=train, test=test, num_classes=num_classes, checksums=checksums)


class DeviceLoader:
    """Shuffled, augmented, normalised batches made on the device from uint8 images.

    Augmentation: random crop with 4-pixel zero padding and a random horizontal
    flip, as torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip,
    done for the whole batch with one gather. Randomness comes only from the
    generator passed in, so an epoch repeats exactly given its state.
    """

    def __init__(self, split: Split, batch_size: int, *, train: bool, mean: tuple[float, ...],
                 std: tuple[float, ...], generator: torch.Generator | None = None,
                 channels_last: bool = False, padding: int = 4) -> None:
        self.split = split
        self.batch_size = min(batch_size, len(split)) if train else batch_size
        self.train = train
        self.generator = generator
        self.channels_last = channels_last
        self.padding = padding
        device = split.images.device
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        if self.train:  # drop the last partial batch: constant shapes, as in the references
            return len(self.split) // self.batch_size
        return -(-len(self.split) // self.batch_size)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> normalised float32, channels_last if asked."""
        images = (images.float() - self.mean) / self.std
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Random crop (zero padding) and horizontal flip of a uint8 batch."""
        count, _, height, width = images.shape
        pad = self.padding
        device = images.device
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        # Offsets in [0, 2*pad]: the top-left corner of each crop in the padded image.
        offsets = torch.randint(0, 2 * pad + 1, (2, count), generator=self.generator,
                                device=self.generator.device).to(device)
        rows = (torch.arange(height, device=device).view(1, height) + offsets[0].view(count, 1))
        cols = (torch.arange(width, device=device).view(1, width) + offsets[1].view(count, 1))
        flip = torch.rand(count, generator=self.generator,
                          device=self.generator.device).to(device) < 0.5
        cols = torch.where(flip.view(count, 1), cols.flip(1), cols)
        batch_index = torch.arange(count, device=device).view(count, 1, 1, 1)
        channel_index = torch.arange(3, device=device).view(1, 3, 1, 1)
        return padded[batch_index, channel_index, rows.view(count, 1, height, 1),
                      cols.view(count, 1, 1, width)]

    def __iter__(self):
        images, labels = self.split.images, self.split.labels
        if not self.train:
            for start in range(0, len(self.split), self.batch_size):
                end = start + self.batch_size
                yield self.normalise(images[start:end]), labels[start:end]
            return
        order = torch.randperm(len(self.split), generator=self.generator,
                               device=self.generator.device).to(images.device)
        for step in range(len(self)):
            index = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield self.normalise(self.augment(images[index])), labels[index]
