"""The model-guided methods' claims (article.yaml, openmixup.yaml) judged by the verdict engine."""

from __future__ import annotations

import pytest

from mixup_bench.report.judgement.claim_schema import load_claims
from mixup_bench.report.judgement.judging import CONTRADICTED, NOT_RUN, SUPPORTED
from mixup_bench.report.judgement.verdicts import evaluate_claims

from .test_report import load_all, write_run

OPENMIXUP = {"trainer.batch_size": 100, "optim.weight_decay": 1e-4, "sched.name": "cosine"}


def claims() -> dict[str, dict]:
    return {claim["id"]: claim for claim in load_claims()}


def write_seeds(root, aug, alpha, finals, extra=None):
    for seed, final in enumerate(finals):
        write_run(root, f"{aug}_{alpha}_s{seed}", final=final, aug=aug, alpha=alpha, seed=seed,
                  epochs=200, extra=extra)


@pytest.mark.parametrize("method", ["attentivemix", "puzzlemix"])
@pytest.mark.parametrize("gain, verdict", [(0.01, SUPPORTED), (-0.01, CONTRADICTED)])
def test_the_article_attention_claim_compares_each_method_with_cutmix(tmp_path, method, gain,
                                                                      verdict):
    claim = claims()[f"article-attention-mix-{method}-beats-cutmix"]
    cutmix = [0.950, 0.952, 0.954]
    write_seeds(tmp_path, "cutmix", 1.0, cutmix)
    write_seeds(tmp_path, method, 1.0, [value + gain + 0.0001 * i
                                        for i, value in enumerate(cutmix)])
    write_seeds(tmp_path, "none", None, [0.90, 0.90, 0.90])  # never the baseline here
    [result] = evaluate_claims([claim], load_all(tmp_path))
    assert result.verdict == verdict, result.reason


@pytest.mark.parametrize("claim_id, aug, alpha, published", [
    ("openmixup-resnet18-attentivemix-gain", "attentivemix", 2.0, 96.21),
    ("openmixup-resnet18-puzzlemix-gain", "puzzlemix", 1.0, 96.42),
])
def test_the_openmixup_rows_select_the_preset_and_the_published_alpha(tmp_path, claim_id, aug,
                                                                      alpha, published):
    claim = claims()[claim_id]
    assert claim["published_treatment"] == published and claim["published_baseline"] == 94.87
    assert claim["treatment"]["alpha"] == alpha and claim["treatment"]["aug.name"] == aug
    base = [0.9480, 0.9487, 0.9494]
    write_seeds(tmp_path, "none", None, base, OPENMIXUP)
    write_seeds(tmp_path, aug, alpha, [b + (published - 94.87) / 100 + 0.0002 * i
                                       for i, b in enumerate(base)], OPENMIXUP)
    [result] = evaluate_claims([claim], load_all(tmp_path))
    assert result.verdict == SUPPORTED, result.reason
    other = tmp_path / "default_recipe"  # the default recipe (batch 128, wd 5e-4) never decides
    write_seeds(other, "none", None, base)
    write_seeds(other, aug, alpha, [b + 0.0154 for b in base])
    [result] = evaluate_claims([claim], load_all(other))
    assert result.verdict == NOT_RUN
