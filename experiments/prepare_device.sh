#!/usr/bin/env bash
# Run here (with network to PyPI) before a GPU session: what the GPU machine lacks, in folders small enough to carry
# (each device call carries at most 64 MiB with the working tree; ../shared does not travel).
#   .device-wheels/        fastai and friends, statsmodels, for Python 3.12 (the GPU machine has torch/torchaudio,
#                          pandas, scipy, matplotlib but no fastai), and PROVENANCE: the commit the runs come from
#   .esc50-parts/partK/    ESC-50 in parts of at most PART_MIB (default: 50, or less when the tracked tree, about 14 MiB
#                          with results/ and the notebooks, would leave a part and the tree less than 2 MiB under 64 MiB);
#                          part1 also holds meta/
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print int((s + 1048575) / 1048576)}')   # MiB, rounded up
part=${PART_MIB:-$(( 62 - tree < 50 ? 62 - tree : 50 ))}
if (( part + tree > 64 )); then
  echo "prepare_device.sh: parts of $part MiB and the tracked tree ($tree MiB) exceed the 64 MiB a device call carries;" \
       "set PART_MIB to at most $(( 64 - tree ))" >&2
  exit 2
fi
echo "parts of at most $part MiB beside a tracked tree of $tree MiB (64 MiB a call)"
python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: -d .device-wheels \
  fastai fastcore fastprogress fasttransform fastdownload "plum-dispatch<2.10" beartype python-fasthtml starlette \
  itsdangerous python-multipart anyio cffi pycparser soundfile tabulate statsmodels patsy \
  scikit-learn joblib threadpoolctl
{ echo "ESC50_NORM_GIT_COMMIT=$(git rev-parse HEAD)"
  echo "ESC50_NORM_GIT_DIRTY=$([ -z "$(git status --porcelain --untracked-files=no -- . ':(exclude)results')" ] && echo 0 || echo 1)"
} > .device-wheels/PROVENANCE
../shared/tools/split-for-device .esc50-parts "$part"
du -sh .device-wheels .esc50-parts/*
