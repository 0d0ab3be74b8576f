"""`mixup-bench status`: where each job of a sweep stands, read from its run directory.

jobs.py reads the run directories and the sweep's multirun.yaml (states, epochs,
ETAs); view.py names the jobs as the report does and prints them. Torch-free,
like the rest of the report. Public face: `main(argv)`, `read_status`.
"""

from __future__ import annotations

from .sweeps import read_status
from .view import main

__all__ = ["main", "read_status"]
