"""One job of a sweep: its state, epoch, accuracy, wall time and ETA, from its run directory.

The sweep level (multirun.yaml, jobs not started, the sweep's ETA) is sweeps.py.

`mixup-bench status` reads only what a run directory holds (docs/run-directory.md)
and the sweep's own `multirun.yaml` (Hydra's record of the sweep, written when
it starts), never the training code, so it is torch-free and answers from any
terminal, on any machine that sees the files. It reads summary.json and the
last metrics.jsonl lines of each run, never the composed config (a YAML parse
per run would dominate on 1,000 runs).

Running or not is decided by the run directory's lock (`.lock`, an flock the
trainer holds while it works, released by the kernel when the process dies,
even on SIGKILL): a summary.json that still says `running` while nobody holds
the lock belongs to a process that died without writing its end, and is shown
as `stale`. The probe takes a shared lock for a moment and lets it go; the
trainer waits for a locked directory a few seconds before it refuses it
(train/safety.py), so a probe never stops a job from starting.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ...jsonio import read_json_mapping
from ..runs.rundirs import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE
from ..stats import is_number

MULTIRUN_FILE = "multirun.yaml"
OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
LOCK_FILE = ".lock"
# summary.json's status -> what status shows; any other value is shown as it is.
STATES = {"finished": "completed", "running": "running", "failed": "failed",
          "diverged": "diverged", "preempted": "preempted", "interrupted": "interrupted"}
NOT_STARTED = "not started"
STALE = "stale"
RUNNING = "running"
# Epoch periods an ETA is taken from: the median of the last few, so one slow epoch
# (a checkpoint on a busy disk) does not swing it.
RECENT_EPOCHS = 5
# The pause before a job that looks stale is read again (see _look_again_at_stale).
STALE_RECHECK_SECONDS = 0.2
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster


@dataclass
class Job:
    """One job of a sweep: a run directory, or a job the sweep lists that has none yet."""

    overrides: list[str]
    path: Path | None = None
    state: str = NOT_STARTED
    epoch: int = 0
    epochs: int | None = None
    test_acc: float | None = None
    wall_seconds: float | None = None
    epoch_seconds: float | None = None  # this run's recent epoch period
    eta_seconds: float | None = None  # running: until it ends; not started: its whole length
    error: str | None = None
    started: float | None = None  # when the process now running began (epoch time)


def lock_held(run_dir: Path) -> bool | None:
    """True while a process holds the run directory's lock; None where it cannot be told
    (no flock on this system, an unreadable lock file). Never creates the lock file."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the summary's word is taken
        return None
    try:
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _timestamp(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def _planned_epochs(path: Path, summary: dict[str, Any]) -> int | None:
    config = summary.get("config")
    if not isinstance(config, dict):
        config = read_yaml(path / CONFIG_FILE)  # only before the trainer's first summary.json
    epochs = ((config or {}).get("trainer") or {}).get("epochs") if isinstance(config, dict) \
        else None
    return int(epochs) if is_number(epochs) else None


def last_metrics(path: Path, count: int = RECENT_EPOCHS + 1) -> list[dict[str, Any]]:
    """The last `count` readable lines of metrics.jsonl. Unlike runs/rundirs.read_metrics, which
    the report uses, it parses only those: on 1,000 runs of 200 epochs, parsing every line
    took most of a status read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    lines = []
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line) if line.strip() else None
        except ValueError:  # a line cut short by a kill
            value = None
        if isinstance(value, dict):
            lines.append(value)
            if len(lines) == count:
                break
    return lines[::-1]


def epoch_period(metrics: list[dict[str, Any]]) -> float | None:
    """The median wall time between the last few metrics lines (checkpoint waits included);
    from the lines' own `seconds` while there are fewer than two lines of one process."""
    elapsed = [line.get("elapsed_seconds") for line in metrics[-RECENT_EPOCHS - 1:]]
    gaps = [later - earlier for earlier, later in zip(elapsed, elapsed[1:], strict=False)
            if is_number(earlier) and is_number(later) and later > earlier]
    if gaps:
        return statistics.median(gaps)
    seconds = [line["seconds"] for line in metrics[-RECENT_EPOCHS:]
               if is_number(line.get("seconds"))]
    return statistics.median(seconds) if seconds else None


def read_job(path: Path, now: float) -> Job:
    """A run directory's state, progress and times; never raises for a broken run."""
    summary_exists = (path / SUMMARY_FILE).is_file()
    summary = read_json_mapping(path / SUMMARY_FILE) or {}
    metrics = last_metrics(path / METRICS_FILE)
    overrides = summary.get("overrides")  # the trainer's copy of .hydra/overrides.yaml
    if not isinstance(overrides, list):
        overrides = read_yaml(path / OVERRIDES_FILE)
    job = Job([str(item) for item in overrides] if isinstance(overrides, list) else [], path)
    last = metrics[-1] if metrics else {}
    job.epoch = int(last["epoch"]) if is_number(last.get("epoch")) else 0
    job.epochs = _planned_epochs(path, summary)
    job.test_acc = float(last["test_acc"]) if is_number(last.get("test_acc")) else None
    job.epoch_seconds = epoch_period(metrics)
    job.error = summary.get("error") if isinstance(summary.get("error"), str) else None
    held = lock_held(path)
    status = summary.get("status")
    if held:
        job.state = RUNNING
    elif summary_exists and not summary:
        job.state = "unreadable"
    elif status == "running" and held is False:
        job.state = STALE  # the process died without writing how it ended
    elif status is None:
        # A lock file or an epoch line means a trainer began here and died before its first
        # summary.json; neither, that Hydra made the folder and no trainer has started yet.
        started = metrics or (path / LOCK_FILE).exists()
        job.state = STALE if started and held is False else NOT_STARTED
    else:
        job.state = STATES.get(str(status), str(status))
    if job.state == RUNNING:
        job.started = _timestamp(summary.get("started_at")) if status == "running" else None
        job.wall_seconds = now - job.started if job.started else None
    elif is_number(summary.get("wall_seconds")):
        job.wall_seconds = float(summary["wall_seconds"])
    elif is_number(last.get("elapsed_seconds")):
        job.wall_seconds = float(last["elapsed_seconds"])
    return job


def running_eta(job: Job, period: float | None, since_last_line: float | None) -> float | None:
    """Seconds until a running job ends: the epochs left at `period` each, the current one
    less the time it has run already (never below zero)."""
    if period is None or job.epochs is None:
        return None
    left = max(job.epochs - job.epoch, 0)
    if left == 0:
        return 0.0
    into = since_last_line if since_last_line is not None else 0.0
    return (left - 1) * period + max(period - into, 0.0)


def since_last_line(job: Job, now: float) -> float | None:
    """How long the current epoch has run: since the last metrics line or the process's
    start, whichever came later (a resumed run's lines are older than its process)."""
    assert job.path is not None
    moments = [job.started] if job.started is not None else []
    if job.epoch:
        try:
            moments.append((job.path / METRICS_FILE).stat().st_mtime)
        except OSError:
            pass
    return max(now - max(moments), 0.0) if moments else None
