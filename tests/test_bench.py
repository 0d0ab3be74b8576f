"""bench: the dry run end to end, and the classic pipeline's mixing and loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mixup_bench import bench
from mixup_bench.bench import classic
from mixup_bench.bench import measure as bench_measure
from mixup_bench.bench.plan import AUGS, Plan, Switches, planned_settings, setting_label, variants
from mixup_bench.mixing import soft_target_cross_entropy
from mixup_bench.mixing.ops import one_hot

from .partner_mix import mixup

RECORD_KEYS = {"pipeline", "config", "measure", "batch_size", "aug", "warmup", "steps", "images",
               "seconds", "warmup_seconds", "images_per_s", "peak_memory_bytes",
               "peak_memory_above_start_bytes"}
TOP_KEYS = {"command", "date", "mode", "data", "environment", "settings", "fast", "memory_source",
            "complete", "load_average", "measurements", "summary", "errors", "planned_settings",
            "coverage"}


def other_precision_on_this_cpu() -> str:
    """The bench's precision variant here: `auto` picks bf16 on a CPU with AMX or
    AVX512-BF16 and fp32 elsewhere, and the variant turns it the other way."""
    from mixup_bench.train.runtime import cpu_has_fast_bf16

    return "fp32" if cpu_has_fast_bf16() else "bf16"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One `bench --dry-run --device cpu` on random images, at the smallest size that
    still takes every path (one batch size, one step, one DataLoader worker)."""
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:  # no CIFAR-10 folder to find: random images
        patch.setenv("MIXUP_BENCH_DATA", str(tmp_path_factory.mktemp("no_data")))
        code = bench.main(["--device", "cpu", "--dry-run", "--batch-sizes", "2", "--warmup",
                           "0", "--workers", "1", "--out", str(out)])
    return code, out, json.loads((out / "bench.json").read_text())


def test_dry_run_writes_every_measurement_with_positive_numbers(dry_run):
    code, out, results = dry_run
    assert code == 0 and results["errors"] == [] and results["complete"]
    assert TOP_KEYS <= set(results)
    assert results["data"]["source"] == "synthetic"
    assert results["environment"]["device"] == "cpu" and results["environment"]["torch"]
    seen = set()
    for record in results["measurements"]:
        assert RECORD_KEYS <= set(record)
        assert record["seconds"] > 0 and record["images_per_s"] > 0
        assert record["peak_memory_bytes"] > 0
        seen.add((record["pipeline"], record["config"], record["measure"], record["aug"]))
        if record["measure"] == "train":
            assert record["seconds_per_epoch"] > record["train_seconds_per_epoch"] > 0
    for aug in AUGS:
        for pipeline, config in (("fast", "fast"), ("classic", "classic")):
            assert (pipeline, config, "train", aug) in seen
            assert (pipeline, config, "pipeline", aug) in seen
    # Each switch turned the other way once: precision (this CPU's auto precision turned
    # the other way), channels_last and the SGD kernels (compilation: CUDA only).
    configs = {config for _, config, measure, _ in seen if measure == "eval"}
    assert configs == {"fast", other_precision_on_this_cpu(), "channels_last off",
                       "optimizer fused", "classic"}


def test_dry_run_summary_has_ratios_and_markdown_tables(dry_run):
    _, out, results = dry_run
    summary = results["summary"]
    assert [row["aug"] for row in summary["training"]] == list(AUGS)
    assert all(row["fast_over_classic"] > 0 for row in summary["training"])
    other = other_precision_on_this_cpu()
    assert {row["config"] for row in summary["switches"]} == {"fast", other, "channels_last off",
                                                              "optimizer fused"}
    fast = results["fast"]["precision"]
    assert {fast, other} == {"fp32", "bf16"}
    assert {(row["config"], row["precision"]) for row in summary["switches"]} == {
        ("fast", fast), (other, other), ("channels_last off", fast), ("optimizer fused", fast)}
    assert {row["fast_precision"] for row in summary["training"]} == {fast}
    assert {(row["pipeline"], row["precision"]) for row in summary["mixing_overhead"]} == {
        ("fast", fast), ("classic", "fp32")}
    assert {(row["pipeline"], row["aug"]) for row in summary["mixing_overhead"]} == {
        (pipeline, aug) for pipeline in ("fast", "classic") for aug in ("mixup", "cutmix")}
    targets = {row["target"]: row for row in summary["targets"]}
    assert len(targets) == 7
    # Host syncs are counted on CUDA only.
    syncs = targets["host synchronisations per training step, fast, every batch size and aug "
                    "(but puzzlemix) = 0"]
    assert syncs["met"] is None and summary["syncs"] == []
    assert results["coverage"] == {"measured": results["planned_settings"], "partly": [],
                                   "not_measured": []}
    # Batch 2 only: the throughput targets (batch 128 and 512) were not measured.
    assert targets["training img/s, batch 128, mixup >= 20,000"]["met"] is None
    ratio = targets["fast / classic, lowest over batch sizes and augs >= 5x"]
    assert ratio["measured"] == min(row["fast_over_classic"] for row in summary["training"])
    time_row = targets["mixing time over aug none (mixup, cutmix), highest <= 3%"]
    assert time_row["measured"] == max(row["time_percent"] for row in summary["mixing_overhead"]
                                       if row["pipeline"] == "fast")
    assert time_row["met"] is (time_row["measured"] <= 3)
    markdown = (out / "bench.md").read_text()
    assert "## Targets (one H100 or H200)" in markdown and "these targets are for a GPU" in markdown
    # Every row of the model's tables names its precision.
    assert f"| {other} | {other} |" in markdown and f"| fast | {fast} |" in markdown
    assert "| fast precision |" in markdown and "classic img/s (fp32)" in markdown
    assert f"| fast | {fast} | 2 | mixup |" in markdown
    assert "| classic | fp32 | 2 | mixup |" in markdown
    for heading in ("## Training: fast vs classic", "## Speed switches",
                    "## Data pipeline alone", "## Mixing overhead",
                    "## Host synchronisations per training step"):
        assert heading in markdown
    assert "Not measured: CUDA only." in markdown
    assert "random uint8 images" in markdown and results["memory_source"] in markdown


