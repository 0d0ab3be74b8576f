"""The reporting half of `mixup-bench bench`: seconds per epoch, the ratios, and
bench.json / bench.md."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path
from typing import Any

from .plan import AUGS, EPOCH_IMAGES, TEST_IMAGES, Plan, switch_aug


def _find(records: list[dict[str, Any]], **keys: Any) -> dict[str, Any] | None:
    return next((r for r in records if all(r.get(k) == v for k, v in keys.items())), None)


def add_epoch_seconds(records: list[dict[str, Any]]) -> None:
    """Seconds per 50,000-image epoch, and with evaluation of the 10,000 test images."""
    for record in records:
        if record["measure"] != "train":
            continue
        evaluation = _find(records, pipeline=record["pipeline"], config=record["config"],
                           measure="eval")
        record["train_seconds_per_epoch"] = EPOCH_IMAGES / record["images_per_s"]
        record["eval_seconds_per_test_set"] = (TEST_IMAGES / evaluation["images_per_s"]
                                               if evaluation else None)
        record["seconds_per_epoch"] = (  # unknown where the setting skipped evaluation
            record["train_seconds_per_epoch"] + record["eval_seconds_per_test_set"]
            if evaluation else None)


def precision_of(record: dict[str, Any] | None) -> str | None:
    """The arithmetic a measurement ran in: its setting's autocast precision; the classic
    pipeline (switches None) runs in fp32, as the original Mixup code. Every bench.md row
    names it, because `auto` resolves differently by machine (bf16 on a CPU with AMX or
    AVX512-BF16, fp32 on other CPUs; see docs/speed.md)."""
    if not record or "switches" not in record:
        return None
    return record["switches"]["precision"] if record["switches"] else "fp32"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def summarise(records: list[dict[str, Any]], plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """The ratios bench.md shows: fast / classic, fast / each variant, mixing / none."""
    summary: dict[str, list[dict[str, Any]]] = {"training": [], "pipeline": [], "switches": [],
                                                "mixing_overhead": []}
    for batch_size, aug in itertools.product(plan.batch_sizes, plan.augs):
        for measure in ("train", "pipeline"):
            fast = _find(records, pipeline="fast", config="fast", measure=measure,
                         batch_size=batch_size, aug=aug) or {}
            classic = _find(records, pipeline="classic", measure=measure,
                            batch_size=batch_size, aug=aug) or {}
            row = {"batch_size": batch_size, "aug": aug}
            for key in ("images_per_s", "seconds_per_epoch", "peak_memory_bytes"):
                if measure == "train" or key == "images_per_s":
                    row[f"fast_{key}"], row[f"classic_{key}"] = fast.get(key), classic.get(key)
            row["fast_over_classic"] = _ratio(fast.get("images_per_s"),
                                              classic.get("images_per_s"))
            row["fast_precision"] = precision_of(fast)
            if measure == "pipeline":
                row["epoch_draw_seconds"] = fast.get("epoch_draw_seconds")
                row["epoch_steps"] = fast.get("epoch_steps")
            summary["training" if measure == "train" else "pipeline"].append(row)
    switched = [r for r in records if r["measure"] == "train" and r["pipeline"] == "fast"
                and r["aug"] == switch_aug(plan)]
    for record in sorted(switched, key=lambda r: plan.batch_sizes.index(r["batch_size"])):
        fast = _find(records, config="fast", measure="train", batch_size=record["batch_size"],
                     aug=record["aug"]) or {}
        summary["switches"].append({
            "config": record["config"], "precision": precision_of(record),
            "batch_size": record["batch_size"],
            "aug": record["aug"], "images_per_s": record["images_per_s"],
            "fast_over_this": _ratio(fast.get("images_per_s"), record["images_per_s"]),
            "seconds_per_epoch": record["seconds_per_epoch"],
            "eval_seconds_per_test_set": record["eval_seconds_per_test_set"],
            "warmup_seconds": record.get("warmup_seconds"),
            "peak_memory_bytes": record["peak_memory_bytes"]})
    for pipeline, batch_size, aug in itertools.product(("fast", "classic"), plan.batch_sizes,
                                                       [a for a in plan.augs if a != "none"]):
        keys = {"pipeline": pipeline, "measure": "train", "batch_size": batch_size}
        if pipeline == "fast":
            keys["config"] = "fast"
        plain, mixed = _find(records, aug="none", **keys), _find(records, aug=aug, **keys)
        if plain and mixed:
            summary["mixing_overhead"].append({
                "pipeline": pipeline, "precision": precision_of(mixed),
                "batch_size": batch_size, "aug": aug,
                "time_percent": time_overhead_percent(plain, mixed),
                "peak_memory_percent": 100 * (mixed["peak_memory_bytes"]
                                              / plain["peak_memory_bytes"] - 1),
                "peak_memory_above_start_percent": 100 * (
                    _ratio(mixed["peak_memory_above_start_bytes"],
                           plain["peak_memory_above_start_bytes"]) or float("nan")) - 100})
    summary["syncs"] = [{key: record.get(key) for key in (
        "config", "batch_size", "aug", "steps", "syncs_per_step", "syncs_at_epoch_end")}
        | {"precision": precision_of(record)}
        | {"by_phase": ", ".join(f"{phase} {count}" for phase, count in
                                 sorted(record["syncs_by_phase"].items())) or "none"}
        for record in records if record["measure"] == "syncs"]
    summary["targets"] = targets(records, summary, plan)
    return summary


def setting_coverage(planned: list[str], records: list[dict[str, Any]],
                     plan: Plan) -> dict[str, list[str]]:
    """The planned settings (labels, in order) by how far they were measured: at every
    batch size, at some (a time limit cut them), or not at all."""
    trained: dict[str, set[int]] = {}
    for record in records:
        if record["measure"] == "train":
            trained.setdefault(record["config"], set()).add(record["batch_size"])
    coverage: dict[str, list[str]] = {"measured": [], "partly": [], "not_measured": []}
    for label in planned:
        sizes = trained.get(label, set())
        key = ("measured" if sizes >= set(plan.batch_sizes) else "partly" if sizes
               else "not_measured")
        coverage[key].append(label)
    return coverage


# The speed targets of the project (one H100 or H200, ResNet-18 CIFAR stem, CIFAR-10):
# (batch size, least training images/s with crop, flip and mixing).
THROUGHPUT_TARGETS = ((512, 40_000), (128, 20_000))
CLASSIC_RATIO_TARGET = 5.0
MIXING_TIME_TARGET, MIXING_MEMORY_TARGET = 3.0, 1.0  # percent over aug none
# The mixing targets are set for mixup and cutmix (a blend and a box: a few kernels). Other
# methods' costs are shown in the mixing-overhead table, not judged: the model-guided ones
# run extra passes by design, and PuzzleMix's graph cut on the CPU synchronises every step.
MIXING_TARGET_AUGS = tuple(aug for aug in AUGS if aug != "none")
SYNCING_AUGS = ("puzzlemix",)
EVAL_SECONDS_TARGET = 1.0  # the 10,000 test images


def targets(records: list[dict[str, Any]], summary: dict[str, list[dict[str, Any]]],
            plan: Plan) -> list[dict[str, Any]]:
    """Each target against what was measured: the best setting for throughput, the
    default (fast) setting for the rest; `met` is None where nothing was measured."""
    aug = switch_aug(plan)
    rows = []

    def row(target: str, measured: float | None, setting: str | None, met: bool | None,
            kind: str) -> None:
        rows.append({"target": target, "measured": measured, "setting": setting,
                     "met": None if measured is None else met, "kind": kind})

    for batch_size, least in THROUGHPUT_TARGETS:
        candidates = [r for r in records if r["pipeline"] == "fast" and r["measure"] == "train"
                      and r["batch_size"] == batch_size and r["aug"] == aug]
        best = max(candidates, key=lambda r: r["images_per_s"], default=None)
        row(f"training img/s, batch {batch_size}, {aug} >= {least:,}",
            best and best["images_per_s"], best and best["config"],
            best is not None and best["images_per_s"] >= least, "rate")
    ratios = [r for r in summary["training"] if r.get("fast_over_classic")]
    worst = min(ratios, key=lambda r: r["fast_over_classic"], default=None)
    complete = len(ratios) == len(summary["training"])  # a cut-off bench judges nothing
    row(f"fast / classic, lowest over batch sizes and augs >= {CLASSIC_RATIO_TARGET:g}x",
        worst and worst["fast_over_classic"],
        worst and f"fast, batch {worst['batch_size']}, {worst['aug']}"
        + ("" if complete else f" ({len(ratios)} of {len(summary['training'])} measured)"),
        worst["fast_over_classic"] >= CLASSIC_RATIO_TARGET if worst and complete else None,
        "ratio")
    fast_overheads = [r for r in summary["mixing_overhead"]
                      if r["pipeline"] == "fast" and r["aug"] in MIXING_TARGET_AUGS]
    for key, limit, name in (("time_percent", MIXING_TIME_TARGET, "time"),
                             ("peak_memory_percent", MIXING_MEMORY_TARGET,
                              "peak memory (whole)")):
        worst = max(fast_overheads, key=lambda r: r[key], default=None)
        row(f"mixing {name} over aug none ({', '.join(MIXING_TARGET_AUGS)}), highest <= "
            f"{limit:g}%", worst and worst[key],
            worst and f"fast, batch {worst['batch_size']}, {worst['aug']}",
            worst is not None and worst[key] <= limit, "percent")
    syncs = [r for r in summary["syncs"]
             if r["config"] == "fast" and r["aug"] not in SYNCING_AUGS]
    worst = max(syncs, key=lambda r: r["syncs_per_step"], default=None)
    row("host synchronisations per training step, fast, every batch size and aug "
        f"(but {', '.join(SYNCING_AUGS)}) = 0",
        worst and worst["syncs_per_step"],
        worst and f"fast, batch {worst['batch_size']}, {worst['aug']}",
        worst is not None and worst["syncs_per_step"] == 0, "count")
    evaluation = _find(records, pipeline="fast", config="fast", measure="eval")
    seconds = evaluation and TEST_IMAGES / evaluation["images_per_s"]
    row(f"evaluation of {TEST_IMAGES:,} test images < {EVAL_SECONDS_TARGET:g} s", seconds,
        "fast", seconds is not None and seconds < EVAL_SECONDS_TARGET, "seconds3")
    return rows


def time_overhead_percent(plain: dict[str, Any], mixed: dict[str, Any]) -> float:
    """Percent more time per image with mixing: the median over interleaved rounds of each
    round's own ratio where there were rounds (a drift between rounds cancels), else the
    ratio of the two rates."""
    rounds = plain.get("round_seconds"), mixed.get("round_seconds")
    if rounds[0] and rounds[1] and len(rounds[0]) == len(rounds[1]) > 1 \
            and plain["images"] == mixed["images"]:
        return 100 * (statistics.median(m / p for p, m in zip(*rounds, strict=True)) - 1)
    return 100 * (plain["images_per_s"] / mixed["images_per_s"] - 1)


def _format(value: Any, kind: str) -> str:
    if value is None or value != value:  # missing, or NaN
        return "-"
    if kind == "rate" and abs(value) < 100:
        return f"{value:.3g}"
    formats = {"rate": "{:,.0f}", "seconds": "{:,.1f}", "seconds3": "{:,.3f} s",
               "ratio": "{:.2f}x", "percent": "{:+.1f}%", "count": "{:g}"}
    if kind == "bytes":
        return f"{value / 2**20:,.0f}"
    return formats[kind].format(value) if kind in formats else str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table; columns are (key, heading, format kind)."""
    lines = ["| " + " | ".join(heading for _, heading, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_format(row.get(key), kind) for key, _, kind in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    """bench.md: where and how it was measured, then the four tables."""
    environment, settings, data = results["environment"], results["settings"], results["data"]
    load = results["load_average"]
    shared = load["before"][0] > 0.5 or load["after"][0] > load["cpu_count"]
    data_line = (f"CIFAR-10 from {data['root']} ({data['train_images']:,} train / "
                 f"{data['test_images']:,} test images, checksums {data['checksums']})"
                 if data["source"] == "cifar10" else
                 f"random uint8 images ({data['train_images']:,} train / {data['test_images']:,} "
                 "test; throughput does not depend on pixel values)")
    fast = results["fast"]
    precision = "fp32 (no autocast)" if fast["precision"] == "fp32" else \
        f"{fast['precision']} autocast"
    lines = [
        f"# mixup-bench bench: {environment['device_name']} ({environment['device']})", "",
        f"- date: {results['date']}; command: `{results['command']}`",
        f"- torch {environment['torch']}, torchvision {environment['torchvision']}, timm "
        f"{environment['timm']}, CUDA {environment['cuda']}, cuDNN {environment['cudnn']}, "
        f"Python {environment['python']}, {environment['cpu_threads']} CPU threads; "
        f"git {environment['git_commit'] or 'unknown'}",
        f"- data: {data_line}",
        f"- steps per setting: {settings['warmup']} warm-up + {settings['steps']} timed "
        f"(fast setting: median of {settings.get('repeats', 1)} interleaved round(s); "
        f"pipeline alone: {settings['pipeline_steps']}); evaluation: "
        f"{settings['eval_batches']} batch(es) of {settings['eval_batch_size']}; classic "
        f"DataLoader workers: {settings['workers']}",
        f"- fast setting: {precision}, channels_last "
        f"{'on' if fast['channels_last'] else 'off'}, torch.compile "
        f"{'on' if fast['compile'] else 'off'}, cudnn.benchmark "
        f"{'on' if fast['cudnn_benchmark'] else 'off'}, "
        f"{fast.get('optimizer_step', 'foreach')} SGD; classic (classic.py): fp32, NCHW, "
        "no compile, cudnn.benchmark on CUDA and loss.item() every step as the original "
        "Mixup code; where the loader can be the bottleneck, warm-up empties the workers' "
        "prefetch queue",
        f"- memory: {results['memory_source']}",
        f"- load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load['before'])},"
        f" after {', '.join(f'{x:.2f}' for x in load['after'])}, on {load['cpu_count']} CPUs"
        + ("; the machine was shared with other work during the run" if shared else ""),
    ]
    if results["note"]:
        lines.append(f"- note: {results['note']}")
    if not results["complete"]:
        lines.append("- **incomplete**: the run stopped before every setting was measured")
        coverage = results.get("coverage") or {}
        if coverage.get("not_measured") or coverage.get("partly"):
            lines.append("- cut (the run stopped before them, e.g. at its time limit): "
                         + "; ".join(filter(None, [
                             coverage.get("not_measured") and "not measured: "
                             + ", ".join(coverage["not_measured"]),
                             coverage.get("partly") and "measured at some batch sizes only: "
                             + ", ".join(coverage["partly"])])))
    if results["errors"]:
        lines += ["", "**Settings that failed:**", *[f"- {error}" for error in results["errors"]]]
    summary = results["summary"]
    memory = "peak MiB"
    device = "GPU" if environment["device"].startswith("cuda") else "CPU"
    lines += [
        "", "## Targets (one H100 or H200)", "",
        *(["Measured on a CPU: these targets are for a GPU and are shown for the record.", ""]
          if device == "CPU" else []),
        _table([{**r, "met": {True: "yes", False: "**no**", None: "not measured"}[r["met"]],
                 "value": _format(r["measured"], r["kind"])} for r in summary["targets"]],
               [("target", "target", ""), ("value", "measured", ""),
                ("setting", "setting", ""), ("met", "met", "")]),
    ]
    lines += [
        "", "## Training: fast vs classic", "",
        "Seconds per epoch: 50,000 training images plus evaluation of 10,000 test images. "
        "The fast pipeline's peak includes the dataset it keeps on the device.", "",
        _table(summary["training"], [
            ("batch_size", "batch", ""), ("aug", "aug", ""),
            ("fast_precision", "fast precision", ""),
            ("fast_images_per_s", "fast img/s", "rate"),
            ("classic_images_per_s", "classic img/s (fp32)", "rate"),
            ("fast_over_classic", "fast/classic", "ratio"),
            ("fast_seconds_per_epoch", "fast s/epoch", "seconds"),
            ("classic_seconds_per_epoch", "classic s/epoch", "seconds"),
            ("fast_peak_memory_bytes", f"fast {memory}", "bytes"),
            ("classic_peak_memory_bytes", f"classic {memory}", "bytes")]),
        "", f"## Speed switches ({settings['switch_aug']}; each row turns one switch of the "
            "fast setting the other way)", "",
        "Compiled settings skip the evaluation (it would compile again). img/s is measured "
        "after the warm-up steps; their time (compilation, cuDNN's search) is shown apart.", "",
        _table(summary["switches"], [
            ("batch_size", "batch", ""), ("config", "setting", ""),
            ("precision", "precision", ""), ("images_per_s", "img/s", "rate"),
            ("fast_over_this", "fast/this", "ratio"),
            ("seconds_per_epoch", "s/epoch", "seconds"),
            ("eval_seconds_per_test_set", "eval s/10k", "seconds"),
            ("warmup_seconds", "warm-up s", "seconds"),
            ("peak_memory_bytes", memory, "bytes")]),
        "", "## Data pipeline alone (crop, flip, normalise, mix; no model, so no autocast)", "",
        "Every mixer draws an epoch's random numbers (lambdas, partners, boxes, masks) at its "
        "first step and copies them to the device at once; the timed steps use draws made "
        "during warm-up, and the last columns give that per-epoch cost apart. The "
        "model-guided methods' rows include their extra passes through the network; Manifold "
        "Mixup's mixing happens in the forward pass, so its row holds only the draws.", "",
        _table(summary["pipeline"], [
            ("batch_size", "batch", ""), ("aug", "aug", ""),
            ("fast_images_per_s", "fast img/s", "rate"),
            ("classic_images_per_s", "classic img/s", "rate"),
            ("fast_over_classic", "fast/classic", "ratio"),
            ("epoch_steps", "steps/epoch", ""),
            ("epoch_draw_seconds", "epoch's draws s", "seconds3")]),
        "", "## Host synchronisations per training step (target 0)", "",
        *(["Counted on CUDA only, under torch.cuda.set_sync_debug_mode(\"warn\"), for every "
           "setting measured, by the phase of the step they came from; the epoch's end reads "
           "its loss and accuracy back once (not per step).", "",
           _table(summary.get("syncs", []), [
               ("config", "setting", ""), ("precision", "precision", ""),
               ("batch_size", "batch", ""), ("aug", "aug", ""), ("steps", "steps", ""),
               ("syncs_per_step", "syncs per step", "count"), ("by_phase", "by phase", ""),
               ("syncs_at_epoch_end", "at the epoch's end", "")])]
          if device == "GPU" else ["Not measured: CUDA only."]),
        "", "## Mixing overhead against aug none (training)", "",
        "Time: extra time per image. Memory: the peak over the timed steps, whole and above "
        "what was allocated when they began (model, optimizer state, data).", "",
        _table(summary["mixing_overhead"], [
            ("pipeline", "pipeline", ""), ("precision", "precision", ""),
            ("batch_size", "batch", ""), ("aug", "aug", ""),
            ("time_percent", "time", "percent"), ("peak_memory_percent", "peak memory", "percent"),
            ("peak_memory_above_start_percent", "peak above start", "percent")]),
    ]
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: dict[str, Any]) -> str:
    """Write bench.json and bench.md; return the Markdown."""
    from ..jsonio import write_json_atomic

    markdown = render(results)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "bench.json", results)
    (out / "bench.md").write_text(markdown)
    return markdown
