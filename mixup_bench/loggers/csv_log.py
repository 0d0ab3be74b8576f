"""CSV: metrics.csv in the run directory, one row per epoch, the metrics.jsonl keys as columns.

For spreadsheets and pandas. The config, the summary and the sample grid are
already plain files beside it (.hydra/config.yaml, summary.json,
samples.png), so this logger writes only the rows. Columns are the keys in
the order the first row has them; a key first seen later (none today) adds
a column, and the file is rewritten with it. An empty cell is a value
metrics.jsonl holds as null.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from typing import Any

from .base import Place

FILE = "metrics.csv"


def open_logger(options: Mapping[str, Any], place: Place,
                state: Mapping[str, Any] | None) -> tuple[CsvLogger, None]:
    return CsvLogger(place), None


class CsvLogger:
    def __init__(self, place: Place) -> None:
        self.path = place.run_dir / FILE
        self.rows: list[dict[str, str]] = []
        self.columns: list[str] = []
        if self.path.is_file() and place.first_epoch > 1:  # resume: keep the epochs kept
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = [row for row in reader
                             if row.get("epoch", "").isdigit()
                             and int(row["epoch"]) < place.first_epoch]
        self._write()

    def log_params(self, config: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        row = {key: "" if value is None else repr(value) for key, value in metrics.items()}
        self.columns += [key for key in row if key not in self.columns]
        self.rows = [old for old in self.rows if old.get("epoch") != row.get("epoch")] + [row]
        self._write()

    def log_image(self, name: str, image: Any) -> None:
        pass

    def finish(self, summary: Mapping[str, Any]) -> None:
        pass

    def _write(self) -> None:
        """The whole file, atomically: a few hundred rows at most, so a crash never tears it."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", newline="") as handle:
            if self.columns:  # before the first epoch: an empty file
                writer = csv.DictWriter(handle, fieldnames=self.columns, restval="")
                writer.writeheader()
                writer.writerows(self.rows)
        os.replace(temporary, self.path)
