"""Which runs belong together: groups of seeds, pairs by seed, and claim selectors.

A group is every finished run with the same settings apart from the ignored
keys (rundirs.IGNORED_KEYS, seed among them). A treatment run is paired with
the baseline run that has the same settings apart from the keys being
compared and the same seed, because seed-to-seed variation on CIFAR is about
as large as the effects measured; pairing removes the part the two share.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..stats import Estimate, estimate, is_number
from .legacy import UNKNOWN
from .rundirs import (
    ALWAYS_SHOWN,
    AUGMENTATION_KEYS,
    NO_AUGMENTATION,
    Run,
    freeze,
    is_ignored,
    is_mixing_parameter,
)

Reader = Callable[[Run], "float | None"]


@dataclass
class Group:
    """Finished runs that share every setting except the seed."""

    identity: tuple
    settings: dict[str, Any]
    runs: list[Run]

    @property
    def seeds(self) -> list[Any]:
        return [run.seed for run in self.runs]


def varying_keys(runs: Iterable[Run]) -> list[str]:
    """Non-ignored config keys whose values differ between runs (missing counts as a value).

    Mixing parameters (alpha, aug.*) are compared among the runs that mix:
    aug=none blanks them, which is no variation of its own.
    """
    runs = list(runs)
    mixing = [run for run in runs if not _unmixed(run.settings)] or runs
    keys = sorted({key for run in runs for key in run.settings if not is_ignored(key)})

    def compared(key: str) -> list[Run]:
        return mixing if is_mixing_parameter(key) else runs

    return [key for key in keys
            if len({_frozen_setting(run, key) for run in compared(key)}) > 1]


def _unmixed(settings: dict[str, Any]) -> bool:
    return str(settings.get("aug.name")).lower() == NO_AUGMENTATION


_MISSING = object()


def _frozen_setting(run: Run, key: str) -> Any:
    return freeze(run.settings[key]) if key in run.settings else _MISSING


def table_columns(runs: Iterable[Run]) -> list[str]:
    """ALWAYS_SHOWN first, then the other keys that differ between runs."""
    varying = varying_keys(runs)
    return list(ALWAYS_SHOWN) + [key for key in varying if key not in ALWAYS_SHOWN]


def sortable(value: Any) -> tuple:
    """Sort None first, then numbers, then text, without comparing unlike types."""
    if value is None:
        return (0, 0.0, "")
    if is_number(value):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def group_runs(runs: Iterable[Run], columns: list[str]) -> list[Group]:
    """Group the finished runs by everything but the seed; order by the table columns."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        if not run.finished:
            continue
        identity = run.identity()
        if identity not in groups:
            settings = {key: value for key, value in run.settings.items() if not is_ignored(key)}
            groups[identity] = Group(identity, settings, [])
        groups[identity].runs.append(run)
    for group in groups.values():
        group.runs.sort(key=lambda run: sortable(run.seed))
    # Conditions first, then the augmentation, so each baseline sits right above its mixing rows.
    order = [key for key in columns if key not in ("aug.name", "alpha")] + ["aug.name", "alpha"]

    def position(group: Group) -> list[tuple]:
        return [
            (0, 0.0, "")
            if key == "aug.name" and is_unmixed(group.settings)
            else sortable(group.settings.get(key))
            for key in order
        ]

    return sorted(groups.values(), key=position)


@dataclass
class Pair:
    """A treatment run and the baseline run with the same condition and seed."""

    seed: Any
    baseline: Run
    treatment: Run
    # Other runs of this seed on either side (the same seed run twice, e.g. on CUDA and on
    # the CPU): one seed is one pair, and these are left out.
    left_out: list[Run] = field(default_factory=list)


def representative(runs: list[Run]) -> Run:
    """The run that stands for a seed run more than once: the one trained longest, then the
    last to end, then a digest of its files' contents. Chosen by what the runs hold, never
    by their paths, so renaming or reordering directories never changes it."""
    def rank(run: Run) -> tuple:
        summary = run.summary or {}
        content = json.dumps([run.summary, run.metrics], sort_keys=True, default=str)
        return (run.epochs_completed or 0, str(summary.get("ended_at") or ""),
                str(summary.get("started_at") or ""),
                hashlib.sha256(content.encode()).hexdigest())

    return max(runs, key=rank)


