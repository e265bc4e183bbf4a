#!/usr/bin/env bash
# Issue 16: SRGAN fine-tuned from the resize-convolution srresnet-x4 (its upsampler cannot paint a pixel
# lattice), on one CPU thread: random-weight VGG54 content loss with average pooling + 1e-3 x adversarial loss
# (the paper's recipe), at batch 4 of 96x96 crops. VARIANT=freq adds a focal frequency loss and a small MSE term;
# VARIANT=lattice the crop-wide lattice loss (weight LATTICE, 100), since the adversarial term alone grows one.
# The first ten BSDS500-test photos (runs/eval/style-val, as in retrain_mosaic_heldout.sh) are held out of training so that the
# variants can be compared on images neither saw; Set5/Set14 are measured only by `bundle_model.py`:
#
#   RUN=srgan-paper nohup train_scripts/retrain_srgan_without_lattice.sh &
#   RUN=srgan-freq VARIANT=freq nohup train_scripts/retrain_srgan_without_lattice.sh &
#   RUN=srgan-lattice VARIANT=lattice nohup train_scripts/retrain_srgan_without_lattice.sh &
#   python -m ganzoo evaluate sr --model runs/srgan-paper/final --data runs/eval/style-val --json
#   python train_scripts/bundle_model.py --export runs/srgan-paper/final --name srgan-x4 \
#       --card super-resolution.md --sr-bench Set5=../shared/data/sr/bench/Set5 --sr-bench Set14=../shared/data/sr/bench/Set14
#
# What the bundled srgan-x4 went through (two runs side by side, one thread each; README, Grid artefacts):
#   RUN=srgan-paper (stopped by hand at step ~1,330: its PSNR fell), RUN=srgan-freq VARIANT=freq (stopped at ~660),
#   RUN=srgan-lattice VARIANT=lattice MINUTES=60 (958 steps). Step 600 of the lattice run was exported with
#   python train_scripts/export_checkpoint.py --run runs/srgan-lattice --step 600 --card super-resolution.md #       --output runs/srgan-lattice-600 --why "..." [--weights <a copy of checkpoint-600/model.safetensors>]
#   and bundled as above. (That run still kept only its last two checkpoints; this script now keeps 20.)
#
# Environment: RUN (srgan-paper), VARIANT (paper | freq | lattice), LATTICE (100), INIT (srresnet-x4), MINUTES (95), DATA (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
RUN=${RUN:-srgan-paper}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p runs/data/bsds500_test-heldout10 runs/eval/style-val
for name in $(ls "$DATA/sr/train/bsds500_test" | sort | head -10); do
    ln -sf "$(realpath "$DATA/sr/train/bsds500_test/$name")" runs/eval/style-val/
done
for image in "$DATA"/sr/train/bsds500_test/*; do
    [ -e "runs/eval/style-val/$(basename "$image")" ] || ln -sf "$(realpath "$image")" runs/data/bsds500_test-heldout10/
done
EXTRA=()
case "${VARIANT:-paper}" in
    freq) EXTRA=(--frequency-weight 1 --pixel-weight 0.1) ;;
    lattice) EXTRA=(--lattice-weight "${LATTICE:-100}") ;;
esac
python train_scripts/train_srgan.py --init-from "${INIT:-srresnet-x4}" \
    --train-dirs "$DATA/sr/train/bsds500_train" runs/data/bsds500_test-heldout10 "$DATA/sr/train/t91" \
    --crop-size 96 --batch-size 4 --content-loss vgg54 --vgg-weights random --vgg-pool avg \
    --adversarial-weight 1e-3 --lr 1e-4 "${EXTRA[@]}" \
    --max-steps 100000 --time-limit "${MINUTES:-95}" --log-every 20 --sample-every 200 --checkpoint-every 200 --checkpoints-total-limit 20 \
    --report-to none --cpu --resume --output-dir "runs/$RUN" > "runs/$RUN.log" 2>&1
