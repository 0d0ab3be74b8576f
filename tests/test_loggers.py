"""The loggers: CSV, MLflow and W&B hold what metrics.jsonl holds, resume continues the same
tracker run, nothing lands outside the run directory, a missing extra is one line.

Offline throughout: MLflow writes a local file store (read back with
MlflowClient); W&B runs offline, and its run file is read back with
`wandb_records` below, since wandb 0.31 ships no Python reader for it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mixup_bench.errors import ConfigError
from mixup_bench.loggers import Loggers, Place, check_available, open_loggers
from mixup_bench.train.metrics import MetricsLog, summarise

from .conftest import TINY, write_cifar

CONFIG = {"seed": 0, "alpha": 0.2, "resume": False, "aug": {"name": "mixup", "prob": 1.0},
          "sched": {"name": "multistep", "milestones": [100, 150]},
          "logger": {"csv": {}, "mlflow": {"tracking_uri": None}}}
IMAGE = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)


def row(epoch: int) -> dict:
    """A metrics.jsonl row; epoch 2's ECE is not finite (null in metrics.jsonl)."""
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": 0.1 * epoch,
            "test_loss": 2.0 / epoch, "test_acc": 0.15 * epoch,
            "test_ece": float("nan") if epoch == 2 else 0.01 * epoch, "lr": 0.1,
            "seconds": 1.25}


def log_run(run_dir: Path, chosen: dict, epochs: range, sweep_dir: Path | None = None,
            status: str = "finished", config: dict = CONFIG) -> dict:
    """What the trainer does with its loggers, without the training: params, the sample grid
    on a fresh start, one row per epoch, the summary. A resume starts at epochs.start."""
    run_dir.mkdir(parents=True, exist_ok=True)
    loggers = open_loggers(chosen, Place(run_dir, sweep_dir, epochs.start))
    metrics = MetricsLog(run_dir, loggers)
    loggers.log_params(config)
    metrics.truncate(epochs.start - 1)
    if epochs.start == 1:
        metrics.add_image("samples", IMAGE)
    for epoch in epochs:
        metrics.append(row(epoch))
    summary = {"status": status, **summarise(metrics.read()), "config": config}
    metrics.finish(summary)
    return summary


