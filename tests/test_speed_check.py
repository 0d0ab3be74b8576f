"""Tests for mixup_bench.speed_check: run directories are written by hand into tmp_path (only
summary.json and metrics.jsonl, as gpu_check.sh brings them back), nothing is trained."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats

from mixup_bench.report.speed_check.best import best_setting, overrides
from mixup_bench.report.speed_check.check import equivalence, main, projection, render

FAST = {"precision": "auto", "channels_last": "auto", "cudnn_benchmark": True, "compile": True,
        "compile_mode": "max-autotune", "optimizer_step": "fused"}
SLOW = {"precision": "fp32", "channels_last": False, "cudnn_benchmark": False, "compile": False,
        "compile_mode": None, "optimizer_step": "foreach"}


def write_run(
    path: Path,
    *,
    seed: int = 0,
    accuracies: list[float] | None = None,
    status: str = "finished",
    trainer: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
    elapsed: list[float] | None = None,
    seconds: list[float] | None = None,
    images_per_s: list[float] | None = None,
    wall_seconds: float = 31.0,
    train_losses: list[float] | None = None,
) -> Path:
    """A run directory with summary.json and metrics.jsonl, the way train.py writes them."""
    accuracies = accuracies if accuracies is not None else [0.3, 0.4, 0.5]
    count = len(accuracies)
    path.mkdir(parents=True)
    rows = []
    for index, accuracy in enumerate(accuracies):
        loss = train_losses[index] if train_losses is not None else 2.0 / (index + 1)
        row = {"epoch": index + 1, "train_loss": loss, "train_acc": 0.5,
               "test_loss": 1.0, "test_acc": accuracy, "test_ece": 0.05, "lr": 0.1,
               "seconds": (seconds or [3.0] * count)[index],
               "images_per_s": (images_per_s or [1000.0] * count)[index]}
        if elapsed is not None:
            row["elapsed_seconds"] = elapsed[index]
        rows.append(row)
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = {
        "status": status,
        "error": None if status == "finished" else status,
        "epochs_completed": count,
        "final_test_acc": accuracies[-1] if accuracies else None,
        "wall_seconds": wall_seconds,
        "config": {"seed": seed, "alpha": 1.0, "aug": {"name": "mixup"},
                   "data": {"name": "cifar10", "fraction": 1.0},
                   "model": {"name": "resnet18"},
                   "trainer": {"epochs": count, "batch_size": 128, **(trainer or {})}},
        "environment": {"device_name": "NVIDIA H100", **(environment or {})},
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def write_sweeps(root: Path, fast: list[float], slow: list[float],
                 fast_trainer: dict[str, Any] | None = None,
                 fast_losses: list[float] | None = None,
                 slow_losses: list[float] | None = None) -> tuple[list[Path], list[Path]]:
    """Fast and slow sweeps, one run per seed, final accuracies as given, and training
    losses whose mean over the run's two epochs is as given (default 1.5 for all)."""
    for name, finals, switches, losses in (("fast", fast, fast_trainer or FAST, fast_losses),
                                           ("slow", slow, SLOW, slow_losses)):
        for seed, final in enumerate(finals):
            environment = ({"precision": "bf16", "channels_last": True} if name == "fast"
                           else {"precision": "fp32", "channels_last": False,
                                 "tf32": {"cudnn_conv": True, "cuda_matmul": False,
                                          "NVIDIA_TF32_OVERRIDE": "0"}})
            loss = losses[seed] if losses is not None else 1.5
            write_run(root / name / f"{seed}_seed={seed}", seed=seed, trainer=switches,
                      accuracies=[final - 0.1, final], environment=environment,
                      images_per_s=[100.0, 3000.0 if name == "fast" else 1000.0],
                      train_losses=[loss + 0.5, loss - 0.5])
    return [root / "fast"], [root / "slow"]


