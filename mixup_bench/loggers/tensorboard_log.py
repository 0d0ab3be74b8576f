"""TensorBoard: event files in the run directory's tb/ (the default logger).

Scalars are tagged `train/loss`, `test/acc` ... (the metrics.jsonl key with
its first underscore as a slash); the sample grid is the image `samples`;
at the end the config and the final accuracies go to the HPARAMS tab. A
resumed run adds an event file to the same tb/, which TensorBoard reads as
one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import flatten
from .base import Place

HPARAM_METRICS = ("final_test_acc", "best_test_acc", "last10_test_acc", "last10_median_test_acc",
                  "final_val_acc", "last10_median_val_acc")  # the val ones: with data.val_fraction


def open_logger(options: Mapping[str, Any], place: Place,
                state: Mapping[str, Any] | None) -> tuple[TensorBoardLogger, None]:
    return TensorBoardLogger(place), None


class TensorBoardLogger:
    def __init__(self, place: Place) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(place.run_dir / "tb"))
        self.config: Mapping[str, Any] = {}

    def log_params(self, config: Mapping[str, Any]) -> None:
        self.config = config  # written with the final metrics: add_hparams takes both at once

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        for key, value in metrics.items():
            if key == "epoch" or value is None:
                continue
            group, _, name = key.partition("_")
            tag = f"{group}/{name}" if group in ("train", "test", "val") else key
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def log_image(self, name: str, image: Any) -> None:
        self.writer.add_image(name, image, 0, dataformats="HWC")
        self.writer.flush()

    def finish(self, summary: Mapping[str, Any]) -> None:
        """The run's settings and final metrics for the HPARAMS tab (in tb/ itself)."""
        hparams = {}
        for key, value in flatten(self.config).items():
            if key.startswith(("data.root", "hydra.", "logger.")):
                continue
            hparams[key] = value if isinstance(value, (bool, str, int, float)) else str(value)
        hparams["status"] = str(summary.get("status"))
        results = {f"hparam/{key}": summary[key] for key in HPARAM_METRICS
                   if isinstance(summary.get(key), (int, float))}
        if results:
            # run_name="." keeps the hparams in this run's tb/ instead of a timestamped sub-run.
            self.writer.add_hparams(hparams, results, run_name=".")
        self.writer.close()
