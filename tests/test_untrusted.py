"""Files from others never run code, and every hostile input gets one line.

Each hostile file here would create a marker file if it were unpickled the usual way
(pickle.load, torch.load(weights_only=False), yaml.unsafe_load); the marker must never
appear, and the refusal must be one line naming the file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import shlex
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from mixup_bench.data import CIFAR10, CIFAR100, load_cifar
from mixup_bench.data.cifar import read_batch, read_pickle
from mixup_bench.errors import CheckpointError, DataError
from mixup_bench.report.cli import main as report_main
from mixup_bench.train import checkpoint
from mixup_bench.train.parts import build_optimizer, build_scheduler

from .conftest import TINY, run_cli, write_cifar
from .official_cifar import OFFICIAL_GLOBALS, official_pickle, write_official_cifar10
from .test_report import write_run


class OpensMarker:
    """Unpickled the usual way, this calls open(marker, "w")."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class RunsShell:
    """Unpickled the usual way, this runs `touch marker` in a shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


PAYLOADS = (OpensMarker, RunsShell)


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixup-bench: error: "), stderr[-3000:]
    assert "Traceback" not in stderr
    return lines[0]


def pickle_globals(data: bytes) -> set[str]:
    """Every module.name a pickle asks for (GLOBAL and STACK_GLOBAL), without loading it."""
    found, strings = set(), []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            strings.append(argument)
        elif opcode.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        elif opcode.name in ("GLOBAL", "INST"):
            found.add(argument.replace(" ", "."))
    return found


# --- CIFAR batch files ---------------------------------------------------------------


def test_the_official_format_reads_the_same_through_the_restricted_unpickler(tmp_path):
    """Files pickled as the official ones (Python 2 strings, protocol 2, numpy.core paths):
    every file, batches.meta included, reads exactly as pickle.load reads it."""
    folder = write_official_cifar10(tmp_path)
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["batches.meta", *CIFAR10.train_files, "test_batch"]
    for name in names:
        data = (folder / name).read_bytes()
        assert pickle_globals(data) <= OFFICIAL_GLOBALS
        expected = pickle.loads(data, encoding="latin1")
        found = read_pickle(folder / name)
        assert found.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, np.ndarray):
                assert found[key].dtype == value.dtype and np.array_equal(found[key], value)
            else:
                assert found[key] == value
    assert pickle_globals((folder / "test_batch").read_bytes()) == OFFICIAL_GLOBALS
    dataset = load_cifar(tmp_path, CIFAR10, download=False, verify=False, fraction=1.0,
                         subset_seed=0)
    assert len(dataset.train) == 50 and len(dataset.test) == 20
    first = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    assert torch.equal(dataset.train.images[0].flatten(), torch.from_numpy(first[b"data"][0]))
    assert dataset.train.labels[:10].tolist() == first[b"labels"]


def test_official_numpy_core_paths_and_a_cifar100_file_written_as_the_official_ones(tmp_path):
    """CIFAR-100's official files carry fine and coarse labels and file names."""
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        entry = {b"filenames": [b"x_%d.png" % i for i in range(200)],
                 b"batch_label": b"training batch 1 of 1",
                 b"fine_labels": [i % 100 for i in range(200)],
                 b"coarse_labels": [i % 20 for i in range(200)],
                 b"data": rng.integers(0, 256, (200, 3072), dtype=np.uint8)}
        data = official_pickle(entry)
        assert pickle_globals(data) == OFFICIAL_GLOBALS
        (folder / name).write_bytes(data)
    dataset = load_cifar(tmp_path, CIFAR100, download=False, verify=False, fraction=1.0,
                         subset_seed=0)
    assert len(dataset.train) == 200 and dataset.train.labels.max() == 99


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_batches_pickled_with_any_protocol_read(tmp_path, protocol):
    """Protocols 0-2 write bytes through _codecs.encode, protocol 5 arrays through
    numpy's _frombuffer: copies made by others with any protocol still read."""
    data = np.arange(4 * 3072, dtype=np.int64).astype(np.uint8).reshape(4, 3072)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": data, "labels": [0, 1, 2, 3],
                                   "batch_label": b"bytes \xff"}, protocol=protocol))
    split = read_batch(path, 10)
    assert torch.equal(split.images.reshape(4, -1), torch.from_numpy(data))


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda kind: kind.__name__)
def test_a_crafted_batch_file_runs_nothing(tmp_path, payload):
    marker = tmp_path / "marker"
    root = write_cifar(tmp_path / "data")
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(pickle.dumps({"data": payload(marker), "labels": [0]}))
    with pytest.raises(DataError) as error:
        load_cifar(root, CIFAR10, download=False, verify=False, fraction=1.0, subset_seed=0)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and str(path) in message
    assert "refused to unpickle" in message and ("open" in message or "system" in message)
    assert not marker.exists()


