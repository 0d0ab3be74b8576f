"""Nothing lost: exact resume after SIGKILL, preemption signals, locks, divergence, bad disks."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mixup_bench.errors import OutputError, UserError
from mixup_bench.train import checkpoint
from mixup_bench.train.safety import RESUMABLE_EXIT, config_differences, run_directory_lock

from .conftest import (
    TINY,
    TINY_MODEL,
    fault_environment,
    run_cli,
    run_with_fault,
    write_cifar,
)

COMPARED = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_ece", "lr")
# Dropout: the global CPU random stream must resume too, not only the loader's and mixer's.
RUN_ARGS = (*TINY, TINY_MODEL, "trainer.epochs=3", "trainer.samples=false", "model.dropout=0.2")


def rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{key: json.loads(line)[key] for key in COMPARED} for line in lines]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_cifar(tmp_path_factory.mktemp("resume_data"))


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("baseline") / "run"
    result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def start(data_root: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mixup_bench.cli", "train",
                             f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_epochs(run_dir: Path, count: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    path = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    raise AssertionError("the run never reached the epoch")


def epochs(run_dir: Path) -> list[int]:
    return [row["epoch"] for row in rows(run_dir)]


def checkpoint_epoch(run_dir: Path) -> int:
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["epoch"]


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(data_root, uninterrupted,
                                                                    tmp_path):
    """Killed before step 2 of epoch 2, once epoch 1's checkpoint has landed: resume
    starts from epoch 1 and trains epochs 2 and 3 to the uninterrupted run's numbers."""
    run_dir = tmp_path / "run"
    killed = run_with_fault("SIGKILL 2 2", "train", f"data.root={data_root}",
                            f"hydra.run.dir={run_dir}", *RUN_ARGS)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert epochs(run_dir) == [1] and checkpoint_epoch(run_dir) == 1  # two epochs left
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS,
                     "resume=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert rows(run_dir) == rows(uninterrupted)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from_epoch"] == 1
    assert summary["epochs_completed"] == 3


