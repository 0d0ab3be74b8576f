"""The CUDA path checked on a CPU: precision choice, fused SGD under fp16, RNG states across
devices, Manifold Mixup under torch.compile, one compile setting, host-sync counting.

CUDA's queries and generators are mocked where a GPU would answer; what only a GPU can
show (real syncs, bf16/fp16 kernels, pinned copies) is left to scripts/gpu_check.sh.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch

from mixup_bench.bench.syncs import count_syncs
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import build_mixer
from mixup_bench.mixing.manifold import mix_after_stage
from mixup_bench.train import checkpoint, runtime
from mixup_bench.train.loop import check_compilable
from mixup_bench.train.parts import build_optimizer, load_optimizer_state, sgd_kernels

OPTIM = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False}


# --- 1. precision=auto: bf16 only with bf16 tensor cores ----------------------------------


@pytest.mark.parametrize("capability, precision", [
    ((6, 0), "fp16"),  # P100
    ((7, 0), "fp16"),  # V100: is_bf16_supported() says True (emulated)
    ((7, 5), "fp16"),  # T4: likewise
    ((8, 0), "bf16"),  # A100
    ((8, 6), "bf16"),  # RTX 30xx, A10
    ((9, 0), "bf16"),  # H100, H200
])
def test_auto_precision_takes_bf16_from_compute_capability_8(monkeypatch, capability, precision):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    resolved = runtime.resolve_runtime("cuda", "auto", "auto")
    assert resolved.device == torch.device("cuda", 0) and resolved.precision == precision
    assert runtime.resolve_runtime("cuda", "bf16", "auto").precision == "bf16"  # as asked


# --- 4. fp16: fused SGD, so that GradScaler.step reads nothing back -----------------------


def test_fp16_on_cuda_steps_with_fused_sgd_and_a_resume_keeps_it():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert sgd_kernels("foreach", "fp16", cuda) == "fused"
    assert sgd_kernels("loop", "fp16", cuda) == "fused"
    assert sgd_kernels("foreach", "bf16", cuda) == "foreach"
    assert sgd_kernels("foreach", "fp16", cpu) == "foreach"  # no device to wait for
    saved = build_optimizer(torch.nn.Linear(4, 2), OPTIM, "foreach")
    resumed = build_optimizer(torch.nn.Linear(4, 2), OPTIM, "fused")
    load_optimizer_state(resumed, saved.state_dict())
    assert all(group["fused"] and not group["foreach"] for group in resumed.param_groups)


@pytest.mark.parametrize("step, reads", [("foreach", True), ("fused", False)])
def test_grad_scaler_reads_found_inf_back_with_foreach_sgd_only(monkeypatch, step, reads):
    """On the CPU (the same GradScaler code as on CUDA): with foreach SGD, scaler.step calls
    .item() on found_inf, a host synchronisation on a GPU; fused SGD gets it as a tensor."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = build_optimizer(model, OPTIM, step)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    scaler.scale(model(torch.randn(8, 4)).square().mean()).backward()
    before = [parameter.detach().clone() for parameter in model.parameters()]
    items = []
    original = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: items.append(1) or original(self))
    scaler.step(optimizer)
    scaler.update()
    monkeypatch.undo()
    assert bool(items) is reads
    after = list(model.parameters())
    assert all(not torch.equal(old, new) for old, new in zip(before, after, strict=True))


# --- 5. RNG states across device types ----------------------------------------------------


