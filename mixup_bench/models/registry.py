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
