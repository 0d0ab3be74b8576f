"""What a report holds: groups of seeds with their estimates, and the judged claims.

REPORT.md, report.csv, report.json and the figures are all drawn from a Report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..judgement.verdicts import ClaimResult
from ..runs.grouping import Group
from ..runs.rundirs import Run
from ..stats import Estimate


@dataclass
class GroupResult:
    """The numbers for one group of seeds."""

    group: Group
    label: str
    metrics: dict[str, Estimate]
    # Treatment minus the aug=none run with the same other settings and seed;
    # None for the aug=none groups themselves.
    paired: dict[str, Estimate] | None
    # The seeds' reliability tables pooled bin by bin; None when no run has one.
    reliability: dict[str, Any] | None = None

    @property
    def epochs(self) -> list[int]:
        return sorted(
            {run.epochs_completed for run in self.group.runs if run.epochs_completed is not None}
        )

    @property
    def devices(self) -> list[str]:
        names = (
            run.environment.get("device_name") or run.environment.get("device")
            for run in self.group.runs
        )
        return sorted({str(name) for name in names if name})

    @property
    def checksums(self) -> list[str]:
        return sorted({status for run in self.group.runs for status in run.checksum_statuses()})


@dataclass
class Report:
    """Everything REPORT.md, report.csv and report.json show."""

    directories: list[Path]
    generated_at: str
    runs: list[Run]
    columns: list[str]
    groups: list[GroupResult]
    claims: list[ClaimResult]

    @property
    def unfinished(self) -> list[Run]:
        return [run for run in self.runs if not run.finished]
