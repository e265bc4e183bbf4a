#!/usr/bin/env bash
# Issue 16, SRResNet (grid score 0.94 / 0.71 on Set5 / Set14, target 0.5): the lattice comes from the sub-pixel
# convolutions, which compute each of the 2x2 output phases with their own filters. A resize-convolution
# upsampler (bilinear x2, then a 3x3 conv; `SRResNet(upsample="bilinear")`) treats every output pixel alike.
# This trains one from the bundled sub-pixel network's head, residual blocks and tail (`--trunk-from`; its
# upsampling filters averaged over their phases start the new ones), with the original recipe's data and loss,
# on one CPU thread. Then `bundle_model.py` measures Set5/Set14 (evaluation only, never trained on).
#
#   nohup train_scripts/retrain_srresnet_resize_conv.sh > runs/retrain-srresnet.log 2>&1 &
#   python train_scripts/bundle_model.py --export runs/srresnet-x4-bilinear/final --name srresnet-x4 \
#       --card super-resolution.md --sr-bench Set5=../shared/data/sr/bench/Set5 --sr-bench Set14=../shared/data/sr/bench/Set14
#
# The bundled run: 950 steps in 65 min, from the sub-pixel srresnet-x4 that was bundled then (now in git history;
# to start from it again: mkdir -p runs/srresnet-x4-subpixel && for f in config.json model.safetensors; do
# git show 2cacdfc:ganzoo/pretrained/srresnet-x4/$f > runs/srresnet-x4-subpixel/$f; done; TRUNK=runs/srresnet-x4-subpixel).
# Environment: DATA (../shared/data), TRUNK (srresnet-x4), MINUTES (70), STEPS (950).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p runs
python train_scripts/train_srresnet.py --trunk-from "${TRUNK:-srresnet-x4}" --upsample bilinear \
    --train-dirs "$DATA/sr/train/bsds500_train" "$DATA/sr/train/bsds500_test" "$DATA/sr/train/t91" \
    --lr 2e-4 --max-steps "${STEPS:-950}" --time-limit "${MINUTES:-70}" --log-every 25 --checkpoint-every 250 \
    --sample-every 250 --report-to none --resume --output-dir runs/srresnet-x4-bilinear > runs/srresnet-x4-bilinear.log 2>&1
