"""experiment=alpha_search / alpha_optuna: alpha chosen on the validation split, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from hydra.errors import MissingConfigException

from mixup_bench.data.validation import hold_out
from mixup_bench.hydra_app import _composition_error
from mixup_bench.report.cli import main as report_main
from mixup_bench.report.judgement.selection import OPTIMISTIC

from .conftest import TINY, run_cli

# A tiny timm network (timm's own test model) keeps each trial under a second on a CPU.
FAST = (*TINY, "model.name=timm:test_resnet", "trainer.num_threads=1", "trainer.samples=false")


def hydra_config(*overrides: str):
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=True)


def test_alpha_search_holds_out_5000_cifar_images_and_sweeps_the_grid():
    cfg = hydra_config("experiment=alpha_search")
    assert cfg.data.val_fraction == 0.1
    assert dict(cfg.hydra.sweeper.params) == {"alpha": "0.1,0.2,0.4,1.0", "seed": "0,1,2"}
    labels = torch.arange(50_000) % 10  # CIFAR-10's training set: 5,000 images per class
    held, rest = hold_out(labels, cfg.data.val_fraction, cfg.data.val_seed)
    assert (held.numel(), rest.numel()) == (5_000, 45_000)


def test_a_missing_sweeper_plugin_names_the_extra():
    error = MissingConfigException("Could not load 'hydra/sweeper/optuna'",
                                   missing_cfg_file="hydra/sweeper/optuna", options=["basic"])
    assert _composition_error(error) == (
        "hydra/sweeper=optuna: Hydra's plugin for it is not installed; it comes with the "
        "optuna extra: pip install -e \".[optuna]\"")


def test_optuna_search_maximises_validation_and_the_report_names_the_choice(cifar_root, tmp_path,
                                                                            capsys):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    result = run_cli("train", "-m", "experiment=alpha_optuna", "hydra.sweeper.n_trials=3",
                     "data.val_fraction=0.2", f"data.root={cifar_root}",
                     f"hydra.sweep.dir={sweep}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/summary.json"))]
    assert [summary["status"] for summary in summaries] == ["finished"] * 3
    alphas = [summary["config"]["alpha"] for summary in summaries]
    assert len(set(alphas)) == 3 and all(0.05 <= alpha <= 2.0 for alpha in alphas)
    assert all(summary["val_images"] == 40 for summary in summaries)
    # Optuna saw each job's validation accuracy: its best value is the best of those.
    found = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    validation = [summary["final_val_acc"] for summary in summaries]
    assert found["best_value"] == max(validation)
    best = next(summary for summary in summaries
                if summary["config"]["alpha"] == found["best_params"]["alpha"])
    assert best["final_val_acc"] == max(validation)

    assert report_main([str(sweep)]) == 0
    printed = capsys.readouterr().out
    chosen = json.loads((sweep / "report.json").read_text())["selected_on_validation"][0]
    run = next(summary for summary in summaries
               if summary["config"]["alpha"] == chosen["chosen_on_validation"]["settings"]["alpha"])
    assert run["final_val_acc"] == max(validation)  # a tie goes to the smaller alpha
    assert chosen["chosen_on_validation"]["test"]["mean"] == run["final_test_acc"]
    line = next(line for line in printed.splitlines() if line.startswith("selected on validation"))
    assert f"test {100 * run['final_test_acc']:.2f}% (n=1)" in line and OPTIMISTIC in line
    assert f"α={run['config']['alpha']:.10g}" in line


def test_an_optuna_search_without_a_validation_split_stops_at_once(cifar_root, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "search"
    result = run_cli("train", "-m", "experiment=alpha_optuna", "hydra.sweeper.n_trials=3",
                     "data.val_fraction=0", f"data.root={cifar_root}",
                     f"hydra.sweep.dir={sweep}", *FAST)
    assert result.returncode == 2
    assert ("mixup-bench: error: data.val_fraction=0: hydra/sweeper=optuna maximises "
            "final_val_acc") in result.stderr
    assert not list(Path(sweep).glob("*/summary.json"))  # no trial trained


def test_each_trial_is_scored_by_validation_never_test(monkeypatch, cifar_root, tmp_path):
    """The jobs' return values, as Optuna stored them (SQLite: the pinned SQLAlchemy < 2)."""
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    import math

    import mixup_bench.train.run
    from mixup_bench.hydra_app import train_main

    def validation(alpha: float) -> float:  # peaks at alpha 0.3; the test score grows with alpha
        return 1 - abs(math.log(alpha / 0.3)) / 10

    def fake_run(cfg, run_dir, **_):
        # The largest alpha diverges after a good first epoch: it must not be scored.
        status = "diverged" if cfg.alpha > 1.5 else "finished"
        return {"status": status, "final_val_acc": validation(cfg.alpha),
                "final_test_acc": cfg.alpha / 2}

    monkeypatch.setattr(mixup_bench.train.run, "run", fake_run)
    database = tmp_path / "study.db"
    code = train_main(["-m", "experiment=alpha_optuna", "hydra.sweeper.n_trials=4",
                       "alpha=choice(0.3,0.6,1.9)",
                       f"hydra.sweeper.storage=sqlite:///{database}", f"data.root={cifar_root}",
                       f"hydra.sweep.dir={tmp_path / 'search'}", *FAST])
    assert code == 1  # the diverged run
    trials = optuna.load_study(study_name="alpha_search", storage=f"sqlite:///{database}").trials
    alphas = {trial.params["alpha"] for trial in trials}
    assert len(trials) == 4 and 1.9 in alphas and len(alphas) >= 2  # the seeded sampler's draws
    for trial in trials:
        if trial.params["alpha"] == 1.9:
            assert trial.state == optuna.trial.TrialState.FAIL and trial.value is None
        else:
            assert trial.value == pytest.approx(validation(trial.params["alpha"]))
