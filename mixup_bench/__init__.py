"""mixup-bench: reproduce Mixup / CutMix benchmarks and check the published claims."""

__version__ = "0.1.0"
