"""Nothing lost: the run-directory lock, preemption signals, and resume checks.

A run holds an exclusive lock on its directory (an flock, released by the
kernel even on SIGKILL), so two processes never write the same run. SIGTERM
and SIGUSR2, which SLURM and submitit send before preemption, only set a
flag: the trainer finishes its current step, keeps the last epoch's
checkpoint, records the run as preempted and exits with RESUMABLE_EXIT; a
handler installed before ours (submitit's requeue) is then called.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import SPEED_SWITCHES, flatten
from ..errors import UserError

RESUMABLE_EXIT = 75  # EX_TEMPFAIL: try again later (resume=true continues the run)
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)

# Keys a resumed run may change: where things are, what is shown, and the speed switches
# that leave the arithmetic as it is (config.SPEED_SWITCHES: kernel choice and fusion, not
# precision or layout).
HARMLESS_KEYS = ("resume", "data.root", "data.download", "trainer.progress", "trainer.samples",
                 "trainer.num_threads", "trainer.device",
                 *(key for key, same in SPEED_SWITCHES.items() if same))
# Key groups a resumed run may change whole: where metrics are copied to (conf/logger/).
HARMLESS_GROUPS = ("logger.",)


class Preempted(Exception):
    """A preemption signal arrived; the run stops after the current step."""


# How long a run waits for its directory's lock before it refuses the directory: long
# enough that `mixup-bench status`, which holds a shared lock for a moment to see whether a
# run is alive, never stops one from starting; short beside any real run.
LOCK_WAIT_SECONDS = 3.0


@contextmanager
def run_directory_lock(run_dir: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir / ".lock"), timeout=LOCK_WAIT_SECONDS)
    try:
        lock.acquire()
    except Timeout:
        raise UserError(f"hydra.run.dir={run_dir}: another mixup-bench process is running in "
                        "this directory; wait for it or choose another directory") from None
    try:
        yield
    finally:
        lock.release()


class PreemptionWatch:
    """Turns SIGTERM / SIGUSR2 into a flag that the training loop polls between steps."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> PreemptionWatch:
        for number in PREEMPTION_SIGNALS:
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: signals stay as they were
                pass
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.signal_number = number

    def requested(self) -> bool:
        return self.signal_number is not None

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def pass_on(self) -> None:
        """Call the handler that was there before ours (e.g. submitit's requeue), if any."""
        handler = self._previous.get(self.signal_number)
        if callable(handler):
            handler(self.signal_number, None)


# Keys added since earlier checkpoints were written, with the value that keeps an older run's
# behaviour: a checkpoint without the key resumes when the key holds that value. (The
# initialisation no longer matters once the weights come from a checkpoint.) The data keys
# hold the older behaviour that report/runs/legacy.py also reads them as; the checkpoint in
# tests/fixtures/ fails to resume when a key is added without its entry here.
ADDED_KEYS = {"aug.prob": 1.0, "model.zero_init_last": False,
              "data.label_noise_mode": "flip", "data.normalization": "dataset",
              "data.val_fraction": 0.0, "data.val_seed": 0}


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ, except those that cannot change the results.

    The epoch count may grow for step schedules; with the cosine schedule it
    changes every learning rate, so there it counts as a difference.
    """
    old, new = flatten(saved), flatten(current)
    for key, value in ADDED_KEYS.items():
        if key not in old and new.get(key) == value:
            old[key] = value
    harmless = set(HARMLESS_KEYS)
    if new.get("sched.name") == "multistep" and old.get("sched.name") == "multistep":
        harmless.add("trainer.epochs")
    return [f"{key} ({old.get(key)!r} -> {new.get(key)!r})"
            for key in sorted(set(old) | set(new))
            if key not in harmless and not key.startswith(HARMLESS_GROUPS)
            and old.get(key) != new.get(key)]


def check_resumable(saved: Mapping[str, Any], current: Mapping[str, Any], run_dir: Path) -> None:
    differences = config_differences(saved, current)
    if differences:
        raise UserError(f"resume=true: the checkpoint in {run_dir} was made with another "
                        f"config: {', '.join(differences)}; undo these overrides or start a "
                        "new run directory")
