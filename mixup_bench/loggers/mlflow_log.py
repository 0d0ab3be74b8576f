"""MLflow: the run as an MLflow run, by default in a local store beside the run directory.

Without `logger.mlflow.tracking_uri` the store is the folder `mlruns/` in the
sweep directory (one store for a whole sweep, so its runs compare in one
MLflow UI) or, for a single run, in the run directory. That store is MLflow's
file store: MLflow 3 keeps it in maintenance mode and refuses it unless
MLFLOW_ALLOW_FILE_STORE=true, which this logger sets for the stores it
chooses. The file store was chosen over MLflow 3's default SQLite store
because it needs nothing beyond mlflow-skinny (SQLite needs SQLAlchemy and
alembic), and because a sweep's jobs may write it at once, from several
machines on a shared file system, where SQLite's locking is unreliable. A
`sqlite:///...`, `http://...` or `databricks` URI is used as given.

MLflow's telemetry is off unless MLFLOW_DISABLE_TELEMETRY is set (it would
write ~/.config/mlflow and send usage data). Metrics are the metrics.jsonl
keys at step = epoch; params the flattened config; the summary's numbers
are metrics without a step; samples.png and summary.json are artifacts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import nullcontext
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before mlflow is imported

from filelock import FileLock  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from ..config import flatten  # noqa: E402
from .base import Place, summary_scalars  # noqa: E402

STORE = "mlruns"
PARAM_LENGTH = 6000  # MLflow's longest parameter value
BATCH = 100  # MLflow's most params per log_batch
# summary.json's status -> MLflow's run status.
STATUSES = {"finished": "FINISHED", "preempted": "KILLED", "interrupted": "KILLED"}
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
REMOTE_NAMES = ("databricks", "databricks-uc")  # URIs without a colon that are no path


def problems(options: Mapping[str, Any]) -> list[str]:
    """A database URI needs SQLAlchemy and alembic, which mlflow-skinny leaves out."""
    uri = options.get("tracking_uri")
    if not (isinstance(uri, str)
            and uri.split(":", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES):
        return []
    missing = []
    for package in ("sqlalchemy", "alembic"):
        try:
            import_module(package)
        except ImportError:
            missing.append(package)
    return [f"logger.mlflow.tracking_uri={uri}: a database store needs the "
            f"{' and '.join(missing)} package{'s' if len(missing) > 1 else ''} "
            f"(pip install {' '.join(missing)})"] if missing else []


def tracking_uri(options: Mapping[str, Any], place: Place) -> tuple[str, Path | None]:
    """The URI to use and, for a local file store, its folder (None otherwise)."""
    uri = options.get("tracking_uri")
    if uri is None:
        folder = (place.store_root / STORE).resolve()
    elif "://" not in uri and ":" not in uri.split("/", 1)[0] and uri not in REMOTE_NAMES:
        folder = Path(uri).expanduser().resolve()  # a plain path is a file store too
    elif uri.startswith("file:"):
        folder = Path(urlparse(uri).path).resolve()
    else:
        return uri, None
    return str(folder), folder


def open_logger(options: Mapping[str, Any], place: Place,
                state: Mapping[str, Any] | None) -> tuple[MlflowLogger, dict[str, Any]]:
    uri, folder = tracking_uri(options, place)
    if folder is not None:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        folder.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    run_id = _continued_run(client, uri, state)
    if run_id is None:
        experiment_id = _experiment(client, options.get("experiment_name") or "mixup-bench",
                                    folder)
        run = client.create_run(experiment_id, run_name=options.get("run_name")
                                or place.run_dir.name,
                                tags={"mixup_bench.run_dir": str(place.run_dir.resolve())})
        run_id = run.info.run_id
    return MlflowLogger(client, run_id), {"tracking_uri": uri, "run_id": run_id}


def _continued_run(client: MlflowClient, uri: str,
                   state: Mapping[str, Any] | None) -> str | None:
    """The run noted in trackers.json, set running again, if it is in this store."""
    if not state or state.get("tracking_uri") != uri or not state.get("run_id"):
        return None
    try:
        client.get_run(state["run_id"])
    except MlflowException:
        return None
    client.update_run(state["run_id"], status="RUNNING")
    return state["run_id"]


def _experiment(client: MlflowClient, name: str, folder: Path | None) -> str:
    """The experiment's id, created once even when a sweep's jobs start together (a lock
    file beside a local store: mlruns.lock)."""
    guard = FileLock(str(folder) + ".lock") if folder is not None else nullcontext()
    with guard:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(name)


class MlflowLogger:
    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client, self.run_id = client, run_id

    def log_params(self, config: Mapping[str, Any]) -> None:
        """The flattened config; a resumed run keeps the values its run already has (MLflow
        refuses to change a parameter, and only keys such as `resume` may differ)."""
        have = self.client.get_run(self.run_id).data.params
        params = [Param(key, str(value)[:PARAM_LENGTH]) for key, value in flatten(config).items()
                  if key not in have]
        for start in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + BATCH])

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(key, float(value), now, step) for key, value in metrics.items()
            if key != "epoch" and value is not None])

    def log_image(self, name: str, image: Any) -> None:
        self.client.log_image(self.run_id, image, f"{name}.png")

    def finish(self, summary: Mapping[str, Any]) -> None:
        now = int(time.time() * 1000)
        status = str(summary.get("status"))
        self.client.log_batch(self.run_id, metrics=[
            Metric(key, value, now, 0) for key, value in summary_scalars(summary).items()],
            tags=[RunTag("status", status)])
        self.client.log_dict(self.run_id, dict(summary), "summary.json")
        self.client.set_terminated(self.run_id, STATUSES.get(status, "FAILED"))
