"""The report stage: run directories -> groups of seeds -> estimates, verdicts, tables, figures.

Torch-free and numpy-free by design (a test walks the imports): a sweep
trained on a cluster is reported on a laptop that has neither. matplotlib is
imported only inside the figure functions.

Public face: `main(argv)` (`mixup-bench report`), `build_report` and
`write_report`, and `speed_check.main` (`mixup-bench speed-check`).
"""

from __future__ import annotations

from .build import build_report, write_report
from .cli import main

__all__ = ["build_report", "main", "write_report"]
