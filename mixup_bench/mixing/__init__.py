"""The mixing stage of a run: a labelled batch -> mixed images and soft targets.

Public face: `build_mixer(name, num_classes, alpha, **aug_options)`,
`mixer_names()`, `register_mixer`, the `Mixer`/`MixingBase` base classes,
`MixedBatch` and `soft_target_cross_entropy`. Each method family lives in
its own module and registers itself when imported below; adding a method is
one module here plus one YAML in conf/aug/ (see fmix.py, resizemix.py).
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Mixer, MixingBase, build_mixer, mixer_names, register_mixer
from .batch import MixedBatch
from .guided import ModelGuide, ModelGuidedMixer
from .ops import soft_target_cross_entropy
from .options import OptionError

# A new method family is one module here (each registers itself): nothing else to edit.
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MixedBatch", "Mixer", "MixingBase", "ModelGuide", "ModelGuidedMixer",
           "OptionError", "build_mixer", "mixer_names",
           "register_mixer", "soft_target_cross_entropy"]
