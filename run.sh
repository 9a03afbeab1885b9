#!/usr/bin/env bash
# The main job: set up (scripts/setup), train the `quick` study on ESC-50 into runs/quick (not committed; CPU, about
# 6 minutes), report it, compare it with the committed results/quick-cpu, and run the demo.
# ESC-50 comes from --data / $ESC50_PATH; beside this repository, ../shared/esc50 is used; otherwise it is downloaded.
# PRESET=cv ./run.sh --device cuda runs another preset (compared with its committed folder when there is one);
# arguments go to `esc50-norm study`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup
if [ -z "${ESC50_PATH:-}" ] && [ -d ../shared/esc50 ]; then export ESC50_PATH=$(cd ../shared/esc50 && pwd); fi
export MPLBACKEND=Agg
preset=${PRESET:-quick}
out=${OUT:-runs/$preset}
.venv/bin/esc50-norm study --preset "$preset" --out "$out" "$@"
case "$preset" in quick) ref=results/quick-cpu ;; *) ref=$(ls -d results/"$preset"-* 2>/dev/null | head -n 1) ;; esac
if [ -n "$ref" ] && [ -d "$ref" ]; then
  echo; echo "== $out against the committed $ref: per normalization, committed mean, new mean, difference =="
  .venv/bin/esc50-norm compare "$ref" "$out" --out "$out/comparison.md"
fi
.venv/bin/esc50-norm demo --out demo