class FakeCudaGenerator:
    """Stands in for torch.Generator("cuda:N"): Philox keeps a 16-byte state, and a state
    of another size is refused as torch refuses it."""

    def __init__(self, index: int = 0) -> None:
        self.device = torch.device("cuda", index)
        self.state = torch.arange(16, dtype=torch.uint8)
        self.seeds: list[int] = []

    def get_state(self) -> torch.Tensor:
        return self.state.clone()

    def set_state(self, state: torch.Tensor) -> None:
        if state.numel() != 16:
            raise RuntimeError("RNG state is wrong size")
        self.state = state.clone()

    def manual_seed(self, seed: int) -> FakeCudaGenerator:
        self.seeds.append(seed)
        self.state = torch.full((16,), seed % 251, dtype=torch.uint8)
        return self


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda's global-stream calls, recorded; set_rng_state_all must not be used."""
    calls: dict[str, list] = {"set": [], "seed": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state",
                        lambda device=None: torch.full((16,), 7, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device=None: calls["set"].append((state.clone(), device)))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls["seed"].append(seed))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())

    def refuse(*args, **kwargs):
        raise AssertionError("every GPU's state is neither saved nor restored")

    monkeypatch.setattr(torch.cuda, "get_rng_state_all", refuse)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", refuse)
    return calls


def cpu_generators() -> dict[str, torch.Generator]:
    return {"loader": torch.Generator().manual_seed(1), "mix": torch.Generator().manual_seed(2)}


def test_a_cpu_checkpoint_resumes_on_cuda_reproducibly(fake_cuda):
    saved_generators = cpu_generators()
    saved_generators["mix"].manual_seed(5)
    state = checkpoint.rng_state(saved_generators)
    assert state["device_types"] == {"loader": "cpu", "mix": "cpu"}
    assert "torch_device" not in state and "torch_cuda" not in state
    resumed = []
    for _ in range(2):
        generators = {"loader": FakeCudaGenerator(), "mix": torch.Generator()}
        seeded = checkpoint.restore_rng(state, generators)  # no "RNG state is wrong size"
        resumed.append(generators)
        assert torch.equal(generators["mix"].get_state(), saved_generators["mix"].get_state())
        assert [entry.split()[0] for entry in seeded] == ["loader", "global"]
    assert resumed[0]["loader"].seeds == resumed[1]["loader"].seeds  # the same seed each time
    assert fake_cuda["seed"][0] == fake_cuda["seed"][1] and fake_cuda["set"] == []


def test_a_cuda_checkpoint_resumes_exactly_on_cuda_and_reproducibly_on_the_cpu(fake_cuda):
    loader = FakeCudaGenerator(1)
    loader.manual_seed(42)
    state = checkpoint.rng_state({"loader": loader, "mix": torch.Generator().manual_seed(3)})
    assert state["device_types"] == {"loader": "cuda", "mix": "cpu"}
    assert state["torch_device"]["type"] == "cuda"
    on_gpu = {"loader": FakeCudaGenerator(0), "mix": torch.Generator()}  # another GPU index
    assert checkpoint.restore_rng(state, on_gpu) == []
    assert torch.equal(on_gpu["loader"].get_state(), loader.get_state())
    (restored, device), = fake_cuda["set"]
    assert torch.equal(restored, state["torch_device"]["state"]) and device == torch.device(
        "cuda", 0)
    on_cpu = cpu_generators()
    seeded = checkpoint.restore_rng(state, on_cpu)
    assert seeded and seeded[0].startswith("loader generator (cuda state, now cpu)")
    again = cpu_generators()
    checkpoint.restore_rng(state, again)
    assert torch.equal(on_cpu["loader"].get_state(), again["loader"].get_state())


def test_an_old_checkpoint_of_more_gpus_never_indexes_a_missing_one(fake_cuda):
    """Older checkpoints hold torch.cuda.get_rng_state_all(): one state per visible GPU."""
    mix = torch.Generator().manual_seed(9)
    old = {"loader": torch.full((16,), 3, dtype=torch.uint8), "mix": mix.get_state(),
           "torch_cpu": torch.get_rng_state(),
           "torch_cuda": [torch.full((16,), index, dtype=torch.uint8) for index in range(4)]}
    checkpoint.restore_rng(old, {"loader": FakeCudaGenerator(0), "mix": torch.Generator()})
    (state, device), = fake_cuda["set"]
    assert torch.equal(state, old["torch_cuda"][0]) and device == torch.device("cuda", 0)
    two = {**old, "torch_cuda": old["torch_cuda"][:2]}
    seeded = checkpoint.restore_rng(two, {"loader": FakeCudaGenerator(3), "mix": torch.Generator()})
    assert len(fake_cuda["set"]) == 1 and seeded == ["global CUDA stream of cuda:3 (no CUDA "
                                                     "state saved)"]


