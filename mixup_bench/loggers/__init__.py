"""Loggers: the run's metrics, config, summary and sample grid, copied to trackers.

Public face: `check_available` (a chosen logger whose package is missing is
one line naming the extra, before any work), `open_loggers` (the `logger`
config group -> one `Loggers` fan-out), `Loggers`, `Logger` (the interface)
and `Place`. Each backend lives in its own module and is imported only when
chosen, so a run without MLflow or W&B never loads them. Torch-free but for
the TensorBoard backend, which uses torch's SummaryWriter.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from ..errors import ConfigError
from .base import TRACKERS_FILE, Logger, Loggers, Place, note_tracker, read_trackers

__all__ = ["BACKENDS", "TRACKERS_FILE", "Logger", "Loggers", "Place", "check_available",
           "open_loggers"]

# logger name -> (its module here, the `pip install "mixup-bench[extra]"` it needs or None).
BACKENDS: dict[str, tuple[str, str | None]] = {
    "tensorboard": ("tensorboard_log", None),
    "csv": ("csv_log", None),
    "mlflow": ("mlflow_log", "mlflow"),
    "wandb": ("wandb_log", "wandb"),
}


def _backend(name: str) -> Any:
    return import_module(f".{BACKENDS[name][0]}", __name__)


def check_available(loggers: Mapping[str, Any] | None) -> None:
    """Import each chosen backend's package; raise ConfigError (one line each) if any fails."""
    problems = []
    for name in loggers or {}:
        if name not in BACKENDS:
            problems.append(f"logger={name}: expected one of {', '.join(BACKENDS)}")
            continue
        try:
            backend = _backend(name)
        except ImportError as error:
            extra = BACKENDS[name][1]
            package = (error.name or name).split(".")[0]
            problems.append(f"logger={name}: the {package} package is not installed "
                            f"(pip install \"mixup-bench[{extra}]\")")
            continue
        if hasattr(backend, "problems"):  # options that need more than the package
            problems += backend.problems(loggers[name] or {})
    if problems:
        raise ConfigError("\n".join(problems))


def open_loggers(loggers: Mapping[str, Any] | None, place: Place) -> Loggers:
    """Open each chosen logger, continuing the tracker runs noted in the run directory."""
    trackers = read_trackers(place.run_dir)
    opened = Loggers({})
    for name, options in (loggers or {}).items():
        try:
            logger, state = _backend(name).open_logger(options or {}, place, trackers.get(name))
        except Exception as error:  # noqa: BLE001 - a server, a URI, a folder: one line
            opened.finish({"status": "failed"})
            first = (str(error).strip().splitlines() or [""])[0][:300]
            raise ConfigError(f"logger={name}: could not start its run ({type(error).__name__}: "
                              f"{first})") from None
        if state is not None:
            note_tracker(place.run_dir, name, state)
        opened.loggers[name] = logger
    return opened
