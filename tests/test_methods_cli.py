"""Every registered method trains one epoch from the CLI on a tiny real-image subset.

The images are the shared JPEG copy of CIFAR-10 (../shared/data, or
$MIXUP_BENCH_SHARED_DATA), 20 training and 5 test images per class; without it the
tests are skipped. Slow (one ResNet-18 epoch on the CPU per method): `make test-slow`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixup_bench.mixing import mixer_names

from .conftest import TINY, run_cli, shared_cifar10


@pytest.fixture(scope="module")
def tiny_real_root(tmp_path_factory) -> Path:
    return shared_cifar10(tmp_path_factory, train_per_class=20, test_per_class=5)


@pytest.mark.slow
@pytest.mark.parametrize("name", mixer_names())
def test_each_method_trains_one_epoch_from_the_cli(name, tiny_real_root, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", f"aug={name}", f"data.root={tiny_real_root}",
                     f"hydra.run.dir={run_dir}", *TINY, "trainer.samples=false")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == 1
    assert summary["config"]["aug"]["name"] == name
    assert (summary["train_images"], summary["test_images"]) == (200, 50)
