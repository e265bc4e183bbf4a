#!/usr/bin/env bash
# One command for a lent GPU: every recipe that gains from a GPU trains side by side on it for MINUTES, then the
# exports are packed for the device tool's $OUT (at most 8 files of at most 16 MiB each).
#
#   OUT=$OUT DATA=/tmp/gzdata MINUTES=6 bash train_scripts/gpu_session.sh        # on the lent GPU
#   OUT=runs/gpu-test MINUTES=0.3 TINY=1 bash train_scripts/gpu_session.sh       # the same path on a CPU, seconds
#
# Each run probes itself: after PROBE seconds of training it measures its own steps/s (while the others share the
# GPU) and sets --max-steps to what the rest of its time allows (`--fit-schedule-to-time`), so every cosine ends
# when the time does. Recipes (RECIPES, default all four):
#   srresnet     continue srresnet-x4 (MSE), batch 64 of 96 px, lr 1e-4, cosine to 1e-6
#   srgan        srgan-x4 again from srresnet-x4 as bundled: random-weight VGG54 (avg pool) + 1e-3 adversarial
#                + 100 x lattice, as retrain_srgan_without_lattice.sh, at batch 16 (the paper's); the ten SRGAN
#                validation photos (the first ten BSDS500-test images) are never read
#   deblur-unet  continue deblur-unet: batch 32 of 240 px crops of random camera shake, lr 3e-4, cosine
#   deblurgan    deblurgan again from deblur-unet as bundled: WGAN-GP + 100 x perceptual + 100 x L1, as
#                train_deblurgan.sh, at batch 16 of 192 px
# DATA holds sr/train/{bsds500_train,bsds500_test,t91} (those present are used) and, where present, the
# evaluation sets named as --held-out: sr/bench/{Set5,Set14}, blur/bench/levin, blur/kernels. The 40 BSDS500-test
# images of train_scripts/bsds500_test_held_out.txt (the large deblurring set; its first ten are also the SRGAN
# validation photos) are left out of every recipe here, so DATA may lack them, or hold only some of the rest.
# Nothing here imports `datasets` or gradio.
# Environment: OUT, DATA (../shared/data), MINUTES (6), PROBE (20 s), RECIPES, RUNS (/tmp/ganzoo-gpu), TINY (0/1:
# tiny batches and crops on the CPU, for tests), PRECISION (bf16; `no` with TINY), SOLO (0: seconds of deblur-unet
# alone before the rest, to measure its rate without neighbours), BENCH (0/1: afterwards, with the GPU free,
# benchmarks/bench_synthesis.py and benchmarks/gpu_inference_check.sh, packed as inference.tar).
# On the device tool (train_scripts/stage_gpu_data.sh first):
#   run(carry=[".gpu-data"], timeout_s=600,
#       command="OUT=$OUT DATA=.gpu-data MINUTES=5.5 SOLO=30 BENCH=1 bash train_scripts/gpu_session.sh")
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder that receives the packed exports}
DATA=${DATA:-../shared/data}
MINUTES=${MINUTES:-6}
PROBE=${PROBE:-20}
RECIPES=${RECIPES:-srresnet srgan deblur-unet deblurgan}
RUNS=${RUNS:-/tmp/ganzoo-gpu}
TINY=${TINY:-0}
SOLO=${SOLO:-0}
BENCH=${BENCH:-0}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
mkdir -p "$OUT" "$RUNS/logs" "$RUNS/data"

# Training folders: BSDS500-test without the images listed in bsds500_test_held_out.txt (links to the rest), the
# other folders as they are.
TRAIN=()
for name in bsds500_train bsds500_test t91; do
    folder=$DATA/sr/train/$name
    [ -d "$folder" ] || continue
    if [ $name = bsds500_test ]; then
        view=$RUNS/data/bsds500_test-without-held-out; rm -rf "$view"; mkdir -p "$view"
        ls "$folder" | grep -vxF -f <(grep -v '^#' train_scripts/bsds500_test_held_out.txt) |
            while read -r image; do ln -s "$(realpath "$folder/$image")" "$view/"; done
        folder=$view
    fi
    TRAIN+=("$folder")
