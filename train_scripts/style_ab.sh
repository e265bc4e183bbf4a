#!/usr/bin/env bash
# Issue 16's A/B runs: which loss network or weight makes the fast styles paint a pixel lattice?
# Each variant trains mosaic from scratch for the same number of steps on one CPU thread; then
# `ganzoo evaluate style` scores every run on the 10 content photos (grid score, structure SSIM).
#
#   nohup train_scripts/style_ab.sh > runs/style-ab.log 2>&1 &
#
# Environment: STEPS (120), CROP (96), BATCH (2), STYLE (mosaic), VARIANTS (all below), DATA (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
STEPS=${STEPS:-120}
STYLE=${STYLE:-mosaic}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
declare -A FLAGS=(
    [maxpool]="--features vgg19 --vgg-pool max"
    [avgpool]="--features vgg19 --vgg-pool avg"
    [multiscale]="--features multiscale"
    [tv]="--features vgg19 --vgg-pool max --tv-weight 2"
    [avgpool-3seeds]="--features vgg19 --vgg-pool avg --vgg-seeds 3"
)
VARIANTS=${VARIANTS:-"maxpool avgpool multiscale tv avgpool-3seeds"}
mkdir -p runs
for variant in $VARIANTS; do
    out=runs/ab-$STYLE-$variant
    # shellcheck disable=SC2086  # FLAGS holds several words on purpose
    python train_scripts/train_style.py --style-image "$DATA/style/styles/$STYLE.jpg" --style-name "$STYLE" \
        --content-dirs "$DATA/style/content" "$DATA/sr/train/t91" "$DATA/sr/train/bsds500_train" \
        --crop-size "${CROP:-96}" --batch-size "${BATCH:-2}" --style-size 256 --channels 16 --num-blocks 5 --style-weight 1 \
        --content-weight 1 --lr 1e-3 --vgg-weights random --threads 1 --max-steps "$STEPS" \
        --sample-every 60 --log-every 10 --checkpoint-every 60 --report-to none --resume \
        ${FLAGS[$variant]} --output-dir "$out" > "$out.log" 2>&1
    python -m ganzoo.cli evaluate style --model "$out/final" --data "$DATA/style/content" --max-size 384 --json \
        > "$out.eval.json" || true
    echo "$variant $(date -u +%T) $(tail -c 300 "$out.eval.json" | tr -d '\n')"
done