def test_cpu_pipeline_alone_is_compared_as_a_ratio(dry_run):
    _, _, results = dry_run
    rows = results["summary"]["pipeline"]
    assert len(rows) == len(AUGS)
    for row in rows:
        assert row["fast_images_per_s"] > 0 and row["classic_images_per_s"] > 0
        assert row["fast_over_classic"] == pytest.approx(
            row["fast_images_per_s"] / row["classic_images_per_s"])


def test_cuda_variants_turn_each_switch_once_and_compile_first():
    """The throughput targets depend on the compiled settings: they come right after the
    default one, before classic, so that the bench's time limit cuts the others."""
    cuda = torch.device("cuda")
    fast = Switches("bf16", True, False, True)
    labels = [switches.label(fast) for switches in variants(fast, cuda)]
    assert labels == ["compile reduce-overhead", "compile on", "cudnn.benchmark off",
                      "optimizer fused", "channels_last off", "fp32", "fp16"]
    planned = [setting_label(switches, fast)
               for switches in planned_settings(fast, cuda)]
    assert planned == ["fast", "compile reduce-overhead", "compile on", "classic",
                       "cudnn.benchmark off", "optimizer fused", "channels_last off", "fp32",
                       "fp16"]
    compiled = Switches("bf16", True, True, True)
    planned = [setting_label(switches, compiled)
               for switches in planned_settings(compiled, cuda)]
    assert planned[:4] == ["fast", "compile reduce-overhead", "compile off", "classic"]
    assert fast.label(fast) == "fast"
    cpu = [setting_label(switches, fast)
           for switches in planned_settings(fast, torch.device("cpu"))]
    assert cpu == ["fast", "classic", "optimizer fused", "channels_last off", "fp32"]


@pytest.mark.parametrize("fast_bf16, fast, other", [(False, "fp32", "bf16"),
                                                     (True, "bf16", "fp32")],
                         ids=["cpu-without-amx", "cpu-with-amx"])
def test_the_cpu_benchs_precision_follows_the_cpus_bf16_support(monkeypatch, fast_bf16, fast,
                                                                 other):
    """Both CPU branches, whatever this host is: the fast setting takes auto's precision
    and the precision variant is the other one (the bench once assumed fp32 here, and
    failed on an AMX Xeon)."""
    from mixup_bench.bench.measure import fast_switches
    from mixup_bench.train import runtime

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: fast_bf16)
    switches = fast_switches(torch.device("cpu"), False)
    assert switches.precision == fast
    labels = [setting_label(s, switches) for s in planned_settings(switches,
                                                                   torch.device("cpu"))]
    assert labels == ["fast", "classic", "optimizer fused", "channels_last off", other]


def test_bench_md_names_the_settings_a_time_limit_cut(dry_run, tmp_path):
    from mixup_bench.bench.results import render, setting_coverage

    _, _, results = dry_run
    plan = Plan(device=torch.device("cuda"), batch_sizes=[2, 4], augs=list(AUGS), warmup=0,
                steps=1, eval_batch_size=2, eval_batches=1, workers=0, compile=False,
                mode="dry_run", data_root=None, out=tmp_path, note=None)
    trained = [{"measure": "train", "config": "fast", "batch_size": size} for size in (2, 4)]
    trained.append({"measure": "train", "config": "compile reduce-overhead", "batch_size": 2})
    planned = ["fast", "compile reduce-overhead", "compile on", "classic"]
    coverage = setting_coverage(planned, trained, plan)
    assert coverage == {"measured": ["fast"], "partly": ["compile reduce-overhead"],
                        "not_measured": ["compile on", "classic"]}
    markdown = render({**results, "complete": False, "coverage": coverage})
    assert ("- cut (the run stopped before them, e.g. at its time limit): not measured: "
            "compile on, classic; measured at some batch sizes only: compile reduce-overhead"
            ) in markdown


