"""Calibration in `mixup-bench report`: the final ECE per group and the reliability figure.

Runs are written with test_report.write_run and then given `test_ece` lines
and a summary.json `reliability` table, as newer `mixup-bench train` writes them.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats

from mixup_bench.report.build import build_report, figure_notes, summarise_groups, write_report
from mixup_bench.report.rendering.figures_calibration import MAX_RELIABILITY_PANELS
from mixup_bench.report.stats import pool_reliability

from .test_report import PNG_MAGIC, load_all, report_in_fresh_python, write_run

BINS = 15
EDGES = [round(index / BINS, 6) for index in range(BINS + 1)]


def set_ece(path: Path, final: float, earlier: float = 0.5) -> None:
    """Give every metrics line a test_ece: `earlier` before the last epoch, `final` at it."""
    lines = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line["test_ece"] = earlier
    lines[-1]["test_ece"] = final
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def table(bins: dict[int, tuple[int, float, float]]) -> dict[str, Any]:
    """A reliability table; `bins` maps bin index -> (count, confidence, accuracy)."""
    return {
        "epoch": 3,
        "bins": BINS,
        "edges": list(EDGES),
        "count": [bins.get(index, (0, None, None))[0] for index in range(BINS)],
        "confidence": [bins.get(index, (0, None, None))[1] for index in range(BINS)],
        "accuracy": [bins.get(index, (0, None, None))[2] for index in range(BINS)],
    }


def set_reliability(path: Path, reliability: Any) -> None:
    summary = json.loads((path / "summary.json").read_text())
    summary["reliability"] = reliability
    (path / "summary.json").write_text(json.dumps(summary))


SEED_TABLES = [
    table({13: (10, 0.85, 0.8), 10: (4, 0.70, 0.5)}),
    table({13: (30, 0.88, 0.9), 14: (5, 0.97, 1.0)}),
]


def write_calibrated_group(root: Path) -> list[Path]:
    """mixup alpha 0.2, seeds 0-3: ECE 0.02, 0.03, 0.04 and one older run without test_ece;
    reliability tables for seeds 0 and 1, none for seeds 2 and 3."""
    paths = [
        write_run(root, f"mixup_s{seed}", final=0.93, seed=seed, aug="mixup", alpha=0.2)
        for seed in range(4)
    ]
    for path, ece in zip(paths[:3], (0.02, 0.03, 0.04), strict=True):
        set_ece(path, ece)
    for path, reliability in zip(paths[:2], SEED_TABLES, strict=True):
        set_reliability(path, reliability)
    return paths


def test_final_ece_statistics_match_hand_computation(tmp_path: Path) -> None:
    write_calibrated_group(tmp_path)
    [group] = summarise_groups(load_all(tmp_path))[1]
    ece = group.metrics["final_test_ece"]
    # The last epoch's values 0.02, 0.03, 0.04 (earlier epochs' 0.5 ignored); the older run
    # without test_ece gives no value: mean 0.03, std 0.01, df 2, t = 4.303.
    half = scipy_stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # 4.303
    assert ece.n == 3 and group.metrics["final_test_acc"].n == 4
    assert ece.mean == pytest.approx(0.03) and ece.std == pytest.approx(0.01)
    assert (ece.low, ece.high) == (pytest.approx(0.03 - half),
                                   pytest.approx(0.03 + half))

    out = tmp_path / "out"
    write_report(build_report([tmp_path], []), out)
    markdown = (out / "REPORT.md").read_text()
    assert "final ECE % (mean ± std)" in markdown and "ECE 95% CI" in markdown
    assert "| 3.00 ± 1.00 | [0.52, 5.48] | 3 |" in markdown
    with open(out / "report.csv") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["final_test_ece_n"] == "3"
    assert float(row["final_test_ece_mean"]) == pytest.approx(0.03)
    assert float(row["final_test_ece_std"]) == pytest.approx(0.01)
    assert float(row["final_test_ece_ci_low"]) == pytest.approx(0.03 - half)
    assert float(row["final_test_ece_ci_high"]) == pytest.approx(0.03 + half)
    data = json.loads((out / "report.json").read_text())
    stored = data["groups"][0]["metrics"]["final_test_ece"]
    assert stored["n"] == 3 and stored["mean"] == pytest.approx(0.03)
    assert stored["half_width"] == pytest.approx(half)


def test_paired_ece_difference_to_no_mixing(tmp_path: Path) -> None:
    for seed, (none_ece, mixup_ece) in enumerate([(0.05, 0.02), (0.06, 0.025)]):
        set_ece(write_run(tmp_path, f"none{seed}", final=0.9, seed=seed), none_ece)
        mixup = write_run(tmp_path, f"mixup{seed}", final=0.92, seed=seed, aug="mixup", alpha=0.2)
        set_ece(mixup, mixup_ece)
    _, groups = summarise_groups(load_all(tmp_path))
    mixup = next(group for group in groups if group.group.settings["aug.name"] == "mixup")
    paired = mixup.paired["final_test_ece"]
    assert paired.n == 2 and paired.mean == pytest.approx(-0.0325)


def test_pooled_reliability_matches_hand_computation(tmp_path: Path) -> None:
    pooled = pool_reliability(SEED_TABLES + [None, {"edges": "broken"}])
    assert pooled is not None and pooled["runs"] == 2 and pooled["edges"] == EDGES
    # Bin 13: (0.8 * 10 + 0.9 * 30) / 40 = 0.875 accuracy; (0.85 * 10 + 0.88 * 30) / 40 = 0.8725.
    assert pooled["count"][13] == 40
    assert pooled["accuracy"][13] == pytest.approx(0.875)
    assert pooled["confidence"][13] == pytest.approx(0.8725)
    # Bins only one seed filled keep that seed's values; empty bins stay null with count 0.
    assert (pooled["count"][14], pooled["accuracy"][14]) == (5, pytest.approx(1.0))
    assert (pooled["count"][10], pooled["accuracy"][10]) == (4, pytest.approx(0.5))
    assert pooled["count"][0] == 0 and pooled["accuracy"][0] is None
    assert pooled["confidence"][0] is None
    assert sum(pooled["count"]) == 49

    write_calibrated_group(tmp_path)
    [group] = summarise_groups(load_all(tmp_path))[1]
    assert group.reliability == pooled  # seeds 2 and 3 have no table and are left out


def test_pooling_leaves_out_differently_binned_tables() -> None:
    coarse = {
        "edges": [0.0, 0.5, 1.0],
        "count": [2, 8],
        "confidence": [0.4, 0.9],
        "accuracy": [0.5, 0.75],
    }
    pooled = pool_reliability([coarse, SEED_TABLES[0]])
    assert pooled["runs"] == 1 and pooled["bins"] == 2 and pooled["accuracy"] == [0.5, 0.75]
    assert pool_reliability([None, {}, {"edges": [0, 1], "count": [1]}]) is None


def test_reliability_figure_is_drawn_and_linked(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_calibrated_group(runs)
    write_run(runs, "none_s0", final=0.9)  # an older run: no test_ece, no reliability
    out = tmp_path / "out"
    written = write_report(build_report([runs], []), out)
    assert out / "reliability.png" in written
    assert (out / "reliability.png").read_bytes().startswith(PNG_MAGIC)
    markdown = (out / "REPORT.md").read_text()
    assert "![Reliability diagrams at the last epoch, one per group" in markdown
    assert "](reliability.png)" in markdown
    assert "1 group(s) without reliability data in summary.json are left out" in markdown
    data = json.loads((out / "report.json").read_text())
    assert data["figures"]["reliability.png"] is True
    by_label = {group["settings"]["aug.name"]: group for group in data["groups"]}
    assert by_label["mixup"]["reliability"]["accuracy"][13] == pytest.approx(0.875)
    assert by_label["none"]["reliability"] is None
    assert by_label["none"]["metrics"]["final_test_ece"]["mean"] is None


def test_older_runs_without_calibration_give_no_value(tmp_path: Path) -> None:
    write_run(tmp_path, "none_s0", final=0.9)
    write_run(tmp_path, "none_s1", final=0.91, seed=1)
    broken = write_run(tmp_path, "none_s2", final=0.92, seed=2)
    set_reliability(broken, {"bins": 15, "edges": [0.0, 1.0], "count": [1, 2]})  # malformed
    report = build_report([tmp_path], [])
    [group] = report.groups
    assert group.metrics["final_test_ece"].n == 0 and group.metrics["final_test_ece"].mean is None
    assert group.reliability is None
    out = tmp_path / "out"
    write_report(report, out)
    assert not (out / "reliability.png").exists()
    markdown = (out / "REPORT.md").read_text()
    assert "| n/a | n/a | 0 |" in markdown
    assert "reliability.png: not drawn (no finished run has `reliability` in summary.json)" in (
        markdown
    )
    with open(out / "report.csv") as handle:
        [row] = list(csv.DictReader(handle))
    assert row["final_test_ece_n"] == "0" and row["final_test_ece_mean"] == ""
    assert json.loads((out / "report.json").read_text())["figures"]["reliability.png"] is False


def test_more_groups_than_panels_are_cut_and_said(tmp_path: Path) -> None:
    count = MAX_RELIABILITY_PANELS + 1
    for index in range(count):
        path = write_run(
            tmp_path, f"mixup_a{index}", final=0.9, aug="mixup", alpha=0.1 * (index + 1)
        )
        set_reliability(path, SEED_TABLES[0])
    notes = figure_notes(build_report([tmp_path], []))
    expected = f"only the first {MAX_RELIABILITY_PANELS} of {count} groups are shown"
    assert notes == {"reliability.png": expected}


def test_report_with_reliability_never_imports_torch(tmp_path: Path) -> None:
    write_calibrated_group(tmp_path)
    figure = str(tmp_path / "reliability.png")
    report_in_fresh_python(tmp_path, f"assert open({figure!r}, 'rb').read(4) == b'\\x89PNG'")
