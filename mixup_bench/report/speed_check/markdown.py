"""speed_check.md: the equivalence table and the paper recipe's projection as Markdown.

Kept apart from speed_check, which computes them, so the page's wording can
change without touching a number.
"""

from __future__ import annotations

from typing import Any

from ...config import SPEED_SWITCHES
from ..stats import is_number

NOT_RUN = "not run"


def _fmt(value: Any, digits: int = 2, scale: float = 1.0, sign: bool = False) -> str:
    if not is_number(value):
        return "—" if value is None else str(value)
    return f"{value * scale:{'+' if sign else ''}.{digits}f}"


def _switch(row: dict[str, Any], key: str) -> str:
    value = row["switches"].get(key)
    resolved = row.get(f"resolved_{key}")
    if resolved is not None and resolved != value:
        return f"{value} → {resolved}"
    return "—" if value is None else str(value)


def _tf32(runs: list[dict[str, Any]]) -> str:
    """How each setting's runs ran fp32 arithmetic, from their environment's tf32 record."""
    def describe(record: dict[str, Any] | None) -> str:
        if not record:
            return "not recorded"
        if record.get("NVIDIA_TF32_OVERRIDE") == "0":
            return "off (NVIDIA_TF32_OVERRIDE=0)"
        used = [name for name, key in (("convolutions", "cudnn_conv"),
                                       ("matrix products", "cuda_matmul")) if record.get(key)]
        where = " (where it applies: Ampere or later GPUs)"
        return f"on for {' and '.join(used)}{where}" if used else "off"

    settings: dict[str, set[str]] = {}
    for row in runs:
        settings.setdefault(row["setting"], set()).add(describe(row.get("tf32")))
    return "; ".join(f"{name}: {', '.join(sorted(kinds))}" for name, kinds in settings.items())


def _render_equivalence(eq: dict[str, Any]) -> list[str]:
    lines = ["## Equivalence of the speed switches", ""]
    if eq.get("status") == NOT_RUN:
        return [*lines, f"Not run: {eq.get('reason')}.", ""]
    names = [key.split(".", 1)[1] for key in SPEED_SWITCHES]
    lines += [
        "| seed | setting | " + " | ".join(names)
        + " | status | epochs | final test acc | final train loss | run train loss "
        "| images/s (after epoch 1) |",
        "|" + "---|" * (len(names) + 8),
    ]
    for row in eq["runs"]:
        lines.append(
            f"| {row['seed']} | {row['setting']} | "
            + " | ".join(_switch(row, name) for name in names)
            + f" | {row['status']} | {_fmt(row['epochs_completed'], 0)} | "
            f"{_fmt(row['final_test_acc'], 2, 100)}% | {_fmt(row['final_train_loss'], 4)} | "
            f"{_fmt(row.get('run_train_loss'), 4)} | {_fmt(row['images_per_s'], 0)} |"
        )
    lines += ["", "Per epoch, mean test accuracy over seeds (finished runs):", "",
              "| epoch | fast | slow | paired fast − slow (points) | pairs |",
              "|---|---|---|---|---|"]
    for row in eq["per_epoch"]:
        lines.append(
            f"| {row['epoch']} | {_fmt(row['fast_test_acc'], 2, 100)}% | "
            f"{_fmt(row['slow_test_acc'], 2, 100)}% | "
            f"{_fmt(row['paired_difference'], 2, 100, True)} | {row['pairs']} |"
        )
    paired, std = eq["paired_final_test_acc_difference"], eq["seed_std_final_test_acc"]
    loss = eq.get("paired_train_loss_difference") or {}
    lines += [
        "",
        f"**Training loss over the run, fast − slow, paired by seed:** "
        f"{_fmt(loss.get('mean'), 4, sign=True)} nats, 95% CI "
        f"[{_fmt(loss.get('low'), 4, sign=True)}, {_fmt(loss.get('high'), 4, sign=True)}], "
        f"n = {loss.get('n', 0)} → **{eq['verdict']}**",
        "",
        f"Final test accuracy, fast − slow, paired by seed (reported, not deciding): "
        f"{_fmt(paired['mean'], 2, 100, True)} points, 95% CI "
        f"[{_fmt(paired['low'], 2, 100, True)}, {_fmt(paired['high'], 2, 100, True)}], "
        f"n = {paired['n']}",
        "",
        f"TF32 (fp32 convolutions and matrix products on tensor cores): {_tf32(eq['runs'])}.",
        "",
        f"Seed-to-seed std of final test accuracy: fast {_fmt(std['fast'], 2, 100)}, "
        f"slow {_fmt(std['slow'], 2, 100)} points.",
        "",
        f"Speed: fast {_fmt(eq['mean_images_per_s']['fast'], 0)} vs slow "
        f"{_fmt(eq['mean_images_per_s']['slow'], 0)} images/s, ratio "
        f"{_fmt(eq['speed_ratio'])}×.",
        "",
        f"Rule: {eq['rule']}.",
    ]
    if eq["excluded"]:
        lines += ["", "Excluded (not finished):"]
        lines += [f"- {row['setting']} seed {row['seed']}: {row['status']} ({row['path']})"
                  for row in eq["excluded"]]
    if eq["notes"]:
        lines += ["", *(f"- Note: {note}" for note in eq["notes"])]
    return [*lines, ""]


