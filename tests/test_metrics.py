"""metrics: ECE against a hand computation, summaries, the JSONL log."""

from __future__ import annotations

import json

import pytest
import torch

from mixup_bench.train.metrics import MetricsLog, expected_calibration_error, summarise


def test_ece_matches_a_hand_computed_value():
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.3 (right) with 3 classes.
    probabilities = torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1],
                                  [0.3, 0.35, 0.35]])
    labels = torch.tensor([0, 1, 0, 1])
    # Bins (15 equal widths): 0.9 -> bin 13, 0.6 -> bin 8, 0.35 -> bin 5 (argmax is class 1).
    # |acc - conf| * share: bin13: |0.5 - 0.9| * 2/4, bin8: |1 - 0.6| / 4, bin5: |1 - 0.35| / 4
    expected = 0.4 * 0.5 + 0.4 * 0.25 + 0.65 * 0.25
    assert expected_calibration_error(probabilities, labels).item() == pytest.approx(expected)


def test_ece_is_zero_for_a_perfectly_calibrated_predictor():
    probabilities = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probabilities, torch.tensor([0, 1])).item() == 0.0


def test_summarise_final_best_and_mean_of_last_ten():
    rows = [{"epoch": epoch, "test_acc": acc} for epoch, acc in
            enumerate([0.1 * i for i in range(1, 13)], start=1)]
    summary = summarise(rows)
    assert summary["final_test_acc"] == pytest.approx(1.2)
    assert summary["best_epoch"] == 12
    assert summary["last10_test_acc"] == pytest.approx(sum(0.1 * i for i in range(3, 13)) / 10)
    assert summarise([])["final_test_acc"] is None
    few = summarise([{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.3}])
    assert few["best_test_acc"] == 0.5 and few["last10_test_acc"] == pytest.approx(0.4)


def test_metrics_log_appends_reads_back_and_ignores_a_torn_line(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    log.append({"epoch": 1, "test_acc": 0.5, "train_loss": float("nan")})
    log.append({"epoch": 2, "test_acc": 0.6})
    with log.path.open("a") as handle:
        handle.write('{"epoch": 3, "test_ac')
    rows = log.read()
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[0]["train_loss"] is None  # NaN is not JSON
    assert json.loads(log.path.read_text().splitlines()[0])["test_acc"] == 0.5
    assert [row["epoch"] for row in log.truncate(1)] == [1]
    assert log.path.read_text().count("\n") == 1


def test_reliability_table_gives_per_bin_count_confidence_and_accuracy():
    from mixup_bench.train.metrics import reliability_bins, reliability_table

    probabilities = torch.tensor([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1]])
    table = reliability_table(reliability_bins(probabilities, torch.tensor([0, 1, 0])))
    assert table["bins"] == 15 and len(table["edges"]) == 16
    assert table["count"][13] == 2 and table["count"][8] == 1 and sum(table["count"]) == 3
    assert table["confidence"][13] == pytest.approx(0.9) and table["accuracy"][13] == 0.5
    assert table["accuracy"][8] == 1.0 and table["accuracy"][0] is None


def test_summarise_gives_the_median_of_the_last_ten():
    # 12 epochs; the last 10 are 0.90, 0.10, 0.80, 0.20, 0.70, 0.30, 0.60, 0.40, 0.55, 0.95:
    # sorted, the middle two are 0.55 and 0.60, so the median is 0.575 (the mean is 0.55).
    accuracies = [0.0, 0.99, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.55, 0.95]
    rows = [{"epoch": epoch, "test_acc": acc} for epoch, acc in enumerate(accuracies, start=1)]
    summary = summarise(rows)
    assert summary["last10_median_test_acc"] == pytest.approx(0.575)
    assert summary["last10_test_acc"] == pytest.approx(0.55)
    assert summarise(rows[:3])["last10_median_test_acc"] == pytest.approx(0.9)  # 0, .99, .9
    assert summarise([])["last10_median_test_acc"] is None


def test_report_computes_the_median_from_metrics_jsonl_for_old_runs(tmp_path):
    from mixup_bench.report.runs.rundirs import ACCURACY_METRICS, load_run

    run_dir = tmp_path / "old-run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(
        "seed: 0\nalpha: null\naug: {name: none}\nmodel: {name: resnet18}\n")
    accuracies = [0.0, 0.99, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.55, 0.95]
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": epoch, "test_acc": acc}) + "\n"
        for epoch, acc in enumerate(accuracies, start=1)))
    # A summary from before the median existed: the report computes it from metrics.jsonl.
    (run_dir / "summary.json").write_text(json.dumps(
        {"status": "finished", "final_test_acc": 0.95, "last10_test_acc": 0.55}))
    run = load_run(run_dir)
    assert run.metric("last10_median_test_acc") == pytest.approx(0.575)
    assert ACCURACY_METRICS.index("last10_median_test_acc") == (
        ACCURACY_METRICS.index("last10_test_acc") + 1)
