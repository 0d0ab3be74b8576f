"""One fault at a known point of training, for the tests of what a run survives.

    FAULT="SIGKILL 2 2" PYTHONPATH=tests/fault_site:. python -m mixup_bench.cli train ...

tests/fault_site/sitecustomize.py calls install() in every Python process started with
FAULT set: the CLI, and the processes it starts (submitit's jobs). FAULT is
"<what> <call> <step>": when the trainer's train_one_epoch is called for the <call>-th
time in the process (epoch <call> of a fresh run; a sweep's jobs count on), it waits until
the checkpoint of the epoch before has landed, lets <step> - 1 steps train, then, before
step <step>:

- SIGKILL / SIGTERM / SIGUSR2: sends that signal to the process;
- NAN: turns the model's first weight into NaN, so the step's loss is not finite.

The fault fires once per process, or, with FAULT_MARKER=<path>, once in all: only while
that file is missing, and it creates the file (a requeued job then runs clean). The rest
is the real CLI in a real process: the tests see what a user would after a kill, a
preemption or a divergence at that point (a signal sent from outside at a moment chosen
by a clock lands at another point on a faster or a busier machine).
"""

from __future__ import annotations

import math
import os
import signal
import threading

from mixup_bench.train import checkpoint
from mixup_bench.train import run as run_module

_landed = {"count": 0}  # checkpoints this process has written (one per epoch trained)
_changed = threading.Condition()


def _record_landed_writes() -> None:
    real_write = checkpoint.BackgroundWriter._write

    def write(self, state, epoch):
        real_write(self, state, epoch)
        if self._failure is None:
            with _changed:
                _landed["count"] += 1
                _changed.notify_all()

    checkpoint.BackgroundWriter._write = write


def _first_anywhere() -> bool:
    """True unless FAULT_MARKER names a file that exists; creates that file."""
    marker = os.environ.get("FAULT_MARKER")
    if not marker:
        return True
    try:
        with open(marker, "x"):
            return True
    except FileExistsError:
        return False


def _inject(what: str, at_call: int, at_step: int) -> None:
    real_train = run_module.train_one_epoch
    calls = {"count": 0, "fired": False}

    def train_one_epoch(model, *args, stop=None, **kwargs):
        calls["count"] += 1
        if calls["count"] != at_call or calls["fired"]:
            return real_train(model, *args, stop=stop, **kwargs)
        polls = {"count": 0}

        def fault_then_stop() -> bool:
            polls["count"] += 1
            if polls["count"] == at_step and not calls["fired"] and _first_anywhere():
                calls["fired"] = True
                with _changed:  # the previous epoch's checkpoint is whole on disk
                    _changed.wait_for(lambda: _landed["count"] >= at_call - 1, timeout=300)
                if what == "NAN":
                    next(model.parameters()).data.fill_(math.nan)
                else:
                    os.kill(os.getpid(), getattr(signal, what))
            return stop() if stop is not None else False

        return real_train(model, *args, stop=fault_then_stop, **kwargs)

    run_module.train_one_epoch = train_one_epoch


def install(spec: str) -> None:
    """Arm the fault FAULT describes in this process (see the module's docstring)."""
    what, at_call, at_step = spec.split()
    _record_landed_writes()
    _inject(what, int(at_call), int(at_step))
