#!/usr/bin/env bash
# Stage the training data for a lent GPU in .gpu-data/ (git-ignored): the device tool sends the working tree and
# the folders named in `carry`, 64 MiB in all, so the data gets what the tree leaves (less MARGIN_MIB for what changes before the call).
# Order: the evaluation sets gpu_session.sh names as --held-out and the inference check reads (Set5, Levin and
# its kernels), all of BSDS500-train, then BSDS500-test images outside bsds500_test_held_out.txt, while they fit.
#
#   bash train_scripts/stage_gpu_data.sh                     # then, with the device tool:
#   run(carry=[".gpu-data"], command="OUT=$OUT DATA=.gpu-data MINUTES=6 bash train_scripts/gpu_session.sh")
#
# Environment: DATA (../shared/data), DEST (.gpu-data), LIMIT_MIB (64), MARGIN_MIB (3).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
DEST=${DEST:-.gpu-data}
grep -qxF "/$DEST/" .git/info/exclude 2> /dev/null || git check-ignore -q "$DEST" || echo "/$DEST/" >> .git/info/exclude
rm -rf "$DEST"
mkdir -p "$DEST/sr/train/bsds500_test" "$DEST/sr/bench" "$DEST/blur/bench"
cp -r "$DATA/sr/bench/Set5" "$DEST/sr/bench/"
cp -r "$DATA/blur/bench/levin" "$DEST/blur/bench/"
cp -r "$DATA/blur/kernels" "$DEST/blur/"
cp -r "$DATA/sr/train/bsds500_train" "$DEST/sr/train/"
mib() { du -sb "$@" | awk '{s += $1} END {print int(s / 1048576)}'; }
tree=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 du -cb 2> /dev/null |
        awk '$2 == "total" {s += $1} END {print int(s / 1048576) + 1}')
room=$(( ${LIMIT_MIB:-64} - ${MARGIN_MIB:-3} - tree ))
added=0
left=$(( room * 1048576 - $(du -sb "$DEST" | cut -f1) ))  # bytes still free
for image in $(ls "$DATA/sr/train/bsds500_test" | grep -vxF -f <(grep -v '^#' train_scripts/bsds500_test_held_out.txt)); do
    size=$(stat -c %s "$DATA/sr/train/bsds500_test/$image")
    [ "$size" -le "$left" ] || break
    cp "$DATA/sr/train/bsds500_test/$image" "$DEST/sr/train/bsds500_test/"
    left=$((left - size)); added=$((added + 1))
done
echo "tree ${tree} MiB, data $(mib "$DEST") MiB (room ${room}): BSDS500-train and ${added} BSDS500-test images"
