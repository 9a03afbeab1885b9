"""Benchmark fp32 against bf16 autocast + channels-last, interleaved in one run, at the sizes of presets `mel` and `mel-cpu`.

For each preset and precision:
  step  - the bare xResNet18 training step on a random batch of the preset's spectrogram size (the floor: nothing but the model)
  epoch - the study's epoch: `train_one` of fold 1, global, seed 0, one epoch (training and validation, as the study runs it)
The two precisions alternate, repetition by repetition, so that both see the same machine; each figure is the median over
repetitions. The ratio is fp32's time over bf16's (> 1: bf16 is faster). On a CPU without native bf16 (no avx512_bf16 or
amx_bf16) bf16 is emulated, and the table is what choosing it there costs; the header says which, and the oneDNN ISA cap
(`ONEDNN_MAX_CPU_ISA=AVX2` on an AVX-512 CPU takes torch's path of an AVX2-only one). Usage:
  python benchmarks/precision.py --data ../shared/esc50 [--presets mel,mel-cpu] [--reps 2] [--steps 5] [--out FILE]
"""
from __future__ import annotations
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from fastai.vision.models.xresnet import xresnet18

from esc50_norm.precision import cpu_model, native_bf16
from esc50_norm.study import get_dataset, get_preset
from esc50_norm.study.presets import Job
from esc50_norm.study.train import load_study_data, release_memory, train_one

PRECISIONS = dict(fp32=dict(bf16=False, channels_last=False), bf16=dict(bf16=True, channels_last=True))


def bare_steps(shape: tuple, n_out: int, bf16: bool, steps: int) -> float:
    "Seconds per training step of xResNet18 on a random batch of `shape` (the median over `steps`, after one warm-up step)"
    torch.manual_seed(0)
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = xresnet18(pretrained=False, c_in=shape[1], n_out=n_out).to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(shape).contiguous(memory_format=fmt), torch.randint(0, n_out, shape[:1])
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):     # the forward pass and the loss only
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def study_epoch(preset, data) -> float:
    "Seconds of the study's epoch: one epoch of `train_one` on fold 1, global, seed 0 (training and validation)"
    row, _ = train_one(preset.update(epochs=1), data, Job(1, 'global', 0))
    release_memory()
    return row['wall_s']


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', help="ESC-50 folder (default $ESC50_PATH)")
    p.add_argument('--presets', default='mel,mel-cpu')
    p.add_argument('--reps', type=int, default=2, help="repetitions of each figure, the precisions alternating")
    p.add_argument('--steps', type=int, default=5, help="timed bare steps per repetition")
    p.add_argument('--clips-per-class', type=int, default=None, help="a subset of ESC-50 for the study's epoch (default: all)")
    p.add_argument('--bs', type=int, default=None, help="batch size (default: the preset's)")
    p.add_argument('--no-epoch', action='store_true', help="time the bare step only")
    p.add_argument('--cache-dir', default=None)
    p.add_argument('--out', default=None, help="write the table here (markdown); default benchmarks/precision-cpu.md")
    a = p.parse_args(argv)
    ds = get_dataset(data=a.data, full=a.clips_per_class is None)
    rows = []
    for name in a.presets.split(','):
        preset = get_preset(name, clips_per_class=a.clips_per_class, bs=a.bs, folds=(1,)).for_dataset(ds, log=None)
        data = None if a.no_epoch else load_study_data(preset, ds, a.cache_dir, 'cpu', progress=False, log=None)
        cfg, n = preset.spec, int(round(preset.sr * preset.duration))
        shape = (preset.bs, 1, cfg.n_freq, cfg.n_frames(n))
        size = f"1x{shape[2]}x{shape[3]}"
        times = {(kind, prec): [] for kind in ('step', 'epoch') for prec in PRECISIONS}
        for rep in range(a.reps):
            for prec, kw in PRECISIONS.items():
                times['step', prec].append(bare_steps(shape, 50, kw['bf16'], a.steps))
                if data is not None: times['epoch', prec].append(study_epoch(preset.update(**kw), data))
                print(f"{name} {size} rep {rep + 1} {prec}: step {times['step', prec][-1]:.3f}s"
                      + (f", epoch {times['epoch', prec][-1]:.1f}s" if data is not None else ''), flush=True)
        for kind in ('step', 'epoch'):
            if not times[kind, 'fp32']: continue
            fp32, bf16 = (statistics.median(times[kind, prec]) for prec in PRECISIONS)
            rows.append(dict(preset=name, size=size, bs=preset.bs, what='bare xResNet18 step' if kind == 'step' else "study's epoch",
                             fp32_s=fp32, bf16_cl_s=bf16, speedup=fp32 / bf16, reps=a.reps))
        del data
        release_memory()
    res = pd.DataFrame(rows)
    cpu = cpu_model() or platform.processor() or platform.machine()
    isa = os.environ.get('ONEDNN_MAX_CPU_ISA')
    bf16 = ('native' if native_bf16() else 'emulated (no avx512_bf16 or amx_bf16)') + (f", oneDNN capped at {isa}" if isa else '')
    text = (f"# fp32 against bf16 autocast + channels-last on the CPU\n\n"
            f"`python benchmarks/precision.py {' '.join(argv if argv is not None else sys.argv[1:])}`: {torch.get_num_threads()} "
            f"threads ({cpu}; bf16 {bf16}), torch {torch.__version__}, python {platform.python_version()}. The precisions alternate "
            f"repetition by repetition; each time is the median of {a.reps}. "
            + ('' if a.no_epoch else f"The study's epoch is `train_one` of fold 1, global, one epoch: "
               f"{'all' if a.clips_per_class is None else a.clips_per_class} clips per class and fold, training and validation. ")
            + "speedup = fp32 / bf16.\n\n"
            + res.to_markdown(index=False, floatfmt='.3f') + "\n")
    out = Path(a.out or Path(__file__).parent / 'precision-cpu.md')
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return res


if __name__ == '__main__': sys.exit(0 if main() is not None else 1)
