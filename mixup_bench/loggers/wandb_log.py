"""Weights & Biases: offline by default, so nothing leaves the machine until `wandb sync`.

The run's files go to `wandb/` in the run directory (offline runs in
`wandb/offline-run-<time>-<id>/`), and so do W&B's cache, config, data and
artifact folders unless the user has set WANDB_CACHE_DIR, WANDB_CONFIG_DIR,
WANDB_DATA_DIR or WANDB_ARTIFACT_DIR: W&B's defaults are under the home
directory. They are set for this run only and put back at its end, and
W&B's service process ends with the run (`wandb.teardown`), so a sweep's
next run, in the same process, starts one that reads its own folders.

The config is the run's config (nested); metrics are the metrics.jsonl
keys at step = epoch (the sample grid at step 0, before epoch 1); the
summary's numbers and status go to the run summary. A resumed run passes
the id kept in trackers.json with resume="allow": offline, that is a second
`offline-run-...-<id>` folder with the same id, for `wandb sync` to upload
into the same W&B run.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

import wandb

from .base import Place, environment, summary_scalars

FOLDER = "wandb"
MODES = ("offline", "online", "disabled")
# W&B's folders, by default under ~/.cache, ~/.config and ~/.local/share.
FOLDER_VARIABLES = {"WANDB_CACHE_DIR": "cache", "WANDB_CONFIG_DIR": "config",
                    "WANDB_DATA_DIR": "data", "WANDB_ARTIFACT_DIR": "artifacts"}


def open_logger(options: Mapping[str, Any], place: Place,
                state: Mapping[str, Any] | None) -> tuple[WandbLogger, dict[str, Any]]:
    folder = (place.run_dir / FOLDER).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stack = ExitStack()
    stack.enter_context(environment({name: str(folder / sub)
                                     for name, sub in FOLDER_VARIABLES.items()}))
    try:
        run_id = (state or {}).get("id")  # None: W&B makes one
        group = options.get("group") or (place.sweep_dir.name if place.sweep_dir else None)
        run = wandb.init(project=options.get("project") or "mixup-bench",
                         entity=options.get("entity"), name=options.get("name")
                         or place.run_dir.name, group=group,
                         tags=list(options.get("tags") or []),
                         mode=options.get("mode") or "offline", dir=str(place.run_dir),
                         id=run_id, resume="allow" if run_id else None)
    except BaseException:
        stack.close()
        raise
    return WandbLogger(run, stack), {"id": run.id, "project": run.project}


class WandbLogger:
    def __init__(self, run: Any, stack: ExitStack) -> None:
        self.run, self.stack = run, stack

    def log_params(self, config: Mapping[str, Any]) -> None:
        # A resumed run may change keys such as `resume`; W&B would refuse that without this.
        self.run.config.update(dict(config), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        self.run.log({key: value for key, value in metrics.items() if value is not None},
                     step=step)

    def log_image(self, name: str, image: Any) -> None:
        self.run.log({name: wandb.Image(image)}, step=0)

    def finish(self, summary: Mapping[str, Any]) -> None:
        try:
            status = str(summary.get("status"))
            self.run.summary.update({**summary_scalars(summary), "status": status})
            self.run.finish(exit_code=0 if status == "finished" else 1)
            wandb.teardown()
        finally:
            self.stack.close()
