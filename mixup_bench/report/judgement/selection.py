"""Choosing a setting on the validation split, never on the test set.

A sweep over a setting (alpha, the method, any aug.* option) asks which value
to use. Peers (OpenMixup, the official Mixup and CutMix code) pick the value
with the best test accuracy and report that accuracy, which is optimistic:
the test set chose it. Here the value is chosen by the validation accuracy
(runs with data.val_fraction > 0 record it), and the test accuracy of that
choice, with its 95% CI over seeds, is the result. The value the test set
would have chosen is kept beside it only as a labelled comparison.

A family is the groups that share every setting but the mixing ones (aug.name,
alpha and the aug.* parameters; rundirs.AUGMENTATION_KEYS): one choice per
family, e.g. per data fraction. Groups without validation accuracy take no
part. The choice is by the mean over seeds; a tie goes to the group first in
the report's order (smaller settings first), never to the better test score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..runs.grouping import Group, condition
from ..runs.rundirs import AUGMENTATION_KEYS, freeze
from ..stats import Estimate, estimate

# --select-by: the statistic of the validation curve a choice is made on, and the test
# statistic of the same kind that is reported for it.
CRITERIA = {
    "final": ("final_val_acc", "final_test_acc"),
    "last10_median": ("last10_median_val_acc", "last10_median_test_acc"),
}
OPTIMISTIC = "optimistic: chosen on the test set"


@dataclass
class Candidate:
    """One group of seeds in a family and both its accuracies."""

    group: Group
    validation: Estimate
    test: Estimate


@dataclass
class Selection:
    """The choice within one family of groups."""

    family: dict[str, Any]  # the settings every candidate shares, mixing ones aside
    criterion: str  # a key of CRITERIA
    candidates: list[Candidate]
    chosen: Candidate  # highest mean validation accuracy
    optimistic: Candidate  # highest mean test accuracy: a comparison, never the result

    @property
    def agrees(self) -> bool:
        return self.chosen is self.optimistic

    def to_dict(self) -> dict[str, Any]:
        def entry(candidate: Candidate) -> dict[str, Any]:
            return {"settings": candidate.group.settings,
                    "seeds": candidate.group.seeds,
                    "validation": candidate.validation.to_dict(),
                    "test": candidate.test.to_dict()}

        validation_metric, test_metric = CRITERIA[self.criterion]
        return {"family": self.family, "selected_by": validation_metric,
                "test_metric": test_metric, "chosen_on_validation": entry(self.chosen),
                "optimistic_chosen_on_test": entry(self.optimistic),
                "candidates": [entry(candidate) for candidate in self.candidates]}


def _best(candidates: list[Candidate], side: str) -> Candidate:
    """The highest mean on `side` (none counts lowest); on a tie the first (max keeps it)."""
    def mean(candidate: Candidate) -> float:
        value = getattr(candidate, side).mean
        return float("-inf") if value is None else value

    return max(candidates, key=mean)


def _shared(settings: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings every one of `settings` holds with the same value."""
    return {key: value for key, value in settings[0].items()
            if all(key in other and freeze(other[key]) == freeze(value) for other in settings)}


def select(groups: Iterable[Group], criterion: str = "final") -> list[Selection]:
    """One Selection per family with two or more groups that recorded validation accuracy,
    in the order the families' first groups come in."""
    validation_metric, test_metric = CRITERIA[criterion]
    families: dict[tuple, list[Group]] = {}
    for group in groups:
        families.setdefault(condition(group.settings, AUGMENTATION_KEYS), []).append(group)
    selections = []
    for members in families.values():
        measured = [(group, estimate(run.metric(validation_metric) for run in group.runs))
                    for group in members]
        measured = [(group, value) for group, value in measured if value.mean is not None]
        if len(measured) < 2:
            continue
        candidates = [Candidate(group, value,
                                estimate(run.metric(test_metric) for run in group.runs))
                      for group, value in measured]
        selections.append(Selection(_shared([group.settings for group, _ in measured]),
                                    criterion, candidates,
                                    _best(candidates, "validation"), _best(candidates, "test")))
    return selections
