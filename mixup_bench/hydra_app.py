"""The Hydra entry point for `mixup-bench train`: the only module that touches @hydra.main.

It validates the composed config, then hands it to the plain `train.run`.
Errors in the user's input end a single run with one line and exit code 2;
in a sweep (-m) they end only that job, which is recorded as failed, and
the sweep goes on.
"""

from __future__ import annotations

import difflib
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError, UserError
from .jsonio import read_json_mapping, write_json_atomic
from .train.safety import RESUMABLE_EXIT, config_differences

log = logging.getLogger("mixup_bench")

# Set by the task function; read by train_main after Hydra returns. "preempted": a job of
# this process was stopped by SIGTERM/SIGUSR2, so the sweep's later jobs do not start.
_exit_code = {"value": 0, "preempted": False}
# What a job returns to its sweeper, and so what an optimising sweeper (hydra/sweeper=optuna)
# maximises: the validation accuracy, never the test accuracy; None without a validation split
# or for a run that did not finish.
OBJECTIVE = "final_val_acc"

# Where the command's results are, for its last console line: ("run" or "sweep", folder).
_results: dict[str, tuple[str, Path] | None] = {"where": None}


def _absolute_data_root(cfg: DictConfig) -> None:
    """Hydra does not change directory, but sweep launchers may: pin data.root now."""
    if OmegaConf.is_missing(cfg.data, "root"):
        raise ConfigError(f"data.root: missing; data={cfg.data.name} needs data.root=/path/to/data")
    root = Path(str(cfg.data.root)).expanduser()
    if not root.is_absolute():
        root = Path(hydra.utils.get_original_cwd()) / root
    cfg.data.root = str(root)


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    return read_json_mapping(run_dir / "summary.json")


