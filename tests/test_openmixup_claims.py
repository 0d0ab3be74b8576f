"""OpenMixup's CIFAR-10/100 ResNet-18 table as claims: each claim selects exactly the runs
`experiment=openmixup` trains, and the verdict engine judges every one of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from mixup_bench.config import validate
from mixup_bench.mixing import mixer_names
from mixup_bench.models import model_names
from mixup_bench.report.judgement.claim_schema import load_claims
from mixup_bench.report.judgement.judging import SUPPORTED
from mixup_bench.report.judgement.verdicts import evaluate_claims

from .conftest import REPO, TINY, run_cli
from .test_datasets import write_cifar100
from .test_report import load_all, write_run

# (data, aug) -> (alpha, published accuracy): OpenMixup's table, docs/en/mixup_benchmarks/
# Mixup_cifar.md, ResNet-18, 200 epochs; vanilla 94.87 (CIFAR-10) and 76.42 (CIFAR-100).
TABLE = {
    ("cifar10", "mixup"): (1.0, 95.70), ("cifar10", "cutmix"): (0.2, 96.11),
    ("cifar10", "manifold_mixup"): (2.0, 96.04), ("cifar10", "smoothmix"): (0.5, 95.29),
    ("cifar10", "saliencymix"): (0.2, 96.05), ("cifar10", "fmix"): (0.2, 96.17),
    ("cifar10", "gridmix"): (0.2, 95.89), ("cifar10", "resizemix"): (1.0, 96.16),
    ("cifar100", "mixup"): (1.0, 78.52), ("cifar100", "cutmix"): (0.2, 79.45),
    ("cifar100", "manifold_mixup"): (2.0, 79.18), ("cifar100", "smoothmix"): (0.2, 77.90),
    ("cifar100", "saliencymix"): (0.2, 79.75), ("cifar100", "fmix"): (0.2, 78.91),
    ("cifar100", "gridmix"): (0.2, 78.23), ("cifar100", "resizemix"): (1.0, 79.56),
}
VANILLA = {"cifar10": 94.87, "cifar100": 76.42}
# As `make reproduce-methods` trains each data set: the preset's normalisation (the Mixup
# authors' CIFAR-10 constants) is refused for CIFAR-100, which takes its own mean and std.
DATA_OVERRIDES = {"cifar10": ("data=cifar10",),
                  "cifar100": ("data=cifar100", "data.normalization=dataset")}


def openmixup_claims() -> dict[tuple[str, str], dict]:
    """The claims of OpenMixup's table, one per (data set, method) against vanilla."""
    claims = [claim for claim in load_claims() if claim["id"].startswith("openmixup-")
              and claim["baseline"]["aug.name"] == "none"]
    return {(claim["treatment"]["data.name"], claim["treatment"]["aug.name"]): claim
            for claim in claims}


def composed(*overrides: str) -> dict:
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=openmixup", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def flat_value(config: dict, dotted: str):
    value = config
    for part in dotted.split("."):
        value = value[part]
    return value


def test_the_claims_are_openmixups_table_with_one_claim_per_method_and_dataset():
    claims = openmixup_claims()
    assert {key: (claim["treatment"]["alpha"], claim["published_treatment"])
            for key, claim in claims.items() if key in TABLE} == TABLE
    for (data, _), claim in claims.items():
        assert claim["published_baseline"] == VANILLA[data]
        assert claim["metric"] == "last10_median_test_acc" and claim["min_epochs"] == 200
    for key in (("cifar10", "smoothmix"), ("cifar10", "saliencymix"),
                ("cifar100", "smoothmix"), ("cifar100", "resizemix")):
        assert "Its " in claims[key]["notes"]  # the note on OpenMixup's own code


@pytest.mark.parametrize("data", ["cifar10", "cifar100"])
def test_the_preset_trains_openmixups_protocol_on_both_datasets(data):
    config = composed("aug=none", *DATA_OVERRIDES[data])
    assert validate(config, model_names(), mixer_names()) == []
    assert config["data"]["name"] == data
    assert config["data"]["num_classes"] == (10 if data == "cifar10" else 100)
    assert config["model"]["name"] == "resnet18" and config["sched"]["name"] == "cosine"
    assert config["trainer"]["epochs"] == 200 and config["trainer"]["batch_size"] == 100
    assert (config["optim"]["lr"], config["optim"]["weight_decay"]) == (0.1, 1e-4)


