"""Short names for groups of runs: only the settings that vary, the shared ones said once.

A label names a group by the keys that differ between the groups shown
together, never by the keys every run shares (those are printed once, in
the figure's title and REPORT.md). `aug.name` and `alpha` are named whenever
they vary; any other varying key is named only where a group departs from
the value most groups have (`usual`), so a sweep of one-at-a-time switches
reads "mixup α=0.2, aug.lam_min=0.3" instead of fourteen keys per label.

Small multiples: `facet` splits the groups into panels by data.name,
model.name and data.fraction (whichever vary); a panel that would still hold
more than MAX_LINES_PER_PANEL lines is split by aug.name (each method's panel
repeating the runs without mixing, so the comparison stays in view) and then
into near-equal parts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..runs.grouping import is_unmixed, sortable

if TYPE_CHECKING:
    from .model import Report
from ..runs.rundirs import ALWAYS_SHOWN, NO_AUGMENTATION, freeze, is_ignored, is_mixing_parameter

# Named in every label whenever they vary (a method is read with its strength).
PRIMARY_KEYS = ("aug.name", "alpha")
# One panel per value of these, in this order of nesting.
FACET_KEYS = ("data.name", "model.name", "data.fraction")
MAX_LINES_PER_PANEL = 6
Item = TypeVar("Item")


def shown(value: Any) -> str:
    """A setting as a table shows it; None (e.g. alpha without mixing) as a dash, and a
    float with a binary tail (0.12000000000000001) to 10 significant digits."""
    if value is None:
        return "—"
    text = str(value)
    if isinstance(value, float) and len(text) > 12:
        text = f"{value:.10g}"
    return text


def setting_text(key: str, value: Any) -> str:
    """One setting for a label: the method's name alone, alpha as α, the rest as key=value."""
    if key == "aug.name":
        return shown(value)
    if key == "alpha":
        return f"α={shown(value)}"
    return f"{key}={shown(value)}"


def _frozen(settings: dict[str, Any], key: str) -> Any:
    """A key a group lacks reads as None: both show as a dash, so neither names a group."""
    return freeze(settings.get(key))


def _compared(settings: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Mixing parameters are compared among the mixing groups (aug=none blanks them)."""
    if not is_mixing_parameter(key):
        return settings
    return [item for item in settings if not is_unmixed(item)] or settings


def _order(keys: Iterable[str]) -> list[str]:
    keys = set(keys)
    return [key for key in ALWAYS_SHOWN if key in keys] + sorted(keys - set(ALWAYS_SHOWN))


@dataclass
class Labelling:
    """What varies among some groups' settings, what they share and what most of them have."""

    varying: list[str]
    constant: dict[str, Any]
    usual: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Iterable[dict[str, Any]]) -> Labelling:
        settings = list(settings)
        keys = _order({key for item in settings for key in item if not is_ignored(key)})
        varying, constant, usual = [], {}, {}
        for key in keys:
            among = _compared(settings, key)
            values = Counter(_frozen(item, key) for item in among)
            if len(values) > 1:
                varying.append(key)
                if key not in PRIMARY_KEYS:
                    # Ties go to the value met first, in the groups' (table) order.
                    common = values.most_common(1)[0][0]
                    usual[key] = next(item.get(key) for item in among
                                      if _frozen(item, key) == common)
            elif among and among[0].get(key) is not None:
                constant[key] = among[0][key]
        return cls(varying, constant, usual)

    def departs(self, settings: dict[str, Any], key: str) -> bool:
        """True when `settings` should name `key`: a primary key, or not the usual value."""
        if is_unmixed(settings) and is_mixing_parameter(key):
            return False
        if key in PRIMARY_KEYS:
            return True
        return key not in self.usual or _frozen(settings, key) != freeze(self.usual[key])

    def label(self, settings: dict[str, Any], keys: Iterable[str] | None = None) -> str:
        """The group's name from the varying keys (all, or those in `keys`)."""
        chosen = self.varying if keys is None else [key for key in self.varying if key in set(keys)]
        named = [key for key in chosen if self.departs(settings, key)]
        head = " ".join(setting_text(key, settings.get(key)) for key in named
                        if key in PRIMARY_KEYS)
        rest = ", ".join(setting_text(key, settings.get(key)) for key in named
                         if key not in PRIMARY_KEYS)
        return ", ".join(part for part in (head, rest) if part) or "usual settings"

    def shared_text(self, keys: Iterable[str] | None = None) -> str:
        """The settings every group shares (all, or those in `keys`), as one line."""
        chosen = self.constant if keys is None else [key for key in keys if key in self.constant]
        return ", ".join(f"{key}={shown(self.constant[key])}" for key in chosen)

    def usual_items(self, without: Iterable[str] = ()) -> list[str]:
        """What a label leaves unsaid: the usual value of each varying key it may omit
        (but `without`, e.g. the keys every panel title names), as key=value."""
        return [f"{key}={shown(value)}" for key, value in self.usual.items()
                if key not in set(without) and value is not None]

    def usual_text(self, without: Iterable[str] = ()) -> str:
        return ", ".join(self.usual_items(without))


