"""`make reproduce-quick` end to end on synthetic data: sweeps, report, and a re-run that skips."""

from __future__ import annotations

import json
import subprocess

from .conftest import REPO, write_cifar


def make_quick(tmp_path, data_root):
    return subprocess.run(
        ["make", "--no-print-directory", "reproduce-quick", f"QUICK_DATA={data_root}",
         f"QUICK_STUDY={tmp_path / 'study'}", f"QUICK_RESULTS={tmp_path / 'results'}",
         "QUICK_ALPHAS=0.2", "QUICK_SEEDS=0,1",
         "QUICK_ARGS=trainer.epochs=1 trainer.batch_size=50 trainer.eval_batch_size=100 "
         "trainer.samples=false"],
        cwd=REPO, capture_output=True, text=True, timeout=1200)


def test_reproduce_quick_runs_the_study_and_reports(tmp_path):
    data_root = write_cifar(tmp_path / "data")
    (data_root / ".jpeg-copy").touch()  # the make target then passes data.verify=false
    result = make_quick(tmp_path, data_root)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    summaries = sorted((tmp_path / "study").glob("*/*/summary.json"))
    # none, mixup (one alpha), cutmix: 2 fractions x 2 seeds each; paper: none, mixup x 2 seeds.
    assert len(summaries) == 16
    assert {json.loads(path.read_text())["status"] for path in summaries} == {"finished"}
    names = {path.parent.name for path in summaries}
    assert any("aug=mixup" in name and "alpha=0.2" in name and "data.fraction=0.1" in name
               for name in names)
    report = (tmp_path / "results" / "REPORT.md").read_text()
    assert "data.fraction" in report and "not the official" in report.lower()
    assert (tmp_path / "results" / "report.csv").is_file()
    assert (tmp_path / "results" / "report.json").is_file()

    # The re-run trains nothing: every job is skipped before its data are loaded, and no
    # metrics line or checkpoint is written again (the work is bounded, not the clock).
    written = [*summaries, *(tmp_path / "study").glob("*/*/metrics.jsonl"),
               *(tmp_path / "study").glob("*/*/checkpoints/last.pt")]
    before = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in written}
    again = make_quick(tmp_path, data_root)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-4000:]
    assert output.count("finished before with this config; skipped") == len(summaries)
    assert "epoch 1/1" not in output and "resuming" not in output
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in written} == before
