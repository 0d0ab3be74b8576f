"""`mixup-bench status`: states, labels, ETAs and speed on written run directories.

The run directories are written in the documented format (docs/run-directory.md);
tests/test_status_live.py watches real sweeps and a killed run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixup_bench.report.status.jobs import (
    NOT_STARTED,
    RUNNING,
    STALE,
    Job,
    lock_held,
    read_job,
    running_eta,
)
from mixup_bench.report.status.sweeps import Sweep, read_status
from mixup_bench.report.status.view import job_labels, main, override_settings, render

NOW = 1_800_000_000.0


def write_multirun(sweep: Path, task: list[str], epochs: int = 4) -> None:
    """The part of Hydra's multirun.yaml that status reads."""
    sweep.mkdir(parents=True, exist_ok=True)
    config = {"hydra": {"sweeper": {"_target_":
                                    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                                    "max_batch_size": None, "params": None},
                        "overrides": {"task": task}},
              "trainer": {"epochs": epochs}}
    (sweep / "multirun.yaml").write_text(yaml.safe_dump(config))


def write_job(path: Path, overrides: list[str], *, status: str | None = "finished",
              done: int = 4, epochs: int = 4, period: float = 10.0, accuracy: float = 0.5,
              lock: bool = True, started: float = NOW - 100) -> Path:
    """A run directory as the trainer leaves it after `done` epochs (summary: `status`)."""
    (path / ".hydra").mkdir(parents=True, exist_ok=True)
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    config = {"seed": 0, "trainer": {"epochs": epochs}}
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [{"epoch": epoch, "test_acc": accuracy - 0.01 * (done - epoch), "seconds": period - 1,
              "elapsed_seconds": 5 + period * epoch} for epoch in range(1, done + 1)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    if status is not None:
        summary: dict[str, Any] = {"status": status, "config": config, "overrides": overrides,
                                   "started_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                               time.gmtime(started))}
        if status != "running":
            summary["wall_seconds"] = 5 + period * done
        (path / "summary.json").write_text(json.dumps(summary))
    if lock:
        (path / ".lock").touch()
    return path


class Held:
    """The run-directory lock held as the trainer holds it (flock, exclusive)."""

    def __init__(self, run_dir: Path) -> None:
        self.descriptor = os.open(run_dir / ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        os.close(self.descriptor)


# --- states -------------------------------------------------------------------------------


def test_running_needs_the_lock_and_a_dead_process_is_stale(tmp_path):
    run = write_job(tmp_path / "run", ["aug=mixup"], status="running", done=2)
    held = Held(run)
    try:
        assert lock_held(run) is True
        job = read_job(run, NOW)
        assert (job.state, job.epoch, job.epochs) == (RUNNING, 2, 4)
        assert job.wall_seconds == pytest.approx(100)
    finally:
        held.release()  # what the kernel does when the process dies, SIGKILL included
    assert lock_held(run) is False
    job = read_job(run, NOW)
    assert job.state == STALE and job.epoch == 2
    assert job.test_acc == pytest.approx(0.5)


def test_summary_states_and_a_folder_without_a_trainer(tmp_path):
    for status, shown in [("finished", "completed"), ("failed", "failed"),
                          ("diverged", "diverged"), ("preempted", "preempted")]:
        assert read_job(write_job(tmp_path / status, [], status=status), NOW).state == shown
    # Hydra made the folder, no trainer began: no lock file, no epoch line, no summary.
    empty = write_job(tmp_path / "empty", [], status=None, done=0, lock=False)
    assert read_job(empty, NOW).state == NOT_STARTED
    # A trainer locked it and died before its first summary.json.
    died = write_job(tmp_path / "died", [], status=None, done=0, lock=True)
    assert read_job(died, NOW).state == STALE
    # A finished run being resumed (more epochs): the lock says running.
    resumed = write_job(tmp_path / "resumed", [], status="finished")
    held = Held(resumed)
    try:
        assert read_job(resumed, NOW).state == RUNNING
    finally:
        held.release()


def test_the_probe_never_creates_a_lock_file(tmp_path):
    run = write_job(tmp_path / "run", [], lock=False)
    assert lock_held(run) is False
    assert not (run / ".lock").exists()


def test_a_probe_does_not_stop_a_run_from_taking_its_lock(tmp_path):
    """The trainer waits for a held lock a moment (LOCK_WAIT_SECONDS) instead of refusing."""
    import threading

    from mixup_bench.train.safety import run_directory_lock

    (tmp_path / ".lock").touch()
    descriptor = os.open(tmp_path / ".lock", os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)  # a probe, caught in the act
    threading.Timer(0.5, os.close, [descriptor]).start()
    with run_directory_lock(tmp_path):
        assert lock_held(tmp_path) is True


# --- the sweep: listed jobs, labels, ETA ------------------------------------------------


def test_jobs_not_started_come_from_the_sweeps_listing_in_hydras_order(tmp_path):
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["aug=none,mixup", "seed=0,1", "data.root=/data"])
    write_job(sweep / "0", ["aug=none", "seed=0", "data.root=/data"], done=4)
    running = write_job(sweep / "1", ["aug=none", "seed=1", "data.root=/data"],
                        status="running", done=2, started=NOW - 20)
    os.utime(running / "metrics.jsonl", (NOW - 4, NOW - 4))  # epoch 2 has run 4 s of 10
    held = Held(running)
    try:
        [status] = read_status([tmp_path], NOW)
    finally:
        held.release()
    assert status.listed == 4
    states = [job.state for job in status.jobs]
    assert states == ["completed", RUNNING, NOT_STARTED, NOT_STARTED]
    labels, shared = job_labels(status.jobs)
    assert labels == ["none, seed=0", "none, seed=1", "mixup, seed=0", "mixup, seed=1"]
    assert shared == ""  # data.root names where the data live, not a condition
    # The running job: 2 epochs left at 10 s (its epoch lines' spacing), the current one 4 s in.
    assert status.jobs[1].eta_seconds == pytest.approx(10 + 6)
    # Waiting jobs: 4 epochs at the sweep's 10 s; one job at a time.
    assert status.jobs[2].eta_seconds == pytest.approx(40)
    assert status.eta_seconds() == pytest.approx(16 + 40 + 40)
    screen = render([status], NOW, base=tmp_path)
    assert "sweep  (4 jobs, the sweep lists 4)" in screen
    assert "total: 1 completed, 1 running, 2 not started; ETA 1:36" in screen
    row = next(line for line in screen.splitlines() if line.strip().startswith("none, seed=1"))
    assert row.split()[2:] == ["running", "2/4", "50.00%", "0:20", "0:16"]


def test_the_sweep_eta_spreads_the_work_over_the_jobs_running_now():
    jobs = [Job(["a"], state=RUNNING, eta_seconds=30.0), Job(["b"], state=RUNNING,
                                                            eta_seconds=10.0),
            Job(["c"], eta_seconds=60.0), Job(["d"], state="completed")]
    assert Sweep(None, jobs).eta_seconds() == pytest.approx((30 + 10 + 60) / 2)
    assert Sweep(None, jobs[:2]).eta_seconds() == pytest.approx(30)  # the longest one
    assert Sweep(None, [Job(["c"], eta_seconds=None)]).eta_seconds() is None
    assert Sweep(None, jobs[3:]).eta_seconds() == 0


def test_running_eta_counts_the_current_epoch_once():
    job = Job([], state=RUNNING, epoch=3, epochs=5)
    assert running_eta(job, 10.0, 4.0) == pytest.approx(10 + 6)
    assert running_eta(job, 10.0, 25.0) == pytest.approx(10)  # a slow epoch: never negative
    assert running_eta(Job([], epoch=5, epochs=5), 10.0, 1.0) == 0
    assert running_eta(job, None, 4.0) is None


def test_labels_are_the_reports_and_name_the_seed():
    assert override_settings(["aug=mixup", "alpha=0.20", "model.name=timm\\:resnet18",
                              "+data.test_subset=100"]) == {
        "aug.name": "mixup", "alpha": 0.2, "model.name": "timm:resnet18",
        "data.test_subset": 100}
    jobs = [Job(overrides) for overrides in (
        ["aug=none", "seed=0"], ["aug=mixup", "alpha=0.2", "seed=0"],
        ["aug=mixup", "alpha=1.0", "seed=0"], ["aug=mixup", "alpha=1.0", "seed=1"])]
    labels, shared = job_labels(jobs)
    assert labels == ["none, seed=0", "mixup α=0.2, seed=0", "mixup α=1.0, seed=0",
                      "mixup α=1.0, seed=1"]
    # Nothing varies: the shared overrides head the sweep, each job named by its folder.
    same = [Job(["experiment=smoke"], path=Path(name)) for name in ("a", "b")]
    assert job_labels(same) == (["a", "b"], "experiment=smoke")


def test_the_command_line(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["seed=0,1"])
    write_job(sweep / "0", ["seed=0"])
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and "not started" in out and "seed=1" in out
    assert main([str(tmp_path / "nothing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 1
    assert main([str(tmp_path), "--watch", "--interval", "0"]) == 2


def test_watch_refreshes_until_ctrl_c(tmp_path, capsys):
    write_job(tmp_path / "run", ["seed=0"])
    naps = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    assert main(["--watch", str(tmp_path), "--interval", "3"], sleep=sleep) == 0
    assert naps == [3.0, 3.0]
    assert capsys.readouterr().out.count("Ctrl-C ends") == 2


# --- fast on 1,000 run directories ------------------------------------------------------


def test_a_thousand_run_directories_in_seconds(tmp_path):
    """10 sweeps of 100 jobs, 200 epoch lines each: one status read takes well under a
    second on a quiet 2-core machine; the bound leaves room for a busy one."""
    for sweep_index in range(10):
        sweep = tmp_path / f"sweep{sweep_index}"
        write_multirun(sweep, ["seed=range(0,100)"], epochs=200)
        for seed in range(100):
            write_job(sweep / str(seed), [f"seed={seed}"], done=200, epochs=200)
    started = time.perf_counter()
    sweeps = read_status([tmp_path], NOW)
    screen = render(sweeps, NOW, base=tmp_path)
    seconds = time.perf_counter() - started
    assert sum(len(sweep.jobs) for sweep in sweeps) == 1000
    assert screen.count("completed") == 1000 + 10  # the rows and the totals
    print(f"status of 1,000 run directories: {seconds:.2f} s")
    assert seconds < 15
