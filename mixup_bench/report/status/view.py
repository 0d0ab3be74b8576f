"""`mixup-bench status DIR... [--watch] [--interval SECONDS]`: a line per job, a total per sweep.

Jobs are named the report's way (rendering/labels.py): the method, α, and the other
overrides that vary within the sweep; what every job shares is said once, in
the sweep's heading. The seed and the preset, which the report averages over
or leaves out, are named here too when they vary: a job is one seed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..rendering.labels import Labelling, setting_text
from .jobs import NOT_STARTED, RUNNING, Job
from .sweeps import Sweep, read_status

# Config groups whose option sets <group>.name to its own name (conf/): `aug=mixup` reads
# as the report's aug.name=mixup, shown as "mixup".
NAMED_GROUPS = ("aug", "data", "model", "optim", "sched")
# Left out of the report's labels (repetitions, preset names) but a job's identity here.
JOB_KEYS = ("experiment", "seed")
# Totals list the states in this order; any other state after them.
STATE_ORDER = ("completed", RUNNING, NOT_STARTED, "preempted", "interrupted", "stale",
               "failed", "diverged", "unreadable")
# A backslash before one of the characters Hydra's override grammar escapes.
HYDRA_ESCAPE = re.compile(r"\\([\\()\[\]{}:=, \t'\"])")
HEADER = ("job", "status", "epoch", "test acc", "wall", "ETA")


def format_seconds(seconds: float | None) -> str:
    """h:mm:ss, or m:ss under an hour; a dash when unknown."""
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def override_settings(overrides: Iterable[str]) -> dict[str, Any]:
    """Hydra override strings as settings: `aug=mixup` -> aug.name, values read as plain
    scalars (so 0.2 and 0.20 are one value), `+`/`++`/`~` prefixes dropped."""
    settings: dict[str, Any] = {}
    for item in overrides:
        key, separator, text = item.partition("=")
        if not separator:
            continue
        key = key.lstrip("+~")
        if key in NAMED_GROUPS:
            key = f"{key}.name"
        text = HYDRA_ESCAPE.sub(r"\1", text)  # Hydra writes timm:x as timm\:x
        settings[key] = scalar(text)
    return settings


def scalar(text: str) -> Any:
    """An override's value as Hydra reads a plain one: a bool, null, a number, else the text."""
    words = {"true": True, "false": False, "null": None, "": None}
    if text.lower() in words:
        return words[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def job_labels(jobs: list[Job]) -> tuple[list[str], str]:
    """Each job's short name and, once, what they all share."""
    settings = [override_settings(job.overrides) for job in jobs]
    labelling = Labelling.of(settings)
    extra_varying = [key for key in JOB_KEYS
                     if len({repr(item.get(key)) for item in settings}) > 1]
    labels = []
    for item in settings:
        parts = [labelling.label(item)] if labelling.varying else []
        parts += [setting_text(key, item.get(key)) for key in extra_varying]
        labels.append(", ".join(parts))
    shared = [labelling.shared_text()] if labelling.constant else []
    shared += [setting_text(key, settings[0][key]) for key in JOB_KEYS
               if settings and key not in extra_varying and settings[0].get(key) is not None]
    # Two jobs with one name (the same overrides twice, loose runs): their folders tell them apart.
    for index, label in enumerate(labels):
        if not label or labels.count(label) > 1:
            folder = jobs[index].path.name if jobs[index].path else "?"
            labels[index] = f"{label} [{folder}]" if label else folder
    return labels, ", ".join(part for part in shared if part)


def job_row(job: Job, label: str) -> tuple[str, ...]:
    epochs = "?" if job.epochs is None else str(job.epochs)
    accuracy = "—" if job.test_acc is None else f"{100 * job.test_acc:.2f}%"
    eta = format_seconds(job.eta_seconds) if job.state == RUNNING else ""
    return (label, job.state, f"{job.epoch}/{epochs}", accuracy,
            format_seconds(job.wall_seconds), eta)


def _place(path: Path | None, base: Path) -> str:
    if path is None:
        return "runs outside any sweep"
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def total_line(sweep: Sweep, now: float) -> str:
    states = [state for state in STATE_ORDER if sweep.count(state)]
    states += sorted({job.state for job in sweep.jobs} - set(STATE_ORDER))
    counts = ", ".join(f"{sweep.count(state)} {state}" for state in states)
    if sweep.unlisted_pending:
        counts += f", {sweep.unlisted_pending} trials not started"
    eta = sweep.eta_seconds()
    if eta == 0:
        ending = "nothing running or waiting"
    elif eta is None:
        ending = "ETA unknown (no epoch timed yet)"
    else:
        clock = datetime.fromtimestamp(now + eta, timezone.utc).strftime("%H:%M UTC")
        ending = f"ETA {format_seconds(eta)} (about {clock})"
    return f"  total: {counts or 'no jobs'}; {ending}"


def render(sweeps: list[Sweep], now: float, base: Path | None = None) -> str:
    """The whole status screen: per sweep a heading, one line per job, a total line."""
    base = (base or Path.cwd()).resolve()
    blocks = []
    for sweep in sweeps:
        labels, shared = job_labels(sweep.jobs)
        listed = f", the sweep lists {sweep.listed}" if sweep.listed is not None else ""
        heading = f"{_place(sweep.path, base)}  ({len(sweep.jobs)} jobs{listed})"
        if shared:
            heading += f"  shared: {shared}"
        rows = [HEADER] + [job_row(job, label) for job, label in zip(sweep.jobs, labels,
                                                                      strict=True)]
        widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
        lines = [heading]
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
            lines.append("  " + "  ".join(cells).rstrip())
        lines.append(total_line(sweep, now))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixup-bench status",
        description="Each job of one or more sweeps: state, epoch, last test accuracy, wall "
                    "time and ETA, read from the run directories (torch-free).")
    parser.add_argument("directories", nargs="+", type=Path, metavar="DIR",
                        help="a sweep directory, a run directory, or a folder holding many")
    parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    parser.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                        help="seconds between refreshes with --watch (default 10)")
    return parser


def main(argv: list[str], sleep: Any = time.sleep) -> int:
    """Entry point for `mixup-bench status`; returns the exit status."""
    arguments = build_parser().parse_args(argv)
    missing = [str(path) for path in arguments.directories if not path.is_dir()]
    if missing:
        print(f"mixup-bench status: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    if arguments.interval <= 0:
        print("mixup-bench status: --interval takes a number of seconds > 0", file=sys.stderr)
        return 2
    clear = arguments.watch and sys.stdout.isatty()
    try:
        while True:
            now = time.time()
            sweeps = read_status(arguments.directories, now)
            if not any(sweep.jobs or sweep.unlisted_pending for sweep in sweeps):
                searched = ", ".join(map(str, arguments.directories))
                print(f"mixup-bench status: no run or sweep directories under {searched}",
                      file=sys.stderr)
                return 1
            stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            screen = render(sweeps, now)
            if not arguments.watch:
                print(screen, end="")
                return 0
            print(("\033[H\033[2J" if clear else "") + f"{stamp} (every "
                  f"{arguments.interval:g} s; Ctrl-C ends)\n\n" + screen, end="", flush=True)
            sleep(arguments.interval)
    except KeyboardInterrupt:
        return 0
