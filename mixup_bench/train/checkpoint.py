"""checkpoints/last.pt: everything needed to continue a run exactly, RNG states included.

Written through a temporary file, flushed and renamed, so a crash at any
moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import copy
import errno
import os
import threading
from pathlib import Path
from typing import Any

import torch


def save_atomic(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load(path: Path) -> dict[str, Any]:
    # weights_only=False: the file holds RNG states and plain config dicts we wrote ourselves.
    return torch.load(path, map_location="cpu", weights_only=False)


def snapshot(state: Any) -> Any:
    """A copy of `state` on the CPU that later training steps cannot change.

    Tensors are copied (the model's and optimizer's are updated in place by
    the next step); dicts, lists and tuples are rebuilt; anything else is kept.
    """
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):  # the same type: MultiStepLR's milestones are a Counter
        copied = copy.copy(state)
        for key, value in state.items():
            copied[key] = snapshot(value)
        return copied
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a namedtuple
        return type(state)(*(snapshot(value) for value in state))
    if isinstance(state, (list, tuple)):
        return type(state)(snapshot(value) for value in state)
    return state


class BackgroundWriter:
    """Writes checkpoints with save_atomic in a thread, one at a time, while training goes on.

    A ResNet-18 checkpoint (weights and momentum, about 90 MB) takes a noticeable
    part of a GPU epoch to write and fsync; the thread hides it. save() waits for
    the previous write first, so at most one is in flight, and a write that
    failed raises (as CheckpointWriteError) at the next save() or at wait().
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread: threading.Thread | None = None
        self._failure: tuple[int, BaseException] | None = None

    def save(self, state: dict[str, Any], epoch: int) -> None:
        """Snapshot `state` now and write it in the background."""
        self.wait()
        copied = snapshot(state)
        self._thread = threading.Thread(target=self._write, args=(copied, epoch),
                                        name="checkpoint-writer")
        self._thread.start()

    def _write(self, state: dict[str, Any], epoch: int) -> None:
        try:
            save_atomic(state, self.path)
        except BaseException as error:  # noqa: BLE001 - torch.save also raises RuntimeError
            self._failure = (epoch, error)

    def wait(self) -> None:
        """Block until the write in flight has landed; raise if it failed."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            epoch, error = self._failure
            self._failure = None
            raise CheckpointWriteError(epoch, error)


class CheckpointWriteError(OSError):
    """The checkpoint of `epoch` could not be written; the previous one is intact."""

    def __init__(self, epoch: int, error: BaseException) -> None:
        number = getattr(error, "errno", None) or errno.EIO
        text = getattr(error, "strerror", None) or f"{type(error).__name__}: {error}"
        super().__init__(number, text)
        self.epoch = epoch


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    state = {name: generator.get_state() for name, generator in generators.items()}
    state["torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    for name, generator in generators.items():
        generator.set_state(state[name])
    torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
