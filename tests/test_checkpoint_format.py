"""Checkpoints of earlier releases resume: the committed fixtures, one per format.

Each tests/fixtures/checkpoint_<version>/ is a run directory after one epoch, written by
scripts/make_checkpoint_fixture.py with that release (docs/run-directory.md says when to
add one). Resuming it with today's code for a second epoch goes through every step a
user's resume does: the weights_only load with its allow-list, the config check (a key
added since needs its old default in train.safety.ADDED_KEYS), and putting the weights,
optimizer, schedule, scaler and random streams back.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from mixup_bench.train import checkpoint

from .conftest import REPO, run_cli, write_cifar

sys.path.insert(0, str(REPO / "scripts"))
from make_checkpoint_fixture import FIXTURE_ARGS  # noqa: E402

FIXTURES = sorted((REPO / "tests" / "fixtures").glob("checkpoint_*"))


def test_there_is_a_fixture_of_the_current_format():
    from mixup_bench import __version__

    assert REPO / "tests" / "fixtures" / f"checkpoint_{__version__}" in FIXTURES


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.name)
def test_a_checkpoint_of_an_earlier_release_resumes(fixture: Path, tmp_path):
    saved = checkpoint.load(fixture / "checkpoints" / "last.pt", checkpoint.STATE_KEYS)
    assert saved["epoch"] == 1
    run_dir = tmp_path / "run"
    shutil.copytree(fixture, run_dir)
    data = write_cifar(tmp_path / "data")
    result = run_cli("train", f"data.root={data}", f"hydra.run.dir={run_dir}", *FIXTURE_ARGS,
                     "trainer.epochs=2", "resume=true")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["resumed_from_epoch"] == 1
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert lines[0] == (fixture / "metrics.jsonl").read_text().splitlines()[0]  # kept as it was
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    resumed = checkpoint.load(run_dir / "checkpoints" / "last.pt", checkpoint.STATE_KEYS)
    assert resumed["epoch"] == 2 and resumed["model"].keys() == saved["model"].keys()
