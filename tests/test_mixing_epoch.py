"""An epoch's mixing draws made at once: the same values as step by step, no copy per step."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mixup_bench.data import DeviceLoader, Split
from mixup_bench.mixing import build_mixer
from mixup_bench.mixing.options import sample_beta

COUNT, SIZE, CLASSES = 8, 8, 8
STEPS = 3  # steps per epoch: len() of the bound loader

# (aug, alpha, options) for every branch of the drawing code: aug.prob's draw, lam_per,
# lam_min's redraws, lam_fold, partner=dataset (indices and crop seeds), alpha schedules,
# off_last_epochs, Mixup-or-CutMix's switch per batch and per row, Manifold Mixup's layer,
# FMix, ResizeMix, SaliencyMix, GridMix and SmoothMix, and a mixer that draws nothing.
CASES = {
    "mixup": ("mixup", 1.0, {}),
    "mixup_sample": ("mixup", 0.4, {"lam_per": "sample"}),
    "mixup_prob": ("mixup", 1.0, {"prob": 0.5}),
    "mixup_lam_min": ("mixup", 0.2, {"lam_min": 0.3}),
    "mixup_fold_sample": ("mixup", 0.2, {"lam_fold": True, "lam_per": "sample"}),
    "mixup_dataset": ("mixup", 1.0, {"partner": "dataset"}),
    "mixup_schedule": ("mixup", 1.0, {"alpha_schedule": "linear_decay", "alpha_final": 0.1}),
    "mixup_off_last": ("mixup", 1.0, {"off_last_epochs": 1, "label_smoothing": 0.1}),
    "cutmix": ("cutmix", 1.0, {}),
    "cutmix_sample": ("cutmix", 1.0, {"lam_per": "sample"}),
    "cutmix_prob_dataset": ("cutmix", 1.0, {"prob": 0.5, "partner": "dataset"}),
    "mixup_cutmix": ("mixup_cutmix", 0.8, {}),
    "mixup_cutmix_sample": ("mixup_cutmix", 0.8, {"lam_per": "sample"}),
    "mixup_cutmix_sample_dataset": ("mixup_cutmix", 0.8, {
        "lam_per": "sample", "partner": "dataset", "label_smoothing": 0.1, "lam_min": 0.2}),
    "manifold": ("manifold_mixup", 2.0, {}),
    "manifold_sample": ("manifold_mixup", 2.0, {"lam_per": "sample", "prob": 0.7}),
    "fmix": ("fmix", 1.0, {}),
    "fmix_sample": ("fmix", 1.0, {"lam_per": "sample"}),
    "resizemix": ("resizemix", 1.0, {}),
    "resizemix_sample": ("resizemix", 1.0, {"lam_per": "sample", "partner": "dataset"}),
    "none": ("none", None, {}),
    "saliencymix": ("saliencymix", 1.0, {}),
    "saliencymix_sample_dataset": ("saliencymix", 1.0, {"lam_per": "sample",
                                                        "partner": "dataset"}),
    "gridmix": ("gridmix", 0.2, {}),
    "gridmix_sample_prob": ("gridmix", 0.2, {"lam_per": "sample", "prob": 0.5}),
    "smoothmix": ("smoothmix", 0.5, {}),
    "smoothmix_sample_dataset": ("smoothmix", 0.5, {"lam_per": "sample", "partner": "dataset"}),
}
# The methods added after the per-step code (no digest of theirs from before).
NEW_CASES = sorted(case for case in CASES if case.split("_")[0] in
                   ("saliencymix", "gridmix", "smoothmix"))

# digest() of each case computed with the per-step drawing code this change replaced
# (commit 141b762: every draw made at its step, partners and lambdas copied per step).
PER_STEP_DIGESTS = {
    "mixup": "c8afebe49d9cb0d3",
    "mixup_sample": "938d0f7d1ce48590",
    "mixup_prob": "de6ba9219a36d82b",
    "mixup_lam_min": "f5c59ab5bd739b00",
    "mixup_fold_sample": "e880681895e8a483",
    "mixup_dataset": "8a2a69cd4903e672",
    "mixup_schedule": "3c5999517656cc02",
    "mixup_off_last": "c0ea33bc000601dd",
    "cutmix": "356f227b1157217d",
    "cutmix_sample": "340be8ffc150aa08",
    "cutmix_prob_dataset": "89d4dd800a7d03ab",
    "mixup_cutmix": "3a32f30e26da2a07",
    "mixup_cutmix_sample": "e261ef566e3f81ad",
    "mixup_cutmix_sample_dataset": "c1de966b8200c7ed",
    "manifold": "744e92f87d35e6fd",
    "manifold_sample": "2e29ec3763e5eabe",
    "fmix": "c4a80c6e4c3b6ec4",
    "fmix_sample": "73c356e6fabce40c",
    "resizemix": "5cc513da5471dcb0",
    "resizemix_sample": "41b84cd75348396c",
    "none": "2bdad7d968ada3d3",
}


class Stages(torch.nn.Module):
    """Three stages Manifold Mixup can mix after (identities: the mixed features show)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1, self.layer2, self.layer3 = (torch.nn.Identity() for _ in range(3))

    def forward(self, x):
        return self.layer3(self.layer2(self.layer1(x)))


