"""checkpoints/last.pt: everything needed to continue a run exactly, RNG states included.

Written through a temporary file, flushed and renamed, so a crash at any
moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import errno
import os
import pickle
import re
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError


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


# The types a checkpoint may hold beyond torch's weights_only set (tensors, storages,
# OrderedDict, dicts, lists, str, numbers, None): MultiStepLR's state_dict keeps its
# milestones in a collections.Counter. Nothing else: found by listing the globals in the
# pickles of checkpoints written by the trainer with sched=cosine and multistep, each
# trainer.optimizer_step, an enabled fp16 GradScaler and the RNG states
# (tests/test_untrusted.py keeps that list checked).
SAFE_GLOBALS: tuple[type, ...] = (collections.Counter,)
# What a checkpoint written by run._train_epochs holds; load(path, STATE_KEYS) checks them.
STATE_KEYS = ("epoch", "model", "optimizer", "scheduler", "scaler", "rng", "config")
_WAY_OUT = "delete it or start a new run directory; mixup-bench never loads code from a checkpoint"


def _allowing(types: tuple[type, ...]) -> contextlib.AbstractContextManager:
    context = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    if context is not None:
        return context(list(types))
    torch.serialization.add_safe_globals(list(types))  # torch 2.4: for the whole process
    return contextlib.nullcontext()


def load(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """torch.load with weights_only=True and SAFE_GLOBALS: no code in the file ever runs.

    A file that needs any other type, is not a readable checkpoint, or (with `required`)
    lacks one of those keys raises CheckpointError, one line naming the file.
    """
    try:
        with _allowing(SAFE_GLOBALS), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's note on the pickle protocol
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        text = str(error)
        needed = re.search(r"GLOBAL ([\w.]+)", text)
        if isinstance(error, pickle.UnpicklingError) and needed:  # weights_only refused it
            raise CheckpointError(f"{path}: refused to load (it needs {needed.group(1)}; a "
                                  "mixup-bench checkpoint holds only tensors, numbers and "
                                  f"strings); {_WAY_OUT}") from None
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        first = detail.group(1) if detail else (text.splitlines() or [""])[0].split(". ")[0]
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: "
                              f"{first[:200]}); {_WAY_OUT}") from None
    missing = [key for key in required if key not in state] if isinstance(state, dict) \
        else list(required)
    if not missing and required:
        missing = [f"{what} as {key}" for key, kind, what in (
            ("epoch", int, "an integer"), ("config", dict, "a mapping"), ("rng", dict, "a mapping"))
            if key in required and not isinstance(state[key], kind)]
    if missing:
        raise CheckpointError(f"{path}: not a mixup-bench checkpoint (no "
                              f"{', '.join(missing)}); {_WAY_OUT}")
    return state


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
    """The run's random streams: each generator's state and its device type, the global CPU
    stream, and on CUDA the global stream of the training GPU (dropout), marked as such.

    The training device is that of the run's device generator (the loader's); GPUs the
    run did not train on are not saved.
    """
    state: dict[str, Any] = {name: generator.get_state()
                             for name, generator in generators.items()}
    state["device_types"] = {name: generator.device.type
                             for name, generator in generators.items()}
    state["torch_cpu"] = torch.get_rng_state()
    device = _training_device(generators)
    if device.type == "cuda":
        state["torch_device"] = {"type": "cuda", "state": torch.cuda.get_rng_state(device)}
    return state


def restore_rng(state: dict[str, Any], generators: dict[str, torch.Generator]) -> list[str]:
    """Put a checkpoint's random streams back; the run may now train on another device.

    Same device type (CPU -> CPU, or CUDA -> CUDA, any GPU index): every stream continues
    exactly. Another device type (trainer.device changed on resume): the CPU's generator
    (Mersenne Twister) and CUDA's (Philox) are different algorithms and no state of one
    fits the other, so a generator whose saved state is of the other type is seeded from
    that state instead (a fixed function of it): the resumed run is reproducible (the same
    checkpoint resumes the same way on that device) but its crops, flips and batch order
    are not those an uninterrupted run would have drawn. The mixing generator is a CPU one
    in every run and continues exactly, as does the global CPU stream. The global CUDA
    stream is set on the training GPU only, from a CUDA run's state, or seeded likewise;
    GPUs that are not visible are never touched (older checkpoints hold every GPU's
    state: the training GPU's index is used when that entry exists).

    Returns what was seeded rather than restored (also logged as a warning).
    """
    import logging

    seeded = []
    saved_types = state.get("device_types", {})
    for name, generator in generators.items():
        saved = state[name]
        saved_type = saved_types.get(name) or _state_device_type(saved)
        if saved_type == generator.device.type:
            generator.set_state(saved)
        else:
            generator.manual_seed(_seed_from(saved))
            seeded.append(f"{name} generator ({saved_type} state, now {generator.device.type})")
    torch.set_rng_state(state["torch_cpu"])
    device = _training_device(generators)
    if device.type == "cuda":
        saved = _saved_cuda_state(state, device)
        if saved is not None:
            torch.cuda.set_rng_state(saved, device)
        else:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(_seed_from(state["torch_cpu"]))
            seeded.append(f"global CUDA stream of {device} (no CUDA state saved)")
    if seeded:
        logging.getLogger(__name__).warning(
            "resumed on another device type: seeded from the saved states instead of "
            "restored: %s (reproducible, not the uninterrupted run's stream)", "; ".join(seeded))
    return seeded


# A CPU generator's state (mt19937) is 5056 bytes; CUDA's Philox keeps a seed and an offset.
_CPU_STATE_BYTES = 5056


def _training_device(generators: dict[str, torch.Generator]) -> torch.device:
    """The device of the run's device generator (the loader's); the CPU if all are CPU's."""
    for generator in generators.values():
        if generator.device.type != "cpu":
            return generator.device
    return torch.device("cpu")


def _state_device_type(saved: torch.Tensor) -> str:
    """For checkpoints without device_types: the state's size tells the generator's kind."""
    return "cpu" if saved.numel() == _CPU_STATE_BYTES else "cuda"


def _seed_from(saved: torch.Tensor) -> int:
    """A seed that is a fixed function of a saved generator state."""
    import hashlib

    digest = hashlib.sha256(saved.contiguous().numpy().tobytes()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _saved_cuda_state(state: dict[str, Any], device: torch.device) -> torch.Tensor | None:
    """The saved global CUDA state to put on `device`, if the checkpoint has one for it."""
    saved = state.get("torch_device")
    if saved is not None:
        return saved["state"] if saved.get("type") == "cuda" else None
    every_gpu = state.get("torch_cuda") or []  # older checkpoints: one state per visible GPU
    index = device.index or 0
    return every_gpu[index] if index < len(every_gpu) else None
