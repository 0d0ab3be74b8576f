"""The bench's quickest setting for a whole run, as overrides (speed-check --best-overrides).

scripts/gpu_check.sh trains the paper recipe with the setting that `mixup-bench bench` found
quickest for 200 epochs: one with a long compilation wins only when the epochs it saves pay
for it. Reads bench.json only, never torch.
"""

from __future__ import annotations

from typing import Any

from ...config import SPEED_SWITCHES
from ..stats import is_number


def best_setting(bench: dict[str, Any], batch_size: int, epochs: int,
                 max_warmup: float | None = None) -> dict[str, Any] | None:
    """The measured setting that would train `epochs` epochs at `batch_size` soonest.

    From bench.json: its training records of the fast pipeline with the aug the switch
    variants use; the cost is warm-up (compilation, cuDNN's search) plus `epochs` times the
    record's seconds per training epoch. The warm-up was measured on ResNet-18's training
    graph alone (another model, or evaluation, compiles again), so settings whose warm-up
    exceeds `max_warmup` seconds are left out. None when nothing qualifies.
    """
    aug = bench.get("settings", {}).get("switch_aug", "mixup")
    candidates = [record for record in bench.get("measurements", [])
                  if record.get("pipeline") == "fast" and record.get("measure") == "train"
                  and record.get("batch_size") == batch_size and record.get("aug") == aug
                  and record.get("switches") and is_number(record.get("train_seconds_per_epoch"))
                  and (max_warmup is None or (record.get("warmup_seconds") or 0) <= max_warmup)]
    if not candidates:
        return None

    def cost(record: dict[str, Any]) -> float:
        return (record.get("warmup_seconds") or 0.0) + epochs * record["train_seconds_per_epoch"]

    best = min(candidates, key=cost)
    return {"config": best["config"], "images_per_s": best["images_per_s"],
            "projected_training_seconds": cost(best), "switches": best["switches"]}


def overrides(switches: dict[str, Any]) -> list[str]:
    """Hydra overrides that give the trainer these bench switches."""
    def text(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    keys = [key.split(".", 1)[1] for key in SPEED_SWITCHES]
    if not switches.get("compile"):
        keys.remove("compile_mode")
    return [f"trainer.{key}={text(switches[key])}" for key in keys if key in switches]
