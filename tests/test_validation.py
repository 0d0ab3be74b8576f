"""The validation split (data.val_fraction): held out first, by its own seed, and evaluated."""

from __future__ import annotations

import json
import statistics
from collections import Counter

import pytest
import torch

from mixup_bench.config import validate
from mixup_bench.data import CIFAR10, load_cifar
from mixup_bench.data.subsets import stratified_subset
from mixup_bench.data.validation import hold_out, training_and_validation
from mixup_bench.errors import DataError

from .conftest import TINY, run_cli

# 10 classes of 100 images, shuffled.
LABELS = torch.arange(1000) % 10
LABELS = LABELS[torch.randperm(1000, generator=torch.Generator().manual_seed(5))]


def test_split_is_disjoint_class_balanced_and_the_subset_comes_from_the_rest():
    train, val = training_and_validation(LABELS, 0.5, subset_seed=1, val_fraction=0.2,
                                         val_seed=0)
    assert not set(train.tolist()) & set(val.tolist())
    assert Counter(LABELS[val].tolist()) == {label: 20 for label in range(10)}
    # data.fraction is taken of the 80 images per class left: 40 each.
    assert Counter(LABELS[train].tolist()) == {label: 40 for label in range(10)}
    _, rest = hold_out(LABELS, 0.2, 0)
    assert set(train.tolist()) <= set(rest.tolist())


def test_the_same_split_for_every_run_of_a_sweep():
    first = training_and_validation(LABELS, 1.0, 0, 0.1, val_seed=3)[1]
    for fraction, subset_seed in ((0.1, 0), (0.5, 7), (1.0, 2)):
        train, val = training_and_validation(LABELS, fraction, subset_seed, 0.1, val_seed=3)
        assert torch.equal(val, first)
        assert not set(train.tolist()) & set(val.tolist())
    assert not torch.equal(training_and_validation(LABELS, 1.0, 0, 0.1, val_seed=4)[1], first)


def test_no_validation_split_leaves_the_training_subset_as_it_was():
    for fraction in (0.1, 1.0):
        train, val = training_and_validation(LABELS, fraction, 2, 0.0, 0)
        assert val.numel() == 0
        assert torch.equal(train, stratified_subset(LABELS, fraction, 2))


def test_a_split_that_empties_a_class_is_refused():
    labels = torch.tensor([0, 0, 0, 1])  # class 1 has a single image, and it would be held out
    with pytest.raises(DataError, match="data.val_fraction=0.3: holds out every training image "
                                        "of class 1"):
        hold_out(labels, 0.3, 0)


def test_loaded_split_is_apart_from_the_test_set_with_clean_labels(cifar_root):
    options = dict(download=False, verify=False, subset_seed=0, val_seed=0)
    dataset = load_cifar(cifar_root, CIFAR10, fraction=1.0, val_fraction=0.2, label_noise=0.5,
                         **options)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (160, 40, 100)
    everything = load_cifar(cifar_root, CIFAR10, fraction=1.0, **options)
    _, held = training_and_validation(everything.train.labels, 1.0, 0, 0.2, 0)
    assert torch.equal(dataset.val.images, everything.train.images[held])
    assert torch.equal(dataset.val.labels, everything.train.labels[held])  # not noisy
    flat = {tuple(image.flatten().tolist()) for image in dataset.test.images}
    assert not any(tuple(image.flatten().tolist()) in flat for image in dataset.val.images)
    smaller = load_cifar(cifar_root, CIFAR10, fraction=0.5, val_fraction=0.2, **options)
    assert torch.equal(smaller.val.images, dataset.val.images) and len(smaller.train) == 80
    assert load_cifar(cifar_root, CIFAR10, fraction=1.0, **options).val is None


@pytest.mark.parametrize("value, ok", [(0.0, True), (0.1, True), (1.0, False), (-0.1, False)])
def test_schema_takes_a_fraction_below_one(value, ok):
    config = {"data": {"val_fraction": value, "val_seed": 0}}
    problems = [line for line in validate(config, [], []) if line.startswith("data.val_")]
    assert (problems == []) is ok, problems
    if not ok:
        assert problems == [f"data.val_fraction={value}: expected a number in [0, 1) "
                            "(0: no validation split)"]


def test_each_epoch_is_validated_into_metrics_summary_and_tensorboard(cifar_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}",
                     "data.val_fraction=0.2", *TINY, "trainer.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all({"val_acc", "val_loss", "val_ece"} <= set(row) for row in rows)
    assert all(0 <= row["val_acc"] <= 1 and row["val_loss"] > 0 for row in rows)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["train_images"], summary["val_images"]) == (160, 40)
    assert summary["final_val_acc"] == rows[-1]["val_acc"]
    assert summary["final_val_ece"] == rows[-1]["val_ece"]
    assert summary["last10_median_val_acc"] == pytest.approx(
        statistics.median(row["val_acc"] for row in rows))
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert {"val/acc", "val/loss", "val/ece", "hparam/final_val_acc"} <= set(
        events.Tags()["scalars"])
    assert [event.step for event in events.Scalars("val/acc")] == [1, 2]


def test_an_image_folder_validates_on_part_of_what_its_test_split_leaves(tmp_path):
    from mixup_bench.data import load_dataset

    from .test_datasets import folder_config, write_folder

    root = write_folder(tmp_path / "images")  # 3 classes of 10; the test split takes 2 each
    dataset = load_dataset(folder_config(root, val_fraction=0.25, val_seed=0))
    assert torch.bincount(dataset.test.labels).tolist() == [2, 2, 2]
    assert torch.bincount(dataset.val.labels).tolist() == [2, 2, 2]  # round(0.25 * 8)
    assert torch.bincount(dataset.train.labels).tolist() == [6, 6, 6]
    seen = [{tuple(image.flatten().tolist()) for image in split.images}
            for split in (dataset.train, dataset.val, dataset.test)]
    assert not (seen[0] & seen[1] or seen[1] & seen[2] or seen[0] & seen[2])