def jsonl(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def csv_rows(run_dir: Path) -> tuple[list[str], list[dict]]:
    with (run_dir / "metrics.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def assert_csv_equals_jsonl(run_dir: Path) -> None:
    lines = jsonl(run_dir)
    columns, rows = csv_rows(run_dir)
    assert columns == list(lines[0])
    assert len(rows) == len(lines)
    for line, cells in zip(lines, rows, strict=True):
        assert {key: None if cells[key] == "" else float(cells[key]) for key in columns} == line


def test_csv_rows_equal_metrics_jsonl_and_a_resume_drops_the_redone_epochs(tmp_path):
    log_run(tmp_path, {"csv": {}}, range(1, 4))
    assert [row["epoch"] for row in jsonl(tmp_path)] == [1, 2, 3]
    assert jsonl(tmp_path)[1]["test_ece"] is None  # an empty cell in the CSV
    assert_csv_equals_jsonl(tmp_path)
    log_run(tmp_path, {"csv": {}}, range(2, 3))  # resumed from epoch 1's checkpoint, stopped
    assert [row["epoch"] for row in jsonl(tmp_path)] == [1, 2]
    assert_csv_equals_jsonl(tmp_path)
    log_run(tmp_path, {"csv": {}}, range(2, 5))  # epoch 2 redone (its checkpoint never landed)
    assert [row["epoch"] for row in jsonl(tmp_path)] == [1, 2, 3, 4]
    assert_csv_equals_jsonl(tmp_path)


def mlflow_client(store: Path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # any reader of a file store must say so

    return MlflowClient(tracking_uri=str(store))


def test_mlflow_store_holds_params_history_summary_and_the_grid(tmp_path):
    client = mlflow_client(tmp_path / "mlruns")
    summary = log_run(tmp_path, {"mlflow": {"experiment_name": "mb"}}, range(1, 4))
    [run] = client.search_runs([client.get_experiment_by_name("mb").experiment_id])
    assert json.loads((tmp_path / "trackers.json").read_text())["mlflow"] == {
        "tracking_uri": str((tmp_path / "mlruns").resolve()), "run_id": run.info.run_id}
    assert run.info.run_name == tmp_path.name and run.info.status == "FINISHED"
    params = run.data.params
    assert params["aug.name"] == "mixup" and params["alpha"] == "0.2"
    assert params["sched.milestones"] == "[100, 150]" and params["logger.csv"] == "{}"
    for key in ("train_loss", "test_acc", "lr"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [(e, row(e)[key]) for e in (1, 2, 3)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_ece")] == [1, 3]
    assert run.data.metrics["final_test_acc"] == pytest.approx(summary["final_test_acc"])
    assert run.data.metrics["epochs_completed"] == 3 and run.data.tags["status"] == "finished"
    assert {item.path for item in client.list_artifacts(run.info.run_id)} == {
        "samples.png", "summary.json"}
    grid = client.download_artifacts(run.info.run_id, "samples.png", str(tmp_path / "get"))
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(grid).convert("RGB")), IMAGE)


def test_a_resumed_run_continues_the_same_mlflow_run(tmp_path):
    client = mlflow_client(tmp_path / "mlruns")
    log_run(tmp_path, {"mlflow": {}}, range(1, 3), status="preempted")
    [first] = client.search_runs([client.get_experiment_by_name("mixup-bench").experiment_id])
    assert first.info.status == "KILLED"
    log_run(tmp_path, {"mlflow": {}}, range(3, 5), config={**CONFIG, "resume": True})
    runs = client.search_runs([first.info.experiment_id])
    assert [run.info.run_id for run in runs] == [first.info.run_id]
    assert runs[0].info.status == "FINISHED"
    history = client.get_metric_history(first.info.run_id, "test_acc")
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert runs[0].data.params["resume"] == "False"  # MLflow keeps a parameter's first value


def test_a_sweep_shares_one_mlflow_store_in_its_directory(tmp_path):
    client = mlflow_client(tmp_path / "sweep" / "mlruns")
    for job in ("0_alpha=0.2", "1_alpha=0.4"):
        log_run(tmp_path / "sweep" / job, {"mlflow": {}}, range(1, 2), sweep_dir=tmp_path / "sweep")
        assert not (tmp_path / "sweep" / job / "mlruns").exists()
    runs = client.search_runs([client.get_experiment_by_name("mixup-bench").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["0_alpha=0.2", "1_alpha=0.4"]


def test_the_mlflow_store_is_beside_the_run_unless_a_uri_is_given(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mixup_bench.loggers.mlflow_log import tracking_uri

    monkeypatch.chdir(tmp_path)
    run, sweep = Place(tmp_path / "run"), Place(tmp_path / "s" / "0_a=1", tmp_path / "s")
    assert tracking_uri({"tracking_uri": None}, run) == (
        str(tmp_path / "run" / "mlruns"), tmp_path / "run" / "mlruns")
    assert tracking_uri({}, sweep)[1] == tmp_path / "s" / "mlruns"
    assert tracking_uri({"tracking_uri": "store"}, run)[1] == tmp_path / "store"
    assert tracking_uri({"tracking_uri": f"file://{tmp_path}/f"}, run)[1] == tmp_path / "f"
    for uri in ("http://localhost:5000", "sqlite:///x.db", "databricks"):
        assert tracking_uri({"tracking_uri": uri}, run) == (uri, None)


def wandb_records(path: Path):
    """The records of a W&B run file (`run-<id>.wandb`), parsed with wandb's own protobuf.

    The file is W&B's variant of the LevelDB log format: a 7-byte header
    (":W&B", a 2-byte magic, a version byte), then 32 KiB blocks of chunks,
    each with a 7-byte header (CRC, 2-byte little-endian length, type: 1 whole,
    2 first, 3 middle, 4 last); a block's tail shorter than a header is padding.
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32 * 1024, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:
            position += left
            continue
        length = int.from_bytes(data[position + 4:position + 6], "little")
        kind = data[position + 6]
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def wandb_runs(run_dir: Path) -> list[dict]:
    """Each offline run folder: its id, history rows, config and summary, in time order."""
    found = []
    for folder in sorted((run_dir / "wandb").glob("offline-run-*")):
        run = {"folder": folder, "history": [], "config": {}, "summary": {}}
        for record in wandb_records(next(folder.glob("run-*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run["id"] = record.run.run_id
            elif kind == "history":
                run["history"].append({item.key or "/".join(item.nested_key):
                                       json.loads(item.value_json) for item in record.history.item})
            elif kind in ("config", "summary"):
                for item in getattr(record, kind).update:
                    run[kind][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        found.append(run)
    return found


def test_wandb_offline_run_holds_the_history_and_a_resume_continues_its_id(tmp_path):
    pytest.importorskip("wandb")
    log_run(tmp_path, {"wandb": {"mode": "offline"}}, range(1, 3), status="preempted")
    log_run(tmp_path, {"wandb": {"mode": "offline"}}, range(3, 5))
    first, second = wandb_runs(tmp_path)
    assert first["id"] == second["id"] == json.loads(
        (tmp_path / "trackers.json").read_text())["wandb"]["id"]
    epochs = [entry for run in (first, second) for entry in run["history"] if "epoch" in entry]
    assert [entry["_step"] for entry in epochs] == [1, 2, 3, 4]
    for entry in epochs:
        expected = {key: value for key, value in row(entry["epoch"]).items()
                    if not (isinstance(value, float) and np.isnan(value))}
        assert {key: entry[key] for key in expected} == expected
    assert "test_ece" not in epochs[1]  # null in metrics.jsonl: not logged
    [image] = [entry for entry in first["history"] if "samples/_type" in entry]
    assert image["_step"] == 0 and image["samples/_type"] == "image-file"
    assert (image["samples/width"], image["samples/height"]) == (20, 10)
    assert (first["folder"] / "files" / image["samples/path"]).is_file()
    assert first["config"]["aug"] == {"name": "mixup", "prob": 1.0}
    assert second["summary"]["status"] == "finished"
    assert second["summary"]["final_test_acc"] == pytest.approx(0.6)


def hide(monkeypatch, package: str) -> None:
    """Make `import package` (and its submodules) fail as if it were not installed."""
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"mixup_bench.loggers.{package}_log", raising=False)


def test_a_chosen_logger_without_its_package_is_one_line_naming_the_extra(monkeypatch):
    hide(monkeypatch, "mlflow")
    hide(monkeypatch, "wandb")
    with pytest.raises(ConfigError) as error:
        check_available({"csv": {}, "mlflow": {}, "wandb": {"mode": "offline"}})
    assert str(error.value).splitlines() == [
        'logger=mlflow: the mlflow package is not installed (pip install "mixup-bench[mlflow]")',
        'logger=wandb: the wandb package is not installed (pip install "mixup-bench[wandb]")']
    check_available({"tensorboard": {}, "csv": {}})  # no extra needed


def test_the_cli_refuses_a_missing_extra_before_any_work(monkeypatch, tmp_path, capsys):
    from mixup_bench.hydra_app import train_main

    hide(monkeypatch, "wandb")
    run_dir = tmp_path / "run"
    code = train_main([f"data.root={tmp_path}", f"hydra.run.dir={run_dir}", "logger=[csv,wandb]",
                       *TINY])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'mixup-bench: error: logger=wandb: the wandb package is not installed '
        '(pip install "mixup-bench[wandb]")']
    assert not (run_dir / "metrics.jsonl").exists() and not (run_dir / "checkpoints").exists()


def test_a_database_store_without_sqlalchemy_is_refused(monkeypatch):
    pytest.importorskip("mlflow")
    hide(monkeypatch, "sqlalchemy")
    hide(monkeypatch, "alembic")
    with pytest.raises(ConfigError) as error:
        check_available({"mlflow": {"tracking_uri": "sqlite:///x.db"}})
    assert str(error.value) == ("logger.mlflow.tracking_uri=sqlite:///x.db: a database store "
                                "needs the sqlalchemy and alembic packages "
                                "(pip install sqlalchemy alembic)")
    check_available({"mlflow": {"tracking_uri": "http://localhost:5000"}})


def test_a_failing_tracker_is_switched_off_and_the_others_go_on(tmp_path, caplog):
    class Broken:
        def log_metrics(self, metrics, step):
            raise OSError("disk full")

    class Kept:
        def __init__(self):
            self.steps = []

        def log_metrics(self, metrics, step):
            self.steps.append(step)

    kept = Kept()
    loggers = Loggers({"broken": Broken(), "kept": kept})
    loggers.log_metrics({"test_acc": 0.5}, 1)
    loggers.log_metrics({"test_acc": 0.6}, 2)
    assert kept.steps == [1, 2] and list(loggers.loggers) == ["kept"]
    assert "logger broken failed in log_metrics (OSError: disk full)" in caplog.text


def test_nothing_lands_outside_the_run_directory(tmp_path):
    """Every logger at once, with HOME, the temporary folder and the working directory empty:
    after the run all three are still empty (but for torch's own folder)."""
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    data = write_cifar(tmp_path / "data", train_per_file=10, test_count=20)
    home, temporary, cwd = (tmp_path / name for name in ("home", "tmp", "cwd"))
    for folder in (home, temporary, cwd):
        folder.mkdir()
    run_dir = tmp_path / "run"
    # A bare environment: no XDG_*, WANDB_* or MLFLOW_* folders, and none of the variables
    # (PYTEST_CURRENT_TEST, CI) by which MLflow turns its telemetry off on its own.
    environment = {"PATH": os.environ["PATH"], "HOME": str(home), "TMPDIR": str(temporary),
                   "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "mixup_bench.cli", "train",
                             f"data.root={data}", f"hydra.run.dir={run_dir}", *TINY,
                             "logger=many_loggers", "trainer.num_threads=1"], cwd=cwd,
                            env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # Importing torchvision makes TMPDIR/torchinductor_<user> whatever the loggers: not theirs.
    left = [path for folder in (home, temporary, cwd) for path in folder.iterdir()
            if not (folder == temporary and path.name.startswith("torchinductor_"))]
    assert left == []
    assert_csv_equals_jsonl(run_dir)
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    [wandb_run] = wandb_runs(run_dir)
    assert [entry["epoch"] for entry in wandb_run["history"] if "epoch" in entry] == [1]
    client = mlflow_client(run_dir / "mlruns")
    [run] = client.search_runs([client.get_experiment_by_name("mixup-bench").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["logger.wandb.mode"] == "offline"


def test_the_trainer_logs_each_epoch_and_continues_the_tracker_run_on_resume(tmp_path):
    client = mlflow_client(tmp_path / "run" / "mlruns")
    from hydra import compose, initialize_config_module

    from mixup_bench.train import run as run_module

    data = write_cifar(tmp_path / "data", train_per_file=10, test_count=20)
    arguments = [f"data.root={data}", *TINY, "logger=[csv,mlflow]", "sched=multistep",
                 "trainer.num_threads=1"]
    for epochs, resume in ((1, False), (2, True)):
        with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
            cfg = compose(config_name="train", overrides=[
                *arguments, f"trainer.epochs={epochs}", f"resume={str(resume).lower()}"])
        assert run_module.run(cfg, tmp_path / "run")["status"] == "finished"
    assert_csv_equals_jsonl(tmp_path / "run")
    [run] = client.search_runs([client.get_experiment_by_name("mixup-bench").experiment_id])
    lines = jsonl(tmp_path / "run")
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "test_acc")] \
        == [(line["epoch"], line["test_acc"]) for line in lines] and len(lines) == 2
    assert run.data.metrics["epochs_completed"] == 2


def test_the_logger_group_composes_one_key_per_logger_and_lists():
    from .test_config import composed

    assert composed()["logger"] == {"tensorboard": {}}
    assert set(composed("logger=[csv,mlflow]")["logger"]) == {"csv", "mlflow"}
    assert list(composed("logger=many_loggers")["logger"]) == [
        "tensorboard", "csv", "mlflow", "wandb"]
    assert "logger" not in composed("logger=[]")


def test_logger_options_are_checked_and_never_change_the_results():
    from mixup_bench.config import validate
    from mixup_bench.report.runs.rundirs import is_ignored
    from mixup_bench.train.safety import config_differences

    from .test_config import composed

    config = composed("logger=wandb", "logger.wandb.mode=onlin")
    assert [problem for problem in validate(config, ["resnet18"], ["mixup"])
            if problem.startswith("logger")] == [
        "logger.wandb.mode='onlin': expected offline, online or disabled"]
    before, after = composed(), composed("logger=[csv,mlflow]")
    assert config_differences(before, after) == []
    assert is_ignored("logger.mlflow.tracking_uri")
