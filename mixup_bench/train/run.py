"""One run, start to end: the trainer's outer loop and the run directory it writes.

Reads top to bottom as the steps of a run: lock the directory, read the
checkpoint to resume from, seed, load the data, build the trainee (model,
optimizer, compiled network, scaler), the schedule and the mixer, restore
the checkpoint, train epoch after epoch, and write the summary however the
run ended. `run(cfg, run_dir)` is a plain function: the CLI's Hydra wrapper
hands it the composed config and the output directory, and it returns the
summary it writes.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ..data import Dataset, DeviceLoader, load_dataset
from ..errors import CheckpointError, OutputError, UserError
from ..jsonio import write_json_atomic
from ..loggers import Place, open_loggers
from ..mixing import Mixer, ModelGuide, build_mixer
from ..models import init_record
from . import checkpoint
from .loop import Diverged, evaluate, train_one_epoch
from .metrics import MetricsLog, summarise
from .parts import Trainee, build_scheduler, build_trainee, load_optimizer_state
from .runtime import Runtime, environment, resolve_runtime
from .safety import Preempted, PreemptionWatch, check_resumable, run_directory_lock
from .samples import save_samples

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


@dataclass
class Setup:
    """Everything the epoch loop needs, built from the config."""

    trainee: Trainee
    scheduler: Any
    mixer: Mixer
    train_loader: DeviceLoader
    test_loader: DeviceLoader
    generators: dict[str, torch.Generator]  # "loader" (on the device) and "mix" (CPU)
    metrics: MetricsLog
    writer: checkpoint.BackgroundWriter
    normalisation: tuple[tuple[float, ...], tuple[float, ...]]  # the dataset's (mean, std)
    start_epoch: int = 1
    val_loader: DeviceLoader | None = None  # the split data.val_fraction holds out


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None,
        choices: dict[str, Any] | None = None, sweep_dir: Path | None = None) -> dict[str, Any]:
    """Train and evaluate one configuration; write the run directory; return the summary.

    sweep_dir: the sweep's directory when the run is one job of a sweep (a local
    MLflow store is shared there), else None.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_directory_lock(run_dir), PreemptionWatch() as preemption:
        runtime = resolve_runtime(cfg.trainer.device, cfg.trainer.precision,
                                  cfg.trainer.channels_last)
        try:
            summary = _run_locked(cfg, run_dir, runtime, overrides or [], choices or {},
                                  preemption, sweep_dir)
        finally:
            runtime.release()
    if summary["status"] == "preempted":
        preemption.pass_on()  # e.g. submitit's handler, which requeues the job
    return summary


def _run_locked(cfg: DictConfig, run_dir: Path, runtime: Runtime, overrides: list[str],
                choices: dict[str, Any], preemption: PreemptionWatch,
                sweep_dir: Path | None) -> dict[str, Any]:
    config = OmegaConf.to_container(cfg, resolve=True)
    started = time.perf_counter()
    summary: dict[str, Any] = {"status": "running", "error": None, "started_at": _now(),
                               "config": config, "overrides": overrides,
                               "experiment": choices.get("experiment")}
    state = _checkpoint_to_resume(cfg, run_dir, config)
    try:
        first_epoch = 1 if state is None else state["epoch"] + 1
        setup = _set_up(cfg, config, Place(run_dir, sweep_dir, first_epoch), runtime, summary)
    except BaseException as error:  # summary.json may already say "running": not any more
        if "environment" in summary:
            summary.update(status="failed", error=_error_line(error), ended_at=_now())
            write_json_atomic(run_dir / "summary.json", summary)
        raise
    try:
        if state is not None:
            _restore(setup, state, cfg, summary)
            log.info("resuming %s after epoch %d", run_dir, setup.start_epoch - 1)
            del state
        else:
            setup.metrics.truncate(0)
            if cfg.trainer.samples:
                save_samples(setup.train_loader, setup.mixer, cfg.seed, run_dir, setup.metrics,
                             *setup.normalisation)
        _train_epochs(cfg, config, setup, preemption, started, summary)
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
    except BaseException as error:
        summary.update(status="failed", error=_error_line(error))
        raise
    finally:
        try:  # the last checkpoint lands before the run reports how it ended
            setup.writer.wait()
        except checkpoint.CheckpointWriteError as error:  # another error is on its way
            log.error("the checkpoint of epoch %d was not written: %s", error.epoch, error)
        finally:  # even if Ctrl-C comes during the wait
            _write_summary(summary, run_dir / "summary.json", setup.metrics, started)
    return summary


