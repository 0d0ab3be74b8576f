"""Validation of a composed config: the one place that knows what a valid run is.

Defaults live once, in the YAML files under conf/; this module holds the
schema those files must satisfy (types, ranges, choices) and checks every
key before any work starts, so a misspelled or out-of-range override stops
with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """One config key: its accepted type and the values it may take."""

    key: str
    kind: str  # "int", "float", "bool", "str", "optional_float", "optional_int", "optional_str",
    # "int_list", "str_list", "any"
    allowed: str  # what the user is told when the value is refused
    check: Callable[[Any], bool] = lambda value: True
    required: bool = True  # False: only some group options have the key


def _positive(value: float) -> bool:
    return value > 0


def _non_negative(value: float) -> bool:
    return value >= 0


def _fraction(value: float) -> bool:
    return 0 < value <= 1


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _seed(value: int) -> bool:
    return 0 <= value < SEED_LIMIT


def _increasing_epochs(value: list[int]) -> bool:
    return all(epoch >= 1 for epoch in value) and all(
        earlier < later for earlier, later in zip(value, value[1:], strict=False))


def _device(value: str) -> bool:
    if value in ("auto", "cpu", "cuda"):
        return True
    prefix, _, index = value.partition(":")
    return prefix == "cuda" and index.isdigit()


RULES: tuple[Rule, ...] = (
    Rule("seed", "int", "an integer in [0, 2**63)", _seed),
    Rule("alpha", "optional_float", "a number > 0 (or null for aug=none)"),
    Rule("resume", "bool", "true or false"),
    Rule("data.name", "str", "cifar10, cifar100 or imagefolder",
         _one_of("cifar10", "cifar100", "imagefolder")),
    Rule("data.root", "str", "a folder path"),
    Rule("data.download", "bool", "true or false"),
    Rule("data.verify", "bool", "true or false"),
    Rule("data.fraction", "float", "a number in (0, 1]", _fraction),
    Rule("data.subset_seed", "int", "an integer in [0, 2**63)", _seed),
    Rule("data.num_classes", "optional_int", "an integer >= 2 (or null for imagefolder)",
         lambda value: value is None or value >= 2),
    Rule("data.label_noise", "float", "a number in [0, 1)", lambda value: 0 <= value < 1),
    Rule("data.label_noise_mode", "str", "flip or random", _one_of("flip", "random"),
         required=False),
    Rule("data.normalization", "str", "dataset or mixup_authors",
         _one_of("dataset", "mixup_authors"), required=False),
    Rule("data.split_seed", "int", "an integer in [0, 2**63)", _seed, required=False),
    Rule("data.val_fraction", "float", "a number in [0, 1) (0: no validation split)",
         lambda value: 0 <= value < 1, required=False),
    Rule("data.val_seed", "int", "an integer in [0, 2**63)", _seed,
         required=False),
    Rule("data.image_size", "int", "an integer >= 8", lambda value: value >= 8,
         required=False),
    Rule("data.test_fraction", "float", "a number in (0, 1)", lambda value: 0 < value < 1,
         required=False),
    Rule("data.test_subset", "optional_int", "null (the whole test set) or an integer >= 10",
         lambda value: value is None or value >= 10),
    Rule("model.name", "str", "a registered model"),
    Rule("model.dropout", "float", "a number in [0, 1)", lambda value: 0 <= value < 1),
    Rule("model.zero_init_last", "bool", "true or false"),
    Rule("aug.name", "str", "a registered augmentation"),
    Rule("optim.name", "str", "sgd", _one_of("sgd")),
    Rule("optim.lr", "float", "a number > 0", _positive),
    Rule("optim.momentum", "float", "a number in [0, 1)", lambda value: 0 <= value < 1),
    Rule("optim.weight_decay", "float", "a number >= 0", _non_negative),
    Rule("optim.nesterov", "bool", "true or false"),
    Rule("sched.name", "str", "cosine or multistep", _one_of("cosine", "multistep")),
    # Milestones past trainer.epochs are allowed: they never fire, so a short run of the
    # paper's schedule and a resume with more epochs keep the same list.
    Rule("sched.milestones", "int_list", "a strictly increasing list of epochs >= 1, "
         "e.g. [100,150]", _increasing_epochs),
    Rule("sched.gamma", "float", "a number in (0, 1]", _fraction),
    Rule("trainer.epochs", "int", "an integer >= 1", lambda value: value >= 1),
    Rule("trainer.batch_size", "int", "an integer >= 1", lambda value: value >= 1),
    Rule("trainer.eval_batch_size", "int", "an integer >= 1", lambda value: value >= 1),
    Rule("trainer.device", "str", "auto, cpu, cuda or cuda:N", _device),
    Rule("trainer.precision", "str", "auto, fp32, bf16 or fp16",
         _one_of("auto", "fp32", "bf16", "fp16")),
    Rule("trainer.channels_last", "any", "auto, true or false",
         lambda value: value in ("auto", True, False)),
    Rule("trainer.compile", "bool", "true or false"),
    Rule("trainer.compile_mode", "str",
         "default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs",
         _one_of("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")),
    Rule("trainer.optimizer_step", "str", "foreach, fused or loop",
         _one_of("foreach", "fused", "loop")),
    Rule("trainer.cudnn_benchmark", "bool", "true or false"),
    Rule("trainer.num_threads", "int", "an integer >= 0 (0: torch's default)", _non_negative),
    Rule("trainer.progress", "bool", "true or false"),
    Rule("trainer.samples", "bool", "true or false"),
    # The logger group (conf/logger/): every key optional, since each logger is chosen apart.
    Rule("logger.tensorboard", "any", "{} (no options)", lambda value: value == {},
         required=False),
    Rule("logger.csv", "any", "{} (no options)", lambda value: value == {}, required=False),
    Rule("logger.mlflow.tracking_uri", "optional_str",
         "a path or an MLflow tracking URI (or null: mlruns/ beside the run)", required=False),
    Rule("logger.mlflow.experiment_name", "str", "an experiment name", required=False),
    Rule("logger.mlflow.run_name", "optional_str", "a run name (or null)", required=False),
    Rule("logger.wandb.mode", "str", "offline, online or disabled",
         _one_of("offline", "online", "disabled"), required=False),
    Rule("logger.wandb.project", "str", "a project name", required=False),
    Rule("logger.wandb.entity", "optional_str", "an entity (or null)", required=False),
    Rule("logger.wandb.name", "optional_str", "a run name (or null)", required=False),
    Rule("logger.wandb.group", "optional_str", "a group name (or null)", required=False),
    Rule("logger.wandb.tags", "str_list", "a list of strings, e.g. [baseline,cpu]",
         required=False),
)

# The speed switches: how a run uses its hardware, never what it computes in exact arithmetic.
# Each maps to whether the arithmetic is the same either way (kernel choice and fusion): those
# may change when a run resumes. Precision and memory layout change the rounding, so they may
# not. The report groups runs regardless of all of them; the bench measures each; speed_check
# compares runs that differ only in them. This is the one list.
SPEED_SWITCHES: dict[str, bool] = {
    "trainer.precision": False,
    "trainer.channels_last": False,
    "trainer.cudnn_benchmark": True,
    "trainer.compile": True,
    "trainer.compile_mode": True,
    "trainer.optimizer_step": True,
}

# Seeds go to torch.Generator.manual_seed (as seed and seed + 1), which takes 64 bits.
SEED_LIMIT = 2**63
# The class count of each CIFAR variant; data.num_classes must agree (or be null).
CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}
# Keys only data=imagefolder reads.
IMAGEFOLDER_KEYS = ("data.image_size", "data.test_fraction", "data.split_seed")

# Keys that may appear without a rule: Hydra's own and per-augmentation extras
# that the augmentation registry validates itself.
_FREE_PREFIXES = ("hydra.", "aug.")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> {"a.b.c": value}; lists stay values, and so does an empty mapping
    (so a key whose value is {} is still seen)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _coerce(rule: Rule, value: Any) -> Any:
    """Return the value in the rule's type, or raise ValueError."""
    if rule.kind == "any":
        return value
    if rule.kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError
    if rule.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        return value
    if rule.kind == "optional_int":
        if value is None:
            return None
        return _coerce(Rule(rule.key, "int", rule.allowed), value)
    if rule.kind in ("float", "optional_float"):
        if value is None and rule.kind == "optional_float":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        if not math.isfinite(value):
            raise ValueError
        return float(value)
    if rule.kind == "str":
        if not isinstance(value, str) or not value:
            raise ValueError
        return value
    if rule.kind == "optional_str":
        return None if value is None else _coerce(Rule(rule.key, "str", rule.allowed), value)
    if rule.kind in ("int_list", "str_list"):
        if not isinstance(value, (list, tuple)):
            raise ValueError
        return [_coerce(Rule(rule.key, rule.kind[:-len("_list")], rule.allowed), item)
                for item in value]
    raise AssertionError(f"unknown rule kind {rule.kind}")


