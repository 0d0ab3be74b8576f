"""The one trainer: CPU and CUDA share this code path; AMP and channels_last are switches.

Reads top to bottom as: seed, data, model, optimizer, loop (train_one_epoch,
evaluate), save. `run(cfg, run_dir)` is a plain function: the CLI's Hydra
wrapper hands it the composed config and the output directory, and it
returns the summary it writes.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from . import checkpoint
from .data import DeviceLoader, Split, load_dataset
from .errors import OutputError, UserError
from .metrics import MetricsLog, reliability_bins, reliability_table, summarise, write_json_atomic
from .mixing import Mixer, build_mixer, describe, soft_target_cross_entropy
from .models import build_model
from .runtime import Runtime, environment, resolve_runtime
from .safety import Preempted, PreemptionWatch, check_resumable, run_directory_lock

log = logging.getLogger(__name__)


class Diverged(Exception):
    """The training loss became NaN or infinite."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def build_optimizer(model: torch.nn.Module, cfg: DictConfig, step: str = "foreach"):
    """SGD with momentum; `step` picks its kernels (trainer.optimizer_step).

    foreach: one launch per operation over all parameters; fused: one kernel
    for the whole update; loop: a Python loop over parameters (the reference).
    """
    return torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                           weight_decay=cfg.optim.weight_decay, nesterov=cfg.optim.nesterov,
                           **OPTIMIZER_KERNELS[step])


def load_optimizer_state(optimizer, state: dict[str, Any], step: str) -> None:
    """load_state_dict, then the kernels `step` asks for (it would restore the saved ones)."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        group.update(OPTIMIZER_KERNELS[step])


# trainer.optimizer_step -> the SGD flags. load_state_dict restores the saved ones, so a
# resumed run sets them again (resuming with another step is allowed: same arithmetic).
OPTIMIZER_KERNELS = {"foreach": {"foreach": True, "fused": False},
                     "fused": {"foreach": False, "fused": True},
                     "loop": {"foreach": False, "fused": False}}


def compile_network(model: torch.nn.Module, enabled: bool, mode: str = "default",
                    dynamic: bool | None = None):
    """torch.compile(model) when enabled, else the model itself.

    Checkpoints hold the plain module's weights; the compiled wrapper only runs
    them. `mode` is torch.compile's: reduce-overhead and max-autotune also
    capture CUDA graphs (see Runtime.cuda_graphs).
    """
    if not enabled:
        return model
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=dynamic)


def uses_cuda_graphs(device: torch.device, enabled: bool, mode: str) -> bool:
    """Whether torch.compile in `mode` replays CUDA graphs on this device."""
    return enabled and device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")


def _no_section(name: str) -> nullcontext:
    return _NULL


_NULL = nullcontext()  # reusable: entering it does nothing


def _batches(loader, section):
    """The loader's batches, each fetch inside section("batch") (a profiler range)."""
    iterator = iter(loader)
    while True:
        with section("batch"):
            item = next(iterator, None)
        if item is None:
            return
        yield item


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: DictConfig):
    """Stepped once per epoch."""
    if cfg.sched.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.trainer.epochs)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.sched.milestones),
                                                gamma=cfg.sched.gamma)


