"""`mixup-bench bench --augs` with the model-guided methods: planned, configured, guided."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mixup_bench.bench.measure import project_defaults, trainer_mixer
from mixup_bench.bench.plan import AUGS, GUIDED_AUGS, BenchError, parse_args, resolve_plan
from mixup_bench.data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, Split
from mixup_bench.train import Runtime

from .test_model_guided import Probe


def test_the_bench_takes_the_guided_methods_beside_mixup_and_cutmix():
    plan = resolve_plan(parse_args(["--device", "cpu", "--dry-run", "--augs",
                                    "none,mixup,cutmix,attentivemix,puzzlemix"]))
    assert plan.augs == ["none", "mixup", "cutmix", "attentivemix", "puzzlemix"]
    assert resolve_plan(parse_args(["--device", "cpu", "--dry-run"])).augs == list(AUGS)
    with pytest.raises(BenchError, match="expected some of none,mixup,cutmix,attentivemix"):
        resolve_plan(parse_args(["--device", "cpu", "--augs", "attentivemixx"]))


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
