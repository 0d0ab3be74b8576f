"""The training stage: one trainer for CPU and CUDA; AMP, channels_last and compile are switches.

Public face: `run.run(cfg, run_dir)` (a whole run and its directory; the
module and the function share the name, so import it from the module),
`build_trainee` (model, optimizer, compiled network and scaler, also used by
the bench), `train_one_epoch` and `evaluate` (the inner loops), `Runtime`,
`resolve_runtime` and `environment` (device, precision, layout, provenance).

The names are loaded on first use (PEP 562), not on import: `train.safety`
(the run-directory lock and resume checks) is torch-free, and the Hydra
entry point imports it before it knows whether any training will happen.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {"Diverged": "loop", "evaluate": "loop", "train_one_epoch": "loop",
           "Trainee": "parts", "build_trainee": "parts",
           "Runtime": "runtime", "environment": "runtime", "resolve_runtime": "runtime"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