def test_a_crafted_cifar100_file_and_a_persistent_id_are_refused(tmp_path):
    marker = tmp_path / "marker"
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(pickle.dumps({"fine_labels": [OpensMarker(marker)]}))
    (folder / "test").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8),
                                                "fine_labels": [0]}))
    with pytest.raises(DataError, match=r"cifar-100-python/train: refused to unpickle io\.open"):
        load_cifar(tmp_path, CIFAR100, download=False, verify=False, fraction=1.0,
                   subset_seed=0)
    assert not marker.exists()

    class WithPersistentId(pickle.Pickler):
        def persistent_id(self, obj):
            return "outside" if obj == "secret" else None

    buffer = io.BytesIO()
    WithPersistentId(buffer).dump({"data": "secret", "labels": []})
    (folder / "train").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="refused a persistent id"):
        read_batch(folder / "train", 100)


def test_a_crafted_batches_meta_is_never_opened(tmp_path):
    marker = tmp_path / "marker"
    root = write_cifar(tmp_path / "data")
    (root / "cifar-10-batches-py" / "batches.meta").write_bytes(
        pickle.dumps({"label_names": OpensMarker(marker)}))
    dataset = load_cifar(root, CIFAR10, download=False, verify=False, fraction=1.0,
                         subset_seed=0)
    assert len(dataset.train) == 200 and not marker.exists()
    with pytest.raises(DataError, match="batches.meta: refused to unpickle io.open"):
        read_pickle(root / "cifar-10-batches-py" / "batches.meta")
    assert not marker.exists()