def test_paired_difference_computed_by_hand(tmp_path: Path) -> None:
    fast, slow = write_sweeps(tmp_path, [0.50, 0.52, 0.51], [0.49, 0.53, 0.50],
                              fast_losses=[2.00, 2.02, 2.01], slow_losses=[1.99, 2.03, 2.00])
    result = equivalence(fast, slow)
    paired = result["paired_final_test_acc_difference"]
    # differences +0.01, -0.01, +0.01: mean 1/300, std 0.011547, t(2) = 4.303
    half = scipy_stats.t.ppf(0.975, 2) * statistics.stdev([0.01, -0.01, 0.01]) / math.sqrt(3)
    assert paired["n"] == 3
    assert paired["mean"] == pytest.approx(0.01 / 3)
    assert paired["low"] == pytest.approx(0.01 / 3 - half)
    assert paired["high"] == pytest.approx(0.01 / 3 + half)
    assert half == pytest.approx(0.028687, abs=1e-5)
    # The same differences in the training loss (nats) decide: [-0.0254, +0.0320] lies
    # within ±0.05.
    loss = result["paired_train_loss_difference"]
    assert loss["n"] == 3 and loss["mean"] == pytest.approx(0.01 / 3)
    assert loss["low"] == pytest.approx(0.01 / 3 - half)
    assert loss["high"] == pytest.approx(0.01 / 3 + half)
    assert result["verdict"] == "same within noise"
    assert result["seed_std_final_test_acc"]["fast"] == pytest.approx(0.01)
    assert result["seed_std_final_test_acc"]["slow"] == pytest.approx(statistics.stdev(
        [0.49, 0.53, 0.50]))
    assert result["speed_ratio"] == pytest.approx(3.0)  # the first epoch is left out
    assert result["paired_seeds"] == [0, 1, 2]
    assert result["unpaired"] == []
    epoch2 = result["per_epoch"][1]
    assert epoch2["epoch"] == 2 and epoch2["pairs"] == 3
    assert epoch2["fast_test_acc"] == pytest.approx(0.51)
    assert epoch2["slow_test_acc"] == pytest.approx(0.50667, abs=1e-5)
    assert epoch2["paired_difference"] == pytest.approx(0.01 / 3)
    row = next(r for r in result["runs"] if r["setting"] == "fast" and r["seed"] == 0)
    assert row["switches"]["compile"] is True and row["resolved_precision"] == "bf16"
    assert row["final_train_loss"] == pytest.approx(1.5)
    assert row["run_train_loss"] == pytest.approx(2.0)
    assert row["epochs_completed"] == 2 and row["images_per_s"] == pytest.approx(3000.0)


def test_same_within_noise_differs_and_too_noisy(tmp_path: Path) -> None:
    accuracies = [0.50, 0.51, 0.52]
    same = equivalence(*write_sweeps(tmp_path / "a", accuracies, accuracies,
                                     fast_losses=[1.80, 1.85, 1.90],
                                     slow_losses=[1.79, 1.86, 1.89]))
    assert same["verdict"] == "same within noise"
    # A small systematic offset well inside the margin is still "same" (an equivalence
    # test, not a test of zero difference).
    offset = equivalence(*write_sweeps(tmp_path / "b", accuracies, accuracies,
                                       fast_losses=[1.810, 1.861, 1.912],
                                       slow_losses=[1.80, 1.85, 1.90]))
    assert offset["paired_train_loss_difference"]["low"] > 0
    assert offset["verdict"] == "same within noise"
    unmixed = equivalence(*write_sweeps(tmp_path / "c", accuracies, accuracies,
                                        fast_losses=[1.40, 1.46, 1.49],
                                        slow_losses=[1.80, 1.85, 1.90]))
    assert unmixed["paired_train_loss_difference"]["high"] < -0.05
    assert unmixed["verdict"] == "differs"
    noisy = equivalence(*write_sweeps(tmp_path / "d", accuracies, accuracies,
                                      fast_losses=[1.90, 1.75, 1.95],
                                      slow_losses=[1.80, 1.85, 1.90]))
    assert noisy["verdict"] == "too noisy to tell"
    assert "within ±0.05 nats" in noisy["rule"]
    equal = equivalence(*write_sweeps(tmp_path / "e", accuracies, accuracies))
    assert equal["verdict"] == "same within noise"  # identical losses: the interval [0, 0]


