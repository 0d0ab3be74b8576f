"""`mixup-bench` with one fault at a known point of training, for the tests of what survives it.

    FAULT="SIGKILL 2 2" python -m tests.faults train ...

FAULT is "<what> <call> <step>": when the trainer's train_one_epoch is called for the
<call>-th time in this process (epoch <call> of a fresh run; a sweep's jobs count on), it
waits until the checkpoint of the epoch before has landed, lets <step> - 1 steps train,
then, before step <step>:

- SIGKILL / SIGTERM: sends that signal to this process;
- NAN: turns the model's first weight into NaN, so the step's loss is not finite.

The fault fires once per process. Everything else is the real CLI in a real process:
the tests see exactly what a user would after a kill, a preemption or a divergence at
that point (signals sent from outside at a moment measured by a clock would land at a
different point on a faster or a busier machine).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading

from mixup_bench import cli
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
            if polls["count"] == at_step and not calls["fired"]:
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


def main() -> int:
    what, at_call, at_step = os.environ["FAULT"].split()
    _record_landed_writes()
    _inject(what, int(at_call), int(at_step))
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
