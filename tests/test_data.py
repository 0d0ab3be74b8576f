"""data: reading and checking CIFAR batches, stratified subsets, the device loader."""

from __future__ import annotations

import pickle

import pytest
import torch

from mixup_bench.data import CIFAR10, CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, Split, load_cifar
from mixup_bench.data.cifar import read_batch
from mixup_bench.data.subsets import stratified_subset
from mixup_bench.errors import DataError


def load(root, **overrides):
    options = dict(download=False, verify=False, fraction=1.0, subset_seed=0)
    options.update(overrides)
    return load_cifar(root, CIFAR10, **options)


def test_reads_standard_layout_into_uint8(cifar_root):
    dataset = load(cifar_root)
    assert dataset.train.images.shape == (200, 3, 32, 32)
    assert dataset.train.images.dtype == torch.uint8
    assert dataset.test.images.shape == (100, 3, 32, 32)
    assert dataset.train.labels.dtype == torch.int64
    assert set(dataset.train.labels.tolist()) == set(range(10))
    assert dataset.checksums == "mismatch_accepted"
    # Row-major CHW: the first 1024 bytes of a row are the red plane.
    with (cifar_root / "cifar-10-batches-py" / "data_batch_1").open("rb") as handle:
        raw = pickle.load(handle)
    assert torch.equal(dataset.train.images[0, 0].flatten(),
                       torch.from_numpy(raw["data"][0, :1024].copy()))


def test_checksum_mismatch_names_the_file_and_the_way_out(cifar_root):
    with pytest.raises(DataError) as error:
        load(cifar_root, verify=True)
    message = str(error.value)
    assert "data_batch_1: MD5 differs" in message and "data.verify=false" in message


def test_missing_dataset_without_download(tmp_path):
    with pytest.raises(DataError, match="data.download=false"):
        load(tmp_path / "nowhere")


def test_download_failure_says_where_to_put_the_files(tmp_path, monkeypatch):
    import torchvision.datasets.utils as utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(utils, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as error:
        load(tmp_path / "empty", download=True)
    assert "put cifar-10-batches-py/ in" in str(error.value)
    assert "network is unreachable" in str(error.value)


def test_truncated_batch_file_is_refused(cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_3"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(DataError, match="data_batch_3: unreadable"):
        load(cifar_root)
    assert path.read_bytes() == content[: len(content) // 2]  # nothing rewritten


def test_wrong_shapes_and_labels_are_refused(tmp_path):
    bad_shape = tmp_path / "bad_shape"
    with bad_shape.open("wb") as handle:
        pickle.dump({"data": torch.zeros(4, 100, dtype=torch.uint8).numpy(),
                     "labels": [0, 1, 2, 3]}, handle)
    with pytest.raises(DataError, match="expected"):
        read_batch(bad_shape, 10)
    bad_labels = tmp_path / "bad_labels"
    with bad_labels.open("wb") as handle:
        pickle.dump({"data": torch.zeros(2, 3072, dtype=torch.uint8).numpy(),
                     "labels": [0, 10]}, handle)
    with pytest.raises(DataError, match="label values outside 0..9"):
        read_batch(bad_labels, 10)


def test_missing_batch_file_is_refused(cifar_root):
    (cifar_root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch is missing"):
        load(cifar_root)


def test_stratified_subset_keeps_class_balance_and_depends_only_on_its_seed():
    labels = torch.arange(1000) % 10
    subset = stratified_subset(labels, 0.1, seed=3)
    assert subset.numel() == 100
    assert torch.bincount(labels[subset], minlength=10).tolist() == [10] * 10
    assert torch.equal(subset, stratified_subset(labels, 0.1, seed=3))
    assert not torch.equal(subset, stratified_subset(labels, 0.1, seed=4))
    torch.manual_seed(123)  # the global seed (the run's `seed`) must not matter
    assert torch.equal(subset, stratified_subset(labels, 0.1, seed=3))
    assert stratified_subset(labels, 1.0, seed=3).numel() == 1000


def test_fraction_applies_to_training_set_only(cifar_root):
    dataset = load(cifar_root, fraction=0.5)
    assert len(dataset.train) == 100 and len(dataset.test) == 100
    assert torch.bincount(dataset.train.labels).tolist() == [10] * 10


def make_loader(count=16, batch_size=8, seed=0, train=True, labels=None):
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(99))
    labels = torch.arange(count) % 10 if labels is None else labels
    generator = torch.Generator().manual_seed(seed)
    return DeviceLoader(Split(images, labels), batch_size, train=train, mean=CIFAR10_MEAN,
                        std=CIFAR10_STD, generator=generator)


def test_crop_and_flip_are_windows_of_the_zero_padded_image():
    loader = make_loader()
    images = loader.split.images
    out = loader.augment(images)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    flips = 0
    for index in range(images.shape[0]):
        windows = [padded[index, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[index], window) for window in windows)
        flipped = any(torch.equal(out[index], window.flip(-1)) for window in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 0 < flips < images.shape[0]


def test_training_batches_cover_a_fresh_permutation_each_epoch():
    """Each image's own label (0..19) shows every draw: an epoch takes each image at most
    once, all of them when the batches divide the set, in a new order each epoch."""
    loader = make_loader(count=20, batch_size=8, labels=torch.arange(20))
    assert len(loader) == 2  # the partial batch is dropped
    first = torch.cat([labels for _, labels in loader])
    second = torch.cat([labels for _, labels in loader])
    for epoch in (first, second):
        assert epoch.numel() == 16 and len(set(epoch.tolist())) == 16  # no image twice
        assert set(epoch.tolist()) <= set(range(20))
    assert not torch.equal(first, second)
    whole = make_loader(count=16, batch_size=8, labels=torch.arange(16))
    epochs = [torch.cat([labels for _, labels in whole]) for _ in range(3)]
    assert all(sorted(epoch.tolist()) == list(range(16)) for epoch in epochs)
    assert len({tuple(epoch.tolist()) for epoch in epochs}) == 3


def test_same_generator_state_gives_the_same_batches():
    a = [images for images, _ in make_loader(seed=5)]
    b = [images for images, _ in make_loader(seed=5)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_normalisation_and_eval_order():
    loader = make_loader(count=10, batch_size=4, train=False)
    batches = list(loader)
    assert [labels.tolist() for _, labels in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    images = batches[0][0]
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    expected = (loader.split.images[:4].float() / 255 - mean) / std
    assert torch.allclose(images, expected, atol=1e-5)
