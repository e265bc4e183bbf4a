#!/usr/bin/env bash
# Issue 16: fine-tune the bundled fast styles with bilinear instead of nearest upsampling and a loss that rewards a lattice less (random
# VGG19 with average instead of max pooling) and a total-variation term (see README "Grid artefacts"), on one CPU thread, then score
# each run with `ganzoo evaluate style` on the 10 content photos. Rerunnable: each run resumes.
#
#   nohup train_scripts/retrain_styles_without_lattice.sh > runs/retrain-styles.log 2>&1 &
#   python train_scripts/bundle_model.py --export runs/style-mosaic-nolattice/final --name style-mosaic --card style.md
#
# Environment: STEPS (100), TV_WEIGHT (0.5), MAX_SIZE (512, the evaluation), STYLES ("mosaic candy starry_night udnie"), DATA (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
STYLES=${STYLES:-"mosaic candy starry_night udnie"}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p runs
for style in $STYLES; do
    name=style-${style//_/-}
    out=runs/$name-nolattice
    python train_scripts/train_style.py --init-from "$name" --style-image "$DATA/style/styles/$style.jpg" \
        --style-name "$style" --content-dirs "$DATA/style/content" "$DATA/sr/train/t91" "$DATA/sr/train/bsds500_train" \
        --crop-size 128 --batch-size 2 --style-size 256 --style-weight 1 --content-weight 1 --tv-weight "${TV_WEIGHT:-0.5}" \
        --lr 5e-4 --upsample bilinear --vgg-weights random --vgg-pool avg --threads 1 --max-steps "${STEPS:-100}" \
        --sample-every 50 --log-every 10 --checkpoint-every 50 --report-to none --resume \
        --output-dir "$out" > "$out.log" 2>&1
    python -m ganzoo.cli evaluate style --model "$out/final" --data "$DATA/style/content" --max-size "${MAX_SIZE:-512}" --json > "$out.eval.json"
    echo "$style $(date -u +%T) $(python -c "import json,sys; d=json.load(open('$out.eval.json')); print(d['grid'], d['structure_ssim'])")"
done
