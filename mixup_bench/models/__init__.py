"""Models by name: a registry that refuses duplicates and lists the valid names."""

from . import preact, resnet  # noqa: E402,F401  (register the ResNets)
from .registry import (
    build_model,
    init_record,
    mixing_stages,
    model_names,
    register_model,
    timm_problem,
)

__all__ = ["build_model", "init_record", "mixing_stages", "model_names", "register_model",
           "timm_problem"]