def test_sigterm_stops_after_the_step_and_exits_resumable(data_root, uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    process = start(data_root, run_dir)
    wait_for_epochs(run_dir, 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == RESUMABLE_EXIT, stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "preempted" and "resume=true" in summary["error"]
    result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS,
                     "resume=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert rows(run_dir) == rows(uninterrupted)


def test_sigterm_in_a_sweep_stops_the_sweep_not_just_the_job(data_root, tmp_path):
    """A preemption signal is for the whole process: the sweep's later jobs do not start."""
    sweep = tmp_path / "sweep"
    process = subprocess.Popen([sys.executable, "-m", "mixup_bench.cli", "train", "-m",
                                "seed=0,1", f"data.root={data_root}", f"hydra.sweep.dir={sweep}",
                                *RUN_ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not list(sweep.glob("0_*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first = next(sweep.glob("0_*"))  # 0_model.dropout=0.2,seed=0,...: named by its overrides
    wait_for_epochs(first, 1, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == RESUMABLE_EXIT, stderr[-3000:]
    assert json.loads((first / "summary.json").read_text())["status"] == "preempted"
    second = json.loads(next(sweep.glob("1_*/summary.json")).read_text())
    assert second["status"] == "preempted" and second["epochs_completed"] == 0
    assert second["error"].startswith("not started: the sweep was preempted")
    assert not list(sweep.glob("1_*/metrics.jsonl"))  # it never trained
    assert ": not started, the sweep was preempted" in stdout + stderr


def test_a_job_preempted_under_submitit_is_requeued_and_resumes(data_root, uninterrupted,
                                                                  tmp_path):
    """A sweep through submitit (its local executor, as SLURM's: the same handler): the job
    gets SIGUSR2 before step 2 of epoch 2, once epoch 1's checkpoint has landed. It stops
    after the step, submitit requeues it, and the new attempt resumes from epoch 1 to the
    uninterrupted run's numbers."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    environment = fault_environment("SIGUSR2 2 2", FAULT_MARKER=str(tmp_path / "fired"))
    result = run_cli("train", "-m", "hydra/launcher=submitit_local",
                     "hydra.launcher.timeout_min=30", "seed=0", f"data.root={data_root}",
                     f"hydra.sweep.dir={sweep}", *RUN_ARGS, env=environment)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (tmp_path / "fired").exists()
    job = next(sweep.glob("0_*"))
    logs = "".join(path.read_text() for path in (sweep / ".submitit").rglob("*_log.*"))
    assert "this job is preempted" in logs and "Requeued job" in logs, logs[-3000:]
    summary = json.loads((job / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from_epoch"] == 1
    assert rows(job) == rows(uninterrupted)


def test_old_checkpoints_without_the_new_speed_switches_still_resume():
    old = {"trainer": {"epochs": 3, "compile": False, "cudnn_benchmark": True}}
    new = {"trainer": {"epochs": 3, "compile": True, "cudnn_benchmark": False,
                       "compile_mode": "reduce-overhead", "optimizer_step": "fused"}}
    assert config_differences(old, new) == []
    assert config_differences(old, {"trainer": {"epochs": 3, "precision": "fp32"}}) == \
        ["trainer.precision (None -> 'fp32')"]


def test_checkpoints_from_before_aug_prob_and_zero_init_last_resume_at_their_defaults():
    old = {"aug": {"name": "mixup"}, "model": {"name": "resnet18"}}
    same = {"aug": {"name": "mixup", "prob": 1.0},
            "model": {"name": "resnet18", "zero_init_last": False}}
    assert config_differences(old, same) == []
    other = {"aug": {"name": "mixup", "prob": 0.5},
             "model": {"name": "resnet18", "zero_init_last": True}}
    assert config_differences(old, other) == ["aug.prob (None -> 0.5)",
                                              "model.zero_init_last (None -> True)"]


def test_resume_with_another_config_names_the_keys(data_root, uninterrupted, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(uninterrupted, run_dir)
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS,
                     "resume=true", "optim.lr=0.2", "aug=cutmix")
    assert result.returncode == 2
    assert "optim.lr (0.1 -> 0.2)" in result.stderr and "aug.name ('mixup' -> 'cutmix')" in \
        result.stderr
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before
    assert rows(run_dir) == rows(uninterrupted)


def test_extending_epochs_is_allowed_for_step_schedules_only():
    base = {"sched": {"name": "multistep"}, "trainer": {"epochs": 100, "progress": True}}
    longer = {"sched": {"name": "multistep"}, "trainer": {"epochs": 200, "progress": False}}
    assert config_differences(base, longer) == []
    cosine = {"sched": {"name": "cosine"}, "trainer": {"epochs": 100}}
    assert config_differences(cosine, {"sched": {"name": "cosine"}, "trainer": {"epochs": 200}}) \
        == ["trainer.epochs (100 -> 200)"]


def test_a_second_process_on_the_same_run_directory_is_refused(data_root, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with run_directory_lock(run_dir):
        result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *TINY)
    assert result.returncode == 2
    assert "another mixup-bench process is running in this directory" in result.stderr
    assert not (run_dir / "metrics.jsonl").exists()


def test_divergence_stops_with_epoch_and_step(data_root, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *TINY,
                     TINY_MODEL, "optim.lr=1e30", "trainer.epochs=2", "trainer.samples=false")
    assert result.returncode == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert summary["error"].startswith("epoch 1: non-finite training loss at step")
    assert not (run_dir / "metrics.jsonl").read_text()  # no line for the broken epoch


def test_divergence_after_a_checkpoint_keeps_the_last_finite_epoch(data_root, uninterrupted,
                                                                   tmp_path):
    """The loss turns NaN at step 3 of epoch 2: epoch 1's checkpoint stays, finite, and
    resumes to the uninterrupted run's numbers."""
    run_dir = tmp_path / "run"
    diverged = run_with_fault("NAN 2 3", "train", f"data.root={data_root}",
                              f"hydra.run.dir={run_dir}", *RUN_ARGS)
    assert diverged.returncode == 1, diverged.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["error"]) == (
        "diverged", "epoch 2: non-finite training loss at step 3; the last good checkpoint "
                    "(epoch 1) is kept")
    assert epochs(run_dir) == [1] and checkpoint_epoch(run_dir) == 1
    state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    assert all(torch.isfinite(value).all() for value in state["model"].values()
               if value.is_floating_point())
    result = run_cli("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS,
                     "resume=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert rows(run_dir) == rows(uninterrupted)
    assert json.loads((run_dir / "summary.json").read_text())["resumed_from_epoch"] == 1


def test_a_checkpoint_the_disk_refuses_ends_the_cli_with_one_line(data_root, tmp_path):
    """A real write error from the operating system (RLIMIT_FSIZE: files may not grow past
    half a checkpoint, as a full disk would stop them): one line, exit 2, the previous
    checkpoint intact, and resume=true then trains the lost epoch once."""
    import resource

    run_dir = tmp_path / "run"
    args = ("train", f"data.root={data_root}", f"hydra.run.dir={run_dir}", *RUN_ARGS,
            "sched=multistep")  # a step schedule: the epoch count may grow on resume
    assert run_cli(*args, "trainer.epochs=1").returncode == 0
    path = run_dir / "checkpoints" / "last.pt"
    before = path.read_bytes()
    limit = len(before) // 2

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    refused = subprocess.run([sys.executable, "-m", "mixup_bench.cli", *args, "trainer.epochs=2",
                              "resume=true"], capture_output=True, text=True, timeout=600,
                             preexec_fn=small_disk, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert refused.returncode == 2, refused.stderr[-3000:]
    errors = [line for line in refused.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"mixup-bench: error: {path}: could not write the checkpoint of epoch 2 "
                      "(File too large); the previous checkpoint is intact, free space or fix "
                      "permissions and pass resume=true"], refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr
    assert path.read_bytes() == before and not list(path.parent.glob("*.tmp"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "epoch 2" in summary["error"]
    result = run_cli(*args, "trainer.epochs=2", "resume=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert epochs(run_dir) == [1, 2] and checkpoint_epoch(run_dir) == 2


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from mixup_bench.train.metrics import MetricsLog
    from mixup_bench.train.run import save_epoch

    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save_atomic({"epoch": 1}, path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    writer = checkpoint.BackgroundWriter(path)
    metrics = MetricsLog(tmp_path)
    save_epoch(writer, metrics, {"epoch": 2}, {"epoch": 2})  # written in the background
    with pytest.raises(OutputError) as error:  # found out before epoch 3 is recorded
        save_epoch(writer, metrics, {"epoch": 3}, {"epoch": 3})
    assert "checkpoint of epoch 2 (No space left on device)" in str(error.value)
    assert "previous checkpoint is intact" in str(error.value)
    assert [row["epoch"] for row in metrics.read()] == [2]
    assert path.read_bytes() == before
    assert not list(path.parent.glob("*.tmp"))
    assert checkpoint.load(path)["epoch"] == 1


def test_a_checkpoint_write_that_fails_otherwise_is_not_lost_either(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", broken)
    writer = checkpoint.BackgroundWriter(tmp_path / "last.pt")
    writer.save({"epoch": 5}, 5)
    with pytest.raises(checkpoint.CheckpointWriteError) as error:
        writer.wait()
    assert error.value.epoch == 5 and "PytorchStreamWriter failed" in str(error.value)
    writer.wait()  # reported once


def test_the_background_checkpoint_holds_the_state_of_its_epoch(tmp_path):
    """Training goes on while the checkpoint is written: it must hold a copy, not the
    tensors the next steps update in place."""
    from collections import Counter

    weights = torch.zeros(1000)
    state = {"epoch": 4, "model": {"w": weights}, "optimizer": {"state": [weights * 2]},
             "scheduler": {"milestones": Counter({100: 1, 150: 1})}}
    writer = checkpoint.BackgroundWriter(tmp_path / "last.pt")
    writer.save(state, 4)
    weights.add_(1.0)  # the next step, possibly before the write
    writer.wait()
    saved = checkpoint.load(tmp_path / "last.pt")
    assert saved["epoch"] == 4 and torch.equal(saved["model"]["w"], torch.zeros(1000))
    assert isinstance(saved["optimizer"]["state"], list)
    assert torch.equal(saved["optimizer"]["state"][0], torch.zeros(1000))
    assert saved["scheduler"]["milestones"] == Counter({100: 1, 150: 1})
    assert type(saved["scheduler"]["milestones"]) is Counter  # as MultiStepLR keeps it


def test_parallel_jobs_download_the_dataset_once(tmp_path, monkeypatch):
    import mixup_bench.data.cifar as data

    calls = []

    def slow_download(url: str, download_root: str, md5: str | None = None) -> None:
        calls.append(download_root)
        time.sleep(0.5)
        write_cifar(Path(download_root))

    from torchvision.datasets import utils

    monkeypatch.setattr(utils, "download_and_extract_archive", slow_download)
    errors = []

    def job():
        try:
            data.ensure_cifar(tmp_path / "shared", download=True)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=job) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(calls) == 1


def test_rerunning_a_sweep_skips_finished_runs_and_resumes_the_rest(data_root, uninterrupted,
                                                                   tmp_path):
    """The sweep is killed in its second job's epoch 2 (calls 1-3 are the first job's epochs),
    after that job's epoch 1 checkpoint: the re-run skips the first job and resumes the
    second with two epochs to train, and every epoch is in each job's metrics once."""
    sweep = tmp_path / "sweep"
    args = ("train", "-m", "seed=1,0", f"data.root={data_root}", f"hydra.sweep.dir={sweep}",
            *RUN_ARGS)
    killed = run_with_fault("SIGKILL 5 2", *args)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    finished, unfinished = next(sweep.glob("0_*")), next(sweep.glob("1_*"))
    finished_bytes = (finished / "summary.json").read_bytes()
    assert json.loads(finished_bytes)["status"] == "finished"
    assert json.loads((unfinished / "summary.json").read_text())["status"] == "running"
    assert epochs(unfinished) == [1] and checkpoint_epoch(unfinished) == 1
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (finished / "summary.json").read_bytes() == finished_bytes  # skipped
    resumed = json.loads((unfinished / "summary.json").read_text())
    assert resumed["status"] == "finished" and resumed["resumed_from_epoch"] == 1
    assert epochs(finished) == epochs(unfinished) == [1, 2, 3]
    assert rows(unfinished) == rows(uninterrupted)  # seed 0, as the uninterrupted run


def test_a_downloaded_archive_with_the_wrong_checksum_is_refused(tmp_path, monkeypatch):
    import torchvision.datasets.utils as utils

    import mixup_bench.data.cifar as data

    def fake_fetch(url, path, *args, **kwargs):
        Path(path).write_bytes(b"this is not the CIFAR-10 archive")

    monkeypatch.setattr(utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(utils, "_urlretrieve", fake_fetch)
    with pytest.raises(UserError) as error:
        data.ensure_cifar(tmp_path / "root", download=True)
    message = str(error.value)
    assert "download from https://www.cs.toronto.edu" in message and "corrupted" in message
    assert not (tmp_path / "root" / "cifar-10-batches-py").exists()


def test_sigusr2_is_caught_and_handed_on_to_the_previous_handler():
    """submitit installs its SIGUSR2 handler (checkpoint and requeue) before the job runs;
    ours only sets a flag, and after the checkpoint the run calls submitit's handler."""
    from mixup_bench.train.safety import PreemptionWatch

    calls = []

    def submitit_handler(number, frame):
        calls.append(number)

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        with PreemptionWatch() as watch:
            assert not watch.requested()
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.05)
            assert watch.requested() and calls == []  # the run goes on to its checkpoint
        watch.pass_on()
        assert calls == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGUSR2) is submitit_handler  # restored
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_run_that_fails_while_setting_up_does_not_stay_running(cifar_root, tmp_path,
                                                                 monkeypatch):
    """summary.json says "running" once the data are loaded; a later set-up failure ends it."""
    from hydra import compose, initialize_config_module

    from mixup_bench.train import run as run_module

    def broken(*args, **kwargs):
        raise UserError("model.name=broken: no such model")

    monkeypatch.setattr(run_module, "build_trainee", broken)
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"data.root={cifar_root}", *TINY,
                                                      "trainer.samples=false"])
    with pytest.raises(UserError):
        run_module.run(cfg, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "model.name=broken: no such model"
    assert summary["ended_at"] and summary["train_images"] > 0
