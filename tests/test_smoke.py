"""The smoke preset: what it trades is recorded, and the report never judges a claim on it."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from mixup_bench.config import validate
from mixup_bench.data import Dataset, Split, with_test_subset
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import mixer_names
from mixup_bench.models import model_names
from mixup_bench.report.build import build_report
from mixup_bench.report.judgement.judging import NOT_RUN, SUPPORTED

from .conftest import TINY, run_cli
from .test_verdicts import CLAIM, pairs

GAIN = [0.0170, 0.0180, 0.0190]  # supported when judged (tests/test_verdicts.py)


def composed(*overrides: str) -> dict:
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="train", overrides=list(overrides)),
                                      resolve=True)


def test_the_smoke_preset_learns_fast_with_a_test_network_on_the_whole_test_set():
    config = composed("experiment=smoke", "data.root=/data")
    assert validate(config, model_names(), mixer_names()) == []
    assert config["model"]["name"] == "timm:test_resnet" and config["data"]["fraction"] == 0.1
    assert config["data"]["test_subset"] is None  # the whole test set
    assert config["trainer"]["epochs"] == 5 and config["trainer"]["batch_size"] == 64
    assert config["aug"]["name"] == "mixup"  # the default run's method
    bad = composed("experiment=smoke", "data.root=/data", "data.test_subset=3")
    assert validate(bad, model_names(), mixer_names()) == [
        "data.test_subset=3: expected null (the whole test set) or an integer >= 10"]


def blank_dataset() -> Dataset:
    """20 training and 200 test images of 10 classes, 20 test images each."""
    labels = torch.arange(200) % 10
    return Dataset(train=Split(torch.zeros(20, 3, 32, 32, dtype=torch.uint8), labels[:20]),
                   test=Split(torch.zeros(200, 3, 32, 32, dtype=torch.uint8), labels),
                   num_classes=10, checksums="verified")


def test_trades_name_a_test_network_and_a_test_subset():
    from mixup_bench.train.run import trades

    dataset = blank_dataset()
    assert trades(dataset, "resnet18") == []
    assert trades(dataset, "timm:resnet50") == []
    assert trades(dataset, "timm:test_resnet") == [
        "model.name=timm:test_resnet: a network made for testing code, not one a published "
        "claim is about"]
    assert trades(with_test_subset(dataset, 50, 0), "resnet18") == [
        "data.test_subset: evaluated on 50 of the 200 test images"]


def test_a_test_subset_is_class_stratified_and_recorded():
    dataset = blank_dataset()
    assert with_test_subset(dataset, None, 0) is dataset
    subset = with_test_subset(dataset, 50, 0)
    assert len(subset.test) == 50 and subset.test_subset_of == 200
    assert torch.bincount(subset.test.labels).tolist() == [5] * 10
    assert torch.equal(with_test_subset(dataset, 50, 0).test.labels, subset.test.labels)
    with pytest.raises(ConfigError, match="data.test_subset=200: the test set has only 200"):
        with_test_subset(dataset, 200, 0)


@pytest.mark.parametrize("mark", ["config", "summary"])
def test_the_report_judges_no_claim_on_a_run_that_traded_its_test_set(tmp_path, mark):
    judged = tmp_path / "full"
    pairs(judged, GAIN)
    assert build_report([judged], [CLAIM]).claims[0].verdict == SUPPORTED
    smoke = tmp_path / "smoke"
    if mark == "config":  # the test subset in the run's config
        pairs(smoke, GAIN, extra={"data.test_subset": 1000})
    else:  # or only summary.json's word (judgeable: false)
        pairs(smoke, GAIN)
        for summary_file in smoke.glob("*/summary.json"):
            summary = json.loads(summary_file.read_text())
            summary_file.write_text(json.dumps({**summary, "judgeable": False}))
    report = build_report([smoke], [CLAIM])
    assert report.claims[0].verdict == NOT_RUN
    assert len(report.groups) == 2  # the runs are still in the tables


def test_a_smoke_run_records_its_trades_and_ends_with_where_to_look(tmp_path, cifar_root):
    run_dir = tmp_path / "run"
    result = run_cli("train", "experiment=smoke", f"data.root={cifar_root}",
                     f"hydra.run.dir={run_dir}", *TINY, "data.test_subset=50",
                     "trainer.samples=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["test_images"] == 50
    assert summary["judgeable"] is False
    assert summary["trades"] == [
        "model.name=timm:test_resnet: a network made for testing code, not one a published "
        "claim is about", "data.test_subset: evaluated on 50 of the 100 test images"]
    assert result.stdout.strip().splitlines()[-1] == \
        "run directory: run  next: mixup-bench report run"