def train_one_epoch(model, loader: DeviceLoader, mixer: Mixer, mix_generator: torch.Generator,
                    optimizer, scaler, runtime: Runtime, progress=None,
                    stop=None, section=None) -> dict[str, float]:
    """One pass over the training batches; metrics stay on the device until the end.

    `stop()` is polled between steps (a Python flag, no device sync); when it
    says so the epoch ends early with Preempted. `section(name)` wraps each
    phase of the step; `mixup-bench bench --profile` passes the profiler's
    record_function, training passes a shared no-op context.
    """
    model.train()
    section = section or _no_section
    device = runtime.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    first_bad_step = torch.full((), -1, device=device, dtype=torch.long)
    seen = 0
    for step, (images, labels) in enumerate(_batches(loader, section)):
        if stop is not None and stop():
            raise Preempted(f"stopped by a signal at step {step + 1}")
        if runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with section("mix"):
            batch = mixer(images, labels, mix_generator)
        inside = batch.forward_context(model) if batch.forward_context else nullcontext()
        with section("forward"), runtime.autocast(), inside:
            logits = model(batch.images)
        with section("backward"):
            loss = soft_target_cross_entropy(logits, batch.targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
        with section("optimizer"):
            scaler.step(optimizer)
            scaler.update()
        with section("metrics"):
            loss = loss.detach()
            bad = ~torch.isfinite(loss) & (first_bad_step < 0)
            first_bad_step = torch.where(bad, step + 1, first_bad_step)
            loss_sum += loss * labels.shape[0]
            # Accuracy against the dominant label of each (mixed) target.
            correct += (logits.detach().argmax(1) == batch.targets.argmax(1)).sum()
        seen += labels.shape[0]
        if progress is not None:
            progress.update(1)
    bad_step = int(first_bad_step)  # host synchronisation: once per epoch, after the loop
    if bad_step >= 0:
        raise Diverged(f"non-finite training loss at step {bad_step}")
    return {"train_loss": float(loss_sum) / max(seen, 1),
            "train_acc": float(correct) / max(seen, 1), "images": seen}


@torch.no_grad()
def evaluate(model, loader: DeviceLoader, runtime: Runtime,
             reliability: dict[str, Any] | None = None) -> dict[str, float]:
    """Loss (NLL), top-1 accuracy and ECE on the whole test split.

    If `reliability` is a dict, it receives the reliability-diagram bins.
    """
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device)
    probabilities, labels_all = [], []
    for images, labels in loader:
        if runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with runtime.autocast():
            logits = model(images)
        logits = logits.float()
        loss_sum += torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        probabilities.append(logits.softmax(1))
        labels_all.append(labels)
    count = len(loader.split)
    table = reliability_bins(torch.cat(probabilities), torch.cat(labels_all))
    ece = (table["confidence_sum"] - table["correct_sum"]).abs().sum() / count
    if reliability is not None:
        reliability.update(reliability_table(table))
    return {"test_loss": float(loss_sum) / count, "test_acc": float(correct) / count,
            "test_ece": float(ece)}


def save_samples(loader: DeviceLoader, mixer: Mixer, seed: int, run_dir: Path,
                 metrics: MetricsLog, mean: tuple[float, ...], std: tuple[float, ...],
                 count: int = 32) -> None:
    """A grid of mixed training images as samples.png and a TensorBoard image.

    Uses its own generators so the training streams are untouched.
    """
    from torchvision.utils import make_grid, save_image

    generator = torch.Generator(device=loader.generator.device).manual_seed(seed + 7919)
    mix_generator = torch.Generator().manual_seed(seed + 7919)
    images = loader.split.images[:count]
    sample_loader = DeviceLoader(Split(images, loader.split.labels[:count]), count, train=True,
                                 mean=mean, std=std, generator=generator)
    batch_images, batch_labels = next(iter(sample_loader))
    mixed = mixer(batch_images, batch_labels, mix_generator).images.float()
    mean_tensor = torch.tensor(mean, device=mixed.device).view(1, 3, 1, 1)
    std_tensor = torch.tensor(std, device=mixed.device).view(1, 3, 1, 1)
    grid = make_grid((mixed * std_tensor + mean_tensor).clamp(0, 1).cpu(), nrow=8, padding=2)
    save_image(grid, run_dir / "samples.png")
    metrics.add_image("samples", grid)


