"""The classic CIFAR-10 pipeline: the baseline that `mixup-bench bench` measures against.

This is how the original Mixup code trains (facebookresearch/mixup-cifar10,
train.py), written again here for current PyTorch, not copied:

    a torchvision-style Dataset (uint8 HWC array in memory, one PIL image per item)
      -> DataLoader workers: RandomCrop(32, padding=4), RandomHorizontalFlip,
         ToTensor, Normalize (per image, in Python)
      -> pinned host batches copied to the device
      -> per-batch Mixup: lam ~ NumPy Beta(alpha, alpha), partner = a random permutation
      -> fp32, NCHW model -> lam * CE(y_a) + (1 - lam) * CE(y_b) -> SGD
      -> loss.item() every step, as the original's progress bar does (a host sync)

CutMix follows the official CutMix code (clovaai/CutMix-PyTorch) the same way:
one box per batch from NumPy draws, lambda set from the clipped box. Draws come
from a seeded numpy Generator rather than NumPy's global state, and the batch is
copied before pasting; neither changes the cost being measured. Nothing here
times anything: `bench` wraps these step functions in its timers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data import CIFAR10_MEAN, CIFAR10_STD, Split
from .plan import AUGS


class PilDataset(torch.utils.data.Dataset):
    """CIFAR-style dataset: HWC uint8 images in memory, a PIL image made per item.

    The same layout and __getitem__ as torchvision.datasets.CIFAR10, minus the files.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None) -> None:
        self.images = images  # (N, 32, 32, 3) uint8
        self.labels = labels  # (N,) int64
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        image = Image.fromarray(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def pil_dataset(split: Split, train: bool) -> PilDataset:
    """A PilDataset over a uint8 (N, 3, 32, 32) split, with the classic transforms."""
    from torchvision import transforms

    steps = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if train \
        else []
    steps += [transforms.ToTensor(), transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    images = split.images.cpu().permute(0, 2, 3, 1).contiguous().numpy()
    return PilDataset(images, split.labels.cpu().numpy(), transforms.Compose(steps))


def build_loader(split: Split, batch_size: int, *, train: bool, workers: int, pin_memory: bool,
                 seed: int = 0) -> torch.utils.data.DataLoader:
    """The classic DataLoader. Training batches are shuffled and the last partial one is
    dropped (constant shapes, as in the device pipeline); workers persist across epochs."""
    return torch.utils.data.DataLoader(
        pil_dataset(split, train), batch_size=min(batch_size, len(split)), shuffle=train,
        num_workers=workers, pin_memory=pin_memory, drop_last=train,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))


def endless(loader: torch.utils.data.DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches from epoch after epoch, so a measurement may run past one epoch."""
    while True:
        yield from loader


def mixup_batch(images: torch.Tensor, labels: torch.Tensor, alpha: float,
                rng: np.random.Generator):
    """Mixup as the original code: (mixed images, labels, partner labels, lam)."""
    lam = float(rng.beta(alpha, alpha)) if alpha > 0 else 1.0
    partner = torch.from_numpy(rng.permutation(images.shape[0])).to(images.device)
    mixed = lam * images + (1 - lam) * images[partner]
    return mixed, labels, labels[partner], lam


def cutmix_batch(images: torch.Tensor, labels: torch.Tensor, alpha: float,
                 rng: np.random.Generator):
    """CutMix as the official code: one box of side ~sqrt(1 - lam), centre uniform, clipped."""
    lam = float(rng.beta(alpha, alpha))
    partner = torch.from_numpy(rng.permutation(images.shape[0])).to(images.device)
    height, width = images.shape[-2:]
    ratio = np.sqrt(1.0 - lam)
    cut_height, cut_width = int(height * ratio), int(width * ratio)
    centre_y, centre_x = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([centre_y - cut_height // 2, centre_y + cut_height // 2], 0, height)
    left, right = np.clip([centre_x - cut_width // 2, centre_x + cut_width // 2], 0, width)
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[partner, :, top:bottom, left:right]
    lam = 1.0 - float((bottom - top) * (right - left)) / (height * width)
    return mixed, labels, labels[partner], lam


def mix(aug: str, images: torch.Tensor, labels: torch.Tensor, alpha: float | None,
        rng: np.random.Generator):
    """(images, labels a, labels b, lam) for aug none, mixup or cutmix."""
    if aug == "none":
        return images, labels, labels, 1.0
    if aug == "mixup":
        return mixup_batch(images, labels, alpha, rng)
    if aug == "cutmix":
        return cutmix_batch(images, labels, alpha, rng)
    raise ValueError(f"aug={aug!r}: the classic pipeline knows none, mixup and cutmix")


def mixed_loss(logits: torch.Tensor, labels_a: torch.Tensor, labels_b: torch.Tensor,
               lam: float) -> torch.Tensor:
    """The original mixup_criterion: lam * CE(logits, a) + (1 - lam) * CE(logits, b)."""
    return lam * F.cross_entropy(logits, labels_a) + (1 - lam) * F.cross_entropy(logits, labels_b)


def _to_device(batch, device: torch.device):
    images, labels = batch
    return images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterator,
                aug: str, alpha: float | None, rng: np.random.Generator,
                device: torch.device, steps: int) -> float:
    """`steps` classic training steps; returns the last loss."""
    model.train()
    loss_value = float("nan")
    for _ in range(steps):
        images, labels = _to_device(next(batches), device)
        images, labels_a, labels_b, lam = mix(aug, images, labels, alpha, rng)
        logits = model(images)
        loss = F.cross_entropy(logits, labels_a) if aug == "none" else \
            mixed_loss(logits, labels_a, labels_b, lam)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_value = loss.item()  # the original prints the running loss every step
    return loss_value


def run_pipeline(batches: Iterator, aug: str, alpha: float | None, rng: np.random.Generator,
                   device: torch.device, steps: int) -> None:
    """Crop, flip, normalise (in the workers), copy and mix `steps` batches: no model."""
    for _ in range(steps):
        images, labels = _to_device(next(batches), device)
        mix(aug, images, labels, alpha, rng)


@torch.no_grad()
def evaluate_steps(model: torch.nn.Module, batches: Iterator, device: torch.device,
                   steps: int) -> int:
    """`steps` classic test batches (fp32, a host sync per batch); returns images seen."""
    model.eval()
    seen = correct = 0
    for _ in range(steps):
        images, labels = _to_device(next(batches), device)
        logits = model(images)
        correct += int((logits.argmax(1) == labels).sum())  # the original's per-batch sync
        seen += labels.shape[0]
    return seen


def measure(plan, train: Split, test: Split, defaults: dict[str, Any], timer: Callable,
            log: Callable[[str], None], pipeline_count: int) -> list[dict[str, Any]]:
    """Training, the pipeline alone, and evaluation, each timed by `timer(warmup, work)`.

    Returns one entry per setting: measure, batch_size, aug, warmup, steps,
    images and the timer's result. `plan` supplies the device, batch sizes,
    augs, step counts and worker count, as for the fast pipeline.
    """
    from ..models import build_model

    device = plan.device
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as the original code sets it
    torch.manual_seed(0)
    model = build_model("resnet18", 10).to(device)
    sgd = defaults["optim"]
    optimizer = torch.optim.SGD(model.parameters(), lr=sgd["lr"], momentum=sgd["momentum"],
                                weight_decay=sgd["weight_decay"])
    rng = np.random.default_rng(0)
    # Workers run ahead by up to two batches each (DataLoader's prefetch_factor). Where the
    # loader can be the bottleneck (the pipeline alone; training on a GPU), the warm-up
    # drains that queue so that batches made before the clock started do not flatter it.
    queued = 2 * plan.workers
    drain_training = queued if device.type == "cuda" else 0
    entries = []
    for batch_size in plan.batch_sizes:
        loader = build_loader(train, batch_size, train=True, workers=plan.workers,
                              pin_memory=device.type == "cuda")
        batches = endless(loader)
        for aug in [name for name in plan.augs if name in AUGS]:  # no model-guided ones
            alpha = defaults["alpha"][aug]
            steps = partial(train_steps, model, optimizer, batches, aug, alpha, rng, device)
            warmup = plan.warmup + drain_training
            result = timer(partial(steps, warmup), partial(steps, plan.steps))
            entries.append({"measure": "train", "batch_size": batch_size, "aug": aug,
                            "warmup": warmup, "steps": plan.steps,
                            "images": plan.steps * loader.batch_size, **result})
            log(f"classic: train batch {batch_size} {aug}: "
                f"{entries[-1]['images'] / entries[-1]['seconds']:,.0f} img/s")
            steps = partial(run_pipeline, batches, aug, alpha, rng, device)
            warmup = plan.warmup + queued
            result = timer(partial(steps, warmup), partial(steps, pipeline_count))
            entries.append({"measure": "pipeline", "batch_size": batch_size, "aug": aug,
                            "warmup": warmup, "steps": pipeline_count,
                            "images": pipeline_count * loader.batch_size, **result})
        del batches, loader  # ends the workers before the next batch size starts its own
    loader = build_loader(test, plan.eval_batch_size, train=False, workers=plan.workers,
                          pin_memory=device.type == "cuda")
    batches = endless(loader)
    count = max(1, min(plan.eval_batches, len(test) // loader.batch_size))
    steps = partial(evaluate_steps, model, batches, device)
    result = timer(partial(steps, 1 + drain_training), partial(steps, count))
    entries.append({"measure": "eval", "batch_size": loader.batch_size, "aug": None,
                    "warmup": 1 + drain_training, "steps": count,
                    "images": count * loader.batch_size, **result})
    del batches, loader
    return entries
