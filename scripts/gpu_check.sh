#!/usr/bin/env bash
# The whole GPU check, in one call on a bare GPU machine, in under 8 minutes:
#   1. nvidia-smi, versions
#   2. hydra-core / omegaconf / antlr wheels from .whl/ into $WORK/site
#   3. CIFAR-10 from .data/cifar10-jpeg.tar.xz into $WORK/cifar (JPEG copy: data.verify=false)
#   4. mixup-bench bench: fast vs classic, every speed switch, mixing overhead, host syncs
#      per training step under torch.cuda.set_sync_debug_mode("warn") (target 0), the
#      targets; the compiled settings are measured right after the default one, and
#      bench.md names what the time limit cut (bench.json and bench.md are rewritten after
#      each measurement: a cut keeps the rest)
#   5. mixup-bench bench --profile: where a step's time goes at batch 128 and 512
#   6. the Mixup paper's recipe (experiment=paper: 200 epochs, batch 128) with the setting
#      the bench found quickest for 200 epochs (speed_check --best-overrides), stopped by
#      SIGTERM after PAPER_SECONDS (the run records itself as preempted); its wall time is
#      projected from the epochs it completed
#   7. equivalence: 8 seeds with the trainer's default speed switches and 8 with them off
#      (fp32 with TF32 off through NVIDIA_TF32_OVERRIDE=0, NCHW, no cuDNN autotuning),
#      20% of the training set, 1 epoch each; decided on the paired training loss over
#      the run (same weights, batches and mixing per seed; only the arithmetic differs)
#   8. mixup-bench speed-check: the projection and the paired same-seed comparison
# Each step has its own time limit, and none runs past DEADLINE_SECONDS from the start.
#
# Before it, run scripts/prepare_device.sh HERE (it fills .whl/ and .data/). Then, with
# the device tool: run(command="bash scripts/gpu_check.sh", carry=[".whl", ".data"],
# timeout_s=560). What comes back from $OUT (the tool returns at most 8 files):
#   gpu_check.log, perf/bench.json, perf/bench.md, perf/profile.md, perf/profile.json,
#   speed_check.md, speed_check.json, runs.tar.gz (every run's summary, metrics, log, config)
#
# Check the script itself on a CPU machine (tiny data, dry-run sizes, CPU training):
#   make gpu-check-dry   (GPU_CHECK_DRY_RUN=1 PYTHON=.venv/bin/python scripts/gpu_check.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DRY_RUN=${GPU_CHECK_DRY_RUN:-0}
PYTHON=${PYTHON:-python3}
case "$PYTHON" in  # absolute, since the steps run from $WORK (a venv's link kept as it is)
    */*) PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" ;;
esac
OUT=${OUT:-$(mktemp -d /tmp/gpu_check_out.XXXXXX)}
WORK=${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
# Time limits in seconds. The CPU dry run gets limits that let every step finish on a
# 2-core CPU (a training step of 50 images there takes seconds): it checks the script, and
# a step cut by its limit would leave a part of it unchecked.
dry() { [ "$DRY_RUN" = 1 ] && echo "$1" || echo "$2"; }
DEADLINE_SECONDS=${DEADLINE_SECONDS:-$(dry 1500 500)}  # from the start; the device call has 560
BENCH_SECONDS=${BENCH_SECONDS:-$(dry 300 140)}      # SIGINT: the bench keeps what it measured
PROFILE_SECONDS=${PROFILE_SECONDS:-$(dry 180 35)}   # SIGINT: the profile keeps its finished sizes
PAPER_SECONDS=${PAPER_SECONDS:-$(dry 40 110)}        # then SIGTERM: the run is preempted
FAST_SWEEP_SECONDS=${FAST_SWEEP_SECONDS:-$(dry 360 50)}
SLOW_SWEEP_SECONDS=${SLOW_SWEEP_SECONDS:-$(dry 360 65)}
# After SIGTERM a run finishes its step (or evaluation), lets its last checkpoint land and
# writes summary.json before exiting 75; SIGKILL only after this grace. On a 2-core CPU a
# step of 50 images takes seconds, so 5 s killed runs that were exiting as planned.
TERM_GRACE_SECONDS=${TERM_GRACE_SECONDS:-$(dry 30 15)}
RUNS="$WORK/runs"
mkdir -p "$OUT" "$WORK" "$RUNS"

section() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
now() { date +%s.%N; }
limit() {  # limit SECONDS: SECONDS, or less so as to end (grace included) before the deadline
    local left=$((DEADLINE_SECONDS - SECONDS - 10 - TERM_GRACE_SECONDS))
    [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
enough() {  # enough SECONDS: is there time for a step that needs at least SECONDS?
    [ "$(limit "$1")" -ge "$1" ] || { echo "skipped: $(limit "$1") s left before the deadline"; false; }
}

environment() {
    section "machine"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
            --format=csv
    else
        echo "no nvidia-smi here"
    fi
    uptime
    "$PYTHON" -c "import sys, torch, torchvision, timm; print(sys.version.split()[0], \
torch.__version__, torchvision.__version__, timm.__version__, torch.version.cuda, \
torch.cuda.is_available())"
}

install() {
    section "wheels and source"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$WORK/site" "$REPO"/.whl/*.whl || return 1
    # The package maps conf/ to mixup_bench.conf (pyproject.toml); lay the source out the
    # same way, and run from $WORK so that `python -m` does not pick the checkout instead.
    mkdir -p "$WORK/src"
    cp -r "$REPO/mixup_bench" "$WORK/src/"
    cp -r "$REPO/conf" "$WORK/src/mixup_bench/conf"
    export PYTHONPATH="$WORK/site:$WORK/src"
    export PYTHONUNBUFFERED=1
    cd "$WORK" || return 1
    "$PYTHON" -c "import hydra, omegaconf, mixup_bench.conf, mixup_bench.bench; \
print('hydra', hydra.__version__, 'omegaconf', omegaconf.__version__)"
}

data() {
    section "CIFAR-10"
    local sizes=()
    [ "$DRY_RUN" = 1 ] && sizes=(--train-per-class 20 --test-per-class 10)
    "$PYTHON" "$REPO/.data/make_cifar10.py" "$WORK/cifar" --archive \
        "$REPO/.data/cifar10-jpeg.tar.xz" "${sizes[@]}"
}

bench() {
    section "bench"
    enough 30 || return 1
    local options=(--device cuda --data-root "$WORK/cifar" --out "$OUT/perf")
    [ "$DRY_RUN" = 1 ] && options=(--device cpu --dry-run --batch-sizes 2 --warmup 0
                                   --workers 1 --data-root "$WORK/cifar" --out "$OUT/perf")
    timeout -s INT -k "$TERM_GRACE_SECONDS" "$(limit "$BENCH_SECONDS")" \
        "$PYTHON" -m mixup_bench.cli bench "${options[@]}"
    local status=$?
    # 124: stopped at its limit, as planned; bench.json holds every setting it finished
    [ "$status" = 124 ] && echo "bench: stopped at its time limit; its files keep the rest"
    # The targets, host synchronisations per training step among them, and what was cut.
    [ -f "$OUT/perf/bench.md" ] && grep -E "^\| (training img|fast /|mixing|host|evaluation)|^- cut" \
        "$OUT/perf/bench.md"
    [ "$status" = 0 ] || [ "$status" = 124 ]
}

profile() {
    section "profile"
    enough 15 || return 1
    local options=(--device cuda --profile --steps 20 --data-root "$WORK/cifar" --out "$OUT/perf")
    [ "$DRY_RUN" = 1 ] && options=(--device cpu --profile --dry-run --batch-sizes 2 --warmup 1
                                   --steps 2 --data-root "$WORK/cifar" --out "$OUT/perf")
    timeout -s INT -k "$TERM_GRACE_SECONDS" "$(limit "$PROFILE_SECONDS")" \
        "$PYTHON" -m mixup_bench.cli bench "${options[@]}"
    local status=$?  # 124: stopped at its limit; profile.json keeps the batch sizes it finished
    [ "$status" = 124 ] && echo "profile: stopped at its time limit"
    [ "$status" = 0 ] || [ "$status" = 124 ]
}

train() {  # train SECONDS SIGNAL OVERRIDES...: one mixup-bench train call, CPU-sized if dry
    local seconds=$1 signal=$2
    shift 2
    local options=("$@" data.root="$WORK/cifar" data.verify=false data.download=false
                   trainer.progress=false)  # "$@" first: Hydra wants -m before the overrides
    [ "$DRY_RUN" = 1 ] && options+=(trainer.device=cpu trainer.batch_size=50
                                    trainer.eval_batch_size=100)
    # --preserve-status: a run stopped by SIGTERM exits 75 (preempted), not timeout's 124
    timeout --preserve-status -s "$signal" -k "$TERM_GRACE_SECONDS" "$(limit "$seconds")" \
        "$PYTHON" -m mixup_bench.cli train "${options[@]}"
}

best_setting() {  # the bench's quickest setting for 200 epochs at batch 128, as overrides
    BEST=()
    [ -f "$OUT/perf/bench.json" ] || return 0
    local batch=128
    [ "$DRY_RUN" = 1 ] && batch=2
    # At most 40% of the run's limit for compiling: the paper's model and its evaluation
    # compile again, which the bench's warm-up did not count, and the projection needs
    # at least two epochs after that.
    read -r -a BEST < <("$PYTHON" -m mixup_bench.cli speed-check --best-overrides \
        "$OUT/perf/bench.json" --batch-size "$batch" --epochs 200 \
        --max-warmup $((PAPER_SECONDS * 2 / 5)))
    local chosen=${BEST[*]:-defaults}  # (no apostrophe inside ${...:-}: bash quotes it)
    echo "setting: $chosen"
}

paper() {
    section "the paper recipe, stopped after ${PAPER_SECONDS}s"
    best_setting
    enough 30 || return 1
    PAPER_LAUNCHED=$(now)
    train "$PAPER_SECONDS" TERM experiment=paper aug=mixup "${BEST[@]}" \
        hydra.run.dir="$RUNS/paper"
    local status=$?
    PAPER_EXITED=$(now)
    echo "exit status $status (75: preempted by the time limit, as planned)"
    [ "$status" = 75 ] || [ "$status" = 0 ]
}

equivalence() {
    # Many seeds of a short run: each same-seed pair starts from the same weights and sees
    # the same batches and mixing, so its training loss over the run (hundreds of steps)
    # differs only by the arithmetic; speed_check decides on it (±0.05 nats).
    local epochs=1 fraction=0.2 seeds=0,1,2,3,4,5,6,7 status=0
    [ "$DRY_RUN" = 1 ] && { fraction=1.0; seeds=0,1,2,3; }
    local common=(-m seed=$seeds aug=mixup data.fraction=$fraction trainer.epochs=$epochs
                  trainer.samples=false)
    # The trainer's defaults (bf16, channels_last, cuDNN autotuning): what every run uses.
    section "equivalence: the default speed switches"
    if enough 20; then
        train "$FAST_SWEEP_SECONDS" TERM "${common[@]}" hydra.sweep.dir="$RUNS/eq_fast" \
            || status=$?
    fi
    # fp32 as IEEE fp32: cuDNN runs fp32 convolutions in TF32 by default on Ampere and
    # later; NVIDIA_TF32_OVERRIDE=0 turns that off in cuDNN and cuBLAS (summary.json's
    # environment.tf32 records it, speed_check.md shows it).
    section "equivalence: speed switches off (TF32 off)"
    if enough 20; then
        NVIDIA_TF32_OVERRIDE=0 train "$SLOW_SWEEP_SECONDS" TERM "${common[@]}" \
            trainer.precision=fp32 trainer.channels_last=false trainer.cudnn_benchmark=false \
            trainer.compile=false trainer.optimizer_step=foreach \
            hydra.sweep.dir="$RUNS/eq_slow" || status=$?
    fi
    return $status
}

summarise() {
    section "speed check"
    local inputs=()  # what the steps left; a missing one is reported as not run
    [ -d "$RUNS/eq_fast" ] && inputs+=(--fast-sweep "$RUNS/eq_fast")
    [ -d "$RUNS/eq_slow" ] && inputs+=(--slow-sweep "$RUNS/eq_slow")
    [ -d "$RUNS/paper" ] && inputs+=(--paper-run "$RUNS/paper" --launched-at "$PAPER_LAUNCHED"
                                     --exited-at "$PAPER_EXITED")
    "$PYTHON" -m mixup_bench.cli speed-check "${inputs[@]}" --out "$OUT"
    local status=$?
    tar -czf "$OUT/runs.tar.gz" -C "$WORK" --exclude=checkpoints --exclude=tb runs
    find "$OUT" -name '*.tmp' -delete  # a write cut by a limit: only 8 files come back
    return $status
}

main() {
    local started=$SECONDS failures=0
    PAPER_LAUNCHED=0 PAPER_EXITED=0 BEST=()
    environment
    install || { echo "FAILED: installing the wheels"; return 1; }
    data || { echo "FAILED: unpacking CIFAR-10"; return 1; }
    for step in bench profile paper equivalence summarise; do
        "$step" || { echo "FAILED (status $?): $step"; failures=$((failures + 1)); }
    done
    section "end"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,temperature.gpu \
        --format=csv
    echo "$((SECONDS - started)) s; $failures step(s) failed; results in $OUT:"
    find "$OUT" -type f | sort
    [ -f "$OUT/speed_check.md" ] && cat "$OUT/speed_check.md"
    return $((failures > 0))
}

main 2>&1 | tee "$OUT/gpu_check.log"