def pair_runs(
    treatment: Iterable[Run], baseline: Iterable[Run], contrast: Iterable[str]
) -> list[Pair]:
    """Pair each treatment seed with the baseline run that has the same seed and differs
    only in `contrast` keys; one pair per condition and seed, ordered by seed."""
    contrast, treatment = tuple(contrast), list(treatment)
    treated = {id(run) for run in treatment}
    baselines: dict[tuple, list[Run]] = {}
    for run in baseline:
        if id(run) not in treated:
            baselines.setdefault((run.identity(contrast), freeze(run.seed)), []).append(run)
    treatments: dict[tuple, list[Run]] = {}
    for run in treatment:
        treatments.setdefault((run.identity(), freeze(run.seed)), []).append(run)
    pairs = []
    for runs in treatments.values():
        partners = baselines.get((runs[0].identity(contrast), freeze(runs[0].seed)))
        if not partners:
            continue
        chosen, partner = representative(runs), representative(partners)
        others = [run for run in runs + partners if run is not chosen and run is not partner]
        pairs.append(Pair(chosen.seed, partner, chosen, others))
    return sorted(pairs, key=lambda pair: (sortable(pair.seed), pair.treatment.identity()))


def is_unmixed(settings: dict[str, Any]) -> bool:
    return str(settings.get("aug.name")).lower() == NO_AUGMENTATION


def value_matches(actual: Any, wanted: Any) -> bool:
    """Selector comparison: numbers with tolerance, text case-insensitively, a list as any-of."""
    if isinstance(wanted, list):
        return any(value_matches(actual, option) for option in wanted)
    if wanted is None or actual is None:
        return wanted is None and actual is None
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return wanted is actual
    if is_number(wanted) and is_number(actual):
        return math.isclose(float(actual), float(wanted), rel_tol=1e-6, abs_tol=1e-9)
    return str(actual).lower() == str(wanted).lower()


def unknown_settings(run: Run, selector: dict[str, Any],
                     defaults: dict[str, Any] | None = None) -> list[str]:
    """The keys the selector pins, or needs at their default, that this run cannot tell:
    UNKNOWN (legacy.py: written before the key existed, old value not on record) or
    missing altogether (a selector's null still matches a missing key)."""
    needed = {**(defaults or {}), **selector}
    return sorted(key for key, wanted in needed.items()
                  if (key in run.settings and run.settings[key] == UNKNOWN)
                  or (key not in run.settings and (wanted is not None or key not in selector)))


def matches(run: Run, selector: dict[str, Any], defaults: dict[str, Any] | None = None) -> bool:
    """The run has every value the selector names and, for each key in `defaults` the
    selector does not name, the default (a key that is blank because the run does not mix
    counts as the default). A key whose value the run cannot tell (unknown_settings)
    never matches: the run is left out, not read as today's default."""
    if unknown_settings(run, selector, defaults):
        return False
    if not all(value_matches(run.settings.get(key), wanted) for key, wanted in selector.items()):
        return False
    return all(run.settings.get(key) is None or value_matches(run.settings[key], default)
               for key, default in (defaults or {}).items() if key not in selector)


# Keys whose value decides whether a run follows the protocol a claim describes: its data
# regime (the share of the training set, label noise, a validation split held out) and a
# paper's procedure. A run the claim's selectors would take but for one of these is listed
# as left out, with the value it has (a run with another aug.* switch is another method,
# not a left-out run of this one, and is not listed).
PROTOCOL_KEYS = ("data.fraction", "data.label_noise", "data.val_fraction",
                 "model.zero_init_last", "data.label_noise_mode", "data.normalization")
# Keys that mean nothing once another differs: a run without label noise has no noise mode
# (its value is blank), so a clean run is left out of a noise claim for its label_noise.
MOOT_WHEN_OTHER = {"data.label_noise": ("data.label_noise_mode",)}