def _job(cfg: DictConfig) -> Any:
    from .config import check
    from .loggers import check_available
    from .mixing import build_mixer, mixer_names
    from .models import model_names, timm_problem
    from .train.loop import check_compilable

    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    multirun = hydra_config.mode == RunMode.MULTIRUN
    if multirun:
        _results["where"] = ("sweep", Path(hydra_config.sweep.dir))
    if _exit_code["preempted"]:
        # The signal was for the whole process (SLURM, a time limit): each job would start
        # only to be stopped. Recorded as preempted, so reports list it and a re-run of the
        # sweep starts it.
        log.warning("%s: not started, the sweep was preempted", run_dir.name)
        _record_failure(run_dir, cfg, "not started: the sweep was preempted before this job; "
                        "re-run the sweep to run it", status="preempted")
        return None
    problem = _objective_problem(cfg, hydra_config)
    if problem:  # every trial would be refused: end the search before any work, not each trial
        print(f"mixup-bench: error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    previous = _read_summary(run_dir)
    try:
        try:
            _absolute_data_root(cfg)
            config = OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as error:  # e.g. ${oc.env:UNSET} in an override
            raise ConfigError(f"{error.full_key or 'config'}: "
                              f"{_first_line(error)}") from None
        check(config, model_names(), mixer_names(), timm_problem)
        # The mixer checks its own aug.* options; building it now stops bad ones before any work.
        mixer = build_mixer(cfg.aug.name, cfg.data.num_classes or 2, cfg.alpha,
                            **{key: value for key, value in config["aug"].items()
                               if key != "name"})
        check_compilable(bool(cfg.trainer.compile), mixer)
        check_available(config.get("logger"))  # a chosen tracker's package is installed
        if previous is not None and multirun:
            # Re-running a sweep: skip what finished with this config, resume the rest.
            # Keys that cannot change the results (train.safety.HARMLESS_KEYS) may differ; the
            # epoch count may not: more epochs of a step schedule resume the run.
            before = previous.get("config") or {}
            same = not config_differences(before, config) and \
                (before.get("trainer") or {}).get("epochs") == config["trainer"]["epochs"]
            if previous.get("status") == "finished" and same:
                log.info("%s: finished before with this config; skipped", run_dir)
                return previous.get(OBJECTIVE)
            cfg.resume = True
        from .train.run import run

        summary = run(cfg, run_dir, overrides=list(hydra_config.overrides.task),
                      choices=dict(hydra_config.runtime.choices),
                      sweep_dir=Path(hydra_config.sweep.dir) if multirun else None)
        if not multirun:
            _results["where"] = ("run", run_dir)
    except UserError as error:
        if previous is None:
            _record_failure(run_dir, cfg, str(error))
        for line in str(error).splitlines():
            if multirun:
                log.error("%s: %s", run_dir.name, line)
            else:
                print(f"mixup-bench: error: {line}", file=sys.stderr)
        _exit_code["value"] = error.exit_code
        return None
    except Exception as error:  # noqa: BLE001 - a sweep must survive one broken job
        if not multirun:
            raise
        log.exception("job failed: %s", error)
        _record_failure(run_dir, cfg, f"{type(error).__name__}: {error}")
        _exit_code["value"] = 1
        return None
    if summary["status"] == "preempted":
        _exit_code.update(value=RESUMABLE_EXIT, preempted=True)
    elif summary["status"] != "finished":
        _exit_code["value"] = 1
    # A run cut short (preempted, diverged) has a validation accuracy of an earlier epoch:
    # no objective, so an optimising sweeper marks the trial failed instead of scoring it.
    return summary.get(OBJECTIVE) if summary["status"] == "finished" else None


def _objective_problem(cfg: DictConfig, hydra_config: Any) -> str | None:
    """An optimising sweeper needs the validation split its objective is measured on."""
    target = str(OmegaConf.select(hydra_config, "sweeper._target_", default="") or "")
    fraction = OmegaConf.select(cfg, "data.val_fraction", default=0)
    if "optuna" not in target.lower() or (
            isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and fraction > 0):
        return None
    return (f"data.val_fraction={fraction}: hydra/sweeper=optuna maximises {OBJECTIVE}, "
            "measured on a validation split; set data.val_fraction > 0 "
            "(experiment=alpha_optuna holds out 10%)")


def _record_failure(run_dir: Path, cfg: DictConfig, message: str,
                    status: str = "failed") -> None:
    """Keep a failed (or unstarted) job visible to `report` unless the trainer already
    wrote a summary."""
    path = run_dir / "summary.json"
    try:
        if (_read_summary(run_dir) or {}).get("status") not in ("running", None):
            return
        try:
            config = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # noqa: BLE001 - an unresolvable config is itself the error
            config = OmegaConf.to_container(cfg, resolve=False)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"status": status, "error": message, "config": config,
                                 "epochs_completed": 0, "final_test_acc": None,
                                 "best_test_acc": None, "last10_test_acc": None,
                                 "last10_median_test_acc": None})
    except OSError:
        pass


