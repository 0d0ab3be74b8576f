"""The variant claims (the article's variants) reach verdicts from run directories."""

from __future__ import annotations

import json
from pathlib import Path

from mixup_bench.report.judgement.verdicts import NOT_RUN, SUPPORTED, evaluate_claims, load_claims

from .test_report import load_all, write_run


def verdicts(root: Path) -> dict[str, str]:
    return {result.claim["id"]: result.verdict
            for result in evaluate_claims(load_claims(), load_all(root))}


def test_lambda_min_claim_is_supported_by_a_clear_paired_gain(tmp_path):
    for seed, (plain, clamped) in enumerate([(0.90, 0.92), (0.91, 0.935), (0.92, 0.94)]):
        write_run(tmp_path, f"plain{seed}", final=plain, seed=seed, aug="mixup", alpha=0.2,
                  epochs=200, extra={"aug.lam_min": None})
        write_run(tmp_path, f"min{seed}", final=clamped, seed=seed, aug="mixup", alpha=0.2,
                  epochs=200, extra={"aug.lam_min": 0.3})
        # A distractor: folded lambda, much better; it must not serve as the baseline.
        write_run(tmp_path, f"fold{seed}", final=0.99, seed=seed, aug="mixup", alpha=0.2,
                  epochs=200, extra={"aug.lam_min": None, "aug.lam_fold": True})
    for seed in range(3):
        for name in ("plain", "min"):
            path = tmp_path / f"{name}{seed}" / "summary.json"
            summary = json.loads(path.read_text())
            summary["config"]["aug"]["lam_fold"] = False
            path.write_text(json.dumps(summary))
            config = tmp_path / f"{name}{seed}" / ".hydra" / "config.yaml"
            text = config.read_text().replace("name: mixup", "name: mixup\n  lam_fold: false")
            config.write_text(text)
    found = verdicts(tmp_path)
    results = {result.claim["id"]: result for result in
               evaluate_claims(load_claims(), load_all(tmp_path))}
    assert results["article-lambda-min"].measured.startswith("91.00% → 93.17%")
    assert found["article-lambda-min"] == SUPPORTED
    assert found["label-noise-50"] == NOT_RUN and found["article-dropout-lr"] == NOT_RUN


def test_calibration_claim_reads_ece_from_the_last_epoch_and_lower_is_better(tmp_path):
    for seed, (none_ece, mixup_ece) in enumerate([(0.050, 0.020), (0.060, 0.025), (0.055, 0.030)]):
        for aug, alpha, ece in (("none", None, none_ece), ("mixup", 0.2, mixup_ece)):
            path = write_run(tmp_path, f"{aug}{seed}", final=0.9, seed=seed, aug=aug, alpha=alpha,
                             epochs=200, extra={"data.label_noise": 0.0})
            lines = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
            lines[-1]["test_ece"] = ece
            (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert verdicts(tmp_path)["calibration-ece"] == SUPPORTED
