#!/usr/bin/env bash
# Set up (scripts/setup), then run the main job: the `quick` study on ESC-50 (CPU, <= 10 min), its report, and the demo.
# ESC-50 comes from --data / $ESC50_PATH; beside this repository, ../shared/esc50 is used; otherwise it is downloaded.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup
if [ -z "${ESC50_PATH:-}" ] && [ -d ../shared/esc50 ]; then export ESC50_PATH=$(cd ../shared/esc50 && pwd); fi
export MPLBACKEND=Agg
.venv/bin/esc50-norm study --preset "${PRESET:-quick}" "$@"
.venv/bin/esc50-norm demo --out demo
