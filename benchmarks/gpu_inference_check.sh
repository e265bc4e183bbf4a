#!/usr/bin/env bash
# For the lead: run this ONCE on a lent GPU (written for the H200, torch 2.11, Python 3.12), from the repo root:
#
#     PYTHONPATH=$PWD bash benchmarks/gpu_inference_check.sh "$OUT" DATA
#
# DATA holds sr/bench/Set5 and blur/bench/levin (copies of ../shared/data/...). It finishes within 90 s: each
# step runs under `timeout` and the steps' limits add up to 85 s; a step that fails or runs out of time leaves
# its .err file and the next step still runs. What it writes into $OUT:
#   env.json                    torch, CUDA and the GPU's name
#   bf16_gate.json              ganzoo/bf16_gate.json with a "cuda" entry added for srresnet-x4 and deblur-unet:
#                               bf16 on CUDA against fp32 (Set5 Y-PSNR; Levin PSNR) and bf16_speedup. Copy it
#                               over ganzoo/bf16_gate.json to let --precision auto pick bf16 on CUDA where it passed.
#   gate-cuda.log               the gate's printed records
#   bench-srresnet-x4-512.json  `ganzoo benchmark --device cuda --size 512`: every path, and under "default" the
#   bench-deblur-unet-512.json  default path's ratio to naive fp32, MFU and first calls (auto and bf16); the
#                               PSNR difference of bf16 on CUDA is the gate's (bf16_gate.json, gate-cuda.log)
#   bench-srresnet-x4-512-compile.json  torch.compile(mode="reduce-overhead") + rewrites + bf16 + channels-last,
#                               only if at least 20 s are left (compiling takes 10-20 s on an H200)
#   steps.txt                   each step's exit status and the seconds elapsed
#
# On a machine without a GPU, GANZOO_CHECK_DEVICE=cpu GANZOO_CHECK_SIZE=32 GANZOO_CHECK_SLOWER=10 runs the same
# steps on the CPU with 10 times the time limits (how this script was tested: with small data, since bf16 is
# emulated there, and GANZOO_CHECK_ONLY=default, which times only the baseline and the default paths).
set -u
OUT=${1:?usage: gpu_inference_check.sh OUT_DIR DATA_DIR}
DATA=${2:?usage: gpu_inference_check.sh OUT_DIR DATA_DIR}
DEVICE=${GANZOO_CHECK_DEVICE:-cuda}
SIZE=${GANZOO_CHECK_SIZE:-512}
PY=${PYTHON:-python3}
SLOWER=${GANZOO_CHECK_SLOWER:-1}
ONLY=()
[ -n "${GANZOO_CHECK_ONLY:-}" ] && ONLY=(--only "$GANZOO_CHECK_ONLY")
BUDGET=$((85 * SLOWER))
mkdir -p "$OUT"
START=$SECONDS

left() { echo $((BUDGET - (SECONDS - START))); }

step() {  # step NAME LIMIT_S OUTPUT COMMAND...: run COMMAND with at most LIMIT_S (and what is left) seconds
  local name=$1 limit=$2 output=$3
  shift 3
  local remaining
  limit=$((limit * SLOWER))
  remaining=$(left)
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  if [ "$limit" -lt 5 ]; then
    echo "$name skipped: ${remaining}s left" >> "$OUT/steps.txt"
    return
  fi
  timeout -k 2 "$limit" "$@" > "$OUT/$output" 2> "$OUT/$name.err"
  echo "$name rc=$? limit=${limit}s elapsed=$((SECONDS - START))s" >> "$OUT/steps.txt"
}

for folder in "$DATA/sr/bench/Set5" "$DATA/blur/bench/levin"; do
  [ -d "$folder" ] || echo "missing $folder" >> "$OUT/steps.txt"
done

step env 8 env.json "$PY" -c '
import json, torch
cuda = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "available": cuda,
                  "device": torch.cuda.get_device_name(0) if cuda else None,
                  "capability": torch.cuda.get_device_capability(0) if cuda else None}))'

cp ganzoo/bf16_gate.json "$OUT/bf16_gate.json"
step gate-cuda 27 gate-cuda.log "$PY" -m ganzoo.quality_gate --device "$DEVICE" --models srresnet-x4 deblur-unet \
  --data-dir "$DATA" --sr-sets Set5 --write --gate-file "$OUT/bf16_gate.json"

bench() {  # bench NAME LIMIT_S MODEL [ARGS...]
  local name=$1 limit=$2 model=$3
  shift 3
  step "$name" "$limit" "$name.json" "$PY" -m ganzoo.cli benchmark --model "$model" --device "$DEVICE" \
    --size "$SIZE" --repeats 10 --warmup 3 --no-onnx --thread-sweep none --json "$@"
}
bench "bench-srresnet-x4-$SIZE" 28 srresnet-x4 --no-compile "${ONLY[@]}"
bench "bench-deblur-unet-$SIZE" 20 deblur-unet --no-compile "${ONLY[@]}"
if [ "$(left)" -ge $((20 * SLOWER)) ]; then
  bench "bench-srresnet-x4-$SIZE-compile" $(($(left) / SLOWER)) srresnet-x4 --only reduce-overhead
fi
echo "done in $((SECONDS - START))s" >> "$OUT/steps.txt"
cat "$OUT/steps.txt"
