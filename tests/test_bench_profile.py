"""bench --profile: the phases of the trainer's step, and the GPU's busy time."""

from __future__ import annotations

import json
from types import SimpleNamespace

from torch.autograd import DeviceType

from mixup_bench import bench
from mixup_bench.bench.profile import SECTIONS, device_busy_us


def test_cpu_profile_times_every_phase_of_the_step(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXUP_BENCH_DATA", str(tmp_path / "no_data"))  # random images
    out = tmp_path / "profile"
    code = bench.main(["--device", "cpu", "--profile", "--dry-run", "--batch-sizes", "2,4",
                       "--warmup", "1", "--steps", "2", "--out", str(out)])
    assert code == 0
    results = json.loads((out / "profile.json").read_text())
    assert [batch["batch_size"] for batch in results["batches"]] == [2, 4]
    for batch in results["batches"]:
        assert batch["aug"] == "mixup" and batch["steps"] == 2
        assert set(batch["host_ms_per_step"]) == set(SECTIONS)
        assert all(value > 0 for value in batch["host_ms_per_step"].values())
        # On a CPU the phases are the step. Outside them are only the loop's own Python (the
        # stop poll, the profiler's range bookkeeping) and the epoch's one sync: 0.1% of
        # the profiled time on a 2-core EPYC (batches 2 and 4, 2026-12-06), so 10% is room
        # for a faster machine, not for a phase left out.
        assert 0.9 * batch["profiled_step_ms"] < sum(batch["host_ms_per_step"].values()) \
            <= 1.05 * batch["profiled_step_ms"]
        assert batch["device_ms_per_step"] is None and batch["device_busy_fraction"] is None
        assert "aten::convolution_backward" in batch["top_table"]
    markdown = (out / "profile.md").read_text()
    assert "## Batch 2, mixup" in markdown and "## Batch 4, mixup" in markdown
    assert "host ms/step: batch" in markdown
    assert not (out / "bench.json").exists()  # a profile, not the timing bench


def event(name: str, start: float, end: float, device=DeviceType.CUDA, annotation=False):
    return SimpleNamespace(name=name, device_type=device, is_user_annotation=annotation,
                           time_range=SimpleNamespace(start=start, end=end))


def test_device_busy_time_is_the_union_of_kernel_intervals():
    events = [event("sm90_xmma_fprop", 0, 10), event("elementwise", 5, 12),  # overlap: 12
              event("Memcpy DtoD", 20, 23),  # 3
              event("forward", 0, 30), event("Optimizer.step#SGD.step", 25, 40),  # ranges
              event("my_range", 0, 50, annotation=True),
              event("aten::conv2d", 0, 100, device=DeviceType.CPU)]
    assert device_busy_us(events) == 15
    assert device_busy_us([]) == 0
