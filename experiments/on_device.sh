#!/usr/bin/env bash
# Run on the GPU machine (device tool), one call per step, back to back while the machine stays warm:
#   bash experiments/on_device.sh part .esc50-parts/partK   carry that part: adds its clips to ~/esc50
#   bash experiments/on_device.sh study PRESET [ARGS...]     carry .device-wheels the first time: install them, decode
#        the clips once, run (or resume) the preset's grid with `esc50-norm study` (its defaults on CUDA: bf16 +
#        channels-last, 5 worker processes on the GPU), report it and pack results/PRESET into $OUT/results-PRESET.tar.gz
#        (unpack it here: tar xzf <files_at>/results-PRESET.tar.gz -C results/). No run starts after STOP_AFTER
#        seconds (default 420; 300 for `strong` and `frontends`, whose 80-epoch runs take about 4 minutes), so that the
#        call ends inside the 10-minute limit with every started run finished;
#        the same call again resumes.
# Results go to ~/results/PRESET on the device (outside the synced tree), so a later call on the same warm machine resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
data=~/esc50
case "${1:-}" in
  part)
    mkdir -p $data/audio
    [ -d "$2/meta" ] && cp -r "$2/meta" $data/
    cp "$2"/audio/* $data/audio/
    echo "$(ls $data/audio | wc -l) clips in $data" ;;
  study)
    preset=$2; shift 2
    # the wheels go to the Python that runs the study: `pip` on the PATH there belongs to another one
    if ! python3 -c "import fastai, statsmodels, sklearn, soundfile" 2>/dev/null; then
      python3 -m pip install -q --no-deps .device-wheels/*.whl; fi
    if [ -f .device-wheels/PROVENANCE ]; then cp .device-wheels/PROVENANCE ~/PROVENANCE; fi
    if [ -f ~/PROVENANCE ]; then set -a; . ~/PROVENANCE; set +a; fi
    export PYTHONPATH=$PWD ESC50_PATH=$data ESC50_NORM_CACHE=~/esc50-cache PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    start=$(date +%s)
    case "$preset" in strong|frontends) stop=${STOP_AFTER:-300} ;; *) stop=${STOP_AFTER:-420} ;; esac
    python3 -m esc50_norm.study.cli study --preset "$preset" --out ~/results/$preset --stop-after "$stop" --no-baseline \
      ${DEVICE:+--device $DEVICE} "$@" 2>&1 | tee ~/study-$preset.log || true
    echo "wall time of this call: $(( $(date +%s) - start )) s"
    tar czf "$OUT/results-$preset.tar.gz" -C ~/results "$preset" && cp ~/study-$preset.log "$OUT/" ;;
  *) echo "usage: on_device.sh part DIR | study PRESET [ARGS...]" >&2; exit 2 ;;
esac
