#!/usr/bin/env bash
# The main job: set up (scripts/setup), train the `quick` study on ESC-50 into runs/quick (not committed; CPU: about
# 5 minutes in bf16 where the CPU has native bf16, 15 to 27 in fp32 where not; it says which first), report it,
# compare it with the committed folder it repeats (results/quick-bf16-cpu on a CPU with native bf16, results/quick-cpu
# in fp32 elsewhere), and run the demo.
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
# what the quick study costs on this CPU, said before it starts (measured on 2-core AMD EPYCs, with and without bf16)
if [ "$preset" = quick ] && [[ "$*" != *cuda* && "$*" != *--fp32* && "$*" != *--bf16* ]]; then
  .venv/bin/python -c 'from esc50_norm.precision import cpu_model, native_bf16
cpu = cpu_model() or "this CPU"
print(f"== {cpu}: native bf16, so bf16 + channels-last: about 5 minutes on 2 cores (9 runs of about 30 s) ==" if native_bf16()
      else f"== {cpu}: no native bf16 (neither avx512_bf16 nor amx_bf16), so fp32: 12 to 22 minutes from here on 2 "
           "cores (9 runs of 60 to 150 s) ==")'
fi
.venv/bin/esc50-norm study --preset "$preset" --out "$out" "$@"
# the committed folder this run repeats: the same recipe (bf16 on a CPU with native bf16, else fp32) on the same dataset
ref=""
for d in results/"$preset"-*/; do
  if [ -f "$d/preset.json" ] && .venv/bin/python -c 'import sys; from esc50_norm.study.runs import reproduces
sys.exit(not reproduces(*sys.argv[1:]))' "$out" "$d"; then ref=${d%/}; break; fi
done
if [ -n "$ref" ]; then
  echo; echo "== $out against the committed $ref: per normalization, committed mean, new mean, difference =="
  .venv/bin/esc50-norm compare "$ref" "$out" --out "$out/comparison.md"
else
  echo; echo "== no committed folder under results/ holds this recipe on this dataset: nothing to compare $out with =="
fi
.venv/bin/esc50-norm demo --out demo
