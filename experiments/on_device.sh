#!/usr/bin/env bash
# Run on the GPU machine (device tool), one call per step, back to back while the machine stays warm:
#   bash experiments/on_device.sh part .esc50-parts/partN    carry that part: adds its clips to ~/esc50
#   bash experiments/on_device.sh study PRESET [NSHARDS] [ARGS...]  carry .device-wheels: install, cache, run
#        the preset's grid as NSHARDS processes sharing the GPU (default 3), report, and pack
#        results/PRESET into $OUT/results-PRESET.tar.gz (unpack it here: tar xzf ... -C results/)
# Results go to ~/results/PRESET on the device (outside the synced tree), so a later call on the same warm
# machine resumes them: a call cut off at its time limit loses only the runs in progress.
set -euo pipefail
cd "$(dirname "$0")/.."
data=~/esc50
case "$1" in
  part)
    mkdir -p $data/audio
    [ -d "$2/meta" ] && cp -r "$2/meta" $data/
    cp "$2"/audio/* $data/audio/
    echo "$(ls $data/audio | wc -l) clips in $data" ;;
  study)
    preset=$2; n=${3:-3}; shift 2; if [ $# -gt 0 ]; then shift; fi
    pip install -q --no-deps .device-wheels/*.whl
    export PYTHONPATH=$PWD ESC50_PATH=$data ESC50_NORM_CACHE=~/esc50-cache PYTHONUNBUFFERED=1
    python3 -m esc50_norm.cli cache --preset "$preset"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    start=$(date +%s)
    for i in $(seq 1 "$n"); do
      python3 -m esc50_norm.cli study --preset "$preset" --out ~/results/$preset --device "${DEVICE:-cuda}" --shard "$i/$n" \
        --no-report "$@" > ~/shard$i.log 2>&1 &
    done
    wait || true
    echo "wall time of $preset with $n shards: $(( $(date +%s) - start )) s"
    tail -n 3 ~/shard*.log
    python3 -m esc50_norm.cli report ~/results/$preset
    tar czf "$OUT/results-$preset.tar.gz" -C ~/results "$preset" && cp ~/shard1.log "$OUT/$preset-shard1.log" ;;
  *) echo "usage: on_device.sh part DIR | study PRESET [NSHARDS] [ARGS...]" >&2; exit 2 ;;
esac