def _render_projection(pr: dict[str, Any]) -> list[str]:
    lines = ["## Paper recipe wall time (target: under 8 minutes, start-up included)", ""]
    if pr.get("status") == NOT_RUN:
        return [*lines, f"Not run: {pr.get('reason')}.", ""]
    lines += [f"**{pr['basis']}.**", ""]
    if pr["status"] == "projected":
        lines += [
            f"`{pr['formula']}` = {_fmt(pr['startup'], 1)} + {_fmt(pr['first'], 1)} + "
            f"({pr['planned_epochs']} − 1) × {_fmt(pr['steady'], 2)} = "
            f"**{_fmt(pr['projected_total'], 0)} s** "
            f"(in-process part {_fmt(pr['projected_in_process'], 0)} s)",
            "",
        ]
    target = {True: "yes", False: "no", None: "unknown"}[pr["meets_target"]]
    lines += [
        "| quantity | value |",
        "|---|---|",
        f"| device | {pr['device_name'] or '—'} |",
        f"| run status | {pr['run_status']} |",
        f"| epochs measured / planned | {pr['epochs_measured']} / {pr['planned_epochs']} |",
        f"| startup: (exit − launch) − wall_seconds | {_fmt(pr['startup'], 1)} s |",
        f"| first: elapsed at epoch 1 | {_fmt(pr['first'], 1)} s |",
        f"| steady: median epoch period after epoch 1 | {_fmt(pr['steady'], 2)} s |",
        f"| median train+eval seconds after epoch 1 | {_fmt(pr['median_epoch_seconds'], 2)} s |",
        f"| median images/s after epoch 1 | {_fmt(pr['median_images_per_s'], 0)} |",
        f"| projected total | {_fmt(pr['projected_total'], 0)} s |",
    ]
    if "measured_total" in pr:
        lines.append(f"| measured total (exit − launch) | {_fmt(pr['measured_total'], 0)} s |")
    lines.append(f"| meets {pr['target_seconds']:g} s target | {target} |")
    if pr["notes"]:
        lines += ["", *(f"- Note: {note}" for note in pr["notes"])]
    return [*lines, ""]


def render(results: dict) -> str:
    """The readable Markdown of `main`'s results."""
    lines = ["# Speed check", "", f"Device: {results.get('device_name') or 'unknown'}", ""]
    lines += _render_equivalence(results["equivalence"])
    lines += _render_projection(results["projection"])
    return "\n".join(lines)
