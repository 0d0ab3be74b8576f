"""`mixup-bench status` on real sweeps while they run: one to its end, one killed (SIGKILL).

Each sweep trains three jobs of two epochs of a tiny timm network on 20 synthetic
images; status is read every 50 ms from this process, as from another terminal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mixup_bench.report.status.jobs import NOT_STARTED, RUNNING, STALE
from mixup_bench.report.status.sweeps import read_status

from .conftest import run_cli, write_cifar

EPOCHS = 2


def start_sweep(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    data = write_cifar(tmp_path / "data", train_per_file=4, test_count=20)
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "mixup_bench.cli", "train", "-m", "aug=none,mixup,cutmix",
               f"data.root={data}", f"hydra.sweep.dir={sweep}", f"trainer.epochs={EPOCHS}",
               "trainer.batch_size=10", "trainer.eval_batch_size=20", "trainer.device=cpu",
               "trainer.progress=false", "trainer.samples=false", "data.verify=false",
               "data.download=false", "model.name=timm:test_resnet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=tmp_path,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return process, sweep


def sample(sweep: Path) -> list[tuple[str, int]] | None:
    if not (sweep / "multirun.yaml").is_file():
        return None
    [status] = read_status([sweep])
    assert status.listed == 3
    for job in status.jobs:
        if job.state == RUNNING and 1 <= job.epoch < EPOCHS:
            assert job.eta_seconds is not None and job.wall_seconds is not None
    return [(job.state, job.epoch) for job in status.jobs]


def test_a_live_sweep_shows_running_jobs_then_completed(tmp_path):
    process, sweep = start_sweep(tmp_path)
    samples = []
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        seen = sample(sweep)
        if seen and seen not in samples:
            samples.append(seen)
        time.sleep(0.05)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    states = [[state for state, _ in seen] for seen in samples]
    assert [RUNNING, NOT_STARTED, NOT_STARTED] in states
    assert ["completed", RUNNING, NOT_STARTED] in states
    assert ["completed", "completed", RUNNING] in states
    # Mid-run progress was seen, and never a dead or failed job.
    assert any((RUNNING, 1) in seen for seen in samples)
    assert not any(state in (STALE, "failed") for row in states for state in row)
    assert sample(sweep) == [("completed", EPOCHS)] * 3
    # The sweep's last line says where it is and what to run next.
    last = output.strip().splitlines()[-1]
    assert last.startswith("sweep directory: sweep  next: mixup-bench report sweep"), last
    result = run_cli("status", str(sweep))
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert [row.split()[:2] for row in rows[2:5]] == [
        ["none", "completed"], ["mixup", "completed"], ["cutmix", "completed"]]
    assert f"{EPOCHS}/{EPOCHS}" in rows[2]
    assert rows[5].strip() == "total: 3 completed; nothing running or waiting"


def test_a_killed_sweep_shows_its_job_as_stale_never_running(tmp_path):
    process, sweep = start_sweep(tmp_path)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            seen = sample(sweep)
            if seen and seen[0][0] == "completed" and seen[1] == (RUNNING, 1):
                break
            assert process.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)  # no handler runs: summary.json says running
        process.communicate(timeout=60)
    [status] = read_status([sweep])
    second = status.jobs[1]
    assert second.path is not None
    assert '"status": "running"' in (second.path / "summary.json").read_text()
    assert [job.state for job in status.jobs] == ["completed", STALE, NOT_STARTED]
    assert second.epoch >= 1
    result = run_cli("status", str(sweep))
    assert "1 completed, 1 not started, 1 stale" in result.stdout, result.stdout