def test_the_crafted_files_are_really_hostile(tmp_path):
    """The control: what the tests above refuse does run code under a plain pickle.load."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps({"data": OpensMarker(marker)})).get("data").close()
    assert marker.exists()
    marker.unlink()
    torch.save({"x": RunsShell(marker)}, tmp_path / "last.pt")
    torch.load(tmp_path / "last.pt", weights_only=False)
    assert marker.exists()


def test_train_with_data_verify_false_refuses_a_crafted_batch_in_one_line(tmp_path):
    marker = tmp_path / "marker"
    root = write_cifar(tmp_path / "data")
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(
        pickle.dumps({"data": RunsShell(marker), "labels": []}))
    result = run_cli("train", f"data.root={root}", f"hydra.run.dir={tmp_path / 'run'}", *TINY)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "test_batch: refused to unpickle posix.system" in line
    assert not marker.exists()


# --- checkpoints ---------------------------------------------------------------------


def trainer_state(sched: str, step: str, fp16: bool) -> dict:
    """A checkpoint as run._train_epochs writes it, after one real optimizer step."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 30 * 30, 10))
    optimizer = build_optimizer(model, {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
                                        "nesterov": False}, step)
    scheduler = build_scheduler(optimizer, {"name": sched, "milestones": [1, 2],
                                            "gamma": 0.1}, 3)
    scaler = torch.amp.GradScaler("cpu", enabled=fp16)
    scaler.scale(model(torch.randn(2, 3, 32, 32)).sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    generators = {"loader": torch.Generator().manual_seed(0),
                  "mix": torch.Generator().manual_seed(1)}
    return {"epoch": 1, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng": checkpoint.rng_state(generators),
            "config": {"sched": {"name": sched, "milestones": [1, 2]}, "alpha": None,
                       "trainer": {"epochs": 3, "optimizer_step": step}}}


@pytest.mark.parametrize("sched", ["cosine", "multistep"])
@pytest.mark.parametrize("step", ["foreach", "fused", "loop"])
@pytest.mark.parametrize("fp16", [False, True])
def test_checkpoints_need_only_tensors_and_the_safe_globals(tmp_path, sched, step, fp16):
    """What the trainer saves loads with weights_only=True and SAFE_GLOBALS, and names no
    type but tensors, storages, OrderedDict and (MultiStepLR's milestones) Counter."""
    path = tmp_path / "last.pt"
    state = trainer_state(sched, step, fp16)
    checkpoint.save_atomic(checkpoint.snapshot(state), path)
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(name for name in archive.namelist()
                                 if name.endswith("data.pkl")))
    found = pickle_globals(data)
    assert found <= {"collections.OrderedDict", "collections.Counter",
                     "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
                     "torch.LongStorage", "torch.ByteStorage"}, found
    assert ("collections.Counter" in found) == (sched == "multistep")
    assert checkpoint.SAFE_GLOBALS == (Counter,)
    loaded = checkpoint.load(path, checkpoint.STATE_KEYS)
    assert loaded["scaler"] == state["scaler"] and loaded["config"] == state["config"]
    assert type(loaded["scheduler"].get("milestones", Counter())) is Counter
    assert torch.equal(loaded["rng"]["torch_cpu"], state["rng"]["torch_cpu"])


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda kind: kind.__name__)
def test_a_crafted_checkpoint_runs_nothing(tmp_path, payload):
    marker = tmp_path / "marker"
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save_atomic({"epoch": 1, "config": {}, "model": {"w": payload(marker)}}, path)
    with pytest.raises(CheckpointError) as error:
        checkpoint.load(path)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"{path}: refused to load")
    assert ("io.open" in message or "posix.system" in message) and "delete it" in message
    assert not marker.exists()


@pytest.mark.parametrize("content, expected", [
    (b"not a checkpoint at all", "not a readable checkpoint"),
    (pickle.dumps({"epoch": 1}), "not a readable checkpoint"),  # not torch.save's zip
    (None, "not a readable checkpoint"),  # truncated
    ([1, 2], "not a mixup-bench checkpoint"),
    ({"epoch": 1}, "not a mixup-bench checkpoint (no model, optimizer"),
    ({key: {} for key in checkpoint.STATE_KEYS}, "(no an integer as epoch)"),
])
def test_a_damaged_checkpoint_is_one_line(tmp_path, content, expected):
    path = tmp_path / "last.pt"
    if content is None:
        checkpoint.save_atomic(trainer_state("cosine", "foreach", False), path)
        path.write_bytes(path.read_bytes()[:2000])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError) as error:
        checkpoint.load(path, checkpoint.STATE_KEYS)
    assert len(str(error.value).splitlines()) == 1 and expected in str(error.value)


def test_resume_refuses_a_crafted_checkpoint_in_one_line(cifar_root, tmp_path):
    marker = tmp_path / "marker"
    run_dir = tmp_path / "run"
    checkpoint.save_atomic({"epoch": 1, "config": {"x": RunsShell(marker)}},
                           run_dir / "checkpoints" / "last.pt")
    result = run_cli("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
                     "resume=true")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "checkpoints/last.pt: refused to load (it needs posix.system" in line
    assert "mixup-bench never loads code from a checkpoint" in line
    assert not marker.exists()


