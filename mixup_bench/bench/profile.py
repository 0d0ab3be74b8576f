"""`mixup-bench bench --profile`: where a training step's time goes, to explain a speed gap.

For the fast setting (the trainer's defaults on the device) at each batch
size with Mixup, it times `steps` training steps without the profiler, then
runs the same number under torch.profiler with each phase of the trainer's
own step marked (batch, mix, forward, backward, optimizer, metrics; see
train.loop.train_one_epoch). It reports:

- wall milliseconds per step, unprofiled and profiled (the profiler's own cost);
- host milliseconds per step in each phase: the time Python and the launch
  path spend there (on CUDA the kernels run asynchronously behind it);
- on CUDA, device milliseconds per step (the sum of kernel and copy time) and
  the device-busy fraction of the profiled wall time: well under 1 means the
  GPU waits for the host (launch overhead: CUDA graphs or compilation help),
  near 1 means the kernels themselves are the limit;
- the operators (CPU) or kernels (CUDA) that take the most time.

Results go to OUT/profile.md and OUT/profile.json.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from .plan import Plan, log, switch_aug

SECTIONS = ("batch", "mix", "forward", "backward", "optimizer", "metrics")
TOP_ROWS = 20
HOST_BOUND_BELOW = 0.8  # device-busy fraction under which the step waits on the host


def device_busy_us(events: Any) -> float:
    """Microseconds in which at least one kernel, copy or memset ran on the GPU.

    The union of the device events' intervals: summing per-operator device
    times would count a kernel twice (as itself and in the operator that
    launched it), and the user ranges (the step's phases, the optimizer's
    own) appear on the device timeline too, spanning the kernels inside them.
    """
    from torch.autograd import DeviceType

    intervals = sorted((event.time_range.start, event.time_range.end) for event in events
                       if event.device_type == DeviceType.CUDA
                       and not getattr(event, "is_user_annotation", False)
                       and event.name not in SECTIONS
                       and not event.name.startswith(("Optimizer.", "ProfilerStep")))
    busy, reach = 0.0, float("-inf")
    for start, end in intervals:
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def _profile_batch_size(plan: Plan, trainee, train, batch_size: int, aug: str,
                        defaults: dict[str, Any]) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from .measure import synchronize, training_steps

    steps_count = plan.steps
    _, _, steps = training_steps(trainee, train, batch_size, aug, defaults)
    steps(plan.warmup)
    synchronize(plan.device)
    start = time.perf_counter()
    steps(steps_count)
    synchronize(plan.device)
    wall = time.perf_counter() - start

    activities = [ProfilerActivity.CPU]
    cuda = plan.device.type == "cuda"
    if cuda:
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        start = time.perf_counter()
        steps(steps_count, section=record_function)  # each phase a profiler range
        synchronize(plan.device)
        profiled_wall = time.perf_counter() - start
    events = profiler.key_averages()
    host = {name: sum(e.cpu_time_total for e in events if e.key == name) / 1e3 / steps_count
            for name in SECTIONS}
    result: dict[str, Any] = {
        "batch_size": batch_size, "aug": aug, "steps": steps_count, "warmup": plan.warmup,
        "step_ms": 1e3 * wall / steps_count, "images_per_s": steps_count * batch_size / wall,
        "profiled_step_ms": 1e3 * profiled_wall / steps_count, "host_ms_per_step": host,
        "device_ms_per_step": None, "device_busy_fraction": None}
    if cuda:
        device_ms = device_busy_us(profiler.events()) / 1e3 / steps_count
        result["device_ms_per_step"] = device_ms
        # Against the unprofiled step: the profiler's own host cost would make the GPU look
        # idler than it is. Kernel times under the profiler are close to their own.
        result["device_busy_fraction"] = min(device_ms / result["step_ms"], 1.0)
        result["device_busy_fraction_profiled"] = device_ms / result["profiled_step_ms"]
    sort_by = "self_cpu_time_total"
    if cuda:
        sort_by = ("self_device_time_total" if hasattr(events[0], "self_device_time_total")
                   else "self_cuda_time_total")
    result["top_table"] = events.table(sort_by=sort_by, row_limit=TOP_ROWS,
                                       max_name_column_width=60)
    log(f"profile batch {batch_size}: {result['step_ms']:.2f} ms/step unprofiled, "
        f"{result['profiled_step_ms']:.2f} profiled")
    if cuda:
        torch.cuda.empty_cache()
    return result


def run_profile(plan: Plan, command: str) -> dict[str, Any]:
    """Profile the fast setting at each batch size; returns what profile.json holds, and
    writes it after each batch size (a run stopped by a time limit keeps what it has)."""
    from dataclasses import asdict

    from ..train import environment
    from .measure import build_trainee, fast_switches, load_data, project_defaults

    train, _, data = load_data(plan)
    defaults = project_defaults()
    fast = fast_switches(plan.device, plan.compile)
    trainee = build_trainee(plan, fast, defaults)
    train = train.to(plan.device)
    aug = switch_aug(plan)
    results = {"command": command,
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "environment": environment(trainee.runtime, data["checksums"] or "synthetic"),
               "data": data, "fast": asdict(fast), "batches": []}
    for batch_size in plan.batch_sizes:
        results["batches"].append(_profile_batch_size(plan, trainee, train, batch_size, aug,
                                                      defaults))
        write_profile(plan.out, results)
    return results


def _verdict(batch: dict[str, Any]) -> str:
    busy = batch["device_busy_fraction"]
    if busy is None:
        return "CPU run: the host does all the work; the phases show where it goes."
    if busy < HOST_BOUND_BELOW:
        return (f"the GPU is busy {100 * busy:.0f}% of the step: it waits for the host "
                "(Python and kernel launches); CUDA graphs (trainer.compile=true "
                "trainer.compile_mode=reduce-overhead) or fewer, fused kernels "
                "(trainer.compile=true) should help")
    return (f"the GPU is busy {100 * busy:.0f}% of the step: the kernels are the limit; "
            "see which ones below (bf16 convolutions, batch norm, elementwise)")


def render(results: dict[str, Any]) -> str:
    environment, fast = results["environment"], results["fast"]
    lines = [f"# mixup-bench bench --profile: {environment['device_name']} "
             f"({environment['device']})", "",
             f"- date: {results['date']}; command: `{results['command']}`",
             f"- torch {environment['torch']}, CUDA {environment['cuda']}, cuDNN "
             f"{environment['cudnn']}; git {environment['git_commit'] or 'unknown'}",
             f"- setting: {fast}", f"- data: {results['data']['source']}", "",
             "Host ms are the time the Python thread spends in each phase of a step; on CUDA "
             "kernels run behind it, so the phases add up to the launch cost, not the step.",
             ""]
    for batch in results["batches"]:
        host = batch["host_ms_per_step"]
        device = batch["device_ms_per_step"]
        lines += [
            f"## Batch {batch['batch_size']}, {batch['aug']} ({batch['steps']} steps after "
            f"{batch['warmup']} warm-up)", "",
            f"- {batch['step_ms']:.2f} ms/step unprofiled ({batch['images_per_s']:,.0f} img/s),"
            f" {batch['profiled_step_ms']:.2f} ms/step profiled",
            "- host ms/step: " + ", ".join(f"{name} {host[name]:.2f}" for name in SECTIONS)
            + f" (sum {sum(host.values()):.2f})",
            *([f"- device ms/step (kernels and copies): {device:.2f}; busy "
               f"{100 * batch['device_busy_fraction']:.0f}% of the unprofiled step, "
               f"{100 * batch['device_busy_fraction_profiled']:.0f}% of the profiled one"]
              if device else []),
            f"- {_verdict(batch)}", "", "```", batch["top_table"].rstrip(), "```", ""]
    return "\n".join(lines)


def write_profile(out, results: dict[str, Any]) -> str:
    from ..jsonio import write_json_atomic

    markdown = render(results)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "profile.json", results)
    (out / "profile.md").write_text(markdown)
    return markdown