@dataclass
class Panel(Generic[Item]):
    """One small multiple: its title and the items (groups, series) drawn in it."""

    facets: dict[str, Any]
    items: list[Item]
    part: int = 1
    parts: int = 1
    extra: list[str] = field(default_factory=list)  # keys constant here that depart
    baseline: bool = False  # the runs without mixing repeated beside one method

    @property
    def title(self) -> str:
        head = ", ".join(f"aug.name={value}" if key == "aug.name" else setting_text(key, value)
                         for key, value in self.facets.items()) or "all groups"
        if self.baseline:
            head += " and none"
        if self.parts > 1:
            head += f" ({self.part} of {self.parts})"
        return head

    def subtitle(self) -> str:
        return ", ".join(self.extra)


def _chunks(facets: dict[str, Any], members: list[Item], baseline: list[Item],
            limit: int) -> list[Panel]:
    """`members` in near-equal parts of at most `limit` together with `baseline`, which
    every part repeats."""
    room = limit - len(baseline)
    parts = max(1, math.ceil(len(members) / room))
    size = math.ceil(len(members) / parts)
    return [Panel(facets, baseline + members[index * size:(index + 1) * size], index + 1, parts,
                  baseline=bool(baseline) and "aug.name" in facets)
            for index in range(parts)]


def facet(items: list[Item], settings_of: Callable[[Item], dict[str, Any]],
          labelling: Labelling, limit: int = MAX_LINES_PER_PANEL) -> tuple[list[Panel], list[str]]:
    """Split `items` into panels of at most `limit` lines, and name the keys that split them.

    One panel per value of the facet keys; a panel that would hold more lines is split
    by method (aug.name), each method's panel repeating the runs without mixing of the
    same facet value so the comparison stays in view, and then into near-equal parts.
    """
    keys = [key for key in FACET_KEYS if key in labelling.varying]
    panels: list[Panel] = []
    by_method = False
    for facets, members in _split(items, settings_of, keys):
        baseline = [item for item in members if is_unmixed(settings_of(item))]
        mixing = [item for item in members if not is_unmixed(settings_of(item))]
        if len(members) <= limit or not mixing or len(baseline) > limit // 2:
            panels += _chunks(facets, members, [], limit)
            continue
        by_method = True
        for method, chosen in _split(mixing, settings_of, ["aug.name"]):
            panels += _chunks({**facets, **method}, chosen, baseline, limit)
    for panel in panels:
        settings = [settings_of(item) for item in panel.items]
        here = Labelling.of(settings)
        mixing = [item for item in settings if not is_unmixed(item)] or settings
        panel.extra = [setting_text(key, value) for key, value in here.constant.items()
                       if key in labelling.varying and key not in panel.facets
                       and key not in PRIMARY_KEYS and labelling.departs(mixing[0], key)]
    return panels, keys + (["aug.name"] if by_method else [])


def _split(items: list[Item], settings_of: Callable[[Item], dict[str, Any]],
           keys: list[str]) -> list[tuple[dict[str, Any], list[Item]]]:
    parts: dict[tuple, tuple[dict[str, Any], list[Item]]] = {}
    for item in items:
        settings = settings_of(item)
        identity = tuple(_frozen(settings, key) for key in keys)
        parts.setdefault(identity, ({key: settings.get(key) for key in keys}, []))[1].append(item)

    def position(entry: tuple[dict[str, Any], list[Item]]) -> list[tuple]:
        return [(0, 0.0, "") if key == "aug.name" and str(value).lower() == NO_AUGMENTATION
                else sortable(value) for key, value in entry[0].items()]

    return sorted(parts.values(), key=position)


def panel_keys(panel: Panel, labelling: Labelling,
               settings_of: Callable[[Any], dict[str, Any]]) -> list[str]:
    """The keys a label in this panel names: those that vary within it, and the primary
    keys that vary in the figure unless the panel's title names them."""
    here = set(Labelling.of(settings_of(item) for item in panel.items).varying)
    return [key for key in labelling.varying
            if key in here or (key in PRIMARY_KEYS and key not in panel.facets)]


def labelling(report: Report) -> Labelling:
    """What varies and what is shared over the report's groups (tables and figures alike)."""
    return Labelling.of(result.group.settings for result in report.groups)
