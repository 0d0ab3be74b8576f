"""The model-guided mixers' cost on the CPU: ms per batch-128 mixing step, with a training step.

scripts/mixing_step_time.py times the pixel mixers over whole epochs; a model-guided
mixer runs a network pass per step (a ResNet-18 forward, or forward and backward), so
whole epochs are out of reach on a CPU. This times single steps instead, in interleaved
rounds (each round: every case once, in order; the median over rounds counts), beside
mixup and cutmix and a plain training step (forward, backward, SGD) of the same network
for scale. The extra pass runs on the network in training mode, as in the trainer.

    python scripts/guided_step_time.py [--rounds 5] [--out results/perf/cpu/FILE.md]
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from pathlib import Path

import torch

from mixup_bench.mixing import ModelGuide, build_mixer, soft_target_cross_entropy
from mixup_bench.models import build_model
from mixup_bench.train.runtime import device_name

BATCH = 128
CASES = [("mixup", 0.2, {}), ("cutmix", 1.0, {}), ("attentivemix", 1.0, {}),
         ("puzzlemix", 1.0, {}), ("puzzlemix", 1.0, {"transport": False})]


def case_label(name: str, options: dict) -> str:
    return name + "".join(f" {key}={value}" for key, value in options.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = build_model("resnet18", 10).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(10, (BATCH,), generator=torch.Generator().manual_seed(2))
    mixers = {}
    for name, alpha, options in CASES:
        mixer = build_mixer(name, 10, alpha, **options)
        mixer.use_model(ModelGuide(model))
        mixers[case_label(name, options)] = mixer
    generator = torch.Generator().manual_seed(0)

    def train_step() -> None:
        loss = soft_target_cross_entropy(model(images), torch.eye(10)[labels])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    steps = {label: (lambda m=mixer: m(images, labels, generator))
             for label, mixer in mixers.items()}
    steps["training step (forward, backward, SGD)"] = train_step
    for step in steps.values():  # warm-up
        step()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(args.rounds):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            times[label].append((time.perf_counter() - start) * 1e3)
    lines = [f"# Model-guided mixing cost on the CPU ({datetime.date.today()})", "",
             f"Machine: {device_name(torch.device('cpu'))}, "
             f"{torch.get_num_threads()} threads, torch {torch.__version__}; shared with other "
             "jobs while it ran, so absolute times are rough.",
             f"Command: `python scripts/guided_step_time.py --rounds {args.rounds}`", "",
             f"ResNet-18 (timm, CIFAR stem), batch {BATCH}, 32x32, fp32; median over "
             f"{args.rounds} interleaved rounds (min-max in brackets).", "",
             "| step | ms per batch-128 step | extra passes |", "|---|---:|---|"]
    for label, values in times.items():
        mixer = mixers.get(label)
        passes = getattr(mixer, "extra_passes", None) if mixer else None
        lines.append(f"| {label} | {statistics.median(values):,.0f} "
                     f"({min(values):,.0f}-{max(values):,.0f}) | {passes or 'none'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
