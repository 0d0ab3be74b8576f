"""config.validate: every key checked by type and range, one line per problem."""

from __future__ import annotations

import copy

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from mixup_bench.config import check, validate
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import mixer_names
from mixup_bench.models import model_names


def composed(*overrides: str) -> dict:
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def problems(config: dict) -> list[str]:
    return validate(config, model_names(), mixer_names())


def test_shipped_defaults_are_valid():
    for aug in ("none", "mixup", "cutmix"):
        for experiment in ("smoke", "paper", "openmixup"):
            assert problems(composed(f"aug={aug}", f"experiment={experiment}")) == []


def test_alpha_defaults_follow_the_augmentation():
    assert composed("aug=mixup")["alpha"] == 0.2
    assert composed("aug=cutmix")["alpha"] == 1.0
    assert composed("aug=none")["alpha"] is None
    assert composed("aug=cutmix", "alpha=0.5")["alpha"] == 0.5


def test_paper_preset_is_the_mixup_paper_recipe():
    config = composed("experiment=paper")
    assert config["model"]["name"] == "preact_resnet18"
    assert config["trainer"]["epochs"] == 200 and config["trainer"]["batch_size"] == 128
    assert config["optim"]["lr"] == 0.1 and config["optim"]["weight_decay"] == 1e-4
    assert config["sched"] == {"name": "multistep", "milestones": [100, 150], "gamma": 0.1}
    assert config["alpha"] == 1.0 and config["aug"]["name"] == "mixup"
    # The Mixup authors' network with their code's init (PyTorch's default, no zeroing).
    assert config["model"]["zero_init_last"] is False


def test_openmixup_preset_is_openmixups_cifar10_protocol():
    from mixup_bench.report.judgement.verdicts import load_claims

    config = composed("experiment=openmixup", "aug=none")
    assert problems(config) == []
    assert config["model"] == {"name": "resnet18", "dropout": 0.0, "zero_init_last": False}
    assert config["data"]["name"] == "cifar10" and config["data"]["fraction"] == 1.0
    assert config["trainer"]["epochs"] == 200 and config["trainer"]["batch_size"] == 100
    assert config["optim"] == {"name": "sgd", "lr": 0.1, "momentum": 0.9,
                               "weight_decay": 1e-4, "nesterov": False}
    assert config["sched"]["name"] == "cosine"
    for aug, alpha in (("mixup", 1.0), ("cutmix", 0.2), ("manifold_mixup", 2.0)):
        assert problems(composed("experiment=openmixup", f"aug={aug}", f"alpha={alpha}")) == []
    claims = {claim["id"]: claim for claim in load_claims()}
    ids = ("openmixup-resnet18-mixup-gain", "openmixup-resnet18-cutmix-gain",
           "openmixup-resnet18-manifoldmix-gain")
    assert set(ids) <= set(claims)
    flat = {"model.name": "resnet18", "data.name": "cifar10", "data.fraction": 1.0,
            "trainer.batch_size": 100, "optim.weight_decay": 1e-4, "sched.name": "cosine"}
    for claim_id in ids:  # the claims select exactly what the preset trains
        claim = claims[claim_id]
        assert claim["metric"] == "last10_median_test_acc" and claim["min_epochs"] == 200
        for selector in (claim["baseline"], claim["treatment"]):
            assert {key: selector[key] for key in flat} == flat
            assert all(config[section][key] == value for section, key, value in
                       (name.split(".") + [value] for name, value in flat.items()))
    assert [claims[claim_id]["published_treatment"] for claim_id in ids] == [95.70, 96.11, 96.04]


