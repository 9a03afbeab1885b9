#!/usr/bin/env bash
# Run here (with network to PyPI) before a GPU session: what the GPU machine lacks, in folders small enough to carry
# (each device call carries at most 64 MiB with the working tree; ../shared does not travel).
#   .device-wheels/        fastai and friends, statsmodels, for Python 3.12 (the GPU machine has torch/torchaudio,
#                          pandas, scipy, matplotlib but no fastai), and PROVENANCE: the commit the runs come from
#   .esc50-parts/partK/    ESC-50 in 5 parts of at most 50 MiB (PART_MIB), so that a part and the tracked tree (4 MiB
#                          with results/) stay under 64 MiB; part1 also holds meta/
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: -d .device-wheels \
  fastai fastcore fastprogress fasttransform fastdownload "plum-dispatch<2.10" beartype python-fasthtml starlette \
  itsdangerous python-multipart anyio cffi pycparser soundfile tabulate statsmodels patsy \
  scikit-learn joblib threadpoolctl
{ echo "ESC50_NORM_GIT_COMMIT=$(git rev-parse HEAD)"
  echo "ESC50_NORM_GIT_DIRTY=$([ -z "$(git status --porcelain --untracked-files=no -- . ':(exclude)results')" ] && echo 0 || echo 1)"
} > .device-wheels/PROVENANCE
../shared/tools/split-for-device .esc50-parts "${PART_MIB:-50}"
du -sh .device-wheels .esc50-parts/*
