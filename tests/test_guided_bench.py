"""`mixup-bench bench --augs`: every method (the model-guided ones with their extra
passes) planned, configured, guided, and measured in the fast setting alone."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from mixup_bench import bench
from mixup_bench.bench.measure import fast_switches, project_defaults, trainer_mixer
from mixup_bench.bench.plan import (
    AUGS,
    GUIDED_AUGS,
    BenchError,
    bench_augs,
    parse_args,
    planned_settings,
    resolve_plan,
)
from mixup_bench.data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, Split
from mixup_bench.mixing import mixer_names
from mixup_bench.train import Runtime

from .test_model_guided import Probe


def test_the_bench_takes_the_guided_methods_beside_mixup_and_cutmix():
    plan = resolve_plan(parse_args(["--device", "cpu", "--dry-run", "--augs",
                                    "none,mixup,cutmix,attentivemix,puzzlemix"]))
    assert plan.augs == ["none", "mixup", "cutmix", "attentivemix", "puzzlemix"]
    assert resolve_plan(parse_args(["--device", "cpu", "--dry-run"])).augs == list(AUGS)
    with pytest.raises(BenchError, match="attentivemixx unknown; expected 'all' or some of "
                                         "none,attentivemix,cutmix,fmix,gridmix"):
        resolve_plan(parse_args(["--device", "cpu", "--augs", "attentivemixx"]))


def test_augs_all_is_every_method_the_trainer_takes():
    everything = resolve_plan(parse_args(["--device", "cpu", "--dry-run", "--augs", "all"]))
    assert everything.augs == list(bench_augs()) and everything.augs[0] == "none"
    assert set(everything.augs) == set(mixer_names()) and len(everything.augs) == 12
    with pytest.raises(BenchError, match="--compile with --augs manifold_mixup"):
        resolve_plan(parse_args(["--device", "cpu", "--augs", "none,manifold_mixup",
                                 "--compile"]))


def test_without_gco_all_leaves_puzzlemix_out_and_asking_for_it_says_how(monkeypatch):
    from mixup_bench.bench import plan as bench_plan

    monkeypatch.setattr(bench_plan, "gco_missing", lambda: True)
    everything = resolve_plan(parse_args(["--device", "cpu", "--dry-run", "--augs", "all"]))
    assert "puzzlemix" not in everything.augs and len(everything.augs) == 11
    with pytest.raises(BenchError, match=r"--augs puzzlemix: .*pip install -e '\.\[puzzlemix\]'"):
        resolve_plan(parse_args(["--device", "cpu", "--augs", "none,puzzlemix"]))


def test_fast_only_plans_the_default_setting_alone():
    plan = resolve_plan(parse_args(["--device", "cpu", "--dry-run", "--fast-only"]))
    fast = fast_switches(plan.device, False)
    assert plan.fast_only and planned_settings(fast, plan.device, plan.fast_only) == [fast]
    assert len(planned_settings(fast, plan.device)) > 1 and None in planned_settings(
        fast, plan.device)  # without it: the switches and the classic pipeline too


def test_fast_only_bench_measures_each_methods_extra_cost_and_judges_only_mixup_cutmix(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MIXUP_BENCH_DATA", str(tmp_path / "no_data"))  # random images
    augs = ["none", "mixup", "attentivemix", "manifold_mixup"]
    code = bench.main(["--device", "cpu", "--dry-run", "--fast-only", "--batch-sizes", "4",
                       "--warmup", "0", "--augs", ",".join(augs), "--out", str(tmp_path)])
    results = json.loads((tmp_path / "bench.json").read_text())
    assert code == 0 and results["errors"] == [] and results["planned_settings"] == ["fast"]
    assert {record["config"] for record in results["measurements"]} == {"fast"}
    assert {record["pipeline"] for record in results["measurements"]} == {"fast"}
    overheads = {row["aug"]: row for row in results["summary"]["mixing_overhead"]}
    assert set(overheads) == set(augs) - {"none"}
    train = {r["aug"]: r for r in results["measurements"] if r["measure"] == "train"}
    for aug, row in overheads.items():  # extra time per image against aug none, in percent
        expected = 100 * (train["none"]["images_per_s"] / train[aug]["images_per_s"] - 1)
        assert row["time_percent"] == pytest.approx(expected, rel=1e-6)
    targets = {row["target"]: row for row in results["summary"]["targets"]}
    time_row = targets["mixing time over aug none (mixup, cutmix), highest <= 3%"]
    assert time_row["measured"] == overheads["mixup"]["time_percent"]  # guided ones not judged
    markdown = (tmp_path / "bench.md").read_text()
    assert f"| fast | {results['fast']['precision']} | 4 | attentivemix |" in markdown


def test_the_bench_reads_their_defaults_from_conf_and_gives_them_the_network():
    defaults = project_defaults()
    assert {aug: defaults["alpha"][aug] for aug in GUIDED_AUGS} == {"attentivemix": 1.0,
                                                                     "puzzlemix": 1.0}
    assert defaults["aug_options"]["puzzlemix"]["n_labels"] == 3
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    loader = DeviceLoader(Split(images, torch.arange(8)), 4, train=True, mean=CIFAR10_MEAN,
                          std=CIFAR10_STD, generator=torch.Generator().manual_seed(0))
    model = Probe().train()
    trainee = SimpleNamespace(network=model, runtime=Runtime(torch.device("cpu"), "fp32", False))
    for aug in GUIDED_AUGS:
        mixer = trainer_mixer(aug, defaults, loader, trainee)
        batch, labels = next(iter(loader))
        mixed = mixer(batch, labels, torch.Generator().manual_seed(1))
        assert mixer.guide.model is model and mixer.guide.passes == 1
        assert torch.allclose(mixed.targets.sum(1), torch.ones(4))


def test_the_mixing_and_sync_targets_judge_what_they_were_set_for():
    """Built so that a guided method is dearest and PuzzleMix syncs: the mixing targets
    still read mixup and cutmix, the sync target every method but PuzzleMix."""
    from mixup_bench.bench.plan import Plan
    from mixup_bench.bench.results import targets

    plan = Plan(device=torch.device("cuda"), batch_sizes=[128], augs=["none", "mixup",
                "cutmix", "attentivemix", "puzzlemix"], warmup=0, steps=1, eval_batch_size=1,
                eval_batches=1, workers=0, compile=False, mode="dry_run", data_root=None,
                out=None, note=None)
    overhead = {"mixup": 1.0, "cutmix": 2.0, "attentivemix": 90.0, "puzzlemix": 150.0}
    summary = {"training": [], "syncs": [
        {"config": "fast", "batch_size": 128, "aug": aug, "syncs_per_step": int(aug == "puzzlemix")}
        for aug in plan.augs], "mixing_overhead": [
        {"pipeline": "fast", "batch_size": 128, "aug": aug, "time_percent": percent,
         "peak_memory_percent": percent / 10} for aug, percent in overhead.items()]}
    rows = {row["target"]: row for row in targets([], summary, plan)}
    time_row = rows["mixing time over aug none (mixup, cutmix), highest <= 3%"]
    assert (time_row["measured"], time_row["met"]) == (2.0, True)
    assert "cutmix" in time_row["setting"]
    syncs = rows["host synchronisations per training step, fast, every batch size and aug "
                 "(but puzzlemix) = 0"]
    assert (syncs["measured"], syncs["met"]) == (0, True)