@pytest.mark.parametrize("key, value, expected", [
    ("data.fraction", 1.5, "data.fraction=1.5: expected a number in (0, 1]"),
    ("data.fraction", 0, "data.fraction=0.0: expected a number in (0, 1]"),
    ("trainer.epochs", 0, "trainer.epochs=0: expected an integer >= 1"),
    ("alpha", -1.0, "alpha=-1.0: expected a number > 0"),
    ("alpha", 0, "alpha=0: expected a number > 0"),
    ("alpha", "abc", "alpha='abc': expected a number > 0"),
    ("optim.lr", "fast", "optim.lr='fast': expected a number > 0"),
    ("trainer.device", "tpu", "trainer.device='tpu': expected auto, cpu, cuda or cuda:N"),
    ("model.name", "resnet19", "model.name='resnet19': expected one of preact_resnet18, "
                               "preact_resnet18_timm, resnet18 (did you mean resnet18?)"),
    ("model.zero_init_last", "yes", "model.zero_init_last='yes': expected true or false"),
    ("aug.name", "mixupp", "aug.name='mixupp': expected one of cutmix, fmix, manifold_mixup, "
                           "mixup, mixup_cutmix, none, resizemix "
                           "(did you mean mixup?)"),
    ("data.verify", "yes", "data.verify='yes': expected true or false"),
    ("trainer.optimizer_step", "fast", "trainer.optimizer_step='fast': expected foreach, fused "
                                       "or loop"),
    ("trainer.compile_mode", "max", "trainer.compile_mode='max': expected default, "
                                    "reduce-overhead, max-autotune or max-autotune-no-cudagraphs"),
    ("trainer.epochs", 1.5, "trainer.epochs=1.5: expected an integer >= 1"),
    ("sched.milestones", "abc", "sched.milestones='abc': expected a strictly increasing list"),
    ("sched.milestones", [150, 100], "sched.milestones=[150, 100]: expected a strictly "
                                     "increasing list of epochs >= 1"),
    ("sched.milestones", [100, 100], "sched.milestones=[100, 100]: expected"),
    ("sched.milestones", [0, 5], "sched.milestones=[0, 5]: expected"),
    ("sched.milestones", [1.5], "sched.milestones=[1.5]: expected"),
    ("seed", 2**63, f"seed={2**63}: expected an integer in [0, 2**63)"),
    ("data.subset_seed", -1, "data.subset_seed=-1: expected an integer in [0, 2**63)"),
    ("data.num_classes", 5, "data.num_classes=5: data=cifar10 has 10 classes"),
    ("data.image_size", 64, "data.image_size=64: only data=imagefolder takes it"),
])
def test_bad_values_give_one_line_naming_key_value_and_allowed(key, value, expected):
    config = composed()
    section, _, name = key.rpartition(".")
    target = config[section] if section else config
    target[name] = value
    found = problems(config)
    assert any(line.startswith(expected) for line in found), found


def test_unknown_key_is_refused_with_a_suggestion():
    config = composed()
    config["trainer"]["epoch"] = 3
    assert problems(config) == ["trainer.epoch: unknown key (did you mean trainer.epochs?)"]


def test_mixup_without_alpha_is_refused():
    config = composed("aug=mixup")
    config["alpha"] = None
    assert problems(config) == ["alpha=None: aug=mixup needs a number > 0"]


def test_check_raises_with_every_problem():
    config = copy.deepcopy(composed())
    config["trainer"]["epochs"] = 0
    config["data"]["fraction"] = 2.0
    with pytest.raises(ConfigError) as error:
        check(config, model_names(), mixer_names())
    assert len(str(error.value).splitlines()) == 2


def test_a_compile_mode_without_compile_is_refused():
    config = composed("trainer.compile_mode=reduce-overhead")
    assert problems(config) == ["trainer.compile_mode=reduce-overhead: takes effect only with "
                                "trainer.compile=true; add it, or leave the mode at default"]
    assert problems(composed("trainer.compile_mode=reduce-overhead", "trainer.compile=true")) == []


def test_milestones_past_the_last_epoch_are_allowed():
    assert problems(composed("sched=multistep", "trainer.epochs=3")) == []
    assert problems(composed("data=cifar100")) == []
    assert problems(composed("data=imagefolder", "data.root=/x", "data.image_size=64")) == []


def test_timm_names_are_checked_by_the_given_check_in_one_line():
    def timm_check(name):
        return None if name == "resnet18" else f"timm has no model {name!r}"

    config = composed("model.name=timm:resnet18")
    assert validate(config, model_names(), mixer_names(), timm_check) == []
    config["model"]["name"] = "timm:resnet999"
    assert validate(config, model_names(), mixer_names(), timm_check) == [
        "model.name='timm:resnet999': timm has no model 'resnet999'"]
    assert problems(config) == []  # without a check, any timm: name passes


def test_timm_problem_names_close_matches():
    from mixup_bench.models import timm_problem

    assert timm_problem("resnet18") is None and timm_problem("resnet18.a1_in1k") is None
    wrong = timm_problem("resnt18")
    assert "timm:resnet18" in wrong and "\n" not in wrong
    assert timm_problem("hf-hub:timm/resnet18") is not None  # never fetched
