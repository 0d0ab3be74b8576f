"""Verdicts, second reading: each case on synthetic run directories with known
answers, built so that the earlier rules gave a misleading verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as scipy_stats

from mixup_bench.report.build import build_report, write_report
from mixup_bench.report.judgement.claim_schema import (
    ACCURACY_TOLERANCE,
    ECE_TOLERANCE,
    load_claims,
    tolerance,
    validate_claim,
)
from mixup_bench.report.judgement.judging import (
    CONTRADICTED,
    NOT_RUN,
    RULES,
    SMALLER,
    SMALLER_ZERO,
    SUPPORTED,
)
from mixup_bench.report.judgement.verdicts import evaluate_claims
from mixup_bench.report.runs.legacy import UNKNOWN
from mixup_bench.report.stats import detectable_change, t_critical

from .test_report import load_all, write_run
from .test_verdicts import BASE, CLAIM, EPOCHS, judge_claim, pairs, seeds

DIRECTION = {**CLAIM, "published_baseline": None, "published_treatment": None}


# --- 1. alpha_too_large: the large alpha is the claim's own method's ---------------------


def test_alpha_too_large_takes_its_large_alpha_from_its_own_method(tmp_path):
    for alpha, finals in ((0.2, [0.930, 0.931, 0.932]), (0.4, [0.925, 0.927, 0.926])):
        seeds(tmp_path, f"mixup{alpha}", finals, aug="mixup", alpha=alpha)
    seeds(tmp_path, "cutmix1.0", [0.94, 0.941, 0.942], aug="cutmix", alpha=1.0)
    seeds(tmp_path, "manifold2.0", [0.94, 0.941, 0.942], aug="manifold_mixup", alpha=2.0)
    claim = {"id": "alpha", "source": "t", "statement": "large alpha hurts",
             "kind": "alpha_too_large", "selector": {"aug.name": "mixup"}, "small": 0.2}
    result = judge_claim(tmp_path, claim)
    assert result.verdict != NOT_RUN, result.reason
    assert "alpha=0.4" in result.measured and "alpha=1" not in result.measured
    assert result.effect.mean == pytest.approx(0.005)


# --- 2. Holm: a significant loss is a rejection too ---------------------------------------


def test_holm_goes_on_past_a_significant_loss(tmp_path):
    """Hand-worked: two claims; the loss has p ~ 1e-4 (rank 1, level 1 - 0.05/2), the gain
    p = 0.0198 < 0.05 / 1 (rank 2): Holm rejects both, so the gain keeps its verdict."""
    pairs(tmp_path, [-0.030, -0.031, -0.032], extra={"optim.lr": 0.1})
    pairs(tmp_path / "b", [0.003, 0.004, 0.005], extra={"optim.lr": 0.05})
    loss = {**DIRECTION, "id": "loss",
            "baseline": {**CLAIM["baseline"], "optim.lr": 0.1},
            "treatment": {**CLAIM["treatment"], "optim.lr": 0.1}}
    gain = {**DIRECTION, "id": "gain",
            "baseline": {**CLAIM["baseline"], "optim.lr": 0.05},
            "treatment": {**CLAIM["treatment"], "optim.lr": 0.05}}
    first, second = evaluate_claims([loss, gain], load_all(tmp_path))
    p_loss = scipy_stats.ttest_1samp([-0.030, -0.031, -0.032], 0).pvalue
    p_gain = scipy_stats.ttest_1samp([0.003, 0.004, 0.005], 0).pvalue
    assert (first.p_value, second.p_value) == pytest.approx((p_loss, p_gain))
    assert p_loss <= 0.05 / 2 and p_gain <= 0.05 / 1  # Holm: both rejected
    assert first.adjusted_verdict == CONTRADICTED
    assert second.holm_confidence == pytest.approx(0.95)
    assert second.adjusted_verdict == SUPPORTED, second.adjusted_reason


# --- 3. a key a run lacks: the old version's value, or unknown ---------------------------


def _drop(run: Path, dotted: str) -> None:
    config_file = run / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    section, key = dotted.split(".")
    del config[section][key]
    config_file.write_text(yaml.safe_dump(config))


def test_runs_older_than_zero_init_last_are_read_as_their_version_trained(tmp_path):
    pairs(tmp_path, [0.0170, 0.0180, 0.0190])
    for run in tmp_path.iterdir():
        _drop(run, "model.zero_init_last")
    runs = load_all(tmp_path)
    assert all(run.settings["model.zero_init_last"] is True for run in runs)
    assert any("zero_init_last" in problem for problem in runs[0].problems)
    result = judge_claim(tmp_path)
    assert result.verdict == NOT_RUN  # the default (false) is not what ran
    assert len(result.left_out) == 6 and all(
        item["why"] == "model.zero_init_last=True where the claim needs False"
        for item in result.left_out)
    pinned = {**CLAIM, "baseline": {**CLAIM["baseline"], "model.zero_init_last": True},
              "treatment": {**CLAIM["treatment"], "model.zero_init_last": True}}
    assert judge_claim(tmp_path, pinned).verdict == SUPPORTED


def test_runs_in_another_data_regime_are_listed_as_left_out_other_methods_are_not(tmp_path):
    """A claim that does not pin data.fraction describes runs on all the data: runs on 10%
    are left out and the report says so, per reason on one line; a run with another aug.*
    switch (another method) is not counted as left out of this one."""
    pairs(tmp_path, [0.0170, 0.0180, 0.0190], fraction=0.1)
    seeds(tmp_path, "lam_min", [0.94, 0.941, 0.942], aug="mixup", alpha=0.2,
          extra={"aug.lam_min": 0.3})
    result = judge_claim(tmp_path)
    assert result.verdict == NOT_RUN
    assert [item["why"] for item in result.left_out] == [
        "data.fraction=0.1 where the claim needs 1.0"] * 6
    assert not any("lam_min" in item["run"] for item in result.left_out)
    write_report(build_report([tmp_path], [CLAIM]), tmp_path / "out")
    page = (tmp_path / "out" / "REPORT.md").read_text()
    assert "- Left out (6 runs), data.fraction=0.1 where the claim needs 1.0: " in page
    # A claim on both fractions uses them all and leaves none out.
    pairs(tmp_path / "all", [0.0170, 0.0180, 0.0190])
    [small_data] = [claim for claim in load_claims() if claim["id"] == "article-small-data-gain"]
    result = judge_claim(tmp_path, small_data)
    assert result.verdict != NOT_RUN and len(result.runs) == 6 and result.left_out == []
    # A run at 10% with no partner at its seed is the claim's kind of run, not left out.
    seeds(tmp_path / "unpaired", "mixup", [0.5] * 6, aug="mixup", alpha=0.2, fraction=0.1)
    result = judge_claim(tmp_path, small_data)
    assert len(result.runs) == 6 and result.left_out == []


def test_clean_runs_are_listed_as_left_out_of_a_label_noise_claim(tmp_path):
    """A run without label noise has no noise mode; it is left out for its label_noise."""
    [claim] = [claim for claim in load_claims() if claim["id"] == "label-noise-20"]
    pairs(tmp_path, [0.02, 0.03, 0.04])
    result = judge_claim(tmp_path, claim)
    assert result.verdict == NOT_RUN
    assert [item["why"] for item in result.left_out] == [
        "data.label_noise=0.0 where the claim needs 0.2"] * 6


def test_an_unknown_old_value_leaves_the_run_out_and_says_why(tmp_path):
    pairs(tmp_path / "runs", [0.0170, 0.0180, 0.0190], model="preact_resnet18")
    for run in (tmp_path / "runs").iterdir():
        _drop(run, "model.zero_init_last")
    claim = {**CLAIM, "baseline": {**CLAIM["baseline"], "model.name": "preact_resnet18"},
             "treatment": {**CLAIM["treatment"], "model.name": "preact_resnet18"}}
    result = judge_claim(tmp_path / "runs", claim)
    assert load_all(tmp_path / "runs")[0].settings["model.zero_init_last"] == UNKNOWN
    assert result.verdict == NOT_RUN
    assert len(result.left_out) == 6
    assert all("model.zero_init_last unknown" in item["why"] for item in result.left_out)
    write_report(build_report([tmp_path / "runs"], [claim]), tmp_path / "out")
    page = (tmp_path / "out" / "REPORT.md").read_text()
    assert "- Left out (6 runs), model.zero_init_last unknown" in page
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(data["claims"][0]["left_out"]) == 6


# --- 4. power on the noncentral t ---------------------------------------------------------


@pytest.mark.parametrize("count", [3, 5, 10])
def test_the_detectable_change_has_the_stated_power(count):
    """200,000 simulated experiments of `count` paired seeds whose true change is the
    detectable one: the t test finds it in 80% of them (within a point)."""
    change = detectable_change(1.0, count)
    rng = np.random.default_rng(19)
    values = rng.normal(change, 1.0, size=(200_000, count))
    statistic = values.mean(axis=1) / (values.std(axis=1, ddof=1) / math.sqrt(count))
    power = float(np.mean(np.abs(statistic) > t_critical(count - 1)))
    assert power == pytest.approx(0.80, abs=0.01)
    noncentral = scipy_stats.nct(count - 1, change * math.sqrt(count))
    critical = scipy_stats.t.ppf(0.975, count - 1)
    assert noncentral.sf(critical) + noncentral.cdf(-critical) == pytest.approx(0.80)


# --- 5. a tolerance per metric ------------------------------------------------------------


def test_each_metric_has_its_own_tolerance_or_the_claim_states_one():
    ece = {**CLAIM, "metric": "test_ece", "lower_is_better": True}
    assert tolerance(CLAIM) == pytest.approx(math.sqrt(0.95 * 0.05 / 10_000))
    assert tolerance(ece) == pytest.approx(math.sqrt(15 * 0.95 * 0.05 / 10_000))
    assert ECE_TOLERANCE > 3 * ACCURACY_TOLERANCE
    with pytest.raises(ValueError, match="test_loss has no default tolerance"):
        validate_claim({**CLAIM, "metric": "test_loss", "lower_is_better": True})
    validate_claim({**CLAIM, "metric": "test_loss", "lower_is_better": True, "tolerance": 0.5})
    assert f"ECE {100 * ECE_TOLERANCE:.2f} points" in RULES


# --- 6. difference of gains: paired where the seeds match ---------------------------------


GAIN_LARGER = {"id": "small", "source": "t", "statement": "larger gain on 10%",
               "kind": "gain_larger", "baseline": {"aug.name": "none"},
               "treatment": {"aug.name": "mixup", "alpha": 0.2},
               "larger": {"data.fraction": 0.1}, "smaller": {"data.fraction": 1.0}}


def test_a_difference_of_gains_on_the_same_seeds_is_paired(tmp_path):
    small, full = [0.020, 0.031, 0.045], [0.010, 0.012, 0.020]
    pairs(tmp_path / "small", small, fraction=0.1)
    pairs(tmp_path / "full", full)
    result = judge_claim(tmp_path, GAIN_LARGER)
    reference = scipy_stats.ttest_rel(small, full).confidence_interval(0.95)
    assert (result.effect.low, result.effect.high) == pytest.approx(
        (reference.low, reference.high))
    assert "paired by seed" in result.measured
    different = tmp_path / "different"
    pairs(different / "small", small, fraction=0.1)
    for seed, difference in enumerate(full):  # seeds 10-12: no seed in common
        write_run(different, f"none_full{seed}", final=BASE[seed], seed=10 + seed,
                  epochs=EPOCHS)
        write_run(different, f"mixup_full{seed}", final=BASE[seed] + difference,
                  seed=10 + seed, epochs=EPOCHS, aug="mixup", alpha=0.2)
    welch = judge_claim(different, GAIN_LARGER)
    reference = scipy_stats.ttest_ind(small, full, equal_var=False).confidence_interval(0.95)
    assert (welch.effect.low, welch.effect.high) == pytest.approx(
        (reference.low, reference.high))
    assert "Welch" in welch.measured


# --- 7. "smaller than claimed" while 0 is inside ------------------------------------------


def test_smaller_than_claimed_says_when_no_change_is_not_excluded(tmp_path):
    pairs(tmp_path / "runs", [0.000, 0.004, 0.008])  # CI [-0.59, +1.39] points; claim +1.8
    result = judge_claim(tmp_path / "runs")
    assert result.effect.low < 0 < result.effect.high
    assert result.verdict == SMALLER_ZERO == "smaller than claimed; no change not excluded"
    assert judge_claim(tmp_path / "runs", {**CLAIM, "tolerance": 0.0}).verdict == SMALLER_ZERO
    clear = tmp_path / "clear"
    pairs(clear, [0.0028, 0.0030, 0.0032])
    assert judge_claim(clear).verdict == SMALLER
    write_report(build_report([tmp_path / "runs"], [CLAIM]), tmp_path / "out")
    page = (tmp_path / "out" / "REPORT.md").read_text()
    assert "**smaller than claimed; no change not excluded**" in page
    assert "**smaller than claimed; no change not excluded** / **larger than claimed; no " \
           "change\n  not excluded**" in page


def test_the_forest_plot_row_names_the_qualified_verdict(tmp_path):
    from mixup_bench.report.rendering.figures_claims import VERDICT_COLOURS
    from mixup_bench.report.rendering.panels import claim_rows

    pairs(tmp_path, [0.000, 0.004, 0.008])
    report = build_report([tmp_path], [CLAIM])
    [row] = claim_rows(report)
    assert row.status.startswith("smaller than claimed; no change not excluded")
    assert VERDICT_COLOURS[row.verdict] != VERDICT_COLOURS[SMALLER]


def test_the_packaged_claims_all_have_a_tolerance():
    for claim in load_claims():
        assert tolerance(claim) > 0


def test_docs_verdicts_page_is_the_rules_the_report_prints(tmp_path):
    from mixup_bench.report.judgement.judging import rules_page

    page = Path(__file__).resolve().parent.parent / "docs" / "verdicts.md"
    assert page.read_text(encoding="utf-8") == rules_page()  # scripts/write_verdict_rules.py
    pairs(tmp_path / "runs", [0.0170, 0.0180, 0.0190])
    write_report(build_report([tmp_path / "runs"], [CLAIM]), tmp_path / "out")
    assert RULES in (tmp_path / "out" / "REPORT.md").read_text()
    readme = (page.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/verdicts.md" in readme


def test_flipped_label_noise_runs_are_left_out_of_the_papers_claim(tmp_path):
    """The label-noise claims pin the paper's procedure; flipped-noise runs are listed."""
    [claim] = [claim for claim in load_claims() if claim["id"] == "label-noise-20"]
    pairs(tmp_path / "flip", [0.02, 0.03, 0.04],
          extra={"data.label_noise": 0.2, "data.label_noise_mode": "flip"})
    result = judge_claim(tmp_path / "flip", claim)
    assert result.verdict == NOT_RUN and len(result.left_out) == 6
    assert all("data.label_noise_mode=flip where the claim needs random" in item["why"]
               for item in result.left_out)
    pairs(tmp_path / "random", [0.02, 0.03, 0.04],
          extra={"data.label_noise": 0.2, "data.label_noise_mode": "random"})
    assert judge_claim(tmp_path / "random", claim).verdict == SUPPORTED


def test_every_condition_key_has_a_legacy_value():
    """A condition key added to conf/ without a legacy entry would make every older run
    'unknown' for every claim: the table must say what the versions before it did."""
    from mixup_bench.report.judgement.claim_schema import condition_defaults
    from mixup_bench.report.runs.legacy import LEGACY_KEYS

    assert set(condition_defaults()) <= set(LEGACY_KEYS)
