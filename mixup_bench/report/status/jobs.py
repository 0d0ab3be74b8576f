"""Where a sweep stands: each job's state, epoch, accuracy, wall time and ETA, from its files.

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
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ...jsonio import read_json_mapping
from ..runs.rundirs import CONFIG_FILE, METRICS_FILE, SKIPPED_FOLDERS, SUMMARY_FILE
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


@dataclass
class Sweep:
    """The jobs of one sweep directory (or the runs found outside any sweep: path None)."""

    path: Path | None
    jobs: list[Job] = field(default_factory=list)
    listed: int | None = None  # jobs (or trials) the sweep will run, when multirun.yaml says
    unlisted_pending: int = 0  # trials a non-grid sweeper has still to start (no overrides)

    def count(self, state: str) -> int:
        return sum(job.state == state for job in self.jobs)

    @property
    def epoch_seconds(self) -> float | None:
        """The typical epoch period of this sweep's jobs, for jobs without one of their own."""
        periods = [job.epoch_seconds for job in self.jobs if job.epoch_seconds]
        return statistics.median(periods) if periods else None

    def eta_seconds(self) -> float | None:
        """Until the last job ends: running and waiting work spread over as many jobs as run
        now (at least one), and never before the longest running job ends. None when a
        length is unknown; 0 when nothing runs or waits."""
        running = [job.eta_seconds for job in self.jobs if job.state == RUNNING]
        waiting = [job.eta_seconds for job in self.jobs if job.state == NOT_STARTED]
        if self.unlisted_pending:
            waiting += [statistics.median(waiting) if waiting and None not in waiting
                        else self._typical_length()] * self.unlisted_pending
        if None in running or None in waiting:
            return None
        if not running and not waiting:
            return 0.0
        parallel = max(1, len(running))
        return max(max(running, default=0.0), (sum(running) + sum(waiting)) / parallel)

    def _typical_length(self) -> float | None:
        lengths = [job.epochs * job.epoch_seconds for job in self.jobs
                   if job.epochs and job.epoch_seconds]
        return statistics.median(lengths) if lengths else None


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


def _yaml(path: Path) -> Any:
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
        config = _yaml(path / CONFIG_FILE)  # only before the trainer's first summary.json
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
        overrides = _yaml(path / OVERRIDES_FILE)
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


def _since_last_line(job: Job, now: float) -> float | None:
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


def find_sweep_directories(roots: Iterable[Path]) -> list[Path]:
    """Every directory under `roots` holding Hydra's multirun.yaml."""
    found: dict[Path, None] = {}
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(name for name in subfolders
                                   if not name.startswith(".") and name not in SKIPPED_FOLDERS)
            if MULTIRUN_FILE in files:
                found.setdefault(Path(folder).resolve(), None)
    return sorted(found)


def listed_jobs(multirun: Any) -> tuple[list[list[str]] | None, int | None]:
    """The jobs a sweep will run, each as its override strings, in Hydra's job order.

    Expanded by Hydra's own BasicSweeper from the sweep's overrides and sweeper params,
    so `aug=none,mixup seed=range(0,3)` gives the six jobs Hydra launched. For another
    sweeper (Optuna ...) only the trial count is known, when it says one: (None, n_trials).
    """
    if not isinstance(multirun, dict):
        return None, None
    hydra = multirun.get("hydra") if isinstance(multirun.get("hydra"), dict) else {}
    sweeper = hydra.get("sweeper") if isinstance(hydra.get("sweeper"), dict) else {}
    if not str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        trials = sweeper.get("n_trials")
        return None, int(trials) if is_number(trials) else None
    params = sweeper.get("params") if isinstance(sweeper.get("params"), dict) else {}
    task = (hydra.get("overrides") or {}).get("task") or []
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(
            [f"{key}={value}" for key, value in params.items()] + [str(item) for item in task])
        [jobs] = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # noqa: BLE001 - an override Hydra cannot expand here: no listing
        return None, None
    return jobs, len(jobs)


def _sweep_of(path: Path, sweeps: set[Path]) -> Path | None:
    for parent in path.parents:
        if parent in sweeps:
            return parent
    return None


