"""Mixers and their registry: the base classes every method family builds on.

A mixer maps (images, labels, generator) to a MixedBatch (mixed images,
soft targets). The trainer always uses the soft-target loss, so it has no
branch per method and a new mixer needs no change there. Mixers never change
their inputs in place and draw only from the torch.Generator they are given
(a CPU generator: lambdas, partners and boxes are then the same on every
device).

Mixers with `epoch_draws` (every pixel-space method and Manifold Mixup)
split each step into `draw` (every random number, on the CPU) and `apply`
(the device's work, given the draws on the device). In a training loop
(set_epoch called, the training loader bound) they draw a whole epoch's steps
at its first step and copy them to the device at once (draws.py), so a step
makes no host-device copy and no synchronisation; the draws, and the
generator's state after them, are exactly those of drawing step by step.
Outside a training loop (tests, samples.png, a generator other than the
epoch's) they draw per call.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch

from .batch import MixedBatch
from .draws import Draws, EpochDraws, to_device
from .ops import one_hot, random_partner, smooth_targets
from .options import (
    MIXING_OPTIONS,
    SMOOTHING_OPTIONS,
    OptionError,
    alpha_at,
    mixing_on,
    parse_options,
    sample_lambda,
)


class Mixer:
    """Base class: turns a labelled batch into a mixed batch with soft targets.

    `accepted` names the aug.* options (see options.MixOptions) this
    mixer takes; any other option is refused with the list of valid ones.
    """

    name = "base"
    accepted: tuple[str, ...] = ()
    # Mixes inside the network (a forward hook through MixedBatch.forward_context), which
    # torch.compile does not see: the trainer refuses trainer.compile=true with such a mixer.
    mixes_inside_network = False

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        self.num_classes = num_classes
        self.alpha = alpha
        self.options = parse_options(self.name, options, self.accepted)
        self.epoch, self.epochs = 1, None  # epochs None: outside a training loop
        self.loader = None

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each epoch (1-based), for schedules over training."""
        if not 1 <= epoch <= epochs:
            raise ValueError(f"set_epoch({epoch}, {epochs}): expected 1 <= epoch <= epochs")
        self.epoch, self.epochs = epoch, epochs

    def bind(self, loader: Any) -> None:
        """Called once with the training DeviceLoader, for mixers that draw partners from it."""
        self.loader = loader

    def use_model(self, guide: Any) -> None:
        """Called by the trainer before each epoch with a guided.ModelGuide of the network
        being trained; only model-guided mixers (guided.ModelGuidedMixer) use it."""

    def summary(self) -> dict[str, Any]:
        """The effective settings, JSON-ready (options that have no effect are None)."""
        return {"name": self.name, "alpha": self.alpha,
                **{key: getattr(self.options, key, None) for key in sorted(self.accepted)}}

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> MixedBatch:
        raise NotImplementedError


_MIXERS: dict[str, type[Mixer]] = {}


def register_mixer(name: str) -> Callable[[type[Mixer]], type[Mixer]]:
    """Class decorator: make a mixer available as aug=<name>."""

    def add(cls: type[Mixer]) -> type[Mixer]:
        if name in _MIXERS:
            raise ValueError(f"mixer {name!r} is already registered")
        cls.name = name
        _MIXERS[name] = cls
        return cls

    return add


def mixer_names() -> list[str]:
    return sorted(_MIXERS)


def build_mixer(name: str, num_classes: int, alpha: float | None, **options: Any) -> Mixer:
    if name not in _MIXERS:
        raise ValueError(f"aug.name={name!r}: expected one of {', '.join(mixer_names())}")
    return _MIXERS[name](num_classes, alpha, **options)


@register_mixer("none")
class NoMixing(Mixer):
    """One-hot targets (label-smoothed if asked); the mixing options are accepted and ignored,
    so a sweep can cross aug=none with them."""

    accepted = SMOOTHING_OPTIONS + MIXING_OPTIONS

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": None,
                "label_smoothing": self.options.label_smoothing}

    def __call__(self, images, labels, generator):
        targets = smooth_targets(one_hot(labels, self.num_classes), self.options.label_smoothing)
        return MixedBatch(images, targets, 1.0, None, "none")


