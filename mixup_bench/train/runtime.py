"""The machine a run uses: device, precision, memory layout, and a record of the environment."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # fp32, bf16 or fp16
    channels_last: bool
    lease: Any = field(default=None, compare=False)  # the GPU lock held for this run
    # torch.compile replays CUDA graphs: each step must tell it where a new one begins
    cuda_graphs: bool = False

    def with_cuda_graphs(self, cuda_graphs: bool) -> Runtime:
        return replace(self, cuda_graphs=cuda_graphs)

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        """The autocast context for forward passes (disabled for fp32)."""
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.float32,
                              enabled=dtype is not None)


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_fast_bf16() -> bool:
    """True where the CPU computes bf16 matrix products natively (AMX or AVX512-BF16).

    Without them bf16 autocast is emulated and slower than fp32: on a 2-core
    AVX512 Xeon without either, ResNet-18 trained at 19 img/s in bf16 against
    50 img/s in fp32 (batch 128, measured 2026-11-26).
    """
    flags = _cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags)


def lease_gpu(count: int, directory: str | None = None, wait_seconds: float = 0.0):
    """Hold a lock on the first free GPU index; return (index, lock).

    Parallel sweep jobs on one machine (joblib workers are reused processes)
    each take a different GPU this way; the lock goes with the process, even
    on SIGKILL, and is released at the end of the run. Raises TimeoutError if
    every GPU stays taken for wait_seconds.
    """
    from filelock import FileLock, Timeout

    directory = directory or tempfile.gettempdir()
    deadline = time.monotonic() + wait_seconds
    while True:
        for index in range(count):
            lock = FileLock(f"{directory}/mixup-bench-gpu{index}.lock", timeout=0)
            try:
                lock.acquire()
            except Timeout:
                continue
            return index, lock
        if time.monotonic() >= deadline:
            raise TimeoutError(f"all {count} GPUs are leased by other mixup-bench runs")
        time.sleep(1.0)


def resolve_device(requested: str) -> tuple[torch.device, Any]:
    """The device to train on, and the GPU lease when `auto` picks one of several GPUs."""
    if requested == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu"), None
        if torch.cuda.device_count() == 1:
            return torch.device("cuda", 0), None
        index, lock = lease_gpu(torch.cuda.device_count(), wait_seconds=3600)
        return torch.device("cuda", index), lock
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.device={requested}: no CUDA device is available here; "
                              "use trainer.device=cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"trainer.device={requested}: only {torch.cuda.device_count()} "
                              "CUDA device(s) here")
        if device.index is None:
            device = torch.device("cuda", 0)
    return device, None


# The first compute capability with bf16 tensor cores (Ampere: A100 8.0, RTX 30xx 8.6).
BF16_TENSOR_CORES = (8, 0)


def cuda_has_fast_bf16(device: torch.device) -> bool:
    """True where the GPU multiplies bf16 on tensor cores: compute capability >= 8.0.

    Not torch.cuda.is_bf16_supported(): it also counts emulation, and says True on
    V100 (7.0) and T4 (7.5), which have fp16 tensor cores but none for bf16.
    """
    return tuple(torch.cuda.get_device_capability(device)) >= BF16_TENSOR_CORES


def resolve_runtime(device: str, precision: str, channels_last: str | bool) -> Runtime:
    """Turn the trainer's auto settings into concrete choices for this machine.

    precision=auto: bf16 on a GPU with bf16 tensor cores (compute capability >= 8.0),
    fp16 with a grad scaler on older GPUs; on a CPU bf16 where it is native, else fp32.
    """
    resolved, lease = resolve_device(device)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if precision == "auto":
        if resolved.type == "cuda":
            precision = "bf16" if cuda_has_fast_bf16(resolved) else "fp16"
        else:
            precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    if channels_last == "auto":
        # On everywhere: cuDNN's and oneDNN's convolutions both prefer NHWC. On a 2-core
        # Xeon without AMX, fp32 ResNet-18 training (batch 128) ran at 67-70 img/s with it
        # and 56-61 without (3 interleaved rounds of 5 steps each, 2026-11-26).
        channels_last = True
    return Runtime(resolved, precision, bool(channels_last), lease)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, if it is a git checkout."""
    source = Path(__file__).resolve().parents[2]
    try:
        result = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def tf32_record() -> dict[str, Any]:
    """Whether fp32 convolutions and matrix products may use TF32 (Ampere or later GPUs):
    torch's flags (cuDNN's is on by default), and NVIDIA_TF32_OVERRIDE=0, which turns TF32
    off in cuDNN and cuBLAS whatever the flags say."""
    return {"cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
            "cuda_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE")}


def environment(runtime: Runtime, data_checksums: str) -> dict[str, Any]:
    import timm
    import torchvision

    from .. import __version__

    return {
        "device": str(runtime.device),
        "device_name": device_name(runtime.device),
        "precision": runtime.precision,
        "channels_last": runtime.channels_last,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "tf32": tf32_record(),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "git_commit": git_commit(),
        "data_checksums": data_checksums,
        "mixup_bench": __version__,
    }
