"""Sweeps through Hydra's launchers: submitit's local executor, the joblib GPU config, leases."""

from __future__ import annotations

import json
import os

import pytest

from mixup_bench.train.runtime import lease_gpu

from .conftest import REPO, TINY, TINY_MODEL, run_cli, write_cifar


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


def test_parallel_sweep_jobs_lease_distinct_gpus_and_give_every_lease_back(tmp_path):
    """hydra/launcher=gpus launched: 4 CPU jobs, 2 at a time, on 2 fake GPUs (only the
    device count is faked, by tests/fake_gpus/sitecustomize.py; the lease is the real
    one). No two running jobs hold the same GPU, and every job gives its lease back, the
    two that fail (no data) included."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    data = write_cifar(tmp_path / "data", train_per_file=20, test_count=50)
    leases = tmp_path / "leases.jsonl"
    sweep = tmp_path / "sweep"
    environment = {"FAKE_GPUS": "2", "LEASE_LOG": str(leases), "TMPDIR": str(tmp_path),
                   "LEASE_RENDEZVOUS_S": "90",  # hold a lease until a second one is taken
                   "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "fake_gpus"), str(REPO)])}
    result = run_cli("train", "-m", "hydra/launcher=gpus", "hydra.launcher.n_jobs=2",
                     f"data.root={data},{tmp_path / 'missing'}", "seed=0,1",
                     f"hydra.sweep.dir={sweep}", *TINY, TINY_MODEL, "trainer.samples=false",
                     "trainer.device=auto", env=environment)
    output = (result.stdout + result.stderr)[-3000:]
    statuses = sorted(json.loads(path.read_text())["status"]
                      for path in sweep.glob("*/summary.json"))
    assert statuses == ["failed", "failed", "finished", "finished"], output
    assert result.returncode == 1, output  # the jobs failed in workers, not in this process
    events = [json.loads(line) for line in leases.read_text().splitlines()]
    held = []  # (index, from, to) of each lease, from the same process's release
    for number, event in enumerate(events):
        if event["event"] == "lease":
            release = next(later for later in events[number + 1:] if later["pid"] ==
                           event["pid"] and later["event"] == "release")
            assert release["index"] == event["index"]
            held.append((event["index"], event["time"], release["time"]))
    assert len(held) == 4 and sum(event["event"] == "release" for event in events) == 4
    overlapping = [(first, second) for number, first in enumerate(held)
                   for second in held[number + 1:]
                   if first[1] < second[2] and second[1] < first[2]]
    assert overlapping, held  # two jobs really ran at once
    assert all(first[0] != second[0] for first, second in overlapping), held
