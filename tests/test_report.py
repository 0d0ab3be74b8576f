"""Tests for `mixup-bench report`: run directories are written by hand into tmp_path,
so the report is checked against the file contract alone, without training anything."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixup_bench.report.build import build_report, summarise_groups, write_report
from mixup_bench.report.cli import main
from mixup_bench.report.judgement.claim_schema import load_claims, validate_claim
from mixup_bench.report.judgement.judging import INCONCLUSIVE, NOT_RUN, SUPPORTED
from mixup_bench.report.judgement.verdicts import evaluate_claims
from mixup_bench.report.runs.grouping import matches, pair_runs
from mixup_bench.report.runs.rundirs import (
    ALWAYS_SHOWN,
    AUGMENTATION_KEYS,
    find_run_directories,
    load_run,
)
from mixup_bench.report.stats import estimate, welch_difference

REPOSITORY = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(
    root: Path,
    name: str,
    *,
    final: float,
    aug: str = "none",
    alpha: float | None = None,
    fraction: float = 1.0,
    model: str = "resnet18",
    epochs: int = 3,
    seed: int = 0,
    status: str = "finished",
    checksums: str = "verified",
    extra: dict[str, Any] | None = None,
) -> Path:
    """A run directory as `mixup-bench train` would leave it (config, metrics, summary)."""
    path = root / name
    (path / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "alpha": alpha,
        "experiment": None,
        "aug": {"name": aug},
        "data": {
            "name": "cifar10",
            "fraction": fraction,
            "root": f"/scratch/{name}",
            "download": False,
        },
        "model": {"name": model, "zero_init_last": False},
        "optim": {"lr": 0.1, "weight_decay": 5e-4},
        "trainer": {"epochs": epochs, "batch_size": 128, "device": f"cuda:{seed}"},
    }
    for dotted, value in (extra or {}).items():
        section, key = dotted.split(".")
        config.setdefault(section, {})[key] = value
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    accuracies = [final - 0.01 * (epochs - epoch) for epoch in range(1, epochs + 1)]
    lines = [
        {
            "epoch": epoch,
            "train_loss": 2.0 / epoch,
            "train_acc": 0.5,
            "test_loss": 0.4,
            "test_acc": accuracy,
            "lr": 0.1,
            "seconds": 1.0,
            "images_per_s": 1000.0,
        }
        for epoch, accuracy in enumerate(accuracies, start=1)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = {
        "status": status,
        "error": "boom" if status == "failed" else None,
        "epochs_completed": epochs,
        "final_test_acc": final,
        "best_test_acc": max(accuracies),
        "best_epoch": epochs,
        "last10_test_acc": sum(accuracies) / len(accuracies),
        "wall_seconds": 3.0,
        "config": config,
        "overrides": [],
        "environment": {
            "device": "cuda",
            "device_name": "NVIDIA H100",
            "data_checksums": checksums,
        },
    }
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def write_pairs(root: Path, baseline: list[float], treatment: list[float], **settings: Any) -> None:
    """Seeds 0.. of aug=none with `baseline` accuracies, of mixup (alpha 0.2) with `treatment`."""
    tag = "_".join(f"{key}{value}" for key, value in settings.items())
    for seed, final in enumerate(baseline):
        write_run(root, f"none{tag}_s{seed}", final=final, seed=seed, **settings)
    for seed, final in enumerate(treatment):
        write_run(
            root, f"mixup{tag}_s{seed}", final=final, seed=seed, aug="mixup", alpha=0.2, **settings
        )


def load_all(root: Path) -> list:
    return [load_run(path) for path in find_run_directories([root])]


GAIN_CLAIM = {
    "id": "test-gain",
    "source": "test",
    "statement": "mixup helps",
    "kind": "gain",
    "baseline": {"aug.name": "none", "model.name": "resnet18"},
    "treatment": {"aug.name": "mixup", "alpha": 0.2, "model.name": "resnet18"},
    "published_baseline": 92.3,
    "published_treatment": 94.1,
}


def test_estimate_matches_hand_computation() -> None:
    result = estimate([0.90, 0.92, 0.94])
    assert result.n == 3
    assert result.mean == pytest.approx(0.92)
    assert result.std == pytest.approx(0.02)
    assert result.half_width == pytest.approx(4.303 * 0.02 / math.sqrt(3), rel=1e-4)
    assert estimate([0.9]).low is None and estimate([]).mean is None


def test_welch_difference_matches_hand_computation() -> None:
    first, second = [0.05, 0.07, 0.06], [0.01, 0.02, 0.03]
    result = welch_difference(first, second)
    standard_error = math.sqrt(0.01**2 / 3 + 0.01**2 / 3)  # both sample stds are 0.01; df = 4
    assert result.mean == pytest.approx(0.04)
    assert result.half_width == pytest.approx(2.776 * standard_error, rel=1e-3)


def test_groups_by_the_keys_that_differ(tmp_path: Path) -> None:
    write_pairs(tmp_path, [0.90, 0.92], [0.93, 0.95])
    write_run(tmp_path, "lr_s0", final=0.91, extra={"optim.lr": 0.05})
    write_run(
        tmp_path, "none_with_alpha", final=0.94, seed=2, alpha=0.7
    )  # alpha is irrelevant without mixing
    columns, groups = summarise_groups(load_all(tmp_path))
    assert columns == list(ALWAYS_SHOWN) + ["optim.lr"]
    assert "data.root" not in columns and "trainer.device" not in columns and "seed" not in columns
    sizes = {
        (group.group.settings["aug.name"], group.group.settings["optim.lr"]): group.metrics[
            "final_test_acc"
        ].n
        for group in groups
    }
    assert sizes == {("none", 0.1): 3, ("mixup", 0.1): 2, ("none", 0.05): 1}
    unmixed = next(
        group
        for group in groups
        if group.group.settings["aug.name"] == "none" and group.metrics["final_test_acc"].n == 3
    )
    assert unmixed.group.settings["alpha"] is None
    assert unmixed.metrics["final_test_acc"].mean == pytest.approx(0.92)


def test_paired_difference_to_no_mixing(tmp_path: Path) -> None:
    write_pairs(tmp_path, [0.90, 0.92, 0.91], [0.93, 0.94, 0.95])
    runs = load_all(tmp_path)
    _, groups = summarise_groups(runs)
    mixup = next(group for group in groups if group.group.settings["aug.name"] == "mixup")
    paired = mixup.paired["final_test_acc"]
    expected = estimate([0.03, 0.02, 0.04])
    assert paired.n == 3
    assert paired.mean == pytest.approx(expected.mean) and paired.std == pytest.approx(expected.std)
    assert paired.low == pytest.approx(expected.low)
    treated = [run for run in runs if run.settings["aug.name"] == "mixup"]
    assert sorted(pair.seed for pair in pair_runs(treated, runs, AUGMENTATION_KEYS)) == [0, 1, 2]


def test_selector_compares_numbers_with_tolerance(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path, "r", final=0.9, aug="mixup", alpha=0.2000000001, fraction=1))
    assert matches(
        run,
        {"alpha": 0.2, "data.fraction": 1.0, "aug.name": "MixUp", "model.name": ["x", "resnet18"]},
    )
    assert not matches(run, {"alpha": 0.4})


def test_error_rate_claim(tmp_path: Path) -> None:
    """Error rates: the change is signed so that a lower error is the claimed direction."""
    write_pairs(tmp_path, [0.944, 0.946, 0.945], [0.958, 0.959, 0.961], model="preact_resnet18",
                epochs=200)
    claim = {
        "id": "paper",
        "source": "test",
        "statement": "5.6 -> 4.2",
        "kind": "error_rate",
        "metric": "final_test_acc",
        "baseline": {"aug.name": "none", "model.name": "preact_resnet18"},
        "treatment": {"aug.name": "mixup", "model.name": "preact_resnet18"},
        "published_baseline": 5.6,
        "published_treatment": 4.2,
    }
    [result] = evaluate_claims([claim], load_all(tmp_path))
    assert result.verdict == SUPPORTED, result.reason
    assert result.measured.startswith("error 5.50% → 4.07%")
    assert result.effect.mean == pytest.approx(0.01433, abs=1e-5)
    assert result.evidence.change == pytest.approx(0.014)


def test_gain_larger_compares_two_paired_gains(tmp_path: Path) -> None:
    write_pairs(tmp_path, [0.60, 0.61, 0.62], [0.66, 0.66, 0.69], fraction=0.1, epochs=200)
    write_pairs(tmp_path, [0.90, 0.91, 0.92], [0.91, 0.92, 0.935], fraction=1.0, epochs=200)
    claim = {
        "id": "larger",
        "source": "test",
        "statement": "bigger gain with less data",
        "kind": "gain_larger",
        "baseline": {"aug.name": "none"},
        "treatment": {"aug.name": "mixup", "alpha": 0.2},
        "larger": {"data.fraction": 0.1},
        "smaller": {"data.fraction": 1.0},
    }
    [larger] = evaluate_claims([claim], load_all(tmp_path))
    assert larger.verdict == SUPPORTED, larger.reason
    assert larger.effect.mean == pytest.approx(
        estimate([0.06, 0.05, 0.07]).mean - estimate([0.01, 0.01, 0.015]).mean
    )


def write_broken_runs(root: Path) -> None:
    write_run(root, "failed", final=0.5, status="failed")
    running = write_run(root, "running", final=0.7, status="running")
    with open(running / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "test_a')  # killed mid-write
    corrupt = write_run(root, "corrupt", final=0.9)
    (corrupt / "summary.json").write_text("{not json")
    no_summary = write_run(root, "no_summary", final=0.8)
    (no_summary / "summary.json").unlink()


def test_unfinished_runs_are_listed_not_averaged(tmp_path: Path) -> None:
    write_pairs(tmp_path, [0.90, 0.92], [0.93, 0.95])
    write_broken_runs(tmp_path)
    report = build_report([tmp_path], [])
    statuses = {run.path.name: run.status for run in report.unfinished}
    assert statuses == {
        "failed": "failed",
        "running": "running",
        "corrupt": "unreadable",
        "no_summary": "no summary",
    }
    running = next(run for run in report.unfinished if run.path.name == "running")
    assert any("truncated last line" in problem for problem in running.problems)
    assert running.epochs_completed == 3
    no_summary = next(run for run in report.unfinished if run.path.name == "no_summary")
    assert no_summary.metric("final_test_acc") == pytest.approx(0.8)  # computed from metrics.jsonl
    assert sum(group.metrics["final_test_acc"].n for group in report.groups) == 4
    write_report(report, tmp_path / "out")
    markdown = (tmp_path / "out" / "REPORT.md").read_text()
    section = markdown.split("## Runs not finished")[1]
    for name in ("failed", "running", "corrupt", "no_summary"):
        assert name in section
    assert "summary.json unreadable" in section and "boom" in section
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(data["unfinished"]) == 4 and data["runs"]["finished"] == 4


def test_main_writes_every_file(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_pairs(runs, [0.90, 0.91, 0.92], [0.93, 0.935, 0.95])
    for seed, final in enumerate([0.91, 0.92]):
        write_run(
            runs,
            f"alpha1_s{seed}",
            final=final,
            seed=seed,
            aug="mixup",
            alpha=1.0,
            checksums="mismatch_accepted",
        )
    write_broken_runs(runs)
    out = tmp_path / "out"
    assert main([str(runs), "--out", str(out)]) == 0
    for name in ("curves_test_acc.png", "acc_vs_alpha.png", "curves_train_loss.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "REPORT.md").read_text()
    for heading in (
        "## Results",
        "## Claims",
        "## Verdict rules",
        "## Provenance",
        "## Runs not finished",
    ):
        assert heading in markdown
    assert "not the official CIFAR files" in markdown
    assert "93.83 ± 1.04" in markdown  # mixup alpha 0.2: mean and std of 93, 93.5, 95
    with open(out / "report.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    data = json.loads((out / "report.json").read_text())
    claims = {claim["id"]: claim for claim in data["claims"]}
    assert claims["article-resnet18-mixup-gain"]["verdict"] == INCONCLUSIVE
    assert "shorter than 200 epochs" in claims["article-resnet18-mixup-gain"]["reason"]
    assert claims["mixup-paper-preact-resnet18"]["verdict"] == NOT_RUN


def test_main_defaults_out_to_first_directory_and_reports_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    assert main([str(tmp_path)]) == 1
    write_run(tmp_path, "only", final=0.9)
    assert main([str(tmp_path)]) == 0
    assert (tmp_path / "REPORT.md").is_file()
    assert "acc_vs_alpha.png: not drawn" in (tmp_path / "REPORT.md").read_text()


def test_packaged_claims_load_and_bad_claims_are_refused() -> None:
    claims = load_claims()
    ids = [claim["id"] for claim in claims]
    assert len(ids) == len(set(ids)) >= 5
    assert {"gain", "gain_larger", "alpha_too_large", "error_rate"} <= {
        claim["kind"] for claim in claims
    }
    with pytest.raises(ValueError, match="unknown kind"):
        validate_claim({"id": "x", "source": "s", "statement": "t", "kind": "vibes"})
    with pytest.raises(TypeError, match="treatment"):
        validate_claim({"id": "x", "source": "s", "statement": "t", "kind": "gain", "baseline": {}})


def test_report_never_imports_torch(tmp_path: Path) -> None:
    write_pairs(tmp_path, [0.90, 0.91], [0.93, 0.94])
    report_in_fresh_python(tmp_path)


def report_in_fresh_python(directory: Path, *checks: str) -> None:
    """Run the report on `directory` in a new interpreter; torch must never be imported."""
    script = "\n".join([
        "import sys",
        "from mixup_bench.report.cli import main",
        f"assert main([{str(directory)!r}]) == 0",
        *checks,
        "assert 'torch' not in sys.modules, 'report imported torch'",
    ])
    completed = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPOSITORY,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
