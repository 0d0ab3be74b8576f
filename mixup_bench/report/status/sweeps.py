"""Where a sweep stands: its jobs (read by jobs.py), those it lists that have not started
(from Hydra's `multirun.yaml`), and its ETA.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runs.rundirs import SKIPPED_FOLDERS
from ..stats import is_number
from .jobs import (
    MULTIRUN_FILE,
    NOT_STARTED,
    RUNNING,
    STALE,
    STALE_RECHECK_SECONDS,
    Job,
    read_job,
    read_yaml,
    running_eta,
    since_last_line,
)


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
                                          since_last_line(job, now))
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
        multirun = read_yaml(path / MULTIRUN_FILE) if path is not None else None
        if path is None:
            sweep.jobs = sorted(found, key=lambda job: str(job.path))
        else:
            _attach_listed(sweep, found, multirun)
        _fill_etas(sweep, multirun, now)
        sweeps.append(sweep)
    return sorted(sweeps, key=lambda sweep: (sweep.path is None, str(sweep.path)))
