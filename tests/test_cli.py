"""The command line end to end, as a user runs it: subcommands, runs, sweeps, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from mixup_bench.mixing import mixer_names

from .conftest import TINY, run_cli

METRIC_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
               "images_per_s", "elapsed_seconds"}
SUMMARY_KEYS = {"status", "final_test_acc", "best_test_acc", "last10_test_acc", "config",
                "environment", "epochs_completed", "wall_seconds"}


def test_help_lists_subcommands_fast_and_without_torch():
    """--help imports no torch, and takes a small fraction of what importing torch takes in
    the same interpreter: a ratio, so that a slow or busy machine does not fail it."""
    code = ("import sys, time; t = time.perf_counter(); from mixup_bench.cli import main; "
            "main(['--help']); print('seconds', time.perf_counter() - t); "
            "print('torch' in sys.modules); t = time.perf_counter(); import torch; "
            "print('torch_seconds', time.perf_counter() - t)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("train", "report", "bench"):
        assert f"  {command} " in result.stdout
    assert "\nFalse\n" in result.stdout
    seconds = float(result.stdout.split("seconds")[1].split()[0])
    torch_seconds = float(result.stdout.split("torch_seconds")[1].split()[0])
    assert seconds < 0.25 * torch_seconds  # measured 0.011 s against 4.7 s (2-core AMD EPYC)


def test_version_and_unknown_command():
    assert run_cli("--version").stdout.startswith("mixup-bench 0.")
    result = run_cli("trian")
    assert result.returncode == 2 and "did you mean train?" in result.stderr


def test_train_help_is_hydras_and_cfg_job_prints_the_config():
    # Bounded by the work it does, not by the clock (a busy 2-core machine is slow): Hydra's
    # help composes the configs without importing torch, numpy or matplotlib.
    result = run_cli("-X", "importtime", "-m", "mixup_bench.cli", "train", "--help",
                     module=False)
    assert result.returncode == 0 and "== Configuration groups ==" in result.stdout
    # Every registered method, and only those, as a config group choice.
    assert f"aug: {', '.join(mixer_names())}\n" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "hydra" in imported and not {"torch", "numpy", "matplotlib"} & imported
    result = run_cli("train", "--cfg", "job", "aug=cutmix")
    config = yaml.safe_load(result.stdout)
    assert config["aug"]["name"] == "cutmix" and config["alpha"] == 1.0


def test_smoke_run_writes_the_whole_run_directory_contract(cifar_root, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "experiment=smoke", "aug=cutmix", f"data.root={cifar_root}",
                     "data.fraction=0.5", f"hydra.run.dir={run_dir}", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert "aug=cutmix" in overrides
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1]  # TINY sets trainer.epochs=1
    assert METRIC_KEYS <= set(rows[0])
    assert rows[0]["seconds"] <= rows[0]["elapsed_seconds"]
    assert 0.0 <= rows[0]["test_acc"] <= 1.0 and 0.0 <= rows[0]["train_acc"] <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["status"] == "finished"
    assert summary["final_test_acc"] == rows[-1]["test_acc"]
    assert summary["config"]["aug"]["name"] == "cutmix" and summary["config"]["alpha"] == 1.0
    assert summary["environment"]["data_checksums"] == "mismatch_accepted"
    assert summary["environment"]["precision"] in ("fp32", "bf16")
    assert summary["experiment"] == "smoke"
    assert (run_dir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert (run_dir / "checkpoints" / "last.pt").stat().st_size > 1_000_000
    assert "epoch 1/1" in (run_dir / "train.log").read_text()


def test_tensorboard_holds_the_epoch_scalars_and_the_sample_image(cifar_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                     "trainer.epochs=2")
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert {"train/loss", "train/acc", "test/loss", "test/acc", "lr"} <= set(
        events.Tags()["scalars"])
    assert [event.step for event in events.Scalars("test/acc")] == [1, 2]
    assert "samples" in events.Tags()["images"]
    hparams = EventAccumulator(str(run_dir / "tb"))  # add_hparams wrote into tb/ itself
    hparams.Reload()
    assert "hparam/final_test_acc" in hparams.Tags()["scalars"]
    assert not [path for path in (run_dir / "tb").iterdir() if path.is_dir()]


def test_two_value_sweep_writes_two_run_directories(cifar_root, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("train", "-m", "aug=none,mixup", f"data.root={cifar_root}",
                     f"hydra.sweep.dir={sweep}", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = sorted(sweep.glob("*/summary.json"))
    assert len(summaries) == 2
    names = sorted(path.parent.name for path in summaries)
    assert names[0].startswith("0_") and "aug=none" in names[0] and "aug=mixup" in names[1]
    assert {json.loads(path.read_text())["status"] for path in summaries} == {"finished"}


@pytest.mark.parametrize("overrides, message", [
    (["aug=bogus"], "Could not find 'aug/bogus'"),
    (["model=bogus"], "Could not find 'model/bogus'"),
    (["alpha=-1"], "alpha=-1: expected a number > 0"),
    (["alpha=abc"], "alpha='abc': expected a number > 0"),
    (["data.fraction=1.5"], "data.fraction=1.5: expected a number in (0, 1]"),
    (["trainer.epochs=0"], "trainer.epochs=0: expected an integer >= 1"),
    (["model.name=resnet19"], "model.name='resnet19': expected one of"),
    (["trainer.epoch=3"], "Key 'epoch' is not in struct (did you mean trainer.epochs?)"),
    (["experiment=bogus"], "experiment=bogus: Could not find 'experiment/bogus'; expected one "
                           "of alpha_optuna, alpha_search, article,"),
    (["trainer.epochs=[1,"], "trainer.epochs=[1,: no viable alternative"),
    (["trainer.epochs=1.5"], "trainer.epochs=1.5: expected an integer >= 1"),
    (["data.fraction=-1"], "data.fraction=-1.0: expected a number in (0, 1]"),
    (["data.num_classes=5"], "data.num_classes=5: data=cifar10 has 10 classes"),
    (["+data.image_size=64"], "data.image_size=64: only data=imagefolder takes it"),
    (["seed=99999999999999999999"], "seed=99999999999999999999: expected an integer in"),
    (["sched.milestones=abc"], "sched.milestones='abc': expected a strictly increasing list"),
    (["sched=multistep", "sched.milestones=[150,100]"], "sched.milestones=[150, 100]: expected"),
    (["sched.milestones=[0]"], "sched.milestones=[0]: expected a strictly increasing list"),
    (["aug=manifold_mixup", "aug.layers=[5]"], "aug.layers=[5]: expected a non-empty list"),
    (["aug=manifold_mixup", "aug.layers=[1.0]"], "aug.layers=[1.0]: expected a non-empty"),
    (["aug=manifold_mixup", "trainer.compile=true"], "aug=manifold_mixup with trainer.compile"),
    (["aug=fmix", "aug.decay_power=abc"], "aug.decay_power='abc': expected a number > 0"),
    (["aug=resizemix", "aug.scale_min=0.9"], "aug.scale_min=0.9: expected a number <="),
    (["aug.prob=2"], "aug.prob=2: expected a number in [0, 1]"),
    (["aug=mixup", "+aug.layers=[1]"], "aug.layers=[1]: expected an option of aug=mixup"),
    (["trainer.precision=fp8"], "trainer.precision='fp8': expected auto, fp32, bf16 or fp16"),
    (["model.name=timm:resnet999"], "model.name='timm:resnet999': timm "),
    (["model.name=${oc.env:MIXUP_BENCH_UNSET_VARIABLE}"], "model.name: "),
])
def test_bad_config_stops_before_training_with_one_clear_line(cifar_root, tmp_path, overrides,
                                                              message):
    run_dir = tmp_path / "run"
    result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                     *overrides)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixup-bench: error: "), result.stderr[-3000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (run_dir / "metrics.jsonl").exists()


def test_missing_dataset_with_download_off(tmp_path):
    result = run_cli("train", f"data.root={tmp_path / 'none'}", f"hydra.run.dir={tmp_path / 'r'}",
                     *TINY)
    assert result.returncode == 2
    assert "mixup-bench: error: data.root=" in result.stderr and "data.download=false" in \
        result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_batch_file_stops_and_leaves_the_data_alone(cifar_root, tmp_path):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(path.read_bytes()[:500])
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={tmp_path / 'r'}", *TINY)
    assert result.returncode == 2
    assert "data_batch_2: unreadable" in result.stderr and "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and "data_batch_2" in summary["error"]


def test_checksum_mismatch_names_data_verify(cifar_root, tmp_path):
    result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={tmp_path / 'r'}",
                     *TINY, "data.verify=true")
    assert result.returncode == 2
    assert "MD5 differs" in result.stderr and "data.verify=false" in result.stderr


def test_an_existing_run_is_not_overwritten(cifar_root, tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                    "trainer.samples=false")
    assert first.returncode == 0, first.stderr[-2000:]
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    second = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                     "aug=none")
    assert second.returncode == 2
    assert "already holds a run" in second.stderr and "resume=true" in second.stderr
    after = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    assert after == before


def test_sweep_survives_a_failing_job(cifar_root, tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("train", "-m", "data.fraction=0.5,1.5", f"data.root={cifar_root}",
                     f"hydra.sweep.dir={sweep}", *TINY)
    statuses = sorted(json.loads(path.read_text())["status"]
                      for path in sweep.glob("*/summary.json"))
    assert statuses == ["failed", "finished"]
    assert result.returncode == 2  # the sweep ran on, and says that a job failed
    assert "data.fraction=1.5: expected a number in (0, 1]" in result.stdout + result.stderr


def test_speed_switches_do_not_change_the_curve(cifar_root, tmp_path):
    """The same seed with channels_last on and off gives the same metrics within float noise.
    (The SGD kernels and torch.compile are compared step by step in test_speed_switches.)

    model.zero_init_last=true: without it, 8 steps at lr 0.1 on 200 random images are
    chaotic enough (test loss in the thousands) that float noise grows past any tolerance."""
    curves = []
    for layout in ("true", "false"):
        run_dir = tmp_path / layout
        result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                         "trainer.epochs=2", "trainer.samples=false",
                         "model.zero_init_last=true", f"trainer.channels_last={layout}")
        assert result.returncode == 0, result.stderr[-2000:]
        curves.append([json.loads(line) for line in
                       (run_dir / "metrics.jsonl").read_text().splitlines()])
    for fast, plain in zip(*curves, strict=True):
        assert fast["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-3)
        assert fast["test_loss"] == pytest.approx(plain["test_loss"], rel=1e-2)
        assert abs(fast["test_acc"] - plain["test_acc"]) <= 0.02