done
[ ${#TRAIN[@]} -gt 0 ] || { echo "no training folders under $DATA/sr/train" >&2; exit 2; }
HELD_OUT=()
for set in "$DATA/sr/bench/Set5" "$DATA/sr/bench/Set14" "$DATA/blur/bench/levin" "$DATA/blur/kernels" \
           runs/eval/deblur-large runs/eval/deblur-moderate; do
    [ -e "$set" ] && HELD_OUT+=("$set")
done

if [ "$TINY" = 1 ]; then
    PRECISION=${PRECISION:-no}; DEVICE=(--cpu)
    SR_SIZE=(--crop-size 48 --batch-size 2); GAN_SIZE=(--crop-size 48 --batch-size 2)
    UNET_SIZE=(--crop-size 64 --batch-size 2 --max-kernel 31); DGAN_SIZE=(--crop-size 64 --batch-size 2 --max-kernel 31)
else
    PRECISION=${PRECISION:-bf16}; DEVICE=()
    SR_SIZE=(--crop-size 96 --batch-size 64); GAN_SIZE=(--crop-size 96 --batch-size 16)
    UNET_SIZE=(--crop-size 240 --batch-size 32); DGAN_SIZE=(--crop-size 192 --batch-size 16)
fi
COMMON=(--max-steps 1000000 --mixed-precision "$PRECISION" --checkpoint-every 1000000 --sample-every 1000000
        --report-to none "${DEVICE[@]}")
LOOP=("${COMMON[@]}" --time-limit "$MINUTES" --fit-schedule-to-time "$PROBE" --log-every 50)

recipe() {  # the command line of one recipe
    case $1 in
        srresnet) echo train_scripts/train_srresnet.py --init-from ganzoo/pretrained/srresnet-x4 \
                      --train-dirs "${TRAIN[@]}" "${SR_SIZE[@]}" --lr 1e-4 ;;
        srgan) echo train_scripts/train_srgan.py --init-from ganzoo/pretrained/srresnet-x4 \
                      --train-dirs "${TRAIN[@]}" "${GAN_SIZE[@]}" --content-loss vgg54 --vgg-weights random \
                      --vgg-pool avg --adversarial-weight 1e-3 --lattice-weight 100 --lr 1e-4 ;;
        deblur-unet) echo train_scripts/train_deblur_unet.py --init-from ganzoo/pretrained/deblur-unet \
                      --train-dirs "${TRAIN[@]}" --held-out "${HELD_OUT[@]}" --sized-fraction 0.5 \
                      "${UNET_SIZE[@]}" --lr 3e-4 --warmup-steps 100 ;;
        deblurgan) echo train_scripts/train_deblurgan.py --init-from ganzoo/pretrained/deblur-unet \
                      --train-dirs "${TRAIN[@]}" --held-out "${HELD_OUT[@]}" --shake-lengths 1 100 \
                      --sized-fraction 0.5 "${DGAN_SIZE[@]}" --critic-channels 32 --vgg-weights random \
                      --vgg-pool avg --adversarial-weight 1 --perceptual-weight 100 --pixel-weight 100 --lr 1e-4 \
                      --beta1 0.5 ;;
        *) echo "unknown recipe $1 (known: srresnet srgan deblur-unet deblurgan)" >&2; return 2 ;;
    esac
}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU";
  python3 -c "import sys, torch, accelerate; print(sys.version.split()[0], torch.__version__, accelerate.__version__)";
  echo "MINUTES=$MINUTES PROBE=$PROBE RECIPES=$RECIPES TINY=$TINY PRECISION=$PRECISION"; } | tee "$RUNS/logs/env.txt"
if command -v nvidia-smi > /dev/null; then  # GPU load once a second: was it busy?
    nvidia-smi dmon -s um -d 1 > "$RUNS/logs/dmon.txt" 2>&1 &
    DMON=$!
fi

if [ "$SOLO" != 0 ]; then  # deblur-unet alone first: its rate without neighbours (the 20 steps/s target)
    # shellcheck disable=SC2046  # the recipe's words
    python3 $(recipe deblur-unet) "${COMMON[@]}" --time-limit "$(python3 -c "print($SOLO / 60)")" --log-every 10 \
        --output-dir "$RUNS/solo-deblur-unet" > "$RUNS/logs/solo-deblur-unet.log" 2>&1
    cp "$RUNS/solo-deblur-unet/log.jsonl" "$RUNS/logs/solo-deblur-unet.jsonl" 2> /dev/null
fi

PIDS=()
for r in $RECIPES; do
    args=$(recipe "$r") || exit 2
    # shellcheck disable=SC2086  # the recipe's words, none holds a space (paths included)
    python3 $args "${LOOP[@]}" --output-dir "$RUNS/$r" > "$RUNS/logs/$r.log" 2>&1 &
    PIDS+=($!)
    echo "started $r (pid $!): python3 $args ${LOOP[*]} --output-dir $RUNS/$r" | tee -a "$RUNS/logs/env.txt"
done
FAILED=0
for pid in "${PIDS[@]}"; do wait "$pid" || FAILED=$((FAILED + 1)); done
[ -n "${DMON:-}" ] && kill "$DMON" 2> /dev/null

# Pack: one tar per recipe (its export, run record and loss log), one for the logs.
for r in $RECIPES; do
    if [ -d "$RUNS/$r/final" ]; then
        tar -C "$RUNS/$r" -cf "$OUT/$r.tar" final final.run.json log.jsonl
    else
        echo "$r: no export (see logs/$r.log)" | tee -a "$RUNS/logs/env.txt"
    fi
done
for r in $RECIPES; do
    tail -n 3 "$RUNS/$r/log.jsonl" 2> /dev/null | sed "s/^/$r: /"
done | tee "$RUNS/logs/summary.txt"
if [ "$BENCH" = 1 ]; then  # after training, with the GPU to themselves: synthesis, then inference and the gate
    timeout 75 python3 benchmarks/bench_synthesis.py --threads 1 --repeats 3 --step-batch 0 --json \
        > "$RUNS/logs/bench_synthesis.json" 2> "$RUNS/logs/bench_synthesis.err"
    bash benchmarks/gpu_inference_check.sh "$RUNS/inference" "$DATA" > "$RUNS/logs/inference.log" 2>&1
    tar -C "$RUNS" -cf "$OUT/inference.tar" inference
fi
tar -C "$RUNS" -cf "$OUT/logs.tar" logs
ls -la "$OUT"
python3 - "$OUT" <<'PY'
import os, sys
files = [os.path.join(sys.argv[1], f) for f in os.listdir(sys.argv[1])]
big = [f for f in files if os.path.getsize(f) > 16 * 2**20]
assert len(files) <= 8 and not big, f"the device tool returns at most 8 files of 16 MiB: {files}, too big: {big}"
PY
exit $FAILED
