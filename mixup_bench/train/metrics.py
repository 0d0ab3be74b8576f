"""Per-epoch metrics and where they go: metrics.jsonl, summary.json, the loggers.

Accuracy and calibration are computed from tensors on the device; nothing
here forces a host synchronisation except the explicit `.item()` calls made
once per epoch by the trainer.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..loggers import Loggers

ECE_BINS = 15  # as in Guo et al. 2017 and Thulasidasan et al. 2019


def reliability_bins(probabilities: torch.Tensor, labels: torch.Tensor,
                     bins: int = ECE_BINS) -> dict[str, torch.Tensor]:
    """Per confidence bin: how many predictions, their summed confidence, how many right.

    Bin b holds top-1 confidences in (b/bins, (b+1)/bins]; a confidence is
    always >= 1/K > 0. Tensors stay on the device.
    """
    confidence, prediction = probabilities.max(dim=1)
    correct = (prediction == labels).float()
    index = (confidence * bins).ceil().long().clamp(1, bins) - 1
    zeros = torch.zeros(bins, device=probabilities.device)
    return {"count": zeros.clone().index_add_(0, index, torch.ones_like(confidence)),
            "confidence_sum": zeros.clone().index_add_(0, index, confidence),
            "correct_sum": zeros.clone().index_add_(0, index, correct)}


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor,
                               bins: int = ECE_BINS) -> torch.Tensor:
    """ECE with equal-width confidence bins: sum_b |B|/N * |acc(B) - conf(B)|."""
    return calibration_error(reliability_bins(probabilities, labels, bins))


def calibration_error(table: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """ECE from reliability_bins' table: sum over bins of |confidence sum - correct sum| / N."""
    return (table["confidence_sum"] - table["correct_sum"]).abs().sum() / table["count"].sum()


def reliability_table(table: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """JSON-ready reliability diagram data: per bin count, mean confidence, accuracy."""
    count = table["count"].cpu()
    safe = count.clamp_min(1)
    bins = count.numel()
    return {"bins": bins, "edges": [round(b / bins, 6) for b in range(bins + 1)],
            "count": [int(c) for c in count.tolist()],
            "confidence": [float(v) if n else None for v, n in
                           zip((table["confidence_sum"].cpu() / safe).tolist(), count.tolist(),
                               strict=True)],
            "accuracy": [float(v) if n else None for v, n in
                         zip((table["correct_sum"].cpu() / safe).tolist(), count.tolist(),
                               strict=True)]}


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (and say so by the status)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """metrics.jsonl (one flushed line per epoch) plus the same row to the chosen loggers."""

    def __init__(self, run_dir: Path, loggers: Loggers | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.loggers = loggers if loggers is not None else Loggers({})

    def read(self) -> list[dict[str, Any]]:
        """The complete lines already written (a torn last line is ignored)."""
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return rows

    def truncate(self, epochs: int) -> list[dict[str, Any]]:
        """Keep only epochs 1..epochs (used on resume); return the rows kept."""
        rows = [row for row in self.read() if row.get("epoch", 0) <= epochs]
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(json.dumps(row) + "\n" for row in rows))
        os.replace(temporary, self.path)
        return rows

    def append(self, row: Mapping[str, Any]) -> None:
        row = {key: _clean(value) for key, value in row.items()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.loggers.log_metrics(row, row["epoch"])

    def add_image(self, tag: str, image: Any) -> None:
        """An (height, width, 3) uint8 array, to every logger."""
        self.loggers.log_image(tag, image)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """The final summary to every logger, which then closes."""
        self.loggers.finish(summary)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """final / best / mean- and median-of-last-10 test accuracy from the per-epoch rows
    (and the validation split's, when there is one).

    The median of the last 10 epochs is what the Mixup authors' repository and
    OpenMixup report; the mean is kept beside it.
    """
    return {**_test_summary(rows), **_validation_summary(rows)}


def _validation_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """final and median-of-last-10 validation accuracy, final validation loss and ECE: what
    settings are chosen on (report --select-by, the Hydra job's return value)."""
    measured = [row for row in rows if row.get("val_acc") is not None]
    if not measured:
        return {}
    last = [row["val_acc"] for row in measured[-10:]]
    return {"final_val_acc": measured[-1]["val_acc"], "last10_median_val_acc":
            statistics.median(last), "final_val_loss": measured[-1].get("val_loss"),
            "final_val_ece": measured[-1].get("val_ece")}


def _test_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    accuracies = [row["test_acc"] for row in rows if row.get("test_acc") is not None]
    if not accuracies:
        return {"final_test_acc": None, "best_test_acc": None, "best_epoch": None,
                "last10_test_acc": None, "last10_median_test_acc": None,
                "epochs_completed": len(rows)}
    best = max(range(len(accuracies)), key=accuracies.__getitem__)
    last = accuracies[-10:]
    return {
        "final_test_acc": accuracies[-1],
        "best_test_acc": accuracies[best],
        "best_epoch": rows[best]["epoch"],
        "last10_test_acc": sum(last) / len(last),
        "last10_median_test_acc": statistics.median(last),
        "epochs_completed": len(rows),
    }