# --- 3. Manifold Mixup and torch.compile ---------------------------------------------------


class Stages(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer1, self.layer2, self.layer3 = (torch.nn.Linear(4, 4) for _ in range(3))

    def forward(self, x):
        return self.layer3(self.layer2(self.layer1(x)))


def test_compiled_networks_ignore_the_manifold_hook_so_the_trainer_refuses_them():
    """Why: compiled (Dynamo, eager backend) against eager on the CPU, the hook added after
    the first call. If torch starts honouring such hooks this fails, and the refusal can go."""
    model, images = Stages(), torch.randn(4, 4)
    compiled = torch.compile(model, backend="eager")
    plain = compiled(images)
    with mix_after_stage(model, 1, torch.tensor([1, 0, 3, 2]), 0.3):
        assert not torch.allclose(model(images), plain)  # eager mixes
        assert torch.allclose(compiled(images), plain)  # compiled does not (no recompile)
    torch._dynamo.reset()
    manifold = build_mixer("manifold_mixup", 10, 2.0)
    with pytest.raises(ConfigError) as refused:
        check_compilable(True, manifold)
    message = str(refused.value)
    assert message.startswith("aug=manifold_mixup with trainer.compile=true")
    assert "\n" not in message and "trainer.compile=false" in message
    check_compilable(False, manifold)  # eager: fine
    check_compilable(True, build_mixer("mixup", 10, 0.2))  # pixels: fine


# --- 6. one torch.compile `dynamic` for the trainer and the bench --------------------------


def test_the_trainer_and_the_bench_compile_with_the_same_dynamic(cifar_root, tmp_path,
                                                                 monkeypatch):
    from hydra import compose, initialize_config_module

    from mixup_bench.bench import measure
    from mixup_bench.bench.plan import Plan, Switches
    from mixup_bench.train import parts
    from mixup_bench.train.run import run

    from .conftest import TINY

    seen = []

    def record(model, **kwargs):
        seen.append(kwargs)
        return model

    monkeypatch.setattr(torch, "compile", record)
    plan = Plan(device=torch.device("cpu"), batch_sizes=[2], augs=["mixup"], warmup=0, steps=1,
                eval_batch_size=2, eval_batches=1, workers=0, compile=True, mode="dry_run",
                data_root=None, out=tmp_path, note=None)
    measure.build_trainee(plan, Switches("fp32", True, True, False), measure.project_defaults())
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            f"data.root={cifar_root}", *TINY, "trainer.compile=true", "trainer.samples=false",
            "model=preact_resnet18"])
    assert run(cfg, tmp_path / "run")["status"] == "finished"
    bench_call, trainer_call = seen
    assert bench_call["dynamic"] is trainer_call["dynamic"] is parts.COMPILE_DYNAMIC


# --- 10. host synchronisations counted by phase --------------------------------------------


def test_syncs_are_counted_per_step_by_phase_and_apart_from_the_epochs_end():
    def steps(count, section):
        for step in range(count):
            with section("mix"):
                pass
            with section("optimizer"):
                warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
            if step % 2:  # between two phases: still a step's, not the epoch end's
                warnings.warn("called a synchronizing CUDA operation", UserWarning,
                              stacklevel=1)
        with section("epoch end"):
            warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)

    result = count_syncs(steps, 4, debug_mode=contextlib.nullcontext)
    assert result["syncs_per_step"] == 1.5 and result["syncs_at_epoch_end"] == 1
    assert result["syncs_by_phase"] == {"optimizer": 4, "outside the phases": 2, "epoch end": 1}
    assert result["examples"]["optimizer"] == "called a synchronizing CUDA operation"
    quiet = count_syncs(lambda count, section: None, 3, debug_mode=contextlib.nullcontext)
    assert quiet["syncs_per_step"] == 0 and quiet["syncs_by_phase"] == {}
