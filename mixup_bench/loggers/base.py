"""The logger interface, the fan-out to the chosen loggers, and where tracker runs are noted.

A logger mirrors one run directory: metrics.jsonl stays the record the report
reads, and a logger copies its rows to a tracker (TensorBoard, a CSV file,
MLflow, W&B) so that runs can be browsed there. A resumed run continues the
same tracker run: its id is kept in the run directory's trackers.json.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..jsonio import read_json_mapping, write_json_atomic

log = logging.getLogger(__name__)

TRACKERS_FILE = "trackers.json"


@dataclass(frozen=True)
class Place:
    """Where a run writes: its directory, the sweep's (None for a single run), and the first
    epoch this process trains (1, or the epoch after the checkpoint it resumes from)."""

    run_dir: Path
    sweep_dir: Path | None = None
    first_epoch: int = 1

    @property
    def store_root(self) -> Path:
        """The folder a local tracker store goes in: shared by a sweep's runs."""
        return self.sweep_dir if self.sweep_dir is not None else self.run_dir


class Logger(Protocol):
    """What every logger does; each call may be a no-op where the backend has no use for it."""

    def log_params(self, config: Mapping[str, Any]) -> None:
        """The resolved config (nested), once per process."""

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        """One metrics.jsonl row (None for a non-finite value) at step = its epoch."""

    def log_image(self, name: str, image: Any) -> None:
        """An (height, width, 3) uint8 array, e.g. the sample grid."""

    def finish(self, summary: Mapping[str, Any]) -> None:
        """The final summary (summary.json's content); then close."""


def summary_scalars(summary: Mapping[str, Any]) -> dict[str, float]:
    """summary.json's top-level numbers (final and median accuracies, epochs, seconds)."""
    return {key: float(value) for key, value in summary.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


class Loggers:
    """The chosen loggers as one: each call goes to every logger.

    A tracker that fails mid-run (a server gone, a full disk) is logged once and
    switched off; the run goes on, since metrics.jsonl and summary.json hold
    everything a tracker would.
    """

    def __init__(self, loggers: Mapping[str, Logger]) -> None:
        self.loggers = dict(loggers)

    def _each(self, method: str, *args: Any) -> None:
        for name, logger in list(self.loggers.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as error:  # noqa: BLE001 - a tracker must not end the run
                log.error("logger %s failed in %s (%s: %s); it is off for the rest of this "
                          "run", name, method, type(error).__name__, error)
                del self.loggers[name]

    def log_params(self, config: Mapping[str, Any]) -> None:
        self._each("log_params", config)

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        self._each("log_metrics", metrics, step)

    def log_image(self, name: str, image: Any) -> None:
        self._each("log_image", name, image)

    def finish(self, summary: Mapping[str, Any]) -> None:
        self._each("finish", summary)
        self.loggers.clear()


def read_trackers(run_dir: Path) -> dict[str, Any]:
    """trackers.json: each tracker's run id (and where its store is) for this run directory."""
    return read_json_mapping(run_dir / TRACKERS_FILE) or {}


def note_tracker(run_dir: Path, name: str, state: Mapping[str, Any]) -> None:
    """Record a tracker's run id so that resume=true continues that tracker run."""
    trackers = read_trackers(run_dir)
    trackers[name] = dict(state)
    write_json_atomic(run_dir / TRACKERS_FILE, trackers)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables the user has not set, and put everything back afterwards.

    Trackers read their folders from the environment; setting them only for
    the span of one run keeps a sweep's next run (same process) from writing
    into this one's directory.
    """
    previous = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if previous[key] is None:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
