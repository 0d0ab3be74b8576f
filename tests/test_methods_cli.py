"""Every registered method trains one epoch from the CLI on a tiny real-image subset.

The images are the shared JPEG copy of CIFAR-10 (../shared/data, or
$MIXUP_BENCH_SHARED_DATA), 20 training and 5 test images per class; without it the
tests are skipped. Slow (one ResNet-18 epoch on the CPU per method): `make test-slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixup_bench.mixing import mixer_names

from .conftest import SHARED_DATA, TINY, run_cli


@pytest.fixture(scope="module")
def tiny_real_root(tmp_path_factory) -> Path:
    shared = Path(os.environ.get("MIXUP_BENCH_SHARED_DATA", SHARED_DATA))
    script = shared / "make_cifar10.py"
    if not (script.is_file() and (shared / "cifar10-jpeg.tar.xz").is_file()):
        pytest.skip(f"{shared} (the JPEG copy of CIFAR-10) is not here")
    root = tmp_path_factory.mktemp("tiny_real")
    subprocess.run([sys.executable, str(script), str(root), "--train-per-class", "20",
                    "--test-per-class", "5"], check=True, capture_output=True)
    return root


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
