"""The package's shape: dependencies point one way, no cycles, a torch-free report, small modules.

Every `import` and `from ... import` in mixup_bench, at module level or inside
a function, is read with ast and resolved to the module it loads. The layers
(docs/architecture.md):

    leaves (errors, config, jsonio) <- data, models <- mixing <- train <- bench
    leaves <- report;   cli, hydra_app on top

and inside report/, the stages of its data flow:

    stats <- runs <- judgement <- rendering <- build, cli, status;   stats, runs <- speed_check
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mixup_bench"
NAME = "mixup_bench"
# Layer of each top-level part; an import may only go to a lower layer or stay inside its part.
LAYERS = {"__init__": 0, "errors": 0, "config": 0, "jsonio": 0, "conf": 0,
          "data": 1, "models": 1, "report": 1,
          "mixing": 2, "train": 3, "bench": 4, "cli": 5, "hydra_app": 5,
          "config_doc": 5}
# What each part may import besides the leaves (layer 0) and itself.
ALLOWED = {"data": set(), "models": set(), "report": set(), "mixing": {"data", "models"},
           "train": {"data", "models", "mixing"}, "bench": {"data", "models", "mixing", "train"},
           "cli": set(LAYERS), "hydra_app": set(LAYERS), "config_doc": {"mixing"}}
# Inside report/: each stage's layer, and the stages it may import besides its own and the
# leaves of the report (its __init__ and stats).
REPORT_LAYERS = {"__init__": 0, "stats": 0, "runs": 1, "judgement": 2, "speed_check": 2,
                 "rendering": 3, "build": 4, "cli": 5, "status": 4}
REPORT_ALLOWED = {"runs": set(), "judgement": {"runs"}, "speed_check": {"runs"},
                  "rendering": {"runs", "judgement"},
                  "build": {"runs", "judgement", "rendering"},
                  "status": {"runs", "rendering"},
                  "cli": {"runs", "judgement", "rendering", "build"}}
HEAVY = ("torch", "torchvision", "timm", "numpy", "PIL")
MAX_LINES = 420


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Absolute names of everything `name` imports (submodules resolved where they exist)."""
    package = name if is_package(path) else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # `from . import manifold` loads a submodule
                if f"{target}.{alias.name}" in known:
                    found.add(f"{target}.{alias.name}")
    return found


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def graph() -> dict[str, set[str]]:
    known = modules()
    # A module's own ancestors are loaded before it (Python imports parents first), so
    # importing from them is no edge of its own.
    return {name: {target for target in imports(name, path, known)
                   if (target == NAME or target.startswith(NAME + "."))
                   and not (name == target or name.startswith(target + "."))}
            for name, path in known.items()}


def test_every_part_has_a_layer():
    assert {part(name) for name in modules()} <= set(LAYERS)


def test_no_import_points_upward_or_sideways():
    wrong = []
    for source, targets in graph().items():
        for target in targets:
            here, there = part(source), part(target)
            if here == there or LAYERS[there] == 0:
                continue
            if there not in ALLOWED.get(here, set()):
                wrong.append(f"{source} -> {target}")
    assert wrong == []


def report_stage(module: str) -> str:
    pieces = module.split(".")
    return pieces[2] if len(pieces) > 2 else "__init__"


def test_every_report_module_has_a_stage():
    assert {report_stage(name) for name in modules() if part(name) == "report"} <= \
        set(REPORT_LAYERS)


def test_the_report_stages_import_only_downward():
    """runs -> judgement -> rendering: reading run directories knows nothing of verdicts,
    verdicts nothing of Markdown or figures."""
    wrong = []
    for source, targets in graph().items():
        if part(source) != "report":
            continue
        for target in targets:
            if part(target) != "report":
                continue
            here, there = report_stage(source), report_stage(target)
            if here == there or REPORT_LAYERS[there] == 0 or here == "__init__":
                continue
            if there not in REPORT_ALLOWED.get(here, set()):
                wrong.append(f"{source} -> {target}")
    assert wrong == []


def test_the_stage_check_sees_a_wrong_edge(tmp_path):
    """The checker itself: an import from runs/ up into rendering/ is an edge it reports."""
    source = tmp_path / "mod.py"
    source.write_text("from ..rendering import labels\n")
    known = {"mixup_bench.report.runs.mod": source,
             "mixup_bench.report.rendering.labels": source}
    found = imports("mixup_bench.report.runs.mod", source, known)
    assert "mixup_bench.report.rendering.labels" in found
    assert "rendering" not in REPORT_ALLOWED[report_stage("mixup_bench.report.runs.mod")]


def test_no_import_cycles():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if target not in edges:
                continue
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_report_imports_neither_torch_nor_numpy():
    known = modules()
    heavy = [f"{name} -> {target}" for name, path in known.items()
             if part(name) == "report"
             for target in imports(name, path, known) if target.split(".")[0] in HEAVY]
    assert heavy == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name):
    assert len(modules()[name].read_text().splitlines()) <= MAX_LINES


def test_the_walk_finds_what_it_should(tmp_path):
    """The checker itself: a relative import inside a function, and a submodule import."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from ..train import loop\n    from . import sibling\n")
    known = {"mixup_bench.report.mod": source, "mixup_bench.train.loop": source,
             "mixup_bench.report.sibling": source}
    found = imports("mixup_bench.report.mod", source, known)
    assert {"mixup_bench.train", "mixup_bench.train.loop", "mixup_bench.report.sibling"} <= found


def test_the_speed_switches_are_listed_once():
    """config.SPEED_SWITCHES is the list; the bench's Switches, the trainer's YAML, the resume
    check and the report's grouping follow it."""
    from dataclasses import fields

    import yaml

    from mixup_bench.bench.plan import Switches
    from mixup_bench.config import SPEED_SWITCHES
    from mixup_bench.report.runs.rundirs import IGNORED_KEYS
    from mixup_bench.train.safety import HARMLESS_KEYS

    names = {key.split(".", 1)[1] for key in SPEED_SWITCHES}
    assert {field.name for field in fields(Switches)} == names
    trainer = yaml.safe_load((PACKAGE.parent / "conf" / "trainer" / "default.yaml").read_text())
    assert names <= set(trainer)
    assert set(SPEED_SWITCHES) <= set(IGNORED_KEYS)
    assert {key for key in HARMLESS_KEYS if key in SPEED_SWITCHES} == \
        {key for key, same in SPEED_SWITCHES.items() if same}