def test_a_checkpoint_written_by_todays_trainer_still_resumes(cifar_root, tmp_path):
    """multistep: the checkpoint holds MultiStepLR's Counter; more epochs resume it."""
    run_dir = tmp_path / "run"
    args = ("train", f"data.root={cifar_root}", f"hydra.run.dir={run_dir}", *TINY,
            "data.fraction=0.25", "trainer.samples=false", "sched=multistep",
            "sched.milestones=[1]")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    path = run_dir / "checkpoints" / "last.pt"
    genuine = path.read_bytes()
    state = checkpoint.load(path, checkpoint.STATE_KEYS)
    assert type(state["scheduler"]["milestones"]) is Counter
    # Plain data of the right config whose weights do not fit the model: one line too.
    checkpoint.save_atomic({**state, "model": {"conv1.weight": torch.zeros(1)}}, path)
    unfit = run_cli(*args, "trainer.epochs=2", "resume=true")
    assert unfit.returncode == 2
    errors = [line for line in unfit.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "Traceback" not in unfit.stderr, unfit.stderr[-3000:]
    assert errors[0].startswith("mixup-bench: error: ") and \
        "last.pt: does not fit this run (RuntimeError" in errors[0]
    refused = json.loads((run_dir / "summary.json").read_text())
    assert refused["status"] == "failed" and "does not fit this run" in refused["error"]
    path.write_bytes(genuine)
    second = run_cli(*args, "trainer.epochs=2", "resume=true")
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from_epoch"] == 1
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


# --- run directories and claims given to `mixup-bench report` ------------------------


def write_damaged_runs(root: Path) -> dict[str, str]:
    """One run directory per kind of damage; name -> what REPORT.md must say about it."""
    torn = write_run(root, "torn_last_line", final=0.9)
    with open(torn / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "test_a')
    (write_run(root, "summary_not_json", final=0.9) / "summary.json").write_text("{oops")
    (write_run(root, "no_summary", final=0.9) / "summary.json").unlink()
    bad_yaml = write_run(root, "config_not_yaml", final=0.9)
    (bad_yaml / ".hydra" / "config.yaml").write_text("seed: [unclosed\n")
    not_mapping = write_run(root, "config_not_a_mapping", final=0.9)
    (not_mapping / ".hydra" / "config.yaml").write_text("- a list\n- not a mapping\n")
    tagged = write_run(root, "config_with_a_python_tag", final=0.9)
    (tagged / ".hydra" / "config.yaml").write_text(
        f"seed: !!python/object/apply:os.system ['touch {root / 'marker'}']\n")
    write_run(root, "config_of_an_older_version", final=0.9,
              extra={"trainer.warmup_epochs": 5, "aug.mix_prob": 0.5})
    return {"torn_last_line": "truncated last line",
            "summary_not_json": "summary.json unreadable",
            "no_summary": "no summary.json",
            "config_not_yaml": "config.yaml unreadable",
            "config_not_a_mapping": "config.yaml unreadable: expected a mapping",
            "config_with_a_python_tag": "config.yaml unreadable: ConstructorError",
            "config_of_an_older_version": "does not know: trainer.warmup_epochs"}


def test_report_on_damaged_run_directories_lists_each_with_its_reason(tmp_path, capsys):
    runs = tmp_path / "runs"
    expected = write_damaged_runs(runs)
    out = tmp_path / "out"
    assert report_main([str(runs), "--out", str(out)]) == 0
    markdown = (out / "REPORT.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in markdown.splitlines()
            if line.startswith("| ") and line.split("|")[1].strip() in expected}
    assert set(rows) == set(expected)
    for name, reason in expected.items():
        assert reason in rows[name], (name, rows[name])
    assert "### Finished runs read in part" in markdown
    assert not (runs / "marker").exists()
    assert capsys.readouterr().err == ""


def test_report_exits_1_in_one_line_when_nothing_could_be_read(tmp_path, capsys):
    for name in ("a", "b"):
        run = write_run(tmp_path, name, final=0.9)
        (run / ".hydra" / "config.yaml").write_text(": : :\n")
        (run / "summary.json").write_text("{")
    assert report_main([str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none of the 2 run directories could be read" in err[0]
    assert "summary.json unreadable" in (tmp_path / "REPORT.md").read_text()


def test_a_claims_file_with_a_python_tag_is_refused_in_one_line(tmp_path, capsys):
    marker = tmp_path / "marker"
    write_run(tmp_path, "run", final=0.9)
    claims = tmp_path / "claims.yaml"
    claims.write_text(f"claims:\n  - !!python/object/apply:os.system ['touch {marker}']\n")
    assert report_main([str(tmp_path), "--claims", str(claims)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{claims}: not valid YAML (line 2)" in err[0], err
    assert "python/object/apply:os.system" in err[0]
    assert not marker.exists()