def test_classic_mixed_loss_equals_the_soft_target_loss():
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (8,), generator=generator)
    logits = torch.randn(8, 10, generator=generator)
    mixed, labels_a, labels_b, lam = classic.mixup_batch(images, labels, 0.4,
                                                         np.random.default_rng(3))
    # The same lambda and partner (replayed from the same seed) through the project's
    # mixer and soft-target loss.
    rng = np.random.default_rng(3)
    assert rng.beta(0.4, 0.4) == lam
    partner = torch.from_numpy(rng.permutation(8))
    reference = mixup(images, one_hot(labels, 10), lam, partner)
    torch.testing.assert_close(mixed, reference.images)
    assert torch.equal(labels_b, labels[partner])
    torch.testing.assert_close(classic.mixed_loss(logits, labels_a, labels_b, lam),
                               soft_target_cross_entropy(logits, reference.targets))


def test_classic_cutmix_pastes_one_box_and_sets_lambda_from_it():
    images = torch.zeros(4, 3, 32, 32)
    images[1:] = torch.arange(1, 4).float().view(3, 1, 1, 1)
    labels = torch.arange(4)
    mixed, labels_a, labels_b, lam = classic.cutmix_batch(images, labels, 1.0,
                                                          np.random.default_rng(5))
    changed = (mixed != images).any(1)  # (N, H, W): pixels taken from the partner
    pasted = changed.float().mean((1, 2))
    moved = labels_b != labels_a
    assert torch.allclose(pasted[moved], torch.full_like(pasted[moved], 1 - lam))
    assert images[0].eq(0).all()  # the source batch is untouched


def test_classic_loader_crops_flips_normalises_pil_images():
    split = bench_measure.load_data(Plan(
        device=torch.device("cpu"), batch_sizes=[4], augs=["none"], warmup=0, steps=1,
        eval_batch_size=4, eval_batches=1, workers=0, compile=False, mode="dry_run",
        data_root=None, out=None, note=None))[0]
    loader = classic.build_loader(split, 4, train=True, workers=0, pin_memory=False)
    images, labels = next(iter(loader))
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (4,) and len(loader) == len(split) // 4


@pytest.mark.parametrize("arguments, message", [
    (["--augs", "mixup,fancy"], "--augs: fancy unknown"),
    (["--steps", "0"], "--steps=0: expected >= 1"),
    (["--batch-sizes", "128,x"], "--batch-sizes"),
    (["--data-root", "/nonexistent"], "no cifar-10-batches-py/ there"),
])
def test_bad_arguments_fail_with_one_line_and_status_2(arguments, message, capsys, tmp_path):
    assert bench.main(["--device", "cpu", "--out", str(tmp_path), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mixup-bench: error:") and message in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "bench.json").exists()


def test_mixing_overhead_is_the_median_of_per_round_ratios():
    from mixup_bench.bench.results import time_overhead_percent

    plain = {"round_seconds": [1.0, 2.0, 1.0], "images": 640, "images_per_s": 640.0}
    mixed = {"round_seconds": [1.02, 2.2, 0.99], "images": 640, "images_per_s": 600.0}
    # Per round: 1.02, 1.10, 0.99 -> median 1.02; the round-2 drift (2 s) does not count.
    assert time_overhead_percent(plain, mixed) == pytest.approx(2.0)
    single = {"images": 640, "images_per_s": 640.0}
    assert time_overhead_percent(single, {"images": 640, "images_per_s": 600.0}) == \
        pytest.approx(100 * (640 / 600 - 1))


def test_host_syncs_on_cuda_are_tabled_and_the_fast_settings_are_the_target(dry_run, tmp_path):
    from mixup_bench.bench.results import render, summarise

    _, _, results = dry_run
    plan = Plan(device=torch.device("cuda"), batch_sizes=[2], augs=list(AUGS), warmup=0,
                steps=1, eval_batch_size=2, eval_batches=1, workers=0, compile=False,
                mode="dry_run", data_root=None, out=tmp_path, note=None)

    def syncs(config: str, aug: str, per_step: float, phases: dict) -> dict:
        return {"pipeline": "fast", "config": config, "measure": "syncs", "batch_size": 2,
                "aug": aug, "steps": 5, "syncs_per_step": per_step, "syncs_by_phase": phases,
                "syncs_at_epoch_end": 3, "examples": {},
                "switches": {"precision": "fp16" if config == "fp16" else "bf16"}}

    records = [*results["measurements"], syncs("fast", "none", 0.0, {"epoch end": 3}),
               syncs("fast", "mixup", 0.0, {"epoch end": 3}),
               syncs("fp16", "mixup", 1.0, {"optimizer": 5, "epoch end": 3})]
    summary = summarise(records, plan)
    target = next(row for row in summary["targets"] if row["target"].startswith("host"))
    assert (target["measured"], target["met"]) == (0.0, True)  # fp16's sync is not the target's
    markdown = render({**results, "summary": summary,
                       "environment": {**results["environment"], "device": "cuda:0"}})
    assert "| fp16 | fp16 | 2 | mixup | 5 | 1 | epoch end 3, optimizer 5 | 3 |" in markdown
    assert "| fast | bf16 | 2 | none | 5 | 0 | epoch end 3 | 3 |" in markdown
