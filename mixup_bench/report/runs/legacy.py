"""Settings a run lacks because an older mixup-bench wrote it: the value that version used.

A config key added later is missing from the runs made before it. Reading such a
run with today's default would misdescribe it whenever the default is not what the
old code did: `model.zero_init_last` defaults to false now, but resnet18 runs made
before the key existed were trained with zero-initialised residual branches (timm's
default then; docs/run-directory.md). So a missing key takes the value from this
table, where the old behaviour is known, and is otherwise UNKNOWN: a claim that pins
the key, or needs its default, then leaves the run out and says why (grouping.matches).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# The value of a setting nobody can reconstruct: never equal to a real value, and shown
# as such in the report's tables.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class LegacyValue:
    """What the versions before `key` existed did, under the settings in `when`."""

    key: str
    value: Any
    why: str
    when: dict[str, Any] = field(default_factory=dict)
    # Noted on the run (the report lists it) where the old value is not today's default.
    noted: bool = False


# Checked in order; the first entry whose `when` holds applies. A key listed here but
# matched by no entry for a run is UNKNOWN for it.
LEGACY_VALUES: tuple[LegacyValue, ...] = (
    LegacyValue("model.zero_init_last", True, "timm's resnet18 zero-initialised each block's "
                "last BN weight", {"model.name": "resnet18"}, noted=True),
    LegacyValue("model.zero_init_last", UNKNOWN, "preact_resnet18 was timm's network then "
                "(now preact_resnet18_timm), not the one this name builds today", noted=True),
    LegacyValue("model.dropout", 0.0, "no dropout before the key existed"),
    LegacyValue("data.fraction", 1.0, "the whole training set"),
    LegacyValue("data.label_noise", 0.0, "clean labels"),
    LegacyValue("data.label_noise_mode", "flip", "noise always gave another class"),
    LegacyValue("data.normalization", "dataset", "the dataset's own mean and per-pixel std"),
    LegacyValue("data.val_fraction", 0.0, "no validation split"),
    LegacyValue("data.test_subset", None, "the whole test set"),
    # Each mixing switch was added with the value that reproduces plain Mixup/CutMix.
    LegacyValue("aug.label_smoothing", 0.0, "no label smoothing"),
    LegacyValue("aug.lam_min", None, "lambda drawn from the whole Beta"),
    LegacyValue("aug.lam_fold", False, "lambda not folded"),
    LegacyValue("aug.lam_per", "batch", "one lambda per batch"),
    LegacyValue("aug.partner", "permutation", "partners from a shuffle of the batch"),
    LegacyValue("aug.alpha_schedule", "constant", "a constant alpha"),
    LegacyValue("aug.alpha_final", None, "a constant alpha"),
    LegacyValue("aug.off_last_epochs", 0, "mixing to the last epoch"),
    LegacyValue("aug.prob", 1.0, "every batch mixed"),
)
LEGACY_KEYS = tuple(dict.fromkeys(entry.key for entry in LEGACY_VALUES))
# The table in words, for the rules REPORT.md prints (line breaks as the rules wrap).
LEGACY_TEXT = ("model.zero_init_last true for resnet18, unknown for\n  preact_resnet18; no "
               "dropout, the whole training set, no label noise, noise that\n  flips labels, "
               "the dataset's own normalisation, no validation split, the whole\n  test "
               "set, each aug.* switch at plain mixing")


def _holds(settings: dict[str, Any], when: dict[str, Any]) -> bool:
    return all(str(settings.get(key)).lower() == str(value).lower()
               for key, value in when.items())


def legacy_value(settings: dict[str, Any], key: str) -> tuple[Any, str, bool]:
    """(value, why, noted) for a `key` the run lacks: the old version's value or UNKNOWN."""
    for entry in LEGACY_VALUES:
        if entry.key == key and _holds(settings, entry.when):
            return entry.value, entry.why, entry.noted
    return UNKNOWN, "no record of what the version that wrote the run did", True


def complete(settings: dict[str, Any], keys: Iterable[str] = LEGACY_KEYS
             ) -> tuple[dict[str, Any], list[str]]:
    """The settings with every missing legacy key filled in, and a note for each key whose
    old value is unknown or differs from today's default."""
    filled, notes = dict(settings), []
    for key in keys:
        if key in settings:
            continue
        value, why, noted = legacy_value(settings, key)
        filled[key] = value
        if noted:
            notes.append(f"{key} missing (the run predates it): read as "
                         f"{UNKNOWN if value == UNKNOWN else repr(value)} ({why})")
    return filled, notes
