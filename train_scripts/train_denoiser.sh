#!/usr/bin/env bash
# The bundled `denoiser` (the learned prior of `ganzoo deblur --kernel`, plug-and-play deconvolution), exactly as
# made here: train, measure once on the evaluation sets with the true kernels, bundle. Run from the repository
# root after `make venv` and the evaluation sets of docs/evaluation.md ("Deblurring").
#   nohup train_scripts/train_denoiser.sh > runs/train_denoiser.log 2>&1 &
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
G=.venv/bin/ganzoo; OUT=runs/denoiser-1; E=runs/results
mkdir -p "$E"

# One CPU thread, 45 minutes (4,199 steps of 16 crops of 64 px). The bundled run also held out the 34 BSDS500-train
# images of the development sets its plug-and-play weight was chosen on (runs/dev/src_rgb, runs/dev/src_grey,
# runs/dev-images/b and c, made by hand; add them here if you have them).
.venv/bin/python train_scripts/train_denoiser.py --train-dirs ../shared/data/sr/train/bsds500_train \
    --held-out runs/eval/deblur-large runs/eval/deblur-moderate ../shared/data/blur/bench/levin \
    --output-dir "$OUT" --cpu --report-to none --time-limit 45 --fit-schedule-to-time 120 --max-steps 20000

# The bundled export must exist first (evaluate loads the `denoiser` by name): bundle once, measure, bundle again.
.venv/bin/python train_scripts/bundle_model.py --export "$OUT/final" --name denoiser --card denoiser.md
PNP="evaluate deblur --method true-kernel --deconvolution pnp --no-reference --device cpu --json"
$G $PNP --data runs/eval/deblur-moderate > "$E/pnp-moderate.json"
$G $PNP --data runs/eval/deblur-large > "$E/pnp-large.json"
$G $PNP --data ../shared/data/blur/bench/levin --kernels ../shared/data/blur/kernels/levin09_kernels_from_mat.npz \
    > "$E/pnp-levin.json"
.venv/bin/python train_scripts/bundle_model.py --export "$OUT/final" --name denoiser --card denoiser.md \
  --deblur-json "moderate: Set14, 8 kernels 5-30 px=$E/pnp-moderate.json" \
  --deblur-json "large: 40 BSDS500-test images, 2 kernels 31-75 px=$E/pnp-large.json" \
  --deblur-json "Levin (published, 8 recorded kernels)=$E/pnp-levin.json" \
  --set eval_hardware='"CPU (AMD EPYC, x86_64, AVX2, no native bf16, 1 thread)"'
