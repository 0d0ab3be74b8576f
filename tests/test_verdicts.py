"""Verdicts a reviewer would sign: each rule on synthetic run directories with known answers.

The run directories are written in the documented format (docs/run-directory.md)
by tests/test_report.py's write_run; accuracies are chosen so that the paired
differences, and so the intervals, are known exactly.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as scipy_stats

from mixup_bench.report.build import build_report, summarise_groups, write_report
from mixup_bench.report.cli import main
from mixup_bench.report.judgement.claim_schema import (
    ACCURACY_TOLERANCE,
    load_claims,
    validate_claim,
)
from mixup_bench.report.judgement.judging import (
    CONTRADICTED,
    INCONCLUSIVE,
    LARGER,
    NOT_RUN,
    SMALLER,
    SUPPORTED,
)
from mixup_bench.report.judgement.verdicts import evaluate_claims
from mixup_bench.report.stats import detectable_change, estimate, p_value, welch_difference

from .test_report import load_all, write_run

EPOCHS = 200
CLAIM = {
    "id": "gain", "source": "test", "statement": "mixup: 92.3% -> 94.1%", "kind": "gain",
    "baseline": {"aug.name": "none", "model.name": "resnet18"},
    "treatment": {"aug.name": "mixup", "alpha": 0.2, "model.name": "resnet18"},
    "published_baseline": 92.3, "published_treatment": 94.1,
}
BASE = [0.920, 0.925, 0.930]


def seeds(root: Path, prefix: str, finals: list[float], **options: Any) -> None:
    for seed, final in enumerate(finals):
        write_run(root, f"{prefix}_s{seed}", final=final, seed=seed, epochs=EPOCHS, **options)


def pairs(root: Path, differences: list[float], base: list[float] = BASE,
          **options: Any) -> None:
    """aug=none at `base`, mixup (alpha 0.2) at base + difference, seed by seed."""
    seeds(root, "none", base, **options)
    seeds(root, "mixup", [b + d for b, d in zip(base, differences, strict=True)], aug="mixup",
          alpha=0.2, **options)


def judge_claim(root: Path, claim: dict[str, Any] = CLAIM):
    [result] = evaluate_claims([claim], load_all(root))
    return result


# --- 1. by the size of the published change ------------------------------------------------


@pytest.mark.parametrize(("differences", "verdict"), [
    ([0.0028, 0.0030, 0.0032], SMALLER),        # +0.30, CI [+0.25, +0.35]: real, far smaller
    ([-0.0006, 0.0000, 0.0005], CONTRADICTED),  # a tight null result
    ([-0.0120, -0.0100, -0.0110], CONTRADICTED),  # a loss
    ([0.0170, 0.0180, 0.0190], SUPPORTED),      # holds +1.8 and excludes 0
    ([0.0300, 0.0310, 0.0320], LARGER),
    ([-0.0100, 0.0200, 0.0300], INCONCLUSIVE),  # holds both 0 and +1.8
])
def test_a_claim_is_judged_by_its_size(tmp_path, differences, verdict):
    pairs(tmp_path, differences)
    result = judge_claim(tmp_path)
    assert result.verdict == verdict, result.reason
    assert result.evidence.change == pytest.approx(0.018)


def test_the_tolerance_decides_a_near_miss(tmp_path):
    pairs(tmp_path, [0.0155, 0.0160, 0.0165])  # CI ends at +1.72: 0.08 points short of +1.8
    assert judge_claim(tmp_path).verdict == SUPPORTED  # default tolerance 0.22 points
    assert judge_claim(tmp_path, {**CLAIM, "tolerance": 0.0}).verdict == SMALLER
    assert ACCURACY_TOLERANCE == pytest.approx(0.00218, abs=1e-5)


def test_report_prints_the_rules_and_keeps_ids_and_verdicts(tmp_path):
    pairs(tmp_path / "runs", [0.0028, 0.0030, 0.0032])
    out = tmp_path / "out"
    write_report(build_report([tmp_path / "runs"], [CLAIM]), out)
    page = (out / "REPORT.md").read_text()
    for words in ("smaller than claimed", "contradicted", "tolerance", "Holm", "80% power"):
        assert words in page
    claims = json.loads((out / "report.json").read_text())["claims"]
    assert claims[0]["id"] == "gain" and claims[0]["verdict"] == SMALLER


# --- 2. levels apart from gains -----------------------------------------------------------


def test_levels_are_shown_and_never_decide(tmp_path):
    pairs(tmp_path / "low", [0.0170, 0.0180, 0.0190])
    pairs(tmp_path / "high", [0.0170, 0.0180, 0.0190], base=[0.950, 0.950 + 0.005, 0.960])
    low, high = judge_claim(tmp_path / "low"), judge_claim(tmp_path / "high")
    assert low.verdict == high.verdict == SUPPORTED
    assert high.levels["published_baseline"] == pytest.approx(0.923)
    assert high.levels["measured_baseline"] == pytest.approx(0.955)
    assert any("protocol difference" in note for note in high.notes)
    assert not any("protocol difference" in note for note in low.notes)


# --- 3. exactly the runs the claim describes -----------------------------------------------


def test_runs_with_noise_smoothing_or_another_fraction_never_decide(tmp_path):
    pairs(tmp_path / "clean", [0.0170, 0.0180, 0.0190])
    shutil.copytree(tmp_path / "clean", tmp_path / "mixed")
    for name, extra in (("noisy", {"data.label_noise": 0.2}),
                        ("smooth", {"aug.label_smoothing": 0.1}),
                        ("dropout", {"model.dropout": 0.3})):
        pairs(tmp_path / "mixed" / name, [0.05, 0.06, 0.07], extra=extra)
    pairs(tmp_path / "mixed" / "small", [0.05, 0.06, 0.07], fraction=0.1)
    clean, mixed = judge_claim(tmp_path / "clean"), judge_claim(tmp_path / "mixed")
    assert mixed.verdict == clean.verdict == SUPPORTED
    assert mixed.effect.mean == pytest.approx(clean.effect.mean)


def test_two_matching_conditions_are_not_decided_by_folder_order(tmp_path):
    pairs(tmp_path / "a", [0.0170, 0.0180, 0.0190], extra={"optim.lr": 0.1})
    pairs(tmp_path / "b", [0.0028, 0.0030, 0.0032], extra={"optim.lr": 0.05})
    result = judge_claim(tmp_path)
    assert result.verdict == INCONCLUSIVE
    assert "pin" in result.reason and "optim.lr" in result.reason


def test_renaming_run_directories_changes_no_verdict(tmp_path):
    pairs(tmp_path / "first", [0.0170, 0.0180, 0.0190])
    write_run(tmp_path / "first", "again_s0", final=BASE[0] + 0.05, seed=0, epochs=EPOCHS,
              aug="mixup", alpha=0.2)  # seed 0 run twice
    before = judge_claim(tmp_path / "first")
    renamed = tmp_path / "second"
    renamed.mkdir()
    for index, path in enumerate(sorted((tmp_path / "first").iterdir(), reverse=True)):
        shutil.copytree(path, renamed / f"z{9 - index}_{path.name[::-1]}")
    after = judge_claim(renamed)
    assert (after.verdict, after.effect.mean) == (before.verdict, before.effect.mean)


# --- 4. like with like, one seed one pair --------------------------------------------------


def test_a_smoothed_mixup_run_pairs_with_the_smoothed_baseline(tmp_path):
    seeds(tmp_path, "none_ls0", [0.80, 0.80, 0.80])
    seeds(tmp_path, "none_ls1", [0.90, 0.905, 0.91], extra={"aug.label_smoothing": 0.1})
    seeds(tmp_path, "mixup_ls1", [0.91, 0.915, 0.92], aug="mixup", alpha=0.2,
          extra={"aug.label_smoothing": 0.1})
    _, groups = summarise_groups(load_all(tmp_path))
    mixed = next(group for group in groups if group.group.settings["aug.name"] == "mixup")
    assert mixed.paired["final_test_acc"].mean == pytest.approx(0.01)


def test_one_seed_is_one_pair_and_the_report_says_which_run(tmp_path):
    pairs(tmp_path, [0.0170, 0.0180, 0.0190])
    # Seed 1 again (say on the CPU), with the same result: it must not count twice.
    duplicate = write_run(tmp_path, "mixup_cpu_s1", final=BASE[1] + 0.018, seed=1,
                          epochs=EPOCHS, aug="mixup", alpha=0.2)
    result = judge_claim(tmp_path)
    assert result.n == 3 and result.effect.mean == pytest.approx(0.018)
    used = {run["seed"]: run for run in result.runs}
    both = {str(duplicate.resolve()), str((tmp_path / "mixup_s1").resolve())}
    assert len(used[1]["left_out"]) == 1 and {used[1]["treatment"], *used[1]["left_out"]} == both
    assert all(not used[seed]["left_out"] for seed in (0, 2))


# --- 5. no spread, no interval ------------------------------------------------------------


def test_identical_differences_give_no_verdict(tmp_path):
    pairs(tmp_path, [0.018, 0.018, 0.018])
    result = judge_claim(tmp_path)
    assert result.verdict == INCONCLUSIVE and "standard deviation 0" in result.reason
    assert estimate([0.5, 0.5, 0.5]).low is None


# --- 6. user claims: a full schedule, and no test-set selection -----------------------------


def test_user_claims_need_a_full_schedule(tmp_path):
    for seed, (base, treated) in enumerate(zip(BASE, [0.937, 0.943, 0.949], strict=True)):
        write_run(tmp_path, f"none_s{seed}", final=base, seed=seed, epochs=3)
        write_run(tmp_path, f"mixup_s{seed}", final=treated, seed=seed, epochs=3, aug="mixup",
                  alpha=0.2)
    result = judge_claim(tmp_path)
    assert result.verdict == INCONCLUSIVE and "shorter than 200 epochs" in result.reason


def test_a_claim_on_the_best_epoch_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="best_test_acc"):
        validate_claim({**CLAIM, "metric": "best_test_acc"})
    pairs(tmp_path / "runs", [0.0170, 0.0180, 0.0190])
    claims = tmp_path / "claims.yaml"
    claims.write_text(json.dumps({"claims": [{**CLAIM, "id": "best",
                                              "metric": "best_test_acc"}]}))
    assert main([str(tmp_path / "runs"), "--claims", str(claims)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "best_test_acc" in error


# --- 7. comparisons fixed before the data are read -----------------------------------------


def test_alpha_too_large_compares_the_published_alpha_with_the_largest(tmp_path):
    for alpha, finals in ((0.1, [0.95, 0.951, 0.952]), (0.2, [0.930, 0.931, 0.932]),
                          (1.0, [0.920, 0.919, 0.921])):
        seeds(tmp_path, f"alpha{alpha}", finals, aug="mixup", alpha=alpha)
    claim = {"id": "alpha", "source": "t", "statement": "large alpha hurts",
             "kind": "alpha_too_large", "selector": {"aug.name": "mixup"}}
    with pytest.raises(ValueError, match="small"):
        validate_claim(claim)
    result = judge_claim(tmp_path, {**claim, "small": 0.2})
    assert "alpha=0.2" in result.measured and "alpha=1" in result.measured
    assert "alpha=0.1" not in result.measured
    assert result.effect.mean == pytest.approx(0.011)


# --- 8. many claims: Holm -----------------------------------------------------------------


def test_holm_adjusts_thirteen_claims_and_shows_both(tmp_path):
    # p = 0.02 for each claim: each excludes 0 alone, none after Holm over 13 (0.05 / 13).
    pairs(tmp_path / "runs", [0.003, 0.004, 0.005])
    claims = [{**CLAIM, "id": f"c{index}", "published_baseline": None,
               "published_treatment": None} for index in range(13)]
    results = evaluate_claims(claims, load_all(tmp_path / "runs"))
    assert all(result.verdict == SUPPORTED for result in results)
    assert all(result.adjusted_verdict == INCONCLUSIVE for result in results)
    assert results[0].p_value == pytest.approx(
        scipy_stats.ttest_1samp([0.003, 0.004, 0.005], 0).pvalue, rel=1e-6)
    out = tmp_path / "out"
    write_report(build_report([tmp_path / "runs"], claims), out)
    header = next(line for line in (out / "REPORT.md").read_text().splitlines()
                  if line.startswith("| claim |"))
    assert "verdict" in header and "Holm-adjusted" in header
    assert len(load_claims()) >= 13


def test_holm_keeps_a_clear_result(tmp_path):
    pairs(tmp_path, [0.0170, 0.0180, 0.0190])
    [result] = evaluate_claims([CLAIM], load_all(tmp_path))
    assert result.adjusted_verdict == SUPPORTED and result.holm_confidence == pytest.approx(0.95)


# --- 9. power -----------------------------------------------------------------------------


def test_power_figures_plan_the_budget(tmp_path):
    differences = [-0.0100, 0.0200, 0.0300]
    pairs(tmp_path, differences)
    result = judge_claim(tmp_path).to_dict()
    spread = estimate(differences).std

    def power(change: float, n: int) -> float:  # the two-sided t test on the noncentral t
        critical = scipy_stats.t.ppf(0.975, n - 1)
        shifted = scipy_stats.nct(n - 1, change * math.sqrt(n) / spread)
        return shifted.sf(critical) + shifted.cdf(-critical)

    assert power(result["detectable_change"], 3) == pytest.approx(0.8, abs=1e-6)
    needed = next(n for n in range(2, 1000) if power(0.018, n) >= 0.8)
    assert result["seeds_to_decide"] == needed
    assert detectable_change(None, 3) is None


# --- 10. statistics from scipy.stats ------------------------------------------------------


def test_intervals_and_tests_are_scipys():
    values = [0.90, 0.92, 0.95]
    result = estimate(values)
    interval = scipy_stats.ttest_1samp(values, 0).confidence_interval(0.95)
    assert (result.low, result.high) == pytest.approx((interval.low, interval.high))
    assert p_value(estimate([0.01, 0.02, 0.04])) == pytest.approx(
        scipy_stats.ttest_1samp([0.01, 0.02, 0.04], 0).pvalue)
    first, second = [0.05, 0.07, 0.06, 0.08], [0.01, 0.02, 0.03]
    welch = welch_difference(first, second)
    reference = scipy_stats.ttest_ind(first, second, equal_var=False).confidence_interval(0.95)
    assert (welch.low, welch.high) == pytest.approx((reference.low, reference.high))


def test_nothing_matching_is_not_run(tmp_path):
    pairs(tmp_path, [0.0170, 0.0180, 0.0190])
    result = judge_claim(tmp_path, {**CLAIM, "treatment": {"aug.name": "cutmix"}})
    assert result.verdict == NOT_RUN and "no finished run matches" in result.reason


def test_an_inconclusive_verdict_names_every_shortfall(tmp_path):
    """Too few seeds and too few epochs: the reason names both, so one rerun fixes both."""
    for seed, (base, treated) in enumerate(zip(BASE[:2], [0.937, 0.943], strict=True)):
        write_run(tmp_path, f"none_s{seed}", final=base, seed=seed, epochs=3)
        write_run(tmp_path, f"mixup_s{seed}", final=treated, seed=seed, epochs=3, aug="mixup",
                  alpha=0.2)
    result = judge_claim(tmp_path)
    assert result.verdict == INCONCLUSIVE
    assert result.reason.endswith("only 2 paired seed(s); at least 3 needed; runs shorter than "
                                  "200 epochs (3 completed)"), result.reason
