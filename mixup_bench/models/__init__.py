"""Models by name: a registry that refuses duplicates and lists the valid names."""

from . import resnet  # noqa: E402,F401  (registers the ResNets)
from .registry import build_model, mixing_stages, model_names, register_model

__all__ = ["build_model", "mixing_stages", "model_names", "register_model"]
