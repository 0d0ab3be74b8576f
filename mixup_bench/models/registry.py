"""The model registry: name -> builder(num_classes, dropout) -> nn.Module."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

Builder = Callable[[int, float], nn.Module]
_MODELS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make a builder available as model=<name>."""

    def add(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = builder
        return builder

    return add


def model_names() -> list[str]:
    return sorted(_MODELS)


def build_model(name: str, num_classes: int, dropout: float = 0.0) -> nn.Module:
    """Build a registered model, or any timm model as `timm:<timm name>`."""
    if name.startswith("timm:"):
        import timm

        return timm.create_model(name[len("timm:"):], num_classes=num_classes, drop_rate=dropout)
    if name not in _MODELS:
        raise ValueError(f"model.name={name!r}: expected one of {', '.join(model_names())}")
    return _MODELS[name](num_classes, dropout)


def mixing_stages(model: nn.Module) -> list[nn.Module]:
    """The modules after which hidden features may be mixed: stages 1, 2, 3 of a ResNet.

    Manifold Mixup (Verma et al. 2019) mixes at the input or after one of the
    first stages; this names those stages for timm's ResNet (layer1..) and
    ResNetV2 (stages[0..]).
    """
    if all(hasattr(model, name) for name in ("layer1", "layer2", "layer3")):
        return [model.layer1, model.layer2, model.layer3]
    stages = getattr(model, "stages", None)
    if stages is not None and len(stages) >= 3:
        return list(stages)[:3]
    raise ValueError(f"{type(model).__name__}: no ResNet stages to mix features after; "
                     "aug=manifold_mixup needs model=resnet18 or preact_resnet18")
