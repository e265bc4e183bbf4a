#!/usr/bin/env bash
# deblur-unet on one GPU for a fixed number of minutes: continue the bundled model (--init-from) with far larger
# batches than the CPU runs of train_deblur_unet.sh, and copy the export (weights, config, card, run record, log)
# to $OUT, a folder that can be fetched back and bundled like any run:
#
#   OUT=runs/gpu MINUTES=8 TRAIN_DIR=../shared/data/sr/train/bsds500_train train_scripts/train_deblur_unet_gpu.sh
#   python train_scripts/bundle_model.py --export runs/gpu/final --name deblur-unet --card deblur-unet.md ...
#
# The same data protocol as the CPU runs: random camera-shake kernels only (no recorded kernel), the evaluation
# sets named as --held-out where they exist. TRAIN_DIR defaults to BSDS500-train alone, which holds no evaluation
# image, so the script also runs where only that folder was copied. This project's lent GPU machine (the `device`
# tool) receives the checkout and a `shared/` folder inside it, not ../shared, so there:
#   mkdir -p shared/deblur-train && cp ../shared/data/sr/train/bsds500_train/* shared/deblur-train/   # here, 15 MB
#   device run (timeout_s 600): OUT=$OUT TRAIN_DIR=shared/deblur-train MINUTES=8 train_scripts/train_deblur_unet_gpu.sh
# Environment: OUT (where the export goes), MINUTES (8), BATCH (32), CROP (256), LR (3e-4), STEPS (the cosine's
# length; the time limit usually ends the run first), INIT (ganzoo/pretrained/deblur-unet), DATA (../shared/data),
# TRAIN_DIR (above), PRECISION (bf16), RUN (the run folder, /tmp/deblur-unet-gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder that receives the export}
DATA=${DATA:-../shared/data}
TRAIN_DIR=${TRAIN_DIR:-$DATA/sr/train/bsds500_train}
RUN=${RUN:-/tmp/deblur-unet-gpu}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

HELD_OUT=()
for set in runs/eval/deblur-large runs/eval/deblur-moderate "$DATA/sr/bench/Set5" "$DATA/sr/bench/Set14" \
           "$DATA/blur/bench/levin" "$DATA/blur/kernels"; do
    if [ -e "$set" ]; then HELD_OUT+=("$set"); fi
done
if [ ${#HELD_OUT[@]} -gt 0 ]; then HELD_OUT=(--held-out "${HELD_OUT[@]}"); fi

python train_scripts/train_deblur_unet.py --train-dirs "$TRAIN_DIR" "${HELD_OUT[@]}" \
    --init-from "${INIT:-ganzoo/pretrained/deblur-unet}" --sized-fraction 0.5 \
    --crop-size "${CROP:-256}" --batch-size "${BATCH:-32}" --lr "${LR:-3e-4}" --warmup-steps 100 \
    --max-steps "${STEPS:-20000}" --time-limit "${MINUTES:-8}" --mixed-precision "${PRECISION:-bf16}" \
    --checkpoint-every 1000000 --sample-every 1000000 --log-every 100 --report-to none --output-dir "$RUN"

mkdir -p "$OUT/final"
cp "$RUN"/final/{config.json,model.safetensors,README.md} "$OUT/final/"
cp "$RUN/final.run.json" "$RUN/log.jsonl" "$OUT/"
echo "export in $OUT/final (run record $OUT/final.run.json)"