def write_seeds(root: Path, name: str, config: dict, accuracies: list[float]) -> None:
    """Three seeds' run directories with the composed config and the metric at `accuracies`."""
    for seed, accuracy in enumerate(accuracies):
        path = write_run(root, f"{name}_s{seed}", final=accuracy, seed=seed, epochs=200)
        run_config = {**config, "seed": seed}
        (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(run_config))
        summary = json.loads((path / "summary.json").read_text())
        summary.update(config=run_config, last10_median_test_acc=accuracy)
        (path / "summary.json").write_text(json.dumps(summary))


def test_every_claim_selects_the_presets_runs_and_is_judged(tmp_path):
    """Runs composed exactly as `make reproduce-methods` trains them, at the published levels
    (+- a little seed noise): every OpenMixup claim finds its pairs and holds."""
    claims = openmixup_claims()
    noise = (-0.0005, 0.0, 0.0005)
    for data, vanilla in VANILLA.items():
        write_seeds(tmp_path, f"{data}_none", composed("aug=none", *DATA_OVERRIDES[data]),
                    [vanilla / 100 + step for step in noise])
    for (data, aug), claim in claims.items():
        alpha = claim["treatment"]["alpha"]
        config = composed(f"aug={aug}", f"alpha={alpha}", *DATA_OVERRIDES[data])
        for key, value in claim["treatment"].items():
            assert flat_value(config, key) == pytest.approx(value), (claim["id"], key)
        level = claim["published_treatment"] / 100
        write_seeds(tmp_path, f"{data}_{aug}", config,
                    [level + step for step in (-0.0009, 0.0002, 0.0007)])
    results = evaluate_claims(list(claims.values()), load_all(tmp_path))
    assert len(results) == len(claims) >= 16
    for result in results:
        assert result.verdict == SUPPORTED, (result.claim["id"], result.reason)


def test_one_epoch_of_the_preset_on_a_small_synthetic_cifar100(tmp_path):
    root = write_cifar100(tmp_path / "data", count=200)
    run_dir = tmp_path / "run"
    result = run_cli("train", "experiment=openmixup", *DATA_OVERRIDES["cifar100"], "aug=gridmix",
                     f"data.root={root}", f"hydra.run.dir={run_dir}", *TINY,
                     "trainer.batch_size=100", "trainer.samples=false")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == 1
    assert summary["config"]["data"]["num_classes"] == 100
    assert summary["train_images"] == 200 and summary["test_images"] == 200


def test_make_reproduce_methods_runs_every_claimed_method_with_its_alpha(tmp_path):
    """`make -n`: vanilla and each method of METHODS, 3 seeds, OpenMixup's protocol and alpha,
    one fixed sweep folder each, then the report; every claim's method is in METHODS."""
    result = subprocess.run(["make", "-n", "--no-print-directory", "reproduce-methods",
                             f"VENV={tmp_path / 'venv'}", "MB=mb"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    runs = [line.split() for line in result.stdout.splitlines() if line.startswith("mb train")]
    found = {}
    for words in runs:
        options = dict(word.split("=", 1) for word in words[3:] if "=" in word)
        assert words[2] == "-m" and options["experiment"] == "openmixup"
        assert options["seed"] == "0,1,2"
        assert options["hydra.sweep.dir"] == (f"multirun/methods/{options['data']}/"
                                              f"{options['aug']}")
        found[(options["data"], options["aug"])] = float(options.get("alpha", "nan"))
    claims = openmixup_claims()
    assert {key: found[key] for key in claims} == {
        key: claim["treatment"]["alpha"] for key, claim in claims.items()}
    assert ("cifar10", "none") in found and ("cifar100", "none") in found
    normalizations = {(options["data"], options.get("data.normalization")) for options in
                      (dict(word.split("=", 1) for word in words[3:] if "=" in word)
                       for words in runs)}
    assert normalizations == {("cifar10", None), ("cifar100", "dataset")}
    assert len(runs) == len(found)  # one sweep per data set and method
    assert result.stdout.strip().splitlines()[-1] == "mb report multirun/methods --out " \
                                                     "results/methods"
