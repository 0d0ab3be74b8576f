"""Manifold Mixup: features mixed after the drawn stage, for both ResNets, hooks cleaned up."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from mixup_bench.mixing import build_mixer
from mixup_bench.mixing.manifold import mix_after_stage
from mixup_bench.models import build_model, mixing_stages

from .conftest import TINY, run_cli


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "preact_resnet18_timm"])
@pytest.mark.parametrize("stage", [1, 2])
def test_features_after_the_stage_are_mixed_with_the_partners(name, stage):
    model = build_model(name, 10).eval()
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    partner = torch.tensor([2, 3, 0, 1])
    seen = {}
    later = mixing_stages(model)[stage]  # the next stage's input is the mixed feature map
    handle = later.register_forward_pre_hook(lambda module, inputs: seen.setdefault("in",
                                                                                 inputs[0]))
    with torch.no_grad():
        plain_features = {}
        hook = mixing_stages(model)[stage - 1].register_forward_hook(
            lambda module, inputs, output: plain_features.setdefault("out", output))
        model(images)
        hook.remove()
        seen.clear()
        with mix_after_stage(model, stage, partner, 0.3):
            model(images)
    handle.remove()
    expected = 0.3 * plain_features["out"] + 0.7 * plain_features["out"][partner]
    assert torch.allclose(seen["in"], expected, atol=1e-5)
    assert not mixing_stages(model)[stage - 1]._forward_hooks  # removed on exit


def test_layers_are_drawn_uniformly_and_targets_are_mixed():
    mixer = build_mixer("manifold_mixup", 10, 2.0)
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(8, 3, 32, 32), torch.arange(8)
    counts = Counter()
    for _ in range(600):
        batch = mixer(images, labels, generator)
        counts[batch.method] += 1
        assert torch.allclose(batch.targets.sum(1), torch.ones(8))
        assert torch.allclose(batch.targets.max(1).values.min(), torch.tensor(max(
            batch.lam, 1 - batch.lam)), atol=1e-6) or batch.lam == 0.5
        if batch.method != "manifold_mixup:0":
            assert batch.images is images and batch.forward_context is not None
    assert set(counts) == {"manifold_mixup:0", "manifold_mixup:1", "manifold_mixup:2"}
    assert all(abs(count - 200) < 50 for count in counts.values())
    only_two = build_mixer("manifold_mixup", 10, 2.0, layers=[2])
    assert only_two(images, labels, generator).method == "manifold_mixup:2"


@pytest.mark.parametrize("options, message", [
    ({"layers": [3]}, "aug.layers=[3]: expected a non-empty list drawn from 0"),
    ({"layers": []}, "aug.layers=[]: expected"),
    ({"layers": [1.0]}, "aug.layers=[1.0]: expected"),
    ({"layers": [True]}, "aug.layers=[True]: expected"),
    ({"partner": "dataset"}, "aug.partner=dataset: expected permutation"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_mixer("manifold_mixup", 10, 2.0, **options)


def test_manifold_mixup_trains_end_to_end(cifar_root, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "aug=manifold_mixup", "model=preact_resnet18",
                     f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                     "trainer.samples=false", "model.dropout=0.3")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["mixer"]["layers"] == [0, 1, 2]
    # The Mixup authors' network, initialised as their code does (summary.json says so).
    assert summary["init"] == {"zero_init_last": False,
                               "weights": "pytorch default (as the reference code)",
                               "stem": "pytorch default",
                               "zero_init_last_target": "each block's conv2 weight"}
    assert summary["mixer"]["prob"] == 1.0
