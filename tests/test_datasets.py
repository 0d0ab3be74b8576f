"""Label noise, CIFAR-100 and image folders: the data the article's variants need."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from mixup_bench.data import CIFAR10, CIFAR100, load_cifar, load_dataset
from mixup_bench.data.subsets import corrupt_labels
from mixup_bench.errors import DataError

from .conftest import SHARED_DATA, TINY, run_cli


def test_label_noise_flips_the_exact_fraction_to_other_classes_uniformly():
    labels = torch.arange(20000) % 10
    noisy, count = corrupt_labels(labels, 0.2, 10, seed=1)
    changed = noisy != labels
    assert count == 4000 and int(changed.sum()) == 4000  # every chosen label really changes
    offsets = ((noisy[changed] - labels[changed]) % 10).bincount(minlength=10)
    assert offsets[0] == 0
    expected = 4000 / 9
    assert all(abs(int(c) - expected) < 5 * expected ** 0.5 for c in offsets[1:])
    assert torch.equal(noisy, corrupt_labels(labels, 0.2, 10, seed=1)[0])
    assert not torch.equal(noisy, corrupt_labels(labels, 0.2, 10, seed=2)[0])
    assert corrupt_labels(labels, 0.0, 10, seed=1) == (labels, 0)


def test_label_noise_touches_the_training_split_only(cifar_root):
    clean = load_cifar(cifar_root, CIFAR10, download=False, verify=False, fraction=1.0,
                       subset_seed=0)
    noisy = load_cifar(cifar_root, CIFAR10, download=False, verify=False, fraction=1.0,
                       subset_seed=0, label_noise=0.5)
    assert noisy.noisy_labels == 100
    assert int((noisy.train.labels != clean.train.labels).sum()) == 100
    assert torch.equal(noisy.test.labels, clean.test.labels)
    assert torch.equal(noisy.train.images, clean.train.images)


def write_cifar100(root, count=400, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
        entry = {"data": data, "fine_labels": (np.arange(count) % 100).tolist(),
                 "coarse_labels": (np.arange(count) % 20).tolist()}
        with (folder / name).open("wb") as handle:
            pickle.dump(entry, handle)
    return root


def test_cifar100_reads_fine_labels_and_its_own_statistics(tmp_path):
    root = write_cifar100(tmp_path)
    data = OmegaConf.create({"name": "cifar100", "root": str(root), "download": False,
                             "verify": False, "fraction": 0.5, "subset_seed": 0,
                             "num_classes": 100, "label_noise": 0.0})
    dataset = load_dataset(data)
    assert dataset.num_classes == 100 and len(dataset.test) == 400 and len(dataset.train) == 200
    assert set(dataset.train.labels.tolist()) <= set(range(100))
    assert dataset.mean == CIFAR100.mean and dataset.checksums == "mismatch_accepted"
    with pytest.raises(DataError, match="MD5 differs from the official cifar100 file"):
        load_dataset(OmegaConf.merge(data, {"verify": True}))


def write_folder(root, classes=("cat", "dog", "eel"), per_class=10, size=(40, 24)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for number in range(per_class):
            pixels = np.full((size[1], size[0], 3), 60 * index, dtype=np.uint8)
            pixels += rng.integers(0, 20, size=pixels.shape, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{number}.png")
    return root


def folder_config(root, **changes):
    base = {"name": "imagefolder", "root": str(root), "download": False, "verify": False,
            "fraction": 1.0, "subset_seed": 0, "num_classes": None, "label_noise": 0.0,
            "image_size": 16, "test_fraction": 0.2}
    return OmegaConf.create({**base, **changes})


def test_imagefolder_without_split_makes_a_stratified_test_set(tmp_path):
    dataset = load_dataset(folder_config(write_folder(tmp_path / "images")))
    assert dataset.num_classes == 3
    assert dataset.train.images.shape == (24, 3, 16, 16) and dataset.train.images.dtype == \
        torch.uint8
    assert torch.bincount(dataset.test.labels).tolist() == [2, 2, 2]
    assert torch.bincount(dataset.train.labels).tolist() == [8, 8, 8]
    # The per-class colours survive the resize; the statistics are the set's own.
    assert dataset.train.images[dataset.train.labels == 2].float().mean() > 110
    assert 0.2 < dataset.mean[0] < 0.35 and dataset.checksums == "none"


def test_imagefolder_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(folder_config(tmp_path / "missing"))
    root = write_folder(tmp_path / "images")
    with pytest.raises(DataError, match="data.num_classes=5: .* has 3 class folders"):
        load_dataset(folder_config(root, num_classes=5))
    (root / "cat" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="0.png: not a readable image"):
        load_dataset(folder_config(root))


def test_imagefolder_needs_a_root_on_the_command_line(tmp_path):
    result = run_cli("train", "data=imagefolder", f"hydra.run.dir={tmp_path / 'r'}", *TINY)
    assert result.returncode == 2
    assert "mixup-bench: error: data.root: missing; data=imagefolder needs data.root=" in \
        result.stderr


def test_train_on_the_imagefolder_tree_of_the_shared_cifar_copy(tmp_path):
    script = SHARED_DATA / "make_cifar10.py"
    if not script.is_file():
        pytest.skip("../shared/data is not here")
    subprocess.run([sys.executable, str(script), str(tmp_path / "out"), "--train-per-class", "10",
                    "--test-per-class", "5", "--imagefolder"], check=True, capture_output=True)
    run_dir = tmp_path / "run"
    result = run_cli("train", "data=imagefolder", f"data.root={tmp_path / 'out' / 'imagefolder'}",
                     f"hydra.run.dir={run_dir}", *TINY, "data.label_noise=0.2",
                     "aug.label_smoothing=0.1", "trainer.samples=false")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train_images"] == 100 and summary["test_images"] == 50
    assert summary["noisy_train_labels"] == 20 and summary["status"] == "finished"
    assert summary["environment"]["data_checksums"] == "none"
