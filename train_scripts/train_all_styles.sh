#!/usr/bin/env bash
# Train the bundled fast styles, then the AdaIN decoder, one after the other, on one CPU thread
# (so that another job can share the machine). Rerunnable: each run resumes its latest checkpoint.
#
#   source .venv/bin/activate && nohup train_scripts/train_all_styles.sh > runs/train_all_styles.log 2>&1 &
#
# Environment: MINUTES_PER_STYLE (8), ADAIN_STEPS (4252, 1 h 24 min on one thread), STYLES ("mosaic candy starry_night udnie"),
# DATA (../shared/data), THREADS (1). Every run uses the random-weight VGG19 (--vgg-weights random): the
# training machine has no ImageNet weights; the model cards say so.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
STYLES=${STYLES:-"mosaic candy starry_night udnie"}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS PYTHONUNBUFFERED=1
CONTENT_DIRS=("$DATA/style/content" "$DATA/sr/train/t91" "$DATA/sr/train/bsds500_train")
mkdir -p runs

for style in $STYLES; do
    name=style-${style//_/-}
    python train_scripts/train_style.py --style-image "$DATA/style/styles/$style.jpg" --style-name "$style" \
        --content-dirs "${CONTENT_DIRS[@]}" --crop-size 128 --batch-size 4 --style-size 256 \
        --channels 16 --num-blocks 5 --style-weight 1 --content-weight 1 --tv-weight 0 --lr 1e-3 \
        --vgg-weights random --threads "$THREADS" --max-steps 100000 --time-limit "${MINUTES_PER_STYLE:-8}" \
        --sample-every 50 --log-every 10 --checkpoint-every 100 --report-to none --resume \
        --output-dir "runs/$name" > "runs/$name.log" 2>&1
done

python train_scripts/train_adain.py --content-dirs "${CONTENT_DIRS[@]}" --style-dirs "$DATA/style/styles" \
    --crop-size 128 --resize 256 --batch-size 4 --channels 32 --style-weight 2 --identity-weight 5 --lr 5e-4 \
    --vgg-weights random --threads "$THREADS" --max-steps "${ADAIN_STEPS:-4252}" \
    --sample-every 250 --log-every 50 --checkpoint-every 250 --report-to none --resume \
    --output-dir runs/adain-id > runs/adain-id.log 2>&1
