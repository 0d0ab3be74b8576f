"""Imported by every Python process of a test's sweep (tests/fake_gpus is on PYTHONPATH):
the jobs see FAKE_GPUS GPUs when they lease one, then train on the CPU.

Only the device count is fake: train.runtime.resolve_device runs as it is, so the lease
comes from the real lease_gpu and is released by the real Runtime.release. Each lease is
logged to LEASE_LOG (JSON lines) after it is taken and before it is given back, so the
logged intervals lie inside the real ones.

With LEASE_RENDEZVOUS_S set, a job gives its lease back only once two leases are logged
(or that many seconds have passed): the test's jobs last a fraction of a second, and on a
loaded machine two parallel workers could otherwise run one after the other, so that no
two leases would be held at once and exclusivity would go unchecked. A launcher that
really ran the jobs one at a time still shows no overlap (after the wait), and fails.
"""

from __future__ import annotations

import json
import os
import time

if os.environ.get("FAKE_GPUS"):
    import torch

    from mixup_bench.train import runtime

    _real_resolve_device = runtime.resolve_device

    def _record(event: str, index: int) -> None:
        with open(os.environ["LEASE_LOG"], "a") as handle:
            handle.write(json.dumps({"event": event, "index": index, "pid": os.getpid(),
                                     "time": time.time()}) + "\n")

    def _leases_logged() -> int:
        with open(os.environ["LEASE_LOG"]) as handle:
            return sum(json.loads(line)["event"] == "lease" for line in handle if line.strip())

    def _wait_for_a_second_lease() -> None:
        deadline = time.time() + float(os.environ.get("LEASE_RENDEZVOUS_S", "0"))
        while time.time() < deadline and _leases_logged() < 2:
            time.sleep(0.05)

    def resolve_device(requested: str):
        saved = torch.cuda.is_available, torch.cuda.device_count
        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: int(os.environ["FAKE_GPUS"])
        try:
            device, lease = _real_resolve_device(requested)
        finally:
            torch.cuda.is_available, torch.cuda.device_count = saved
        if lease is None:
            return device, None
        _record("lease", device.index)
        give_back = lease.release
        released = []

        def release(*args, **kwargs):
            if not released:  # the run's release, not FileLock.__del__'s after it
                released.append(True)
                _wait_for_a_second_lease()
                _record("release", device.index)
            return give_back(*args, **kwargs)

        lease.release = release
        return torch.device("cpu"), lease

    runtime.resolve_device = resolve_device