def _error_line(error: BaseException) -> str:
    """A user error's own words; anything else with its type, as summary.json's error."""
    return str(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"


def _checkpoint_to_resume(cfg: DictConfig, run_dir: Path,
                          config: dict[str, Any]) -> dict[str, Any] | None:
    """checkpoints/last.pt when resume=true finds one made with a compatible config."""
    path = run_dir / "checkpoints" / "last.pt"
    if not (cfg.resume and path.is_file()):
        return None
    state = checkpoint.load(path, checkpoint.STATE_KEYS)  # weights_only: runs no code
    check_resumable(state["config"], config, run_dir)
    return state


def _set_up(cfg: DictConfig, config: dict[str, Any], place: Place, runtime: Runtime,
            summary: dict[str, Any]) -> Setup:
    """Seed, load the data, build the trainee, schedule and mixer, and open the loggers."""
    run_dir = place.run_dir
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    device = runtime.device
    torch.manual_seed(cfg.seed)
    generators = {"loader": torch.Generator(device=device).manual_seed(cfg.seed),
                  "mix": torch.Generator().manual_seed(cfg.seed + 1)}

    dataset = load_dataset(cfg.data)
    summary["environment"] = environment(runtime, dataset.checksums)
    summary["train_images"], summary["test_images"] = len(dataset.train), len(dataset.test)
    summary["noisy_train_labels"] = dataset.noisy_labels
    summary["val_images"] = 0 if dataset.val is None else len(dataset.val)
    summary["normalization"] = {"mean": list(dataset.mean), "std": list(dataset.std)}
    summary["trades"] = trades(dataset, cfg.model.name)
    summary["judgeable"] = not summary["trades"]
    write_json_atomic(run_dir / "summary.json", summary)
    train_loader = DeviceLoader(dataset.train.to(device), cfg.trainer.batch_size, train=True,
                                mean=dataset.mean, std=dataset.std,
                                generator=generators["loader"],
                                channels_last=runtime.channels_last)
    test_loader = DeviceLoader(dataset.test.to(device), cfg.trainer.eval_batch_size, train=False,
                               mean=dataset.mean, std=dataset.std,
                               channels_last=runtime.channels_last)
    val_loader = None if dataset.val is None else DeviceLoader(
        dataset.val.to(device), cfg.trainer.eval_batch_size, train=False, mean=dataset.mean,
        std=dataset.std, channels_last=runtime.channels_last)

    trainer = cfg.trainer
    trainee = build_trainee(runtime, cfg.model.name, dataset.num_classes, cfg.model.dropout,
                            config["optim"], optimizer_step=trainer.optimizer_step,
                            compile=trainer.compile, compile_mode=trainer.compile_mode,
                            cudnn_benchmark=trainer.cudnn_benchmark,
                            zero_init_last=cfg.model.zero_init_last)
    summary["init"] = init_record(cfg.model.name, cfg.model.zero_init_last)
    scheduler = build_scheduler(trainee.optimizer, config["sched"], trainer.epochs)
    aug_options = {key: value for key, value in config["aug"].items() if key != "name"}
    mixer = build_mixer(cfg.aug.name, dataset.num_classes, cfg.alpha, **aug_options)
    mixer.bind(train_loader)
    mixer.use_model(ModelGuide(trainee.network, trainee.runtime.autocast))  # for samples.png
    summary["mixer"] = mixer.summary()
    log.info("%s on %s (%s, %s%s): %d training images, %d test images, %d steps/epoch",
             cfg.model.name, summary["environment"]["device_name"], device, runtime.precision,
             ", channels_last" if runtime.channels_last else "", len(dataset.train),
             len(dataset.test), len(train_loader))
    writer = checkpoint.BackgroundWriter(run_dir / "checkpoints" / "last.pt")
    loggers = open_loggers(config.get("logger"), place)  # last: nothing below can fail
    loggers.log_params(config)
    return Setup(trainee, scheduler, mixer, train_loader, test_loader, generators,
                 MetricsLog(run_dir, loggers), writer, (dataset.mean, dataset.std),
                 val_loader=val_loader)


# Networks that exist to test code (timm's test_* models): quick, and no claim's subject.
TEST_NETWORK_PREFIX = "timm:test_"


def trades(dataset: Dataset, model_name: str) -> list[str]:
    """What the run gave up for time that a published claim's measurement needs (the smoke
    preset's test network; a test subset). A run with any is never judged against a claim
    by the report."""
    found = []
    if model_name.startswith(TEST_NETWORK_PREFIX):
        found.append(f"model.name={model_name}: a network made for testing code, not one a "
                     "published claim is about")
    if dataset.test_subset_of:
        found.append(f"data.test_subset: evaluated on {len(dataset.test):,} of the "
                     f"{dataset.test_subset_of:,} test images")
    return found


def _restore(setup: Setup, state: dict[str, Any], cfg: DictConfig,
             summary: dict[str, Any]) -> None:
    """Put the checkpoint's weights, optimizer, schedule, scaler and RNG streams back."""
    trainee = setup.trainee
    try:  # a checkpoint whose config matches but whose states do not (damaged, crafted)
        trainee.model.load_state_dict(state["model"])
        load_optimizer_state(trainee.optimizer, state["optimizer"])
        setup.scheduler.load_state_dict(state["scheduler"])
        trainee.scaler.load_state_dict(state["scaler"])
        checkpoint.restore_rng(state["rng"], setup.generators)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as error:
        first = (str(error).splitlines() or [""])[0][:200]
        raise CheckpointError(f"{setup.writer.path}: does not fit this run ({type(error).__name__}"
                              f": {first}); delete it or start a new run directory") from None
    setup.start_epoch = state["epoch"] + 1
    setup.metrics.truncate(state["epoch"])
    summary["resumed_from_epoch"] = state["epoch"]


def _train_epochs(cfg: DictConfig, config: dict[str, Any], setup: Setup,
                  preemption: PreemptionWatch, started: float, summary: dict[str, Any]) -> None:
    """Epoch after epoch: train, step the schedule, evaluate, log, checkpoint."""
    trainee, epochs = setup.trainee, cfg.trainer.epochs
    device = trainee.runtime.device
    progress = _progress_bar(cfg, max(epochs - setup.start_epoch + 1, 0)
                             * len(setup.train_loader))
    try:
        for epoch in range(setup.start_epoch, epochs + 1):
            epoch_start = time.perf_counter()
            lr = trainee.optimizer.param_groups[0]["lr"]
            setup.mixer.set_epoch(epoch, epochs)
            try:
                train = train_one_epoch(trainee.network, setup.train_loader, setup.mixer,
                                        setup.generators["mix"], trainee.optimizer,
                                        trainee.scaler, trainee.runtime, progress,
                                        stop=preemption.requested)
            except Diverged as error:
                raise Diverged(f"epoch {epoch}: {error}; the last good checkpoint "
                               f"(epoch {epoch - 1}) is kept") from None
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            train_seconds = time.perf_counter() - epoch_start
            setup.scheduler.step()
            reliability: dict[str, Any] = {}
            test = evaluate(trainee.network, setup.test_loader, trainee.runtime, reliability)
            summary["reliability"] = {"epoch": epoch, **reliability}
            row = {"epoch": epoch, "train_loss": train["train_loss"],
                   "train_acc": train["train_acc"], **test,
                   **_validate(trainee, setup.val_loader), "lr": lr,
                   "seconds": time.perf_counter() - epoch_start,
                   "images_per_s": train["images"] / train_seconds,
                   "elapsed_seconds": time.perf_counter() - started}
            save_epoch(setup.writer, setup.metrics, row, {
                "epoch": epoch, "model": trainee.model.state_dict(),
                "optimizer": trainee.optimizer.state_dict(),
                "scheduler": setup.scheduler.state_dict(), "scaler": trainee.scaler.state_dict(),
                "rng": checkpoint.rng_state(setup.generators), "config": config})
            _log_epoch(row, epochs, epoch - setup.start_epoch + 1, started)
            if progress is not None:
                progress.set_postfix(test_acc=f"{100 * row['test_acc']:.2f}%")
        checkpoint_landed(setup.writer)
    finally:
        if progress is not None:
            progress.close()


def _validate(trainee: Trainee, loader: DeviceLoader | None) -> dict[str, float]:
    """val_loss, val_acc and val_ece on the held-out split; nothing without one."""
    if loader is None:
        return {}
    measured = evaluate(trainee.network, loader, trainee.runtime)
    return {"val_" + key.removeprefix("test_"): value for key, value in measured.items()}


def _log_epoch(row: dict[str, Any], epochs: int, done: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (epochs - row["epoch"])
    log.info("epoch %d/%d  train_loss %.4f  train_acc %.2f%%  test_loss %.4f  "
             "test_acc %.2f%%%s  lr %.4g  %.1fs  %.0f img/s  ETA %s", row["epoch"], epochs,
             row["train_loss"], 100 * row["train_acc"], row["test_loss"],
             100 * row["test_acc"],
             f"  val_acc {100 * row['val_acc']:.2f}%" if "val_acc" in row else "", row["lr"],
             row["seconds"], row["images_per_s"], _format_seconds(eta))


def _write_summary(summary: dict[str, Any], path: Path, metrics: MetricsLog,
                   started: float) -> None:
    summary.update(summarise(metrics.read()))
    summary["wall_seconds"] = time.perf_counter() - started
    summary["ended_at"] = _now()
    try:
        write_json_atomic(path, summary)
    except OSError as error:
        log.error("could not write %s: %s", path, error)
    metrics.finish(summary)  # after summary.json: a tracker that hangs cannot lose it


def save_epoch(writer: checkpoint.BackgroundWriter, metrics: MetricsLog, row: dict[str, Any],
               state: dict[str, Any]) -> None:
    """The previous checkpoint landed, then the metrics line, then the checkpoint.

    The checkpoint is written in the background while the next epoch trains.
    A crash before it lands leaves a line without its checkpoint; resume drops
    lines past the checkpoint's epoch and redoes that epoch, so no epoch is
    ever missing from metrics.jsonl.
    """
    checkpoint_landed(writer)
    try:
        metrics.append(row)
    except OSError as error:
        raise OutputError(f"{metrics.path}: could not append epoch {row['epoch']} "
                          f"({error.strerror or error})") from None
    writer.save(state, row["epoch"])


def checkpoint_landed(writer: checkpoint.BackgroundWriter) -> None:
    """Wait for the checkpoint in flight; a failed write stops the run with one line."""
    try:
        writer.wait()
    except checkpoint.CheckpointWriteError as error:
        raise OutputError(f"{writer.path}: could not write the checkpoint of epoch "
                          f"{error.epoch} ({error.strerror}); the previous checkpoint is "
                          "intact, free space or fix permissions and pass resume=true") from None


def _progress_bar(cfg: DictConfig, total: int):
    """A tqdm bar over all remaining steps (ETA for the whole run), on terminals only."""
    if not cfg.trainer.progress or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True, leave=False)