def test_failed_run_listed_and_excluded(tmp_path: Path) -> None:
    fast, slow = write_sweeps(tmp_path, [0.50, 0.52], [0.49, 0.53])
    write_run(tmp_path / "fast" / "2_seed=2", seed=2, trainer=FAST, status="failed",
              accuracies=[0.1])
    write_run(tmp_path / "slow" / "2_seed=2", seed=2, trainer=SLOW, accuracies=[0.4, 0.5])
    result = equivalence(fast, slow)
    assert result["excluded"] == [{"setting": "fast", "seed": 2, "status": "failed",
                                   "path": str((tmp_path / "fast" / "2_seed=2").resolve())}]
    assert result["paired_seeds"] == [0, 1]
    assert result["paired_final_test_acc_difference"]["n"] == 2
    assert len(result["runs"]) == 6


def test_seeds_sorted_numerically(tmp_path: Path) -> None:
    finals = [0.5] * 11
    assert equivalence(*write_sweeps(tmp_path, finals, finals))["paired_seeds"] == list(range(11))


def test_runs_that_differ_beyond_the_switches_do_not_pair(tmp_path: Path) -> None:
    fast, slow = write_sweeps(tmp_path, [0.50], [0.49], {**FAST, "batch_size": 256})
    result = equivalence(fast, slow)
    assert result["verdict"] == "not enough runs" and result["paired_seeds"] == []
    assert result["unpaired"] == [str((tmp_path / "fast" / "0_seed=0").resolve())]
    assert equivalence([], slow)["status"] == "not run"


def test_projection_from_elapsed_seconds(tmp_path: Path) -> None:
    run = write_run(tmp_path / "paper", status="preempted", accuracies=[0.3, 0.4, 0.5, 0.6],
                    elapsed=[20.0, 23.0, 26.5, 29.5], wall_seconds=31.0,
                    seconds=[18.0, 2.8, 3.2, 2.9], images_per_s=[500, 20000, 19000, 21000])
    summary = json.loads((run / "summary.json").read_text())
    summary["config"]["trainer"]["epochs"] = 200
    (run / "summary.json").write_text(json.dumps(summary))
    result = projection(run, 100.0, 140.0)
    assert result["startup"] == pytest.approx(9.0)
    assert result["first"] == pytest.approx(20.0)
    assert result["steady"] == pytest.approx(3.0)  # median of 3, 3.5, 3
    assert result["projected_total"] == pytest.approx(626.0)
    assert result["meets_target"] is False
    assert result["epochs_measured"] == 4 and result["planned_epochs"] == 200
    assert result["median_epoch_seconds"] == pytest.approx(2.9)
    assert result["median_images_per_s"] == pytest.approx(20000)
    assert result["device_name"] == "NVIDIA H100"
    assert result["basis"] == (
        "projection from 4 measured epochs of 200 (run status preempted), not a full run")
    assert "626 s" in render({"device_name": "NVIDIA H100", "projection": result,
                              "equivalence": {"status": "not run", "reason": "x"}})


def test_projection_fallback_and_too_short(tmp_path: Path) -> None:
    old = write_run(tmp_path / "old", status="preempted", accuracies=[0.3, 0.4, 0.5, 0.6],
                    seconds=[15.0, 3.0, 3.2, 3.0], wall_seconds=31.0)
    result = projection(old, 100.0, 140.0)
    assert result["uses_elapsed_seconds"] is False
    assert result["steady"] == pytest.approx(3.0)
    assert result["first"] == pytest.approx(31.0 - 9.2)
    assert result["projected_total"] == pytest.approx(9.0 + 21.8 + 3 * 3.0)  # 4 epochs planned
    assert any("checkpoint writes and logging are not counted" in n for n in result["notes"])
    short = write_run(tmp_path / "short", status="preempted", accuracies=[0.3], elapsed=[40.0])
    result = projection(short, 100.0, 160.0)
    assert result["status"] == "no projection" and result["projected_total"] is None
    assert "only 1 epoch(s) completed" in result["basis"]
    assert projection(None, None, None)["status"] == "not run"


