"""docs/config.md, generated from conf/ and the schema so that it cannot drift.

Every key's default comes from its YAML file, its range from the schema (config.RULES
for the top level and the groups, mixing.options.OPTION_RULES for `aug.*`), and its
meaning from the comment beside it in the YAML (with the indented comment lines that
follow). A key without a comment is an error: a new key is documented where it is set.

    python -m mixup_bench.config_doc            # print docs/config.md
    python -m mixup_bench.config_doc --write    # rewrite it (tests/test_config_doc.py
                                                # fails while the file is out of date)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parent.parent / "conf"
DOC = Path(__file__).resolve().parent.parent / "docs" / "config.md"
# The groups with keys of their own, in the order of conf/train.yaml's defaults list.
GROUPS = ("data", "model", "aug_options", "optim", "sched", "trainer")
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w]*):(.*)$")


@dataclass
class Entry:
    """One documented key of one YAML file."""

    key: str  # dotted, from the file's own top level
    value: object
    meaning: str


def _comment(rest: str) -> str:
    """The comment on a line (after the value), or ''. Values here hold no '#'."""
    return rest.split("#", 1)[1].strip() if "#" in rest else ""


def _header(lines: list[str]) -> str:
    """The file's leading comment block, less Hydra's `@package` directive."""
    text = []
    for line in lines:
        if not line.startswith("#"):
            break
        if "@package" not in line:
            text.append(line.lstrip("#").strip())
    return " ".join(text)


def read_entries(path: Path) -> list[Entry]:
    """The leaf keys of one YAML file with their values and comments, in file order."""
    lines = path.read_text().splitlines()
    values = yaml.safe_load(path.read_text()) or {}
    entries: list[Entry] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the mappings around the line
    above: list[str] = []  # comment lines standing alone above the next key (not the header)
    for line in lines:
        if line.lstrip().startswith("#"):
            text = line.strip().lstrip("#").strip()
            if entries and line.startswith(" ") and not above:
                # an indented comment continues the comment of the key above it
                entries[-1].meaning = (entries[-1].meaning + " " + text).strip()
            elif entries or parents:
                above.append(text)
            continue
        match = _KEY_LINE.match(line)
        if not match or match.group(2) == "defaults":
            above = []
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        parents = [(i, k) for i, k in parents if i < indent]
        dotted = ".".join([k for _, k in parents] + [key])
        value = values
        for piece in dotted.split("."):
            value = value.get(piece) if isinstance(value, dict) else None
        if isinstance(value, dict):
            parents.append((indent, key))
            above = []
            continue
        entries.append(Entry(dotted, value, _comment(rest) or " ".join(above)))
        above = []
    return entries


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    return "`" + text.replace("|", "\\|") + "`"


def _allowed(key: str) -> str:
    from .config import RULES
    from .mixing.options import OPTION_RULES

    if key.startswith("aug.") and key[4:] in OPTION_RULES:
        return OPTION_RULES[key[4:]][0]
    rule = next((rule for rule in RULES if rule.key == key), None)
    return rule.allowed if rule else "see meaning"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("\n", " ") for cell in cells) + " |"


def _group_table(group: str, undocumented: list[str]) -> list[str]:
    """One table per group: a row per key, defaults of the other options beside it."""
    folder = CONF / group
    options = sorted(folder.glob("*.yaml"))
    default = _default_option(group)
    rows: dict[str, dict] = {}
    for path in sorted(options, key=lambda p: p.stem != default):
        prefix = "aug" if group == "aug_options" else group
        for entry in read_entries(path):
            key = f"{prefix}.{entry.key}"
            row = rows.setdefault(key, {"default": None, "others": [], "meaning": ""})
            if path.stem == default:
                row["default"] = _shown(entry.value)
            elif entry.key != "name" and (row["default"] is None
                                          or _shown(entry.value) != row["default"]):
                row["others"].append(f"{path.stem}: {_shown(entry.value)}")
            row["meaning"] = row["meaning"] or entry.meaning
    names = ", ".join(f"`{p.stem}`" for p in options)
    lines = [f"## `{group}`" if group != "aug_options" else "## `aug.*` (every augmentation)",
             ""]
    if group != "aug_options":
        lines += [f"Options: {names} (default `{default}`): `{group}=<option>`.", ""]
    lines += [_row("key", "default", "allowed", "meaning"), "|---|---|---|---|"]
    for key, row in rows.items():
        if not row["meaning"]:
            undocumented.append(f"{key} (conf/{group}/)")
        default_text = row["default"] if row["default"] is not None else "(not set)"
        if row["others"]:
            default_text += " (" + "; ".join(row["others"]) + ")"
        lines.append(_row(f"`{key}`", default_text, _allowed(key), row["meaning"]))
    return lines + [""]


def _default_option(group: str) -> str:
    train = yaml.safe_load((CONF / "train.yaml").read_text())
    for item in train["defaults"]:
        if isinstance(item, dict) and group in item:
            return str(item[group])
    raise KeyError(group)


def _top_level(undocumented: list[str]) -> list[str]:
    lines = ["## Top level (conf/train.yaml)", "",
             _row("key", "default", "allowed", "meaning"), "|---|---|---|---|"]
    for entry in read_entries(CONF / "train.yaml"):
        if entry.key.startswith("hydra."):
            continue
        if not entry.meaning:
            undocumented.append(f"{entry.key} (conf/train.yaml)")
        lines.append(_row(f"`{entry.key}`", _shown(entry.value), _allowed(entry.key),
                          entry.meaning))
    return lines + [""]


def _presets(group: str, title: str, how: str, undocumented: list[str]) -> list[str]:
    """A row per option; for augmentations, their own keys and default alpha beside it."""
    lines = [f"## {title}", "", how, "", _row("name", "what it is"), "|---|---|"]
    for path in sorted((CONF / group).glob("*.yaml")):
        text = _header(path.read_text().splitlines())
        if group == "aug":
            own = []
            for entry in read_entries(path):
                if entry.key == "aug.name":
                    continue
                if not entry.meaning:
                    undocumented.append(f"{entry.key} (conf/aug/{path.name})")
                own.append(f"`{entry.key}` = {_shown(entry.value)}: {entry.meaning}")
            text += "".join(f"<br>{item}" for item in own)
        lines.append(_row(f"`{path.stem}`", text))
    return lines + [""]


def render() -> str:
    """docs/config.md's text; raises ValueError naming every key without a comment."""
    undocumented: list[str] = []
    lines = ["# Configuration reference", "",
             "Generated from conf/ and the schema by `python -m mixup_bench.config_doc "
             "--write`; do not edit by hand (tests/test_config_doc.py fails when this page "
             "and conf/ disagree). `mixup-bench train --cfg job [overrides]` prints a "
             "composed config; a misspelled key or a value out of range stops with one "
             "line naming it.", ""]
    lines += _top_level(undocumented)
    for group in GROUPS:
        lines += _group_table(group, undocumented)
    lines += _presets("aug", "`aug`: the augmentations",
                      "`aug=<name>` (default `mixup`) sets `aug.name`, and `alpha` to its own "
                      "default. The `aug.*` switches above apply to all of them.", undocumented)
    lines += _presets("experiment", "`experiment`: presets",
                      "`experiment=<name>` applies the preset last; it holds only what it "
                      "changes.", undocumented)
    lines += _presets("hydra/launcher", "`hydra/launcher`: where sweep jobs run",
                      "`mixup-bench train -m hydra/launcher=<name> ...` (needs "
                      "`pip install \"mixup-bench[cluster]\"`).", undocumented)
    if undocumented:
        raise ValueError("keys without a comment in conf/ (document each where it is set): "
                         + ", ".join(undocumented))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--write" in argv:
        DOC.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