def _rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    state = {name: generator.get_state() for name, generator in generators.items()}
    state["torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    for name, generator in generators.items():
        generator.set_state(state[name])
    torch.set_rng_state(state["torch_cpu"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
        choices: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train and evaluate one configuration; write the run directory; return the summary."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_directory_lock(run_dir), PreemptionWatch() as preemption:
        runtime = resolve_runtime(cfg.trainer.device, cfg.trainer.precision,
                                  cfg.trainer.channels_last)
        try:
            summary = _run_locked(cfg, run_dir, runtime, overrides or [], choices or {},
                                  preemption)
        finally:
            runtime.release()
    if summary["status"] == "preempted":
        preemption.pass_on()  # e.g. submitit's handler, which requeues the job
    return summary


def _run_locked(cfg: DictConfig, run_dir: Path, runtime: Runtime, overrides: list[str],
                choices: dict[str, Any], preemption: PreemptionWatch) -> dict[str, Any]:
    config = OmegaConf.to_container(cfg, resolve=True)
    started = time.perf_counter()
    summary: dict[str, Any] = {"status": "running", "error": None, "started_at": _now(),
                               "config": config, "overrides": overrides,
                               "experiment": choices.get("experiment")}
    summary_path = run_dir / "summary.json"
    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    state = None
    if cfg.resume and checkpoint_path.is_file():
        state = checkpoint.load(checkpoint_path)
        check_resumable(state["config"], config, run_dir)

    # --- runtime and seed ------------------------------------------------------
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = runtime.device
    torch.manual_seed(cfg.seed)
    loader_generator = torch.Generator(device=device).manual_seed(cfg.seed)
    mix_generator = torch.Generator().manual_seed(cfg.seed + 1)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.trainer.cudnn_benchmark

    # --- data -------------------------------------------------------------------
    dataset = load_dataset(cfg.data)
    summary["environment"] = environment(runtime, dataset.checksums)
    summary["train_images"], summary["test_images"] = len(dataset.train), len(dataset.test)
    summary["noisy_train_labels"] = dataset.noisy_labels
    write_json_atomic(summary_path, summary)
    train_loader = DeviceLoader(dataset.train.to(device), cfg.trainer.batch_size, train=True,
                                mean=dataset.mean, std=dataset.std, generator=loader_generator,
                                channels_last=runtime.channels_last)
    test_loader = DeviceLoader(dataset.test.to(device), cfg.trainer.eval_batch_size, train=False,
                               mean=dataset.mean, std=dataset.std,
                               channels_last=runtime.channels_last)

    # --- model, optimizer, mixing ---------------------------------------------
    model = build_model(cfg.model.name, dataset.num_classes, cfg.model.dropout).to(device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg, cfg.trainer.optimizer_step)
    network = compile_network(model, cfg.trainer.compile, cfg.trainer.compile_mode)
    runtime = replace(runtime, cuda_graphs=uses_cuda_graphs(device, cfg.trainer.compile,
                                                            cfg.trainer.compile_mode))
    scheduler = build_scheduler(optimizer, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=runtime.precision == "fp16")
    aug_options = {key: value for key, value in config["aug"].items() if key != "name"}
    mixer = build_mixer(cfg.aug.name, dataset.num_classes, cfg.alpha, **aug_options)
    mixer.bind(train_loader)
    summary["mixer"] = describe(mixer)
    generators = {"loader": loader_generator, "mix": mix_generator}

    # --- resume -----------------------------------------------------------------
    metrics = MetricsLog(run_dir)
    writer = checkpoint.BackgroundWriter(checkpoint_path)
    start_epoch = 1
    if state is not None:
        model.load_state_dict(state["model"])
        load_optimizer_state(optimizer, state["optimizer"], cfg.trainer.optimizer_step)
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _restore_rng(state["rng"], generators)
        start_epoch = state["epoch"] + 1
        metrics.truncate(state["epoch"])
        summary["resumed_from_epoch"] = state["epoch"]
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])
        del state
    else:
        metrics.truncate(0)
        if cfg.trainer.samples:
            save_samples(train_loader, mixer, cfg.seed, run_dir, metrics, dataset.mean,
                         dataset.std)
    log.info("%s on %s (%s, %s%s): %d training images, %d test images, %d steps/epoch",
             cfg.model.name, summary["environment"]["device_name"], device, runtime.precision,
             ", channels_last" if runtime.channels_last else "", len(dataset.train),
             len(dataset.test), len(train_loader))

    # --- loop -------------------------------------------------------------------
    epochs = cfg.trainer.epochs
    progress = _progress_bar(cfg, max(epochs - start_epoch + 1, 0) * len(train_loader))
    try:
        for epoch in range(start_epoch, epochs + 1):
            epoch_start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            mixer.set_epoch(epoch, epochs)
            try:
                train = train_one_epoch(network, train_loader, mixer, mix_generator, optimizer,
                                        scaler, runtime, progress, stop=preemption.requested)
            except Diverged as error:
                raise Diverged(f"epoch {epoch}: {error}; the last good checkpoint "
                               f"(epoch {epoch - 1}) is kept") from None
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_seconds = time.perf_counter() - epoch_start
            scheduler.step()
            reliability: dict[str, Any] = {}
            test = evaluate(network, test_loader, runtime, reliability)
            summary["reliability"] = {"epoch": epoch, **reliability}
            row = {"epoch": epoch, "train_loss": train["train_loss"],
                   "train_acc": train["train_acc"], **test, "lr": lr,
                   "seconds": time.perf_counter() - epoch_start,
                   "images_per_s": train["images"] / train_seconds,
                   "elapsed_seconds": time.perf_counter() - started}
            _save_epoch(writer, metrics, row, {
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "rng": _rng_state(generators), "config": config})
            elapsed = time.perf_counter() - started
            eta = elapsed / (epoch - start_epoch + 1) * (epochs - epoch)
            log.info("epoch %d/%d  train_loss %.4f  train_acc %.2f%%  test_loss %.4f  "
                     "test_acc %.2f%%  lr %.4g  %.1fs  %.0f img/s  ETA %s", epoch, epochs,
                     row["train_loss"], 100 * row["train_acc"], row["test_loss"],
                     100 * row["test_acc"], lr, row["seconds"], row["images_per_s"],
                     _format_seconds(eta))
            if progress is not None:
                progress.set_postfix(test_acc=f"{100 * row['test_acc']:.2f}%")
        _checkpoint_landed(writer)
        summary["status"] = "finished"
    except Diverged as error:
        summary.update(status="diverged", error=str(error))
        log.error("diverged: %s", error)
    except Preempted as error:
        summary.update(status="preempted",
                       error=f"signal {preemption.signal_number}: {error}; resume=true continues "
                             "from the last completed epoch")
        log.warning("preempted: %s", summary["error"])
    except KeyboardInterrupt:
        summary.update(status="interrupted", error="interrupted by the user (Ctrl-C); "
                                                   "resume=true continues the run")
        raise
    except UserError as error:
        summary.update(status="failed", error=str(error))
        raise
    except BaseException as error:
        summary.update(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        if progress is not None:
            progress.close()
        try:  # the last checkpoint lands before the run reports how it ended
            writer.wait()
        except checkpoint.CheckpointWriteError as error:  # another error is on its way
            log.error("the checkpoint of epoch %d was not written: %s", error.epoch, error)
        finally:  # even if Ctrl-C comes during the wait
            _write_summary(summary, summary_path, metrics, config, started)
    return summary


def _write_summary(summary: dict[str, Any], path: Path, metrics: MetricsLog,
                   config: dict[str, Any], started: float) -> None:
    summary.update(summarise(metrics.read()))
    metrics.add_hparams(config, summary)
    metrics.close()
    summary["wall_seconds"] = time.perf_counter() - started
    summary["ended_at"] = _now()
    try:
        write_json_atomic(path, summary)
    except OSError as error:
        log.error("could not write %s: %s", path, error)


def _save_epoch(writer: checkpoint.BackgroundWriter, metrics: MetricsLog, row: dict[str, Any],
                state: dict[str, Any]) -> None:
    """The previous checkpoint landed, then the metrics line, then the checkpoint.

    The checkpoint is written in the background while the next epoch trains.
    A crash before it lands leaves a line without its checkpoint; resume drops
    lines past the checkpoint's epoch and redoes that epoch, so no epoch is
    ever missing from metrics.jsonl.
    """
    _checkpoint_landed(writer)
    try:
        metrics.append(row)
    except OSError as error:
        raise OutputError(f"{metrics.path}: could not append epoch {row['epoch']} "
                          f"({error.strerror or error})") from None
    writer.save(state, row["epoch"])


def _checkpoint_landed(writer: checkpoint.BackgroundWriter) -> None:
    """Wait for the checkpoint in flight; a failed write stops the run with one line."""
    try:
        writer.wait()
    except checkpoint.CheckpointWriteError as error:
        raise OutputError(f"{writer.path}: could not write the checkpoint of epoch "
                          f"{error.epoch} ({error.strerror}); the previous checkpoint is "
                          "intact, free space or fix permissions and pass resume=true") from None


def _progress_bar(cfg: DictConfig, total: int):
    """A tqdm bar over all remaining steps (ETA for the whole run), on terminals only."""
    import sys

    if not cfg.trainer.progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, leave=False)


__all__ = ["run", "train_one_epoch", "evaluate", "UserError"]
