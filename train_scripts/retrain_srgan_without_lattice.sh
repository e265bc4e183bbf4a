#!/usr/bin/env bash
# Issue 16: fine-tune srgan-x4 so that its outputs lose the pixel lattice, on one CPU thread: the VGG54 content
# loss with average pooling, plus a focal frequency loss and a small MSE term (VGG54 is blind to the lattice:
# notching it out of srgan-x4's outputs changes the VGG54 loss by <0.5 %), plus the adversarial loss with a
# fresh discriminator. Then `bundle_model.py` measures Set5/Set14 (evaluation only, never trained on).
#
#   nohup train_scripts/retrain_srgan_without_lattice.sh > runs/retrain-srgan.log 2>&1 &
#   python train_scripts/bundle_model.py --export runs/srgan-x4-nolattice/final --name srgan-x4 \
#       --card super-resolution.md --sr-bench Set5=../shared/data/sr/bench/Set5 --sr-bench Set14=../shared/data/sr/bench/Set14
#
# Environment: MINUTES (15), DATA (../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
mkdir -p runs
python train_scripts/train_srgan.py --init-from srgan-x4 \
    --train-dirs "$DATA/sr/train/bsds500_train" "$DATA/sr/train/bsds500_test" "$DATA/sr/train/t91" \
    --crop-size 64 --batch-size 2 --content-loss vgg54 --vgg-weights random --vgg-pool avg \
    --adversarial-weight 1e-3 --frequency-weight 1 --pixel-weight 0.1 --lr 1e-4 \
    --max-steps 100000 --time-limit "${MINUTES:-15}" --log-every 10 --sample-every 50 --checkpoint-every 50 \
    --report-to none --resume --output-dir runs/srgan-x4-nolattice > runs/srgan-x4-nolattice.log 2>&1
