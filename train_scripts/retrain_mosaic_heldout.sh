#!/usr/bin/env bash
# Issue 16, mosaic (0.64 after retrain_styles_without_lattice.sh, target 0.6): two candidate fine-tunes of the
# bundled `style-mosaic` with the content photos held out of training (T91 + BSDS500-train only), chosen on a
# validation set that is neither training content nor a reported set (the first 10 BSDS500-test images, made
# here as runs/eval/style-val), then scored on the 10 content photos and on Set14. One CPU thread.
#
#   nohup train_scripts/retrain_mosaic_heldout.sh > runs/retrain-mosaic.log 2>&1 &
#
#   A: the shipped recipe (TV 0.5) for 300 more steps;  B: TV 1.0 for 150 steps.
# Environment: DATA (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p runs/eval/style-val runs/results
for f in $(ls "$DATA/sr/train/bsds500_test" | sort | head -10); do
    ln -sfn "$(realpath "$DATA/sr/train/bsds500_test/$f")" "runs/eval/style-val/$f"
done
train() {  # name tv steps
    python train_scripts/train_style.py --init-from style-mosaic --style-image "$DATA/style/styles/mosaic.jpg" \
        --style-name mosaic --content-dirs "$DATA/sr/train/t91" "$DATA/sr/train/bsds500_train" \
        --crop-size 128 --batch-size 2 --style-size 256 --style-weight 1 --content-weight 1 --tv-weight "$2" \
        --lr 5e-4 --upsample bilinear --vgg-weights random --vgg-pool avg --threads 1 --max-steps "$3" \
        --sample-every 100 --log-every 10 --checkpoint-every 50 --report-to none --resume \
        --output-dir "runs/$1" > "runs/$1.log" 2>&1
    for set in val:runs/eval/style-val photos:$DATA/style/content set14:$DATA/sr/bench/Set14; do
        python -m ganzoo.cli evaluate style --model "runs/$1/final" --data "${set#*:}" --max-size 512 --json \
            > "runs/results/$1-${set%%:*}.json"
    done
    echo "$1 $(date -u +%T) $(python -c "import json; print({s: (round(d['grid'], 3), round(d['structure_ssim'], 3)) for s in ['val', 'photos', 'set14'] for d in [json.load(open('runs/results/$1-' + s + '.json'))]})")"
}
python -m ganzoo.cli evaluate style --model style-mosaic --data runs/eval/style-val --max-size 512 --json \
    > runs/results/style-mosaic-bundled-val.json
echo "bundled val $(cat runs/results/style-mosaic-bundled-val.json)"
train mosaic-heldout-a 0.5 300
train mosaic-heldout-b 1.0 150
