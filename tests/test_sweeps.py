"""Sweeps through Hydra's launchers: submitit's local executor, the joblib GPU config, leases."""

from __future__ import annotations

import json

import pytest

from mixup_bench.train.runtime import lease_gpu

from .conftest import TINY, run_cli


def test_submitit_local_two_job_sweep(cifar_root, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    result = run_cli("train", "-m", "hydra/launcher=submitit_local",
                     "hydra.launcher.timeout_min=10", "aug=none,cutmix", f"data.root={cifar_root}",
                     f"hydra.sweep.dir={sweep}",
                     *TINY, "trainer.samples=false")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summaries = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/summary.json"))]
    assert [summary["config"]["aug"]["name"] for summary in summaries] == ["none", "cutmix"]
    assert {summary["status"] for summary in summaries} == {"finished"}
    assert list((sweep / ".submitit").iterdir())  # the jobs really went through submitit


def test_launcher_presets_compose():
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    result = run_cli("train", "--cfg", "hydra", "hydra/launcher=gpus")
    assert "JoblibLauncher" in result.stdout and "n_jobs: 2" in result.stdout
    result = run_cli("train", "--cfg", "hydra", "hydra/launcher=slurm")
    assert "SlurmLauncher" in result.stdout and "gpus_per_node: 1" in result.stdout
    assert "signal_delay_s: 120" in result.stdout


def test_gpu_leases_are_exclusive_until_released(tmp_path):
    first_index, first = lease_gpu(2, str(tmp_path))
    second_index, second = lease_gpu(2, str(tmp_path))
    assert {first_index, second_index} == {0, 1}
    with pytest.raises(TimeoutError, match="all 2 GPUs are leased"):
        lease_gpu(2, str(tmp_path))
    first.release()
    assert lease_gpu(2, str(tmp_path))[0] == first_index
    second.release()
