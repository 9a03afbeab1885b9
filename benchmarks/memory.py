"""Memory across runs in one process: resident memory (and GPU memory) after each of N short runs of a study.

A study's worker process runs many runs one after another; what one run leaves behind adds up over a grid
(`mel`: 30 runs per worker). This runs N one-epoch runs of a preset in this process, through the study's own
code path, and prints the process's resident memory and the GPU's allocated memory after each run, with the
growth from the first run to the last. Usage:
  python benchmarks/memory.py --data ../shared/esc50 [--partial-data] [--preset quick] [--runs 6] [--device cuda]
                              [--out FILE]
"""
from __future__ import annotations
import argparse
import tempfile
from pathlib import Path

import pandas as pd
import torch

from esc50_norm.study.datasets import get_dataset
from esc50_norm.study.presets import get_preset
from esc50_norm.study.study import Study
from esc50_norm.study.train import resident_gib


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', required=True); p.add_argument('--preset', default='quick')
    p.add_argument('--runs', type=int, default=6); p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--device', default='cpu'); p.add_argument('--out')
    p.add_argument('--partial-data', action='store_true', help="accept an ESC-50-shaped folder, not all of ESC-50")
    a = p.parse_args(argv)
    seeds = tuple(range(a.runs))
    try:
        preset = get_preset(a.preset, folds=(1,), normalizations=('global',), seeds=seeds, epochs=a.epochs)
        dataset = get_dataset(data=a.data, full=not a.partial_data)
        dataset.meta()                                   # a partial or missing copy is named here, before any work
    except ValueError as e: p.error(str(e))
    with tempfile.TemporaryDirectory() as tmp:
        study = Study(preset, Path(tmp) / 'res', dataset=dataset, device=a.device)
        study.prepare()
        data, rows = study.load_data(log=lambda *_: None), []
        for job in study.todo():
            row = study.run(job, data)
            rows.append(dict(run=len(rows) + 1, rss_gib=resident_gib(), rss_in_run_file=row['rss_gib'],
                             gpu_allocated_gib=torch.cuda.memory_allocated() / 2**30 if torch.cuda.is_available() else None,
                             gpu_peak_gib=row['gpu_mem_peak_gib'], accuracy=row['final_accuracy']))
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows).set_index('run')
    grow = df.rss_gib.iloc[-1] - df.rss_gib.iloc[0]
    text = (f"# Memory over {a.runs} one-epoch `{a.preset}` runs in one process ({a.device})\n\n{df.to_markdown(floatfmt='.3f')}\n\n"
            f"Resident memory after the last run minus after the first: {grow:+.3f} GiB ({grow / max(a.runs - 1, 1):+.3f} GiB per run).\n")
    print(text)
    if a.out: Path(a.out).write_text(text)


if __name__ == '__main__': main()
