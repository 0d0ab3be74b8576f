"""The report stage: run directories -> groups of seeds -> estimates, verdicts, tables, figures.

Torch-free by design (a test walks the imports): a sweep trained on a
cluster is reported on a laptop without torch. Nothing here imports numpy
itself; scipy (the statistics) and matplotlib (the figures) bring it,
and both are imported only inside the functions that use them.

Its folders follow the data flow, and import only downward (tests/test_architecture.py):

    stats.py (estimates over seeds) <- runs/ <- judgement/ <- rendering/ <- build.py, cli.py
    stats.py, runs/ <- speed_check/

Public face: `main(argv)` (`mixup-bench report`), `build_report` and
`write_report`, and `speed_check.check.main` (`mixup-bench speed-check`).
"""

from __future__ import annotations

from .build import build_report, write_report
from .cli import main

__all__ = ["build_report", "main", "write_report"]