class SweepExitStatus(Callback):
    """The sweep's exit status from its jobs' summaries, for launchers that run the jobs in
    other processes (joblib workers, submitit): the task function's _exit_code is then set
    there, not in this process, which would exit 0 after failed jobs.

    Before the launch it notes every job's summary.json in the sweep directory; after it,
    each summary that is new or changed is a job of this sweep (a skipped job leaves its
    own untouched): any `preempted` gives RESUMABLE_EXIT, any other status but `finished`
    (failed, diverged, or `running` after a worker was killed) gives 1. An exit status
    the jobs set in this process (the basic launcher) is kept.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._before = _summary_stamps(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if _exit_code["value"] != 0:
            return
        before = getattr(self, "_before", {})
        statuses = [(_read_summary(path.parent) or {}).get("status")
                    for path, stamp in _summary_stamps(Path(config.hydra.sweep.dir)).items()
                    if before.get(path) != stamp]
        if "preempted" in statuses:
            _exit_code["value"] = RESUMABLE_EXIT
        elif any(status != "finished" for status in statuses):
            _exit_code["value"] = 1


def _summary_stamps(sweep_dir: Path) -> dict[Path, tuple[int, int]]:
    stamps = {}
    for path in sweep_dir.glob("*/summary.json"):
        try:
            status = path.stat()
        except OSError:
            continue
        stamps[path] = (status.st_mtime_ns, status.st_size)
    return stamps


@hydra.main(version_base="1.3", config_path="pkg://mixup_bench.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> Any:
    return _job(cfg)


def _occupied_run_dir(args: list[str]) -> str | None:
    """Refuse, before Hydra writes anything, to start a fresh run over an existing one."""
    if any(arg in ("-m", "--multirun") or arg.startswith("--cfg") or arg in ("-c", "--help", "-h")
           or arg.startswith("--info") or arg == "--hydra-help" for arg in args):
        return None
    values = dict(arg.split("=", 1) for arg in args if "=" in arg)
    run_dir = values.get("hydra.run.dir")
    if run_dir is None or values.get("resume", "false").lower() == "true":
        return None
    path = Path(run_dir)
    if any((path / name).exists() for name in ("summary.json", "metrics.jsonl",
                                                "checkpoints/last.pt")):
        return (f"hydra.run.dir={run_dir} already holds a run; pass resume=true to continue it, "
                "or choose another directory (nothing was changed)")
    return None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].strip()


# Hydra plugins that mixup-bench's configs name, and the extra that installs each.
PLUGIN_EXTRAS = {"hydra/sweeper/optuna": "optuna", "hydra/launcher/joblib": "cluster",
                 "hydra/launcher/submitit_slurm": "cluster"}


def _composition_error(error: CompactHydraException) -> str:
    """Hydra's error for an override it cannot compose (a group option, a key or a syntax
    it does not know), as one line naming the override and what is allowed."""
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, value = error.missing_cfg_file.rpartition("/")
        extra = PLUGIN_EXTRAS.get(error.missing_cfg_file)
        if extra:
            return (f"{group}={value}: Hydra's plugin for it is not installed; it comes with "
                    f"the {extra} extra: pip install -e \".[{extra}]\"")
        close = difflib.get_close_matches(value, error.options, n=1)
        hint = f" (did you mean {group}={close[0]}?)" if close else ""
        return (f"{group}={value}: Could not find '{error.missing_cfg_file}'; expected one of "
                f"{', '.join(error.options)}{hint}")
    if isinstance(error, OverrideParseException):
        return f"{error.override}: {_first_line(error)} (see Hydra's override grammar)"
    lines = [line.strip().rstrip(".") for line in str(error).splitlines() if line.strip()]
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException):  # e.g. "Key 'epoch' is not in struct"
        detail = _first_line(cause)
        parent, key = getattr(cause, "parent_node", None), getattr(cause, "key", None)
        if isinstance(key, str) and hasattr(parent, "keys"):
            close = difflib.get_close_matches(key, [str(name) for name in parent.keys()], n=1)
            prefix = str(cause.full_key)[:-len(key)] if cause.full_key else ""
            detail += f" (did you mean {prefix}{close[0]}?)" if close else ""
        lines[1:1] = [detail]
    return "; ".join(lines) or type(error).__name__


def train_main(args: list[str]) -> int:
    """Run Hydra on `args` as if they were the whole command line."""
    occupied = _occupied_run_dir(args)
    if occupied:
        print(f"mixup-bench: error: {occupied}", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = ["mixup-bench train", *args]
    _exit_code.update(value=0, preempted=False)
    _results["where"] = None
    # HYDRA_FULL_ERROR=1 makes Hydra raise its errors instead of printing them over several
    # lines; a composition error then becomes one line here, and a bug keeps its traceback.
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _hydra_main()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    except CompactHydraException as error:
        if full_error == "1":  # the user asked for Hydra's own report
            raise
        print(f"mixup-bench: error: {_composition_error(error)}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
    if _results["where"] is not None:
        print(next_step_line(*_results["where"]), flush=True)
    return _exit_code["value"]


def next_step_line(kind: str, folder: Path) -> str:
    """The last console line of a run or a sweep: where it wrote, and what to run next."""
    shown = os.path.relpath(folder)
    if shown.startswith(".."):
        shown = str(folder)
    quoted = shlex.quote(shown)
    return f"{kind} directory: {shown}  next: mixup-bench report {quoted}" + (
        f"  (each job's state: mixup-bench status {quoted})" if kind == "sweep" else "")
