"""Read run directories and group them by the settings that differ.

Only the files named in docs/run-directory.md are read (.hydra/config.yaml,
summary.json, metrics.jsonl), so a sweep run on a cluster can be reported on
a laptop, and nothing here imports torch. A broken, half-written or still
running run never raises: it comes back with a status and the reasons, and
the report lists it instead of averaging it.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ...config import SPEED_SWITCHES, flatten, unknown_keys
from ..stats import is_number, valid_reliability
from .legacy import complete

CONFIG_FILE = Path(".hydra") / "config.yaml"
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
# Folders inside a run (or a sweep: mlruns/) that never hold another run; walking tb/,
# checkpoints/ and the trackers' folders of a large sweep would only cost time.
SKIPPED_FOLDERS = frozenset({"tb", "checkpoints", "__pycache__", "mlruns", "wandb"})

# Config keys that never define an experimental condition, so grouping
# ignores them: `seed` (the repetitions a group averages over), `experiment`
# (a preset's name; the keys it changes are compared themselves), `resume`,
# Hydra's own settings, where the data live and whether they were downloaded
# or verified (the checksum verdict is reported separately), and how a run
# used its hardware: device, precision, memory layout, threads, eval batch
# size, progress bar, sample grid; and where metrics are copied to (`logger`, the
# trackers). A key here also hides the keys below it
# ("hydra" hides "hydra.run.dir").
IGNORED_KEYS = (
    "seed",
    "experiment",
    "resume",
    "hydra",
    "data.root",
    "data.download",
    "data.verify",
    "trainer.device",
    *SPEED_SWITCHES,
    "trainer.num_threads",
    "trainer.eval_batch_size",
    "trainer.progress",
    "trainer.samples",
    "logger",
)
# Shown as table columns even when every run agrees on them.
ALWAYS_SHOWN = ("aug.name", "alpha", "data.fraction", "model.name", "trainer.epochs")
ACCURACY_METRICS = ("final_test_acc", "last10_test_acc", "last10_median_test_acc",
                    "best_test_acc")
# The same, chosen on the validation split (data.val_fraction): what settings are selected on.
VALIDATION_METRICS = ("final_val_acc", "last10_median_val_acc")
# How a summary's <statistic>_<split>_acc is computed from the metrics.jsonl curve when
# summary.json lacks it (split: test or val).
CURVE_STATISTICS = {
    "final": lambda values: values[-1],
    "best": max,
    "last10": lambda values: statistics.fmean(values[-10:]),
    "last10_median": lambda values: statistics.median(values[-10:]),
}
# The last metrics line's test_ece (15-bin expected calibration error, a fraction; lower is
# better). Runs written before calibration was recorded have none.
CALIBRATION_METRICS = ("final_test_ece",)
# Stands, in a list of keys to leave out, for every mixing parameter: alpha and each aug.*
# key but aug.name and aug.label_smoothing (which applies to unmixed targets too). A run
# without mixing is paired with a mixing run that differs only in aug.name and these, so
# label smoothing, like every other setting, is held equal within a pair.
MIXING_PARAMETERS = "<mixing parameters>"
AUGMENTATION_KEYS = frozenset({"aug.name", MIXING_PARAMETERS})
NO_AUGMENTATION = "none"


def is_mixing_parameter(key: str) -> bool:
    """alpha and the aug.* keys that mean nothing without mixing."""
    return key == "alpha" or (key.startswith("aug.") and key not in KEPT_WITHOUT_MIXING)


def is_ignored(key: str, ignored: Iterable[str] = IGNORED_KEYS) -> bool:
    """True when `key` is, or lies below, one of `ignored` (MIXING_PARAMETERS: see there)."""
    return any(key == name or key.startswith(name + ".")
               or (name == MIXING_PARAMETERS and is_mixing_parameter(key)) for name in ignored)


KEPT_WITHOUT_MIXING = ("aug.name", "aug.label_smoothing")


def normalise(settings: dict[str, Any]) -> dict[str, Any]:
    """Make equal experiments compare equal.

    The contract keeps alpha at the top level; a config that keeps it under
    `aug` is read the same way. Without mixing, alpha and every other aug.*
    parameter are irrelevant, so they become None (except label smoothing,
    which applies to unmixed targets too). Without label noise, its mode is None.
    """
    settings = dict(settings)
    if "alpha" not in settings and "aug.alpha" in settings:
        settings["alpha"] = settings.pop("aug.alpha")
    if settings.get("aug.name") is None and "aug.name" in settings:
        settings["aug.name"] = NO_AUGMENTATION
    if str(settings.get("aug.name")).lower() == NO_AUGMENTATION:
        for key in settings:
            if is_mixing_parameter(key):
                settings[key] = None
    if "data.label_noise_mode" in settings and settings.get("data.label_noise") in (0, None):
        settings["data.label_noise_mode"] = None  # how labels are corrupted: none are
    return settings


def freeze(value: Any) -> Any:
    """A hashable, order-independent stand-in for a config value (floats rounded)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 9)
    if isinstance(value, dict):
        return tuple(sorted((str(key), freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return str(value)


@dataclass
class Run:
    """One run directory as read from disk."""

    path: Path
    settings: dict[str, Any]
    summary: dict[str, Any] | None
    metrics: list[dict[str, Any]]
    status: str
    problems: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def judgeable(self) -> bool:
        """False for a run that traded part of a claim's measurement for time (summary.json's
        `judgeable`, or a data.test_subset in its config): no claim is judged on it."""
        return (self.summary or {}).get("judgeable") is not False \
            and self.settings.get("data.test_subset") is None

    @property
    def seed(self) -> Any:
        return self.settings.get("seed")

    @property
    def error(self) -> str | None:
        error = (self.summary or {}).get("error")
        return None if error is None else str(error)

    @property
    def environment(self) -> dict[str, Any]:
        environment = (self.summary or {}).get("environment")
        return environment if isinstance(environment, dict) else {}

    @property
    def epochs_completed(self) -> int | None:
        completed = (self.summary or {}).get("epochs_completed")
        if is_number(completed):
            return int(completed)
        if self.metrics:
            return len(self.metrics)
        planned = self.settings.get("trainer.epochs")
        return int(planned) if is_number(planned) and self.finished else None

    def identity(self, without: Iterable[str] = ()) -> tuple:
        """The experimental condition: non-ignored settings, minus `without` keys."""
        ignored = tuple(IGNORED_KEYS) + tuple(without)
        return tuple(
            sorted(
                (key, freeze(value))
                for key, value in self.settings.items()
                if not is_ignored(key, ignored)
            )
        )

    def metric(self, name: str) -> float | None:
        """A summary value, else computed from metrics.jsonl, else the last metrics line's key."""
        value = (self.summary or {}).get(name)
        if is_number(value):
            return float(value)
        statistic, _, key = name.partition("_")
        if statistic == "last10" and key.startswith("median_"):
            statistic, key = "last10_median", key[len("median_"):]
        if key in ("test_ece", "val_ece") and statistic == "final":
            last = self.metrics[-1].get(key) if self.metrics else None
            return float(last) if is_number(last) else None
        if key in ("test_acc", "val_acc") and statistic in CURVE_STATISTICS:
            accuracies = [float(line[key]) for line in self.metrics if is_number(line.get(key))]
            return CURVE_STATISTICS[statistic](accuracies) if accuracies else None
        last = self.metrics[-1].get(name) if self.metrics else None
        return float(last) if is_number(last) else None

    @property
    def reliability(self) -> dict[str, Any] | None:
        """summary.json's reliability table (last evaluated epoch), None if absent or malformed."""
        table = (self.summary or {}).get("reliability")
        return table if valid_reliability(table) else None

    def curve(self, key: str) -> list[tuple[int, float]]:
        """(epoch, value) pairs of one metrics.jsonl key."""
        points = []
        for position, line in enumerate(self.metrics, start=1):
            epoch = line.get("epoch", position)
            if is_number(line.get(key)) and is_number(epoch):
                points.append((int(epoch), float(line[key])))
        return points

    def checksum_statuses(self) -> list[str]:
        """The data_checksums verdicts, whether written as one string or per file."""
        checksums = self.environment.get("data_checksums")
        if isinstance(checksums, str):
            return [checksums]
        if isinstance(checksums, dict):
            found = []
            for value in checksums.values():
                if isinstance(value, dict):
                    value = value.get("status")
                if isinstance(value, str):
                    found.append(value)
            if not found and isinstance(checksums.get("status"), str):
                found.append(checksums["status"])
            return sorted(set(found))
        return []


def find_run_directories(roots: Iterable[Path]) -> list[Path]:
    """Every directory under `roots` holding summary.json, metrics.jsonl or .hydra/config.yaml."""
    found: dict[Path, None] = {}
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            here = Path(folder)
            subfolders[:] = sorted(
                name
                for name in subfolders
                if not name.startswith(".") and name not in SKIPPED_FOLDERS
            )
            if SUMMARY_FILE in files or METRICS_FILE in files or (here / CONFIG_FILE).is_file():
                found.setdefault(here.resolve(), None)
    return sorted(found)


def _read_text(path: Path, problems: list[str]) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{path.name} unreadable: {error}")
        return None


def _read_mapping(path: Path, parse: Any, problems: list[str]) -> dict[str, Any] | None:
    text = _read_text(path, problems)
    if text is None:
        return None
    try:
        value = parse(text)
    except (ValueError, yaml.YAMLError) as error:
        first_line = (str(error).splitlines() or [""])[0]
        problems.append(f"{path.name} unreadable: {type(error).__name__}: {first_line}")
        return None
    if not isinstance(value, dict):
        problems.append(f"{path.name} unreadable: expected a mapping, found {type(value).__name__}")
        return None
    return value


def read_metrics(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """The epoch lines of metrics.jsonl; a malformed line (killed mid-write) is skipped, noted."""
    text = _read_text(path, problems)
    if text is None:
        return []
    lines = text.splitlines()
    metrics = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            metrics.append(value)
        elif number == len(lines):
            problems.append(f"{METRICS_FILE}: truncated last line {number} ignored")
        else:
            problems.append(f"{METRICS_FILE}: malformed line {number} ignored")
    return metrics


def _status(summary: dict[str, Any] | None, summary_exists: bool, settings: dict[str, Any]) -> str:
    if not settings:
        return "unreadable"
    if summary is None:
        return "unreadable" if summary_exists else "no summary"
    return str(summary.get("status", "unknown"))


def load_run(path: Path) -> Run:
    """Read one run directory; never raises for a broken or partial run."""
    path = Path(path)
    problems: list[str] = []
    config = _read_mapping(path / CONFIG_FILE, yaml.safe_load, problems)
    summary = _read_mapping(path / SUMMARY_FILE, json.loads, problems)
    metrics = read_metrics(path / METRICS_FILE, problems)
    if config is None and summary is not None and isinstance(summary.get("config"), dict):
        config = summary["config"]
    if config is None:
        problems.append("no readable config (.hydra/config.yaml or summary.json's config)")
    if not (path / SUMMARY_FILE).is_file():
        problems.append(
            f"no {SUMMARY_FILE}" + ("; values computed from metrics.jsonl" if metrics else "")
        )
    stale = [key for key in unknown_keys(config) if not is_ignored(key)] if config else []
    if stale:
        problems.append(f"config keys this mixup-bench does not know: {', '.join(stale)} "
                        "(an older version's? read as they are)")
    settings, legacy_notes = complete(flatten(config)) if config else ({}, [])
    problems += legacy_notes
    settings = normalise(settings) if config else {}
    run = Run(
        path,
        settings,
        summary,
        metrics,
        _status(summary, (path / SUMMARY_FILE).is_file(), settings),
        problems,
    )
    if run.finished and run.metric("final_test_acc") is None:
        run.status = "incomplete"
        problems.append("finished but no final_test_acc in summary.json or metrics.jsonl")
    return run
