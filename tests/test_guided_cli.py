"""The model-guided methods from the command line: listed in `train --help`, one epoch each."""

from __future__ import annotations

import json

import pytest

from .conftest import TINY, run_cli

GUIDED = ("attentivemix", "puzzlemix")


def test_train_help_lists_the_model_guided_methods():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    [line] = [line for line in result.stdout.splitlines() if line.startswith("aug: ")]
    assert set(GUIDED) <= set(line[len("aug: "):].split(", "))


@pytest.mark.slow  # a ResNet-18 epoch with an extra pass per step on the CPU: ~1-2 minutes
@pytest.mark.parametrize("name", GUIDED)
def test_one_epoch_from_the_cli(cifar_root, tmp_path, name):
    run_dir = tmp_path / "run"
    result = run_cli("train", f"aug={name}", f"data.root={cifar_root}", "data.fraction=0.5",
                     f"hydra.run.dir={run_dir}", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == 1
    assert summary["mixer"]["name"] == name
    assert (run_dir / "samples.png").is_file()  # the samples use the untrained network's guide


def test_bad_options_stop_the_cli_with_one_line(cifar_root, tmp_path):
    result = run_cli("train", "aug=attentivemix", "aug.grid=0", f"data.root={cifar_root}",
                     f"hydra.run.dir={tmp_path / 'run'}", *TINY)
    assert result.returncode == 2
    assert "aug.grid=0: expected an integer in [1, 64]" in result.stderr