def left_out_runs(runs: Iterable[Run], selectors: Iterable[dict[str, Any]],
                  defaults: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The finished runs a selector would take but for keys they cannot tell (unknown) or
    a PROTOCOL_KEYS value other than the claim needs, each with why. A run that one of
    the selectors takes as it is (a claim on two data fractions) is never listed."""
    selectors, runs = list(selectors), [run for run in runs if run.finished]
    taken = {str(run.path) for run in runs
             if any(matches(run, selector, defaults) for selector in selectors)}
    found: dict[str, str] = {}
    for selector in selectors:
        needed = {**(defaults or {}), **selector}
        for run in runs:
            if str(run.path) in found or str(run.path) in taken:
                continue
            unknown = unknown_settings(run, selector, defaults)
            other = [key for key in PROTOCOL_KEYS if key in needed and key not in unknown
                     and run.settings.get(key) is not None
                     and not value_matches(run.settings.get(key), needed[key])]
            if not unknown and not other:
                continue
            ignored = {*unknown, *other,
                       *(moot for key in other for moot in MOOT_WHEN_OTHER.get(key, ()))}
            known = {key: value for key, value in selector.items() if key not in ignored}
            rest = {key: value for key, value in (defaults or {}).items()
                    if key not in ignored}
            if matches(run, known, rest):
                why = [f"{key}={run.settings[key]} where the claim needs {needed[key]}"
                       for key in other]
                if unknown:
                    why.append(f"{', '.join(unknown)} unknown (the run predates the key and "
                               "the value its version used is not on record)")
                found[str(run.path)] = "; ".join(why)
    return [{"run": path, "why": why} for path, why in sorted(found.items())]


def contrast_keys(baseline: dict[str, Any], treatment: dict[str, Any]) -> set[str]:
    """The keys the two selectors disagree on; changing aug.name frees every aug.* key and alpha."""
    keys = {
        key
        for key in set(baseline) | set(treatment)
        if key not in baseline
        or key not in treatment
        or freeze(baseline[key]) != freeze(treatment[key])
    }
    # Only a change of method frees its parameters: comparing two settings of one
    # method (e.g. aug.lam_min) must keep every other aug.* key equal in a pair.
    if "aug" in keys or "aug.name" in keys:
        keys |= AUGMENTATION_KEYS
    return keys


def condition(settings: dict[str, Any], without: Iterable[str] = ()) -> tuple:
    return tuple(
        sorted(
            (key, freeze(value))
            for key, value in settings.items()
            if not is_ignored(key, tuple(without))
        )
    )


@dataclass
class Comparison:
    """Paired values of one treatment condition against its baseline."""

    settings: dict[str, Any]
    pairs: list[tuple[Any, float, float]]  # (seed, baseline value, treatment value)
    epochs: int | None
    used: list[Pair] = field(default_factory=list)  # the runs behind `pairs`

    @property
    def n(self) -> int:
        return len(self.pairs)

    def baseline(self) -> Estimate:
        return estimate(value for _, value, _ in self.pairs)

    def treatment(self) -> Estimate:
        return estimate(value for _, _, value in self.pairs)

    def difference(self) -> Estimate:
        """Treatment minus baseline, in the metric's own direction."""
        return estimate(self.differences())

    def differences(self) -> list[float]:
        return [treated - base for _, base, treated in self.pairs]

    def improvements(self, lower_is_better: bool) -> list[float]:
        return [-value if lower_is_better else value for value in self.differences()]


def compare(
    runs: Iterable[Run], baseline: dict[str, Any], treatment: dict[str, Any], reader: Reader,
    defaults: dict[str, Any] | None = None,
) -> tuple[list[Comparison], str]:
    """One Comparison per treatment condition with paired seeds, in a fixed order (by the
    condition's settings); else an empty list and why. Runs must match the selectors and
    hold `defaults` for every key the selectors leave open (see `matches`)."""
    finished = [run for run in runs if run.finished]
    treated = [run for run in finished if matches(run, treatment, defaults)]
    treated_ids = {id(run) for run in treated}
    untreated = [run for run in finished
                 if matches(run, baseline, defaults) and id(run) not in treated_ids]
    if not treated:
        return [], f"no finished run matches the treatment {describe(treatment)}"
    if not untreated:
        return [], f"no finished run matches the baseline {describe(baseline)}"
    conditions: dict[tuple, list[Run]] = {}
    for run in treated:
        conditions.setdefault(run.identity(), []).append(run)
    comparisons = []
    for identity in sorted(conditions, key=repr):
        members = conditions[identity]
        pairs = pair_runs(members, untreated, contrast_keys(baseline, treatment))
        used = [pair for pair in pairs
                if reader(pair.baseline) is not None and reader(pair.treatment) is not None]
        if not used:
            continue
        values = [(pair.seed, reader(pair.baseline), reader(pair.treatment)) for pair in used]
        known = [epoch for pair in used
                 for epoch in (pair.baseline.epochs_completed, pair.treatment.epochs_completed)
                 if epoch is not None]
        settings = {key: value for key, value in members[0].settings.items()
                    if not is_ignored(key)}
        comparisons.append(Comparison(settings, values, min(known) if known else None, used))
    if not comparisons:
        return [], "no baseline run shares its other settings and seed with a treatment run"
    return comparisons, ""


def differing_settings(comparisons: list[Comparison]) -> dict[str, list[Any]]:
    """The keys whose values differ between the comparisons' conditions, with the values:
    what a claim must pin to describe one of them."""
    keys = sorted({key for comparison in comparisons for key in comparison.settings})
    found = {}
    for key in keys:
        values = {freeze(comparison.settings.get(key)): comparison.settings.get(key)
                  for comparison in comparisons}
        if len(values) > 1:
            found[key] = sorted(values.values(), key=sortable)
    return found


def describe(selector: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{key}={value}" for key, value in selector.items()) + "}"
