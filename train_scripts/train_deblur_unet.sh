#!/usr/bin/env bash
# The bundled `deblur-unet`'s CPU runs, exactly as made here on a 2-core CPU: the evaluation sets, seven training
# runs (each continues the one before with --init-from), the measurements and the bundle. The bundled weights are
# run 8: run 7's bundle continued 1,097 steps on one H200 (runs/deblur-unet-gpu, bf16, batch 32 of 240 px crops;
# ../shared/gpu-runs/h200-2026-12-04/run.sh, now train_scripts/gpu_session.sh's `deblur-unet` recipe).
#
#   source .venv/bin/activate && nohup train_scripts/train_deblur_unet.sh > runs/train_deblur_unet.log 2>&1 &
#
#   1. 500 steps of a 2,200-step cosine schedule, kernels from camera paths of 1-100 px. (The run was stopped
#      at step 583 and exported from its step-500 checkpoint by the same command with --resume --max-steps 500.)
#   2. from 1.: half the kernels stretched to span 5-75 px (a curled 100 px path often spans only 20-40 px,
#      so 1. rarely saw large kernels), a fresh cosine from 3e-4 to 1e-6 over 260 steps (--time-limit 28 as a
#      guard). The machine was shared by five sessions: a step took 5-6 s instead of ~0.6 s.
#   3. from 2. (a later session, as `--init-from ganzoo/pretrained/deblur-unet`, the bundle of 2.): the same data, a fresh cosine from 5e-4 over 10,000 steps with 100 warm-up
#      steps, stopped by --time-limit 120 (minutes) wherever it was; the machine was shared with the test suite,
#      so a step took 0.6-1.2 s.
#   4. from 3.: a fresh cosine from 2e-4 over 3,500 steps (50 warm-up), two threads (THREADS=2 for this run), 18 minutes.
#   5. from 4. (a later session, as `--init-from ganzoo/pretrained/deblur-unet`, the bundle of 4.): a fresh cosine from
#      3e-4 over 20,000 steps (100 warm-up), two threads (THREADS=2), stopped by --time-limit 106 at step 16,971.
#   6. from 5. (a later session, as `--init-from ganzoo/pretrained/deblur-unet`, the bundle of 5.): crops of 192 px
#      instead of 128 (more context per crop for the large kernels), a fresh cosine from 2e-4 over 7,500 steps
#      (100 warm-up), two threads (THREADS=2), 93 minutes.
#   7. from 6. (a later session, `--init-from runs/deblur-unet-6/final`, the weights bundled as 6.): 192 px crops, a
#      fresh cosine from 1.5e-4 over 7,500 steps (100 warm-up), two threads (THREADS=2), stopped by --time-limit 95
#      at step 6,947 (the learning rate down to 3e-6).
# Environment: DATA (../shared/data), THREADS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
THREADS=${THREADS:-1}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS PYTHONUNBUFFERED=1
mkdir -p runs/eval runs/results

# The evaluation sets (Lai et al. 2016 layout; deterministic by seed). Never training data.
[ -d runs/eval/deblur-moderate ] || python -m ganzoo.cli make-blur-set --images "$DATA/sr/bench/Set14" \
    --kernels 8 --lengths 5 30 --seed 0 -o runs/eval/deblur-moderate
[ -d runs/eval/deblur-large ] || python -m ganzoo.cli make-blur-set --images "$DATA/sr/train/bsds500_test" \
    --first 40 --kernels 2 --sizes 31 75 --seed 0 -o runs/eval/deblur-large

