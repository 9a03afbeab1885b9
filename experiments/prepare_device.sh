#!/usr/bin/env bash
# Run here (with network to PyPI) before a GPU session: the wheels the GPU machine lacks, and ESC-50 in parts
# small enough to carry (each device call carries at most 64 MiB; ../shared does not travel).
#   .device-wheels/   fastai and friends for Python 3.12 (the GPU machine has torch/torchaudio but no fastai)
#   .esc50-parts/partN/  ~50 MiB each; part1 also holds meta/
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --python-version 3.12 --only-binary=:all: -d .device-wheels \
  fastai fastcore fastprogress fasttransform fastdownload "plum-dispatch<2.10" beartype python-fasthtml starlette \
  itsdangerous python-multipart anyio cffi pycparser soundfile tabulate
../shared/tools/split-for-device .esc50-parts 50
du -sh .device-wheels .esc50-parts/*
