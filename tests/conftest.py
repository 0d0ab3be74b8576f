"""Shared fixtures: tiny synthetic CIFAR folders and the real configs, composed and shrunk."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def write_cifar(root: Path, train_per_file: int = 40, test_count: int = 100,
                num_classes: int = 10, seed: int = 0) -> Path:
    """Write random images in the standard cifar-10-batches-py layout; return root.

    Each class gets a distinct mean colour so that a model can learn something.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(count: int) -> dict:
        labels = np.arange(count) % num_classes
        rng.shuffle(labels)
        base = (labels[:, None] * 23 % 256).astype(np.int64)
        noise = rng.integers(0, 64, size=(count, 3072))
        data = ((base + noise) % 256).astype(np.uint8)
        return {"data": data, "labels": labels.tolist(), "batch_label": "synthetic"}

    for index in range(1, 6):
        with (folder / f"data_batch_{index}").open("wb") as handle:
            pickle.dump(batch(train_per_file), handle)
    with (folder / "test_batch").open("wb") as handle:
        pickle.dump(batch(test_count), handle)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": [f"class{i}" for i in range(num_classes)]}, handle)
    return root


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    return write_cifar(tmp_path / "data")


@pytest.fixture(scope="session")
def real_cifar_root(tmp_path_factory) -> Path:
    """A few thousand real (JPEG-derived) CIFAR-10 images from ../shared/data, or skip."""
    script = SHARED_DATA / "make_cifar10.py"
    if not (script.is_file() and (SHARED_DATA / "cifar10-jpeg.tar.xz").is_file()):
        pytest.skip("../shared/data (the JPEG copy of CIFAR-10) is not here")
    root = tmp_path_factory.mktemp("real_cifar")
    subprocess.run([sys.executable, str(script), str(root), "--train-per-class", "200",
                    "--test-per-class", "50"], check=True, capture_output=True)
    return root


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: int = 600, module: bool = True) -> subprocess.CompletedProcess:
    """Run `mixup-bench ARGS` in a fresh interpreter, as a user would (module=False:
    ARGS are the interpreter's own, e.g. `-X importtime -m mixup_bench.cli ...`)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    command = ["-m", "mixup_bench.cli", *args] if module else list(args)
    return subprocess.run([sys.executable, *command], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=environment)


TINY = ("trainer.epochs=1", "trainer.batch_size=50", "trainer.eval_batch_size=100",
        "trainer.device=cpu", "trainer.progress=false", "data.verify=false",
        "data.download=false")
