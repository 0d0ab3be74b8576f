"""Write a run directory in the current checkpoint format as a test fixture.

    .venv/bin/python scripts/make_checkpoint_fixture.py

writes tests/fixtures/checkpoint_<version>/ (the package version): checkpoints/last.pt,
metrics.jsonl and summary.json of one epoch of timm's test_efficientnet (0.1 M parameters,
batch norm, SGD with momentum, the multistep schedule) on the tests' synthetic images.
tests/test_checkpoint_format.py resumes every such folder for a second epoch, so a change
to what a checkpoint holds, or a config key added without a default for older runs
(train.safety.ADDED_KEYS), fails there. Run this only when the format changes on purpose,
and keep the older folders: they are the checkpoints of earlier releases that must resume.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mixup_bench import __version__  # noqa: E402
from tests.conftest import TINY, run_cli, write_cifar  # noqa: E402

# The run the fixture holds; the test resumes it with these and trainer.epochs=2.
FIXTURE_ARGS = (*TINY, "model.name=timm:test_efficientnet", "sched=multistep",
                "trainer.samples=false", "model.dropout=0.2")
KEPT = ("checkpoints/last.pt", "metrics.jsonl", "summary.json")


def main() -> int:
    target = REPO / "tests" / "fixtures" / f"checkpoint_{__version__}"
    with tempfile.TemporaryDirectory() as scratch:
        data = write_cifar(Path(scratch) / "data")
        run_dir = Path(scratch) / "run"
        result = run_cli("train", f"data.root={data}", f"hydra.run.dir={run_dir}",
                         *FIXTURE_ARGS)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        shutil.rmtree(target, ignore_errors=True)
        for name in KEPT:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / name, target / name)
    size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    print(f"wrote {target.relative_to(REPO)} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