def training_loader(steps: int = STEPS) -> DeviceLoader:
    """A loader of `steps` batches whose split partner=dataset draws from."""
    generator = torch.Generator().manual_seed(11)
    split = Split(torch.randint(0, 256, (40, 3, SIZE, SIZE), dtype=torch.uint8,
                                generator=generator),
                  torch.randint(0, CLASSES, (40,), generator=generator))
    return DeviceLoader(split, 40 // steps, train=True, mean=(0.5,) * 3, std=(0.25,) * 3,
                        generator=torch.Generator().manual_seed(3))


def run_epochs(case: str, epochs=((1, 2 * STEPS), (2, STEPS)), in_loop: bool = True):
    """(outputs, generator) of the trainer's calls: set_epoch, then one call per step.

    in_loop=False calls the mixer as tests and samples.png do (no set_epoch): per call.
    Two loader lengths in epoch 1 make the epoch's draws be made twice.
    """
    name, alpha, options = CASES[case]
    mixer = build_mixer(name, CLASSES, alpha, **options)
    mixer.bind(training_loader())
    generator = torch.Generator().manual_seed(1)
    data = torch.Generator().manual_seed(2)
    outputs = []
    for epoch, steps in epochs:
        if in_loop:
            mixer.set_epoch(epoch, 2)
        for _ in range(steps):
            images = torch.randn(COUNT, 3, SIZE, SIZE, generator=data)
            labels = torch.randint(0, CLASSES, (COUNT,), generator=data)
            batch = mixer(images, labels, generator)
            seen = batch.images
            if batch.forward_context is not None:
                model = Stages()
                with batch.forward_context(model):
                    seen = model(images)
            outputs.append((seen, batch.targets, batch.lam, batch.method))
    return outputs, generator


def digest(case: str) -> str:
    """A hash of what the network sees and learns from, and of the generator's state after."""
    outputs, generator = run_epochs(case)
    sha = hashlib.sha256()
    for seen, targets, _, method in outputs:
        for tensor, places in ((seen, 4), (targets, 5)):
            rounded = np.round(tensor.detach().numpy().astype(np.float64), places) + 0.0
            sha.update(rounded.tobytes())
        sha.update(method.encode())
    sha.update(generator.get_state().numpy().tobytes())
    sha.update(repr([round(lam, 6) for _, _, lam, _ in outputs]).encode())
    return sha.hexdigest()[:16]


@pytest.mark.parametrize("case", sorted(PER_STEP_DIGESTS))
def test_the_epochs_draws_equal_the_per_step_draws_of_before(case):
    """The same images, targets, lambdas and generator state as the per-step code gave for
    the same seed (digests recorded from it, values rounded to 4-5 decimals)."""
    assert digest(case) == PER_STEP_DIGESTS[case]


@pytest.mark.parametrize("case", ["mixup", "mixup_prob", "cutmix_sample",
                                  "mixup_cutmix_sample_dataset", "manifold_sample", "fmix",
                                  "fmix_sample", "resizemix", "resizemix_sample", *NEW_CASES])
def test_in_a_training_loop_and_per_call_give_the_same_batches(case):
    """Exactly (torch.equal): in an epoch of 2 x len(loader) steps the draws are made twice."""
    in_loop, in_loop_generator = run_epochs(case, epochs=((1, 2 * STEPS),))
    per_call, per_call_generator = run_epochs(case, epochs=((1, 2 * STEPS),), in_loop=False)
    for (seen, targets, lam, method), (seen2, targets2, lam2, method2) in zip(
            in_loop, per_call, strict=True):
        assert torch.equal(seen, seen2) and torch.equal(targets, targets2)
        assert (lam, method) == (lam2, method2)
    assert torch.equal(in_loop_generator.get_state(), per_call_generator.get_state())


def test_another_generator_mid_epoch_leaves_the_epochs_draws_alone():
    """samples.png's own generator, or a test's, draws per call."""
    mixer = build_mixer("mixup", CLASSES, 1.0)
    mixer.bind(training_loader())
    images, labels = torch.randn(COUNT, 3, SIZE, SIZE), torch.arange(COUNT)

    def lams(interrupt: bool) -> list[float]:
        mixer.set_epoch(1, 1)
        generator, other = torch.Generator().manual_seed(1), torch.Generator().manual_seed(9)
        seen = []
        for step in range(STEPS):
            seen.append(mixer(images, labels, generator).lam)
            if interrupt and step == 0:
                mixer(images, labels, other)
        return seen

    assert lams(interrupt=True) == lams(interrupt=False)


