#!/usr/bin/env bash
# A short CPU sweep over the article's variants on the real (JPEG) CIFAR images,
# so each switch is exercised end to end; then the report. Minutes on 2 cores.
#   bash scripts/variants_quick.sh [DATA_ROOT] [SWEEP_DIR] [REPORT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data-quick}
SWEEP=${2:-multirun/variants}
OUT=${3:-results/variants}
MB=${MB:-.venv/bin/mixup-bench}
COMMON=(experiment=quick data.root="$DATA" data.verify=false data.fraction=0.1 seed=0,1
        trainer.progress=false)
# Mixing variants against plain Mixup (alpha 0.2 unless stated).
"$MB" train -m "${COMMON[@]}" aug=mixup aug.lam_min=null,0.3 hydra.sweep.dir="$SWEEP/lam_min" || true
"$MB" train -m "${COMMON[@]}" aug=mixup aug.lam_fold=true aug.lam_per=sample \
    hydra.sweep.dir="$SWEEP/fold_per_sample" || true
"$MB" train -m "${COMMON[@]}" aug=none,mixup aug.label_smoothing=0.1 \
    hydra.sweep.dir="$SWEEP/label_smoothing" || true
"$MB" train -m "${COMMON[@]}" aug=mixup alpha=1.0 aug.alpha_schedule=constant,linear_decay \
    aug.alpha_final=0.1 hydra.sweep.dir="$SWEEP/alpha_schedule" || true
"$MB" train -m "${COMMON[@]}" aug=mixup aug.off_last_epochs=1 aug.partner=dataset \
    hydra.sweep.dir="$SWEEP/off_last_dataset_partner" || true
"$MB" train -m "${COMMON[@]}" aug=mixup_cutmix,manifold_mixup model.dropout=0.3 optim.lr=0.04 \
    hydra.sweep.dir="$SWEEP/switch_manifold_dropout" || true
"$MB" train -m "${COMMON[@]}" aug=none,mixup data.label_noise=0.2 \
    hydra.sweep.dir="$SWEEP/label_noise" || true
"$MB" report "$SWEEP" --out "$OUT"
