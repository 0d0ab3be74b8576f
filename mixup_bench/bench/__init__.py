"""`mixup-bench bench`: what the device pipeline's speed switches buy, and what mixing costs.

Public face: `main(argv)`. plan (arguments, Plan, Switches) -> run (every
setting in turn) -> measure (timers, memory, the trainer's own pieces) and
classic (the baseline pipeline) -> results (ratios, bench.json, bench.md);
profile is `--profile`.
"""

from __future__ import annotations

from .run import main

__all__ = ["main"]
