#!/usr/bin/env bash
# The bundled `deblur-refiner` (the last stage of `ganzoo deblur --method auto`), exactly as made here on a 2-core
# CPU: make (deconvolved-with-the-estimated-kernel, sharp) pairs, fine-tune `deblur-unet` on them, measure on the
# evaluation sets, bundle. Run from the repository root after `make venv` and the evaluation sets of
# docs/evaluation.md ("Deblurring"):
#   nohup train_scripts/train_deblur_refiner.sh > runs/train_deblur_refiner.log 2>&1 &
# The development sets the pipeline was tuned on (runs/dev/*, runs/eval/deblur-dev-*, made by hand from
# BSDS500-train images) are held out too where they exist.
set -euo pipefail
DATA=${DATA:-../shared/data}
G=.venv/bin/ganzoo; PY=.venv/bin/python; PAIRS=runs/refiner-pairs; OUT=runs/deblur-refiner-1; E=runs/results
export MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p "$E"
HELD_OUT=(runs/eval/deblur-large runs/eval/deblur-moderate "$DATA/sr/bench/Set5" "$DATA/sr/bench/Set14"
          "$DATA/blur/bench/levin" "$DATA/blur/kernels")
for dev in runs/dev/moderate runs/dev/large runs/dev/levin runs/eval/deblur-dev-moderate runs/eval/deblur-dev-large \
           runs/eval/deblur-dev-xl; do [ -d "$dev" ] && HELD_OUT+=("$dev"); done

# 1. Pairs: two one-thread processes (seeds 1 and 2) for 28 minutes each; about half the crops are skipped
#    (their estimate is not trusted). The bundled run made 255 pairs.
for seed in 1 2; do
  OMP_NUM_THREADS=1 $PY train_scripts/make_refiner_pairs.py --train-dirs "$DATA"/sr/train/* \
      --held-out "${HELD_OUT[@]}" --output "$PAIRS" --count 3000 --seed $seed --time-limit 28 &
done
wait

# 2. Fine-tune deblur-unet on them: two threads, 30 minutes, the cosine fitted to the time.
OMP_NUM_THREADS=2 $PY train_scripts/train_deblur_unet.py --pair-dirs "$PAIRS" --held-out "${HELD_OUT[@]}" \
    --init-from ganzoo/pretrained/deblur-unet --card deblur-refiner.md --crop-size 128 --batch-size 8 \
    --lr 2e-4 --min-lr 1e-6 --warmup-steps 50 --max-steps 20000 --time-limit 30 --fit-schedule-to-time 60 \
    --checkpoint-every 500 --sample-every 500 --output-dir "$OUT" --cpu --report-to none

# 3. Bundle (evaluate loads the refiner by name), measure once on the evaluation sets, bundle with the numbers.
$PY train_scripts/bundle_model.py --export "$OUT/final" --name deblur-refiner --card deblur-refiner.md
export OMP_NUM_THREADS=1
EST="evaluate deblur --method estimate+refiner --no-reference --device cpu --precision fp32 --json"
$G $EST --data runs/eval/deblur-moderate > "$E/refiner-moderate.json"
$G $EST --data runs/eval/deblur-large > "$E/refiner-large.json"
$G $EST --data "$DATA/blur/bench/levin" --kernels "$DATA/blur/kernels/levin09_kernels_from_mat.npz" \
    > "$E/refiner-levin.json"
$PY train_scripts/bundle_model.py --export "$OUT/final" --name deblur-refiner --card deblur-refiner.md \
  --deblur-json "moderate: Set14, 8 kernels 5-30 px=$E/refiner-moderate.json" \
  --deblur-json "large: 40 BSDS500-test images, 2 kernels 31-75 px=$E/refiner-large.json" \
  --deblur-json "Levin (published, 8 recorded kernels)=$E/refiner-levin.json" \
  --set eval_hardware='"CPU (AMD EPYC, x86_64, AVX2, no native bf16, 1 thread)"'