COMMON=(--train-dirs "$DATA/sr/train/bsds500_train" "$DATA/sr/train/bsds500_test" "$DATA/sr/train/t91"
        --held-out runs/eval/deblur-large runs/eval/deblur-moderate "$DATA/sr/bench/Set5" "$DATA/sr/bench/Set14"
                   "$DATA/blur/bench/levin" "$DATA/blur/kernels"
        --channels 16 --encoder-blocks 1 1 1 2 --middle-blocks 2 --decoder-blocks 1 1 1 1
        --crop-size 128 --batch-size 4 --checkpoint-every 250 --sample-every 500 --report-to none)
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --lr 5e-4 --max-steps 500 --schedule-steps 2200 --resume \
    --output-dir runs/deblur-unet > runs/deblur-unet.log 2>&1
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --init-from runs/deblur-unet/final --sized-fraction 0.5 \
    --lr 3e-4 --warmup-steps 20 --max-steps 260 --time-limit 28 --checkpoint-every 50 --resume \
    --output-dir runs/deblur-unet-2 \
    > runs/deblur-unet-2.log 2>&1
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --init-from runs/deblur-unet-2/final --sized-fraction 0.5 \
    --lr 5e-4 --warmup-steps 100 --max-steps 10000 --time-limit 120 --sample-every 1000 --resume \
    --output-dir runs/deblur-unet-3 > runs/deblur-unet-3.log 2>&1
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --init-from runs/deblur-unet-3/final --sized-fraction 0.5 \
    --lr 2e-4 --warmup-steps 50 --max-steps 3500 --time-limit 27 --sample-every 1000 --resume \
    --output-dir runs/deblur-unet-4 > runs/deblur-unet-4.log 2>&1
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --init-from runs/deblur-unet-4/final --sized-fraction 0.5 \
    --lr 3e-4 --warmup-steps 100 --max-steps 20000 --time-limit 106 --sample-every 2000 --checkpoint-every 1000 \
    --resume --output-dir runs/deblur-unet-5 > runs/deblur-unet-5.log 2>&1
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --crop-size 192 --init-from runs/deblur-unet-5/final --sized-fraction 0.5 \
    --lr 2e-4 --warmup-steps 100 --max-steps 7500 --time-limit 100 --sample-every 2000 --checkpoint-every 1000 \
    --resume --output-dir runs/deblur-unet-6 > runs/deblur-unet-6.log 2>&1
python train_scripts/train_deblur_unet.py "${COMMON[@]}" --crop-size 192 --init-from runs/deblur-unet-6/final --sized-fraction 0.5 \
    --lr 1.5e-4 --warmup-steps 100 --max-steps 7500 --time-limit 95 --sample-every 2000 --checkpoint-every 1000 \
    --resume --output-dir runs/deblur-unet-7 > runs/deblur-unet-7.log 2>&1

# Input and Richardson-Lucy (true kernel) rows once (`--model none`), the model's rows, unaligned and aligned
# (`*_aligned`, SelfDeblur's protocol), in fp32 on the CPU as the card's commands say, without them;
# bundle_model.py merges each pair into one card row.
LEVIN=(--data "$DATA/blur/bench/levin" --kernels "$DATA/blur/kernels/levin09_kernels_from_mat.npz")
PIN=(--no-reference --device cpu --precision fp32 --json)
M=runs/deblur-unet-7/final
python -m ganzoo.cli evaluate deblur --model none --data runs/eval/deblur-moderate --json > runs/results/none-moderate.json
python -m ganzoo.cli evaluate deblur --model none --data runs/eval/deblur-large --json > runs/results/none-large.json
python -m ganzoo.cli evaluate deblur --model none "${LEVIN[@]}" --json > runs/results/none-levin.json
python -m ganzoo.cli evaluate deblur --model $M --data runs/eval/deblur-moderate "${PIN[@]}" > runs/results/unet-moderate.json
python -m ganzoo.cli evaluate deblur --model $M --data runs/eval/deblur-large "${PIN[@]}" > runs/results/unet-large.json
python -m ganzoo.cli evaluate deblur --model $M "${LEVIN[@]}" "${PIN[@]}" > runs/results/unet-levin.json
# Bundle only if the model beats its input (PSNR and SSIM) on every set: check the printed rows first.
# (Issue 26 re-rendered the bundled card, weights unchanged (sha256 checked), with this command on the bundled
# run 8: --export runs/deblur-unet-rerender/final (the bundle's config.json, model.safetensors and
# training_history.json beside the H200 run's own record, ../shared/gpu-runs/h200-2026-12-04/deblur-unet/
# final.run.json), the model rows measured by `ganzoo evaluate deblur --model deblur-unet ... --no-reference
# --device cpu --precision fp32 --json` one thread each as runs/eval26/deblur-unet-{moderate,large,levin}.json,
# the `none` files above (one thread), --set eval_hardware='"CPU (AMD EPYC, x86_64, AVX2, no native bf16, 1 thread)"',
# and --set recipe=... and --set notes=... (JSON strings: the card's Recipe line and the notes line after it).)
python train_scripts/bundle_model.py --export $M --name deblur-unet --card deblur-unet.md \
    --deblur-json "moderate: Set14, 8 kernels 5-30 px=runs/results/unet-moderate.json+runs/results/none-moderate.json" \
    --deblur-json "large: 40 BSDS500-test images, 2 kernels 31-75 px=runs/results/unet-large.json+runs/results/none-large.json" \
    --deblur-json "Levin (published, 8 recorded kernels)=runs/results/unet-levin.json+runs/results/none-levin.json"
