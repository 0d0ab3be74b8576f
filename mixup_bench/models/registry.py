"""The model registry: name -> builder(num_classes, dropout, *, zero_init_last) -> nn.Module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

Builder = Callable[..., nn.Module]  # (num_classes, dropout, *, zero_init_last=False)
_MODELS: dict[str, Builder] = {}
_INIT: dict[str, dict[str, str]] = {}
# timm modules whose models take `zero_init_last` (ResNet and ResNetV2 and their variants).
TIMM_ZERO_INIT_MODULES = ("resnet", "resnetv2")


def register_model(name: str,
                   init: dict[str, str] | None = None) -> Callable[[Builder], Builder]:
    """Decorator: make a builder available as model=<name>.

    `init` says how the builder initialises the weights, for summary.json:
    `weights`, `stem`, and `zero_init_last` (what model.zero_init_last=true zeroes).
    """

    def add(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = builder
        _INIT[name] = dict(init or {})
        return builder

    return add


def model_names() -> list[str]:
    return sorted(_MODELS)


def timm_problem(timm_name: str) -> str | None:
    """What is wrong with model.name=timm:<timm_name>, in one line; None if timm has it.

    A pretrained tag (resnet18.a1_in1k) names the same architecture; hf-hub: names would
    be fetched from the network and are refused like any name timm's registry lacks.
    """
    import difflib

    import timm

    if timm_name and timm.is_model(timm_name):
        return None
    names = timm.list_models()
    close = difflib.get_close_matches(timm_name, names, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(f'timm:{name}' for name in close)}?)" if close else ""
    return (f"timm {timm.__version__} has no model {timm_name!r}{hint}; expected "
            "timm:<a name from timm.list_models()>")


def _timm_takes_zero_init_last(timm_name: str) -> bool:
    import timm.models

    return timm.models.is_model_in_modules(timm_name, TIMM_ZERO_INIT_MODULES)


def build_model(name: str, num_classes: int, dropout: float = 0.0,
                zero_init_last: bool = False) -> nn.Module:
    """Build a registered model, or any timm model as `timm:<timm name>`.

    zero_init_last: zero-init the last layer of each residual branch (see each
    builder); timm: names pass it to timm's ResNets and ResNetV2s and ignore it
    for other models.
    """
    if name.startswith("timm:"):
        import timm

        timm_name = name[len("timm:"):]
        extra = ({"zero_init_last": zero_init_last}
                 if _timm_takes_zero_init_last(timm_name) else {})
        return timm.create_model(timm_name, num_classes=num_classes, drop_rate=dropout, **extra)
    if name not in _MODELS:
        raise ValueError(f"model.name={name!r}: expected one of {', '.join(model_names())}")
    return _MODELS[name](num_classes, dropout, zero_init_last=zero_init_last)


def init_record(name: str, zero_init_last: bool) -> dict[str, Any]:
    """How `build_model(name, ..., zero_init_last)` initialises the weights, JSON-ready.

    zero_init_last is None where the model has no such switch (a timm: model
    other than a ResNet); zero_init_last_target says what the switch zeroes.
    """
    if name.startswith("timm:"):
        timm_name = name[len("timm:"):]
        takes = _timm_takes_zero_init_last(timm_name)
        return {"zero_init_last": bool(zero_init_last) if takes else None,
                "weights": f"timm default for {timm_name}", "stem": "timm default",
                "zero_init_last_target": "timm's zero_init_last" if takes else None}
    info = _INIT.get(name, {})
    return {"zero_init_last": bool(zero_init_last),
            "weights": info.get("weights"), "stem": info.get("stem"),
            "zero_init_last_target": info.get("zero_init_last")}


def mixing_stages(model: nn.Module) -> list[nn.Module]:
    """The modules after which hidden features may be mixed: stages 1, 2, 3 of a ResNet.

    Manifold Mixup (Verma et al. 2019) mixes at the input or after one of the
    first stages; this names those stages for timm's ResNet and the Mixup
    authors' PreAct ResNet (layer1..) and timm's ResNetV2 (stages[0..]).
    """
    if all(hasattr(model, name) for name in ("layer1", "layer2", "layer3")):
        return [model.layer1, model.layer2, model.layer3]
    stages = getattr(model, "stages", None)
    if stages is not None and len(stages) >= 3:
        return list(stages)[:3]
    raise ValueError(f"{type(model).__name__}: no ResNet stages to mix features after; "
                     "aug=manifold_mixup needs model=resnet18, preact_resnet18 or "
                     "preact_resnet18_timm")