def test_cli_writes_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fast, slow = write_sweeps(tmp_path, [0.50, 0.52, 0.51], [0.49, 0.53, 0.50],
                              fast_losses=[1.90, 1.75, 1.95], slow_losses=[1.80, 1.85, 1.90])
    paper = write_run(tmp_path / "paper", status="preempted", accuracies=[0.3, 0.4, 0.5],
                      elapsed=[20.0, 23.0, 26.0])
    out = tmp_path / "out"
    status = main(["--fast-sweep", str(fast[0]), "--slow-sweep", str(slow[0]),
                   "--paper-run", str(paper), "--launched-at", "100", "--exited-at", "140",
                   "--out", str(out)])
    assert status == 0
    data = json.loads((out / "speed_check.json").read_text())
    assert list(data) == ["device_name", "inputs", "equivalence", "projection"]
    assert data["device_name"] == "NVIDIA H100"
    assert data["equivalence"]["verdict"] == "too noisy to tell"
    markdown = (out / "speed_check.md").read_text()
    assert markdown.startswith("# Speed check") and "too noisy to tell" in markdown
    assert "| 0 | fast | auto → bf16 | auto → True |" in markdown
    assert "TF32 (fp32 convolutions and matrix products on tensor cores): fast: not " \
        "recorded; slow: off (NVIDIA_TF32_OVERRIDE=0)." in markdown
    assert "**Training loss over the run, fast − slow, paired by seed:** +0.0167 nats" in markdown
    assert markdown.strip() in capsys.readouterr().out


def test_cli_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--paper-run", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert "not a directory" in error and error.count("\n") == 1
    assert main(["--launched-at", "soon"]) == 2
    assert main([]) == 0
    assert "Not run" in capsys.readouterr().out


def bench_record(config: str, images_per_s: float, warmup_seconds: float, **switches: Any):
    base = {"precision": "bf16", "channels_last": True, "compile": False,
            "cudnn_benchmark": True, "optimizer_step": "foreach", "compile_mode": "default"}
    return {"pipeline": "fast", "measure": "train", "batch_size": 128, "aug": "mixup",
            "config": config, "images_per_s": images_per_s, "warmup_seconds": warmup_seconds,
            "train_seconds_per_epoch": 50_000 / images_per_s, "switches": {**base, **switches}}


def test_best_setting_weighs_compilation_against_the_epochs_it_saves(tmp_path, capsys):
    bench = {"settings": {"switch_aug": "mixup"}, "measurements": [
        bench_record("fast", 20_000, 2.0),
        bench_record("compile reduce-overhead", 30_000, 60.0, compile=True,
                     compile_mode="reduce-overhead"),
        {**bench_record("classic", 90_000, 0.0), "pipeline": "classic", "switches": None},
        {**bench_record("fast", 99_000, 0.0), "batch_size": 512}]}
    # 200 epochs: 2 + 200 * 2.5 = 502 s against 60 + 200 * 5/3 = 393.3 s.
    best = best_setting(bench, 128, 200)
    assert best["config"] == "compile reduce-overhead"
    assert best["projected_training_seconds"] == pytest.approx(60 + 200 * 50_000 / 30_000)
    assert best_setting(bench, 128, 10)["config"] == "fast"  # 27 s against 76.7 s
    assert best_setting(bench, 256, 200) is None
    assert best_setting(bench, 128, 200, max_warmup=30)["config"] == "fast"  # compiles too long
    assert overrides(best["switches"]) == [
        "trainer.precision=bf16", "trainer.channels_last=true", "trainer.cudnn_benchmark=true",
        "trainer.compile=true", "trainer.compile_mode=reduce-overhead",
        "trainer.optimizer_step=foreach"]
    assert "compile_mode" not in " ".join(overrides(best_setting(bench, 128, 10)["switches"]))
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    assert main(["--best-overrides", str(path)]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == " ".join(overrides(best["switches"]))
    assert "compile reduce-overhead at 30,000 img/s" in printed.err
    path.write_text(json.dumps({"measurements": []}))
    assert main(["--best-overrides", str(path)]) == 0 and capsys.readouterr().out == ""
