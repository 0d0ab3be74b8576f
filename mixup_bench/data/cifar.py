"""CIFAR-10/100 from disk: where each comes from, its checksums, and a reader for its files.

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

from ..errors import DataError
from .subsets import corrupt_labels, stratified_subset
from .types import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    MIXUP_AUTHORS_MEAN,
    MIXUP_AUTHORS_STD,
    Dataset,
    Split,
)

log = logging.getLogger(__name__)

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

IMAGE_SHAPE = (3, 32, 32)
PIXELS_PER_IMAGE = 3 * 32 * 32


@dataclass(frozen=True)
class CifarSpec:
    """Where a CIFAR variant comes from and what its official files hash to."""

    name: str
    folder: str
    url: str
    archive_md5: str
    train_files: dict[str, str]  # file name -> official MD5 (as in torchvision.datasets)
    test_files: dict[str, str]
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR10 = CifarSpec(
    name="cifar10", folder="cifar-10-batches-py",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    archive_md5="c58f30108f718f92721af3b95e74349a",
    train_files={
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    },
    test_files={"test_batch": "40351d587109b95175f43aff81a1287e"},
    num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD)
CIFAR100 = CifarSpec(
    name="cifar100", folder="cifar-100-python",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
    train_files={"train": "16019d7e3df5f24257cddd939b257f8d"},
    test_files={"test": "f0ef6b0ae62326f3e7ffdfab6717acfc"},
    num_classes=100, mean=CIFAR100_MEAN, std=CIFAR100_STD)
CIFAR_SPECS = {spec.name: spec for spec in (CIFAR10, CIFAR100)}


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(root: Path, spec: CifarSpec = CIFAR10) -> None:
    """Fetch and unpack the official archive into root, verifying its MD5."""
    from torchvision.datasets.utils import download_and_extract_archive

    log.info("downloading %s from %s into %s", spec.name, spec.url, root)
    try:
        download_and_extract_archive(spec.url, str(root), md5=spec.archive_md5)
    except Exception as error:  # network errors come in many classes
        raise DataError(
            f"data.root={root}: {spec.name} is missing and the download from {spec.url} "
            f"failed ({type(error).__name__}: {error}); put {spec.folder}/ in {root} "
            "or set data.root to the folder that holds it"
        ) from None


def ensure_cifar(root: Path, download: bool, spec: CifarSpec = CIFAR10) -> Path:
    """Return the dataset folder under root, downloading it if allowed.

    Parallel sweep jobs that all need it wait on a file lock, so one of them
    downloads and unpacks it once and the others find it complete.
    """
    folder = root / spec.folder
    if folder.is_dir():
        return folder
    if not download:
        raise DataError(
            f"data.root={root}: no {spec.folder}/ there and data.download=false; "
            f"put the {spec.name} python files in {folder} or allow data.download=true"
        )
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{spec.name}.lock")):
        if not folder.is_dir():
            _download(root, spec)
    if not folder.is_dir():
        raise DataError(f"data.root={root}: the download did not produce {spec.folder}/")
    return folder


def verify_checksums(folder: Path, spec: CifarSpec = CIFAR10) -> list[str]:
    """Names of the files whose MD5 differs from the official one."""
    expected = {**spec.train_files, **spec.test_files}
    return [name for name, md5 in expected.items()
            if (folder / name).is_file() and _md5(folder / name) != md5]


# What a CIFAR python file may name, and nothing else: (module, name) -> the object. The
# official files (pickled by Python 2's cPickle, protocol 2) name only numpy's array
# reconstruction: numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype; numpy 2
# writes numpy._core; protocols 0-2 under Python 3 write bytes as _codecs.encode(str, latin1);
# protocol 5 writes arrays as numpy._core.numeric._frombuffer. Found by listing the globals
# of the official-format copy ../shared/data/make_cifar10.py writes and of pickle.dump at
# protocols 0-5 (tests/test_untrusted.py). Dicts, lists, str, bytes and ints need no global.
def _allowed_globals() -> dict[tuple[str, str], object]:
    import codecs

    import numpy as np

    reconstruct = np.ndarray.__reduce__(np.zeros(0, np.uint8))[0]  # multiarray._reconstruct
    frombuffer = np.zeros(1, np.uint8).__reduce_ex__(5)[0]  # numeric._frombuffer
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """pickle.Unpickler that builds only what CIFAR files hold; any other global or a
    persistent id is refused (DataError) before it is looked up, so nothing else runs."""

    def __init__(self, handle, path: Path) -> None:
        super().__init__(handle, encoding="latin1")
        self.path = path
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> object:
        found = self.allowed.get((module, name))
        if found is None:
            raise DataError(
                f"{self.path}: refused to unpickle {module}.{name} (a CIFAR batch file holds "
                "only arrays, lists, strings and numbers); mixup-bench never runs code from a "
                "data file, replace it with an official copy")
        return found

    def persistent_load(self, pid: object) -> object:
        raise DataError(f"{self.path}: refused a persistent id in the pickle (a CIFAR batch "
                        "file has none); replace it with an official copy")


def read_pickle(path: Path) -> object:
    """Unpickle a CIFAR python file through _CifarUnpickler (DataError if it is refused)."""
    with path.open("rb") as handle:
        return _CifarUnpickler(handle, path).load()


def read_batch(path: Path, num_classes: int) -> Split:
    """Read one pickled CIFAR batch file; refuse anything malformed or not plain data.

    batches.meta (CIFAR-10) and meta (CIFAR-100) hold only class names, which mixup-bench
    does not use: they are never opened, so a crafted one runs nothing here either.
    """
    if not path.is_file():
        raise DataError(f"data.root: {path} is missing; the CIFAR-10 folder is incomplete")
    try:
        entry = read_pickle(path)
        data = entry["data"]
        labels = entry.get("labels", entry.get("fine_labels"))
    except DataError:
        raise
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


def load_cifar(root: str | Path, spec: CifarSpec, *, download: bool, verify: bool,
               fraction: float, subset_seed: int, label_noise: float = 0.0,
               noise_seed: int = 0, label_noise_mode: str = "flip",
               normalization: str = "dataset") -> Dataset:
    """Read a CIFAR variant into uint8 CPU tensors, checked, with subset and noise applied;
    normalised with the variant's own statistics or the Mixup authors' (CIFAR-10 only)."""
    root = Path(root).expanduser().resolve()
    folder = ensure_cifar(root, download, spec)
    for name in [*spec.train_files, *spec.test_files]:
        if not (folder / name).is_file():
            raise DataError(f"data.root: {folder / name} is missing; the {spec.name} folder is "
                            "incomplete (delete it to download it again)")
    mismatched = verify_checksums(folder, spec)
    if verify and mismatched:
        raise DataError(
            f"{folder / mismatched[0]}: MD5 differs from the official {spec.name} file "
            f"({len(mismatched)} file(s) differ); if this is a deliberate non-official "
            "copy, pass data.verify=false"
        )
    checksums = "mismatch_accepted" if mismatched else "verified"
    train = _concatenate([read_batch(folder / name, spec.num_classes)
                          for name in spec.train_files])
    test = _concatenate([read_batch(folder / name, spec.num_classes)
                         for name in spec.test_files])
    subset = stratified_subset(train.labels, fraction, subset_seed)
    labels, flipped = corrupt_labels(train.labels[subset], label_noise, spec.num_classes,
                                     noise_seed, label_noise_mode)
    mean, std = spec.mean, spec.std
    if normalization == "mixup_authors":
        if spec is not CIFAR10:
            raise DataError(f"data.normalization=mixup_authors: the Mixup authors' constants "
                            f"are CIFAR-10's, not {spec.name}'s; use dataset")
        mean, std = MIXUP_AUTHORS_MEAN, MIXUP_AUTHORS_STD
    return Dataset(train=Split(train.images[subset], labels), test=test,
                   num_classes=spec.num_classes, checksums=checksums, mean=mean,
                   std=std, noisy_labels=flipped)
