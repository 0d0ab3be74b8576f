"""checkpoints/last.pt: everything needed to continue a run exactly.

Written through a temporary file, flushed and renamed, so a crash at any
moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
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