def _identity(overrides: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(overrides))


def _attach_listed(sweep: Sweep, found: list[Job], multirun: Any) -> None:
    """The sweep's jobs in Hydra's order, each with its run directory where one exists;
    run directories the listing lacks (an earlier invocation's) after them."""
    jobs, sweep.listed = listed_jobs(multirun)
    if jobs is None:
        sweep.jobs = found
        if sweep.listed is not None:
            sweep.unlisted_pending = max(sweep.listed - len(found), 0)
        return
    by_identity: dict[tuple[str, ...], list[Job]] = {}
    for job in found:
        by_identity.setdefault(_identity(job.overrides), []).append(job)
    ordered = []
    for overrides in jobs:
        matches = by_identity.get(_identity(overrides))
        ordered.append(matches.pop(0) if matches else Job(list(overrides)))
    ordered += [job for remaining in by_identity.values() for job in remaining]
    sweep.jobs = ordered


def _fill_etas(sweep: Sweep, multirun: Any, now: float) -> None:
    """ETAs of running jobs, and the expected length of jobs not started yet."""
    typical = sweep.epoch_seconds
    started = [job.epochs for job in sweep.jobs if job.epochs]
    config = multirun if isinstance(multirun, dict) else {}
    default_epochs = ((config.get("trainer") or {}).get("epochs")
                      if isinstance(config.get("trainer"), dict) else None)
    for job in sweep.jobs:
        if job.state == RUNNING:
            job.eta_seconds = running_eta(job, job.epoch_seconds or typical,
                                          _since_last_line(job, now))
        elif job.state == NOT_STARTED:
            if job.epochs is None:
                job.epochs = _epochs_of(job.overrides, started, default_epochs)
            job.eta_seconds = job.epochs * typical if job.epochs and typical else None


def _epochs_of(overrides: list[str], started: list[int], default: Any) -> int | None:
    """A waiting job's epoch count: its own override, else what its started siblings have,
    else the sweep's config."""
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+") == "trainer.epochs" and value.isdigit():
            return int(value)
    if started:
        return int(statistics.median_low(started))
    return int(default) if is_number(default) else None


def _look_again_at_stale(by_sweep: dict[Path | None, list[Job]], now: float) -> None:
    """Read the jobs that look stale once more, after a pause.

    A summary read just before its run ended, then a lock probe just after, looks like a
    dead run; so does a lock file the trainer has created but not yet locked. A real stale
    run looks the same a moment later; these do not.
    """
    suspects = [(jobs, index) for jobs in by_sweep.values()
                for index, job in enumerate(jobs) if job.state == STALE]
    if not suspects:
        return
    time.sleep(STALE_RECHECK_SECONDS)
    for jobs, index in suspects:
        path = jobs[index].path
        assert path is not None
        jobs[index] = read_job(path, now)


def read_status(roots: Iterable[Path], now: float | None = None) -> list[Sweep]:
    """The sweeps (and loose runs) under `roots`, each job read from its run directory."""
    from ..runs.rundirs import find_run_directories

    now = time.time() if now is None else now
    roots = [Path(root) for root in roots]
    sweep_dirs = find_sweep_directories(roots)
    known = set(sweep_dirs)
    by_sweep: dict[Path | None, list[Job]] = {path: [] for path in sweep_dirs}
    for path in find_run_directories(roots):
        if path in known:  # a sweep folder is no job of its own
            continue
        by_sweep.setdefault(_sweep_of(path, known), []).append(read_job(path, now))
    _look_again_at_stale(by_sweep, now)
    sweeps = []
    for path, found in by_sweep.items():
        sweep = Sweep(path)
        multirun = _yaml(path / MULTIRUN_FILE) if path is not None else None
        if path is None:
            sweep.jobs = sorted(found, key=lambda job: str(job.path))
        else:
            _attach_listed(sweep, found, multirun)
        _fill_etas(sweep, multirun, now)
        sweeps.append(sweep)
    return sorted(sweeps, key=lambda sweep: (sweep.path is None, str(sweep.path)))
