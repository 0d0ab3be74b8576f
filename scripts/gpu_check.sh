#!/usr/bin/env bash
# The whole GPU check, in one call on a bare GPU machine, in about 8 minutes:
#   1. nvidia-smi, versions
#   2. hydra-core / omegaconf / antlr wheels from .whl/ into $WORK/site
#   3. CIFAR-10 from .data/cifar10-jpeg.tar.xz into $WORK/cifar (JPEG copy: data.verify=false)
#   4. a short real training run: mixup-bench train aug=mixup, 3 epochs, whole training set
#   5. mixup-bench bench --device cuda (its bench.json / bench.md are rewritten after each
#      setting, so a run cut short by BENCH_SECONDS still leaves what it measured)
# Before it, run scripts/prepare_device.sh HERE (it fills .whl/ and .data/). Then, with
# the device tool: run(command="bash scripts/gpu_check.sh", carry=[".whl", ".data"],
# timeout_s=600). Results land in $OUT (at most 8 files come back from there):
#   gpu_check.log, nvidia-smi.txt, perf/bench.json, perf/bench.md,
#   train/summary.json, train/metrics.jsonl, train/train.log
#
# Check the script itself on a CPU machine (tiny data, bench --dry-run, 1 CPU epoch):
#   GPU_CHECK_DRY_RUN=1 PYTHON=.venv/bin/python scripts/gpu_check.sh
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
TRAIN_SECONDS=${TRAIN_SECONDS:-120}  # the training run's limit
BENCH_SECONDS=${BENCH_SECONDS:-360}  # the bench's limit; together well under 10 minutes
mkdir -p "$OUT" "$WORK"

section() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }

environment() {
    section "machine"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi | tee "$OUT/nvidia-smi.txt"
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit \
            --format=csv | tee -a "$OUT/nvidia-smi.txt"
    else
        echo "no nvidia-smi here" | tee "$OUT/nvidia-smi.txt"
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

train() {
    section "training run"
    local options=(aug=mixup trainer.epochs=3 trainer.progress=false
                   data.root="$WORK/cifar" data.verify=false data.download=false
                   hydra.run.dir="$WORK/train")
    [ "$DRY_RUN" = 1 ] && options+=(trainer.device=cpu trainer.epochs=1 trainer.batch_size=50
                                    trainer.eval_batch_size=100 trainer.samples=false)
    timeout "$TRAIN_SECONDS" "$PYTHON" -m mixup_bench.cli train "${options[@]}"
    local status=$?
    mkdir -p "$OUT/train"
    for name in summary.json metrics.jsonl train.log; do
        [ -f "$WORK/train/$name" ] && cp "$WORK/train/$name" "$OUT/train/"
    done
    return $status
}

bench() {
    section "bench"
    local options=(--device cuda --data-root "$WORK/cifar" --out "$OUT/perf")
    [ "$DRY_RUN" = 1 ] && options=(--device cpu --dry-run --batch-sizes 2 --warmup 0
                                   --workers 1 --data-root "$WORK/cifar" --out "$OUT/perf")
    timeout -s INT "$BENCH_SECONDS" "$PYTHON" -m mixup_bench.cli bench "${options[@]}"
}

main() {
    local started=$SECONDS failures=0
    environment
    install || { echo "FAILED: installing the wheels"; return 1; }
    data || { echo "FAILED: unpacking CIFAR-10"; return 1; }
    train || { echo "FAILED (status $?): training run"; failures=$((failures + 1)); }
    bench || { echo "FAILED (status $?): bench"; failures=$((failures + 1)); }
    section "end"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,temperature.gpu \
        --format=csv | tee -a "$OUT/nvidia-smi.txt"
    echo "$((SECONDS - started)) s; $failures step(s) failed; results in $OUT:"
    find "$OUT" -type f | sort
    return $((failures > 0))
}

main 2>&1 | tee "$OUT/gpu_check.log"