def test_sample_beta_equals_torch_distributions_beta_under_the_same_seed():
    """The Dirichlet sampler called directly gives torch.distributions.Beta's draws."""
    for alpha in (0.2, 1.0, 2.0):
        for count in (None, 1, 64):
            generator = torch.Generator().manual_seed(int(alpha * 10))
            reference = torch.Generator().manual_seed(int(alpha * 10))
            for _ in range(5):
                seed = int(torch.randint(0, 2**62, (), generator=reference))
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    beta = torch.distributions.Beta(torch.tensor(alpha), torch.tensor(alpha))
                    expected = beta.sample(() if count is None else (count,))
                assert torch.equal(sample_beta(alpha, generator, count), expected)
    before = torch.get_rng_state()
    sample_beta(0.4, torch.Generator().manual_seed(0), 8)
    assert torch.equal(torch.get_rng_state(), before)  # the global stream is not touched


# --- no host-device copy in a step ------------------------------------------------------


class CrossDeviceOps(TorchDispatchMode):
    """Every aten op that takes a CPU tensor and returns a tensor on another device (a copy to
    the device: .to, copy_, a CPU tensor mixed into a device op)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if (any(t.device.type == "cpu" for t in inputs)
                and any(t.device.type != "cpu" for t in outputs)):
            self.ops.append(str(func))
        return out


class MetaPartnerLoader:
    """A training loader on the meta device for partner=dataset: its split lives there;
    augment and normalise keep the shapes (the loader's own code is the data tests')."""

    def __init__(self, steps: int) -> None:
        device = torch.device("meta")
        self.split = Split(torch.empty(40, 3, SIZE, SIZE, dtype=torch.uint8, device=device),
                           torch.empty(40, dtype=torch.long, device=device))
        self.generator, self.steps = torch.Generator(), steps

    def __len__(self) -> int:
        return self.steps

    def augment(self, images):
        return images

    def normalise(self, images):
        return images.float()


@pytest.mark.parametrize("case", ["mixup", "mixup_sample", "mixup_prob", "mixup_dataset",
                                  "cutmix", "cutmix_sample", "cutmix_prob_dataset",
                                  "mixup_cutmix", "mixup_cutmix_sample",
                                  "mixup_cutmix_sample_dataset", "manifold_sample", "fmix",
                                  "fmix_sample", "resizemix", "resizemix_sample", *NEW_CASES])
def test_a_training_step_copies_nothing_to_the_device_and_never_syncs(case, monkeypatch):
    """The meta device stands in for the GPU: its tensors have shapes but no data.

    - Copies: every aten op that turns CPU tensors into device tensors is recorded
      (CrossDeviceOps: .to, copy_, _to_copy, a CPU tensor in a device op), and so is
      torch.tensor / torch.as_tensor with a device (they bypass that dispatch).
    - Syncs: reading a device value on the host (.item(), float(), bool(), .tolist(),
      .cpu(), a data-dependent shape) raises on the meta device, so a call that
      would synchronise fails the test.
    Each epoch's first step copies its draws, one buffer per dtype; every other step
    copies nothing.
    """
    name, alpha, options = CASES[case]
    created: list[str] = []
    for factory in ("tensor", "as_tensor"):
        original = getattr(torch, factory)

        def record(*args, _original=original, _name=factory, **kwargs):
            if kwargs.get("device") is not None and torch.device(kwargs["device"]).type != "cpu":
                created.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch, factory, record)
    steps = 4
    mixer = build_mixer(name, CLASSES, alpha, **options)
    mixer.bind(MetaPartnerLoader(steps))
    generator = torch.Generator().manual_seed(0)
    meta = torch.device("meta")
    images = torch.empty(COUNT, 3, SIZE, SIZE, device=meta)
    labels = torch.empty(COUNT, dtype=torch.long, device=meta)
    copies = []
    for epoch in (1, 2):
        mixer.set_epoch(epoch, 2)
        for _ in range(steps):
            with CrossDeviceOps() as seen:
                batch = mixer(images, labels, generator)
                if batch.forward_context is not None:
                    model = Stages()
                    with batch.forward_context(model):
                        model(images)
            assert batch.images.device == meta and batch.targets.device == meta
            copies.append(seen.ops)
    assert created == []
    for epoch_copies in (copies[:steps], copies[steps:]):
        first, rest = epoch_copies[0], epoch_copies[1:]
        assert 1 <= len(first) <= 3 and set(first) == {"aten._to_copy.default"}, first
        assert rest == [[]] * (steps - 1), rest