def unknown_keys(config: Mapping[str, Any]) -> list[str]:
    """Dotted keys no rule knows (Hydra's own and aug.* aside): a typo, or a key of an older
    mixup-bench (the report notes these in run directories)."""
    known = {rule.key for rule in RULES}
    return [key for key in flatten(config)
            if key not in known and not key.startswith(_FREE_PREFIXES)]


def _suggest(key: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]}?)" if matches else ""


def validate(
    config: Mapping[str, Any],
    models: Iterable[str],
    augmentations: Iterable[str],
    timm_check: Callable[[str], str | None] | None = None,
) -> list[str]:
    """Check every key of a plain (resolved) config dict; return the problems.

    Each problem is one line: `key=value: expected <what is allowed>`. An
    empty list means the config is valid. timm_check(name) says what is wrong
    with model.name=timm:<name> (None: timm knows it); without it, any timm: name passes.
    """
    flat = flatten(config)
    problems: list[str] = []
    rules = {rule.key: rule for rule in RULES}
    for key in unknown_keys(config):
        problems.append(f"{key}: unknown key{_suggest(key, rules)}")
    for rule in RULES:
        if rule.key not in flat:
            if rule.required:
                problems.append(f"{rule.key}: missing; expected {rule.allowed}")
            continue
        value = flat[rule.key]
        try:
            value = _coerce(rule, value)
            ok = rule.check(value)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            problems.append(f"{rule.key}={value!r}: expected {rule.allowed}")
    choices = {"model.name": sorted(models), "aug.name": sorted(augmentations)}
    for key, names in choices.items():
        value = flat.get(key)
        if isinstance(value, str) and value not in names and not (
            key == "model.name" and value.startswith("timm:")
        ):
            problems.append(f"{key}={value!r}: expected one of {', '.join(names)}"
                            f"{_suggest(value, names)}")
    model = flat.get("model.name")
    if timm_check is not None and isinstance(model, str) and model.startswith("timm:"):
        wrong = timm_check(model[len("timm:"):])
        if wrong:
            problems.append(f"model.name={model!r}: {wrong}")
    problems += _data_problems(flat)
    aug_name = flat.get("aug.name")
    alpha = flat.get("alpha")
    if aug_name not in (None, "none") and alpha is None:
        problems.append(f"alpha=None: aug={aug_name} needs a number > 0")
    elif isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha <= 0:
        problems.append(f"alpha={alpha!r}: expected a number > 0")
    mode = flat.get("trainer.compile_mode", "default")
    if mode != "default" and flat.get("trainer.compile") is False:
        problems.append(f"trainer.compile_mode={mode}: takes effect only with "
                        "trainer.compile=true; add it, or leave the mode at default")
    return problems


def _data_problems(flat: Mapping[str, Any]) -> list[str]:
    """Keys that fit the data group's value on their own but not data.name."""
    name, problems = flat.get("data.name"), []
    classes = flat.get("data.num_classes")
    if name in CIFAR_CLASSES and classes is not None and classes != CIFAR_CLASSES[name]:
        problems.append(f"data.num_classes={classes!r}: data={name} has "
                        f"{CIFAR_CLASSES[name]} classes (or leave it null)")
    if name in CIFAR_CLASSES:
        problems += [f"{key}={flat[key]!r}: only data=imagefolder takes it; drop it"
                     for key in IMAGEFOLDER_KEYS if key in flat]
    if flat.get("data.normalization") == "mixup_authors" and name != "cifar10":
        problems.append(f"data.normalization=mixup_authors: the Mixup authors' constants are "
                        f"CIFAR-10's; data={name} takes dataset")
    return problems


def check(config: Mapping[str, Any], models: Iterable[str], augmentations: Iterable[str],
          timm_check: Callable[[str], str | None] | None = None) -> None:
    """Raise ConfigError with every problem, one per line, if there are any."""
    problems = validate(config, models, augmentations, timm_check)
    if problems:
        raise ConfigError("\n".join(problems))