class MixingBase(Mixer):
    """What every mixing method shares: alpha schedule, switch-off, the chance to mix
    (aug.prob), lambda shaping, partners, and an epoch's draws made at once.

    A subclass either sets `epoch_draws = True` and implements `draw` and
    `apply`, or implements `mix` (draws and device work together, per step).
    """

    accepted = SMOOTHING_OPTIONS + MIXING_OPTIONS
    epoch_draws = False

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                or not math.isfinite(alpha) or alpha <= 0):
            raise OptionError(f"alpha={alpha!r}: expected a number > 0 for aug={self.name}")
        self._partner_loader = None
        self._epoch_draws: EpochDraws | None = None

    def set_epoch(self, epoch: int, epochs: int) -> None:
        super().set_epoch(epoch, epochs)
        self._epoch_draws = None  # the epoch's draws are made at its first step

    def summary(self) -> dict[str, Any]:
        info = super().summary()
        if self.options.alpha_schedule == "constant":
            info["alpha_final"] = None
        if self.options.lam_fold:
            info["lam_min"] = None
        return info

    def current_alpha(self) -> float:
        """The (mixup) alpha of the current epoch under aug.alpha_schedule."""
        options = self.options
        return alpha_at(self.alpha, options.alpha_schedule, options.alpha_final, self.epoch,
                        self.epochs)

    def mixing(self) -> bool:
        """False in the last aug.off_last_epochs epochs."""
        return mixing_on(self.epoch, self.epochs, self.options.off_last_epochs)

    def draw_lambda(self, alpha: float, generator: torch.Generator, count: int) -> torch.Tensor:
        """Shape () with lam_per=batch, (count,) with lam_per=sample."""
        per_example = self.options.lam_per == "sample"
        return sample_lambda(alpha, generator, count if per_example else None,
                             lam_min=self.options.lam_min, fold=self.options.lam_fold)

    def bind(self, loader: Any) -> None:
        super().bind(loader)
        if self.options.partner == "dataset":
            # The partners' crops and flips come from a generator of our own, reseeded per
            # batch from the mixing generator: the loader's stream is left untouched.
            generator = getattr(loader, "generator", None)
            device = generator.device if generator is not None else loader.split.images.device
            self._partner_loader = copy.copy(loader)
            self._partner_loader.generator = torch.Generator(device=device)

    def draw_partners(self, count: int, generator: torch.Generator) -> Draws:
        """The partners' draws, per aug.partner: a permutation of the batch, or dataset
        indices with the seed of their crops and flips."""
        if self.options.partner == "permutation":
            return {"partner": random_partner(count, generator)}
        if self._partner_loader is None:
            raise RuntimeError(f"aug={self.name} aug.partner=dataset: call mixer.bind(loader) "
                               "with the training loader first")
        index = torch.randint(0, self._partner_loader.split.labels.shape[0], (count,),
                              generator=generator)
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        return {"partner_index": index, "partner_seed": seed}

    def take_partners(self, images: torch.Tensor, targets: torch.Tensor,
                      draws: Draws) -> tuple[torch.Tensor, torch.Tensor]:
        """(partner images, partner targets) for each row, from draws on the images' device."""
        if "partner" in draws:
            partner = draws["partner"]
            return images[partner], targets[partner]
        # Uniform over the whole training set; augmented and normalised as the batch is,
        # in one batched gather on the device (seeding a device generator does not sync).
        loader = self._partner_loader
        split = loader.split
        loader.generator.manual_seed(draws["partner_seed"])
        index = draws["partner_index"].to(split.images.device)
        partner_images = loader.normalise(loader.augment(split.images[index]))
        partner_targets = one_hot(split.labels[index], self.num_classes).to(targets.device)
        return partner_images.to(images.device, images.dtype), partner_targets

    def partners(self, images: torch.Tensor, targets: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(partner images, partner targets) for each row, per aug.partner, drawn now."""
        draws = to_device([self.draw_partners(images.shape[0], generator)], images.device)[0]
        return self.take_partners(images, targets, draws)

    def draw(self, count: int, height: int, width: int, generator: torch.Generator) -> Draws:
        """Every random draw of one mixed batch, on the CPU (epoch_draws mixers)."""
        raise NotImplementedError

    def apply(self, images: torch.Tensor, targets: torch.Tensor, draws: Draws) -> MixedBatch:
        """Mix with `draws` on the images' device: no draw, no host-device copy, no sync."""
        raise NotImplementedError

    def mix(self, images: torch.Tensor, targets: torch.Tensor,
            generator: torch.Generator) -> MixedBatch:
        """Draw and mix one batch (epoch_draws mixers: draw, copy, apply)."""
        count, (height, width) = images.shape[0], images.shape[-2:]
        draws = to_device([self.draw(count, height, width, generator)], images.device)[0]
        return self.apply(images, targets, draws)

    def draw_step(self, count: int, height: int, width: int,
                  generator: torch.Generator) -> Draws | None:
        """One step's draws as the trainer's step makes them; None: the batch stays unmixed."""
        if not self.mixing() or not self.mixes_this_batch(generator):
            return None
        return self.draw(count, height, width, generator)

    def steps_per_epoch(self) -> int | None:
        """In a training loop (set_epoch called, a sized loader bound) its steps, else None."""
        if self.epochs is None or self.loader is None:
            return None
        try:
            steps = len(self.loader)
        except TypeError:
            return None
        return steps if steps > 0 else None

    def step_draws(self, images: torch.Tensor, generator: torch.Generator) -> Draws | None:
        """This step's draws on the images' device: taken from the epoch's, drawn at its first
        step; drawn now outside a training loop or from another generator than the epoch's.

        The epoch's draws are len(loader) steps of `draw_step` in a row, so they and the
        generator's state equal drawing step by step. Should the steps run past them (the
        bench's timed steps cross epochs), the next len(loader) steps are drawn; should the
        batch shape change, the rest are dropped and drawn again for the new shape. A
        trainer's epoch takes all of its draws (a preempted or diverged epoch ends the run,
        and its checkpoint holds the generator as the last whole epoch left it).
        """
        count, (height, width) = images.shape[0], images.shape[-2:]
        steps = self.steps_per_epoch()
        epoch = self._epoch_draws
        if steps is None or (epoch is not None and epoch.generator is not generator):
            return to_device([self.draw_step(count, height, width, generator)],
                             images.device)[0]
        key = (count, height, width, images.device)
        if epoch is None or epoch.exhausted or epoch.key != key:
            drawn = [self.draw_step(count, height, width, generator) for _ in range(steps)]
            epoch = self._epoch_draws = EpochDraws(generator, key,
                                                   to_device(drawn, images.device))
        return epoch.take()

    def mixes_this_batch(self, generator: torch.Generator) -> bool:
        """aug.prob: one uniform draw u per batch, mixed when u < prob. prob = 1 draws
        nothing, so the default random stream is that of a mixer without the option."""
        if self.options.prob >= 1:
            return True
        return float(torch.rand((), generator=generator)) < self.options.prob

    def __call__(self, images, labels, generator):
        # Unmixed as aug=none (label smoothing included) in the last aug.off_last_epochs
        # epochs, and in a batch that aug.prob leaves unmixed.
        targets = one_hot(labels, self.num_classes)
        batch = None
        if self.epoch_draws:
            draws = self.step_draws(images, generator)
            if draws is not None:
                batch = self.apply(images, targets, draws)
        elif self.mixing() and self.mixes_this_batch(generator):
            batch = self.mix(images, targets, generator)
        if batch is None:
            return MixedBatch(images, smooth_targets(targets, self.options.label_smoothing),
                              1.0, None, "none")
        batch.targets = smooth_targets(batch.targets, self.options.label_smoothing)
        return batch
