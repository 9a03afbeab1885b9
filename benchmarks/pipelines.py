"""Benchmark the three data pipelines on the same clips, in the same run.

(a) files:  per-item DataBlock, every clip decoded and resampled from its file each epoch (as fastaudio does)
(b) cached: per-item DataBlock over the decoded-once clip cache, collated on the CPU
(c) device: the cached clips on the training device, batches are index slices there

For each pipeline: seconds per epoch and clips/s over the training split of one fold, for
  load  - waveform batches only (no batch transforms),
  spec  - plus AudioNormalize -> AudioToSpec -> SpecNormalize(channel) on the batch's device,
  train - plus one xResNet18 training step per batch (with --train).
Ratios are to (a) of the same stage. Usage:
  python benchmarks/pipelines.py --data ../shared/esc50 --clips-per-class 2 [--device cuda] [--train] [--out FILE]
"""
from __future__ import annotations
import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from esc50_norm.study.device import pick_device
from fastai.vision.models.xresnet import xresnet18

from esc50_norm import AudioConfig
from esc50_norm.configs import Decoding
from esc50_norm.study import esc50_path, load_or_build_cache, read_meta, subset_per_class
from esc50_norm.study.normalizations import norm_tfms
from esc50_norm.study.pipelines import cached_datablock, device_dataloaders, files_datablock

PIPELINES = ('files', 'cached', 'device')


def _sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def make_dls(pipeline, stage, df, cache, root, cfg, bs, device, downmix):
    "Training DataLoader of fold 1 for `pipeline`, with the batch transforms of `stage` (none for 'load')"
    tfms = None if stage == 'load' else norm_tfms('channel', cfg)
    if pipeline == 'files':
        return files_datablock(root / 'audio', 1, tfms, downmix=downmix).dataloaders(df, bs=bs, device=device, num_workers=0)
    if pipeline == 'cached': return cached_datablock(cache, 1, tfms).dataloaders(df, bs=bs, device=device, num_workers=0)
    return device_dataloaders(cache, df, 1, tfms, bs=bs, device=device)


def time_epoch(dl, device, step=None) -> tuple:
    "Seconds for one pass over `dl` (running `step` on each batch) and the number of clips seen"
    _sync(device)
    t0, n = time.perf_counter(), 0
    for xb, yb in dl:
        if step is not None: step(xb, yb)
        n += len(yb)
    _sync(device)
    return time.perf_counter() - t0, n


def train_step(device, n_out=50):
    model = xresnet18(pretrained=False, c_in=1, n_out=n_out).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    def step(xb, yb):
        loss = torch.nn.functional.cross_entropy(model(xb.as_subclass(torch.Tensor)), yb.as_subclass(torch.Tensor))
        opt.zero_grad(); loss.backward(); opt.step()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', help="ESC-50 folder (default $ESC50_PATH)")
    p.add_argument('--clips-per-class', type=int, default=2, help="clips per class and fold (default 2: 500 clips)")
    p.add_argument('--bs', type=int, default=64)
    p.add_argument('--device', default=None, help="default: the GPU if there is one")
    p.add_argument('--train', action='store_true', help="also time a training step per batch")
    p.add_argument('--epochs', type=int, default=2, help="timed epochs per pipeline and stage (the first is a warm-up when > 1)")
    p.add_argument('--pipelines', default=','.join(PIPELINES))
    p.add_argument('--cache-dir', default=None)
    p.add_argument('--out', default=None, help="write the table here (markdown); default benchmarks/results-<device>.md")
    a = p.parse_args(argv)
    device = pick_device(a.device)
    root = esc50_path(a.data, download=False)
    df = subset_per_class(read_meta(root, full=False).rename(columns=dict(filename='file', category='label')), a.clips_per_class)
    cfg = AudioConfig.BasicSpectrogram()
    cache_dir = a.cache_dir or tempfile.mkdtemp(prefix='esc50-bench-')
    t0 = time.perf_counter()
    cache = load_or_build_cache(root / 'audio', df.file, cache_dir, Decoding(downmix='sum'), progress=False)
    build_s = time.perf_counter() - t0
    print(f"{len(df)} clips; cache built in {build_s:.1f}s ({len(df) / build_s:.0f} clips/s, a one-time cost); device {device}")
    stages = ['load', 'spec'] + (['train'] if a.train else [])
    rows = []
    for stage in stages:
        for pipe in a.pipelines.split(','):
            dls = make_dls(pipe, 'load' if stage == 'load' else 'spec', df, cache, root, cfg, a.bs, device, 'sum')
            step = train_step(device) if stage == 'train' else None
            times = [time_epoch(dls.train, device, step) for _ in range(a.epochs)]
            secs, n = times[-1] if len(times) == 1 else min(times[1:])
            rows.append(dict(stage=stage, pipeline=pipe, clips=n, s_per_epoch=secs, clips_per_s=n / secs))
            print(f"{stage:5s} {pipe:6s} {secs:8.3f} s/epoch {n / secs:10.1f} clips/s", flush=True)
    res = pd.DataFrame(rows)
    base = res[res.pipeline == 'files'].set_index('stage').clips_per_s
    res['speedup_vs_files'] = [r.clips_per_s / base.get(r.stage, float('nan')) for r in res.itertuples()]
    dev = torch.cuda.get_device_name(device) if device.type == 'cuda' else f"cpu ({torch.get_num_threads()} threads)"
    text = (f"# Pipeline benchmark\n\n{len(df)} ESC-50 clips ({a.clips_per_class} per class and fold), training split of fold 1 "
            f"({res.clips.iloc[0]} clips per epoch), bs {a.bs}, BasicSpectrogram 1x201x401, device {dev}, "
            f"torch {torch.__version__}, python {platform.python_version()}. Cache build (one time): {build_s:.1f}s.\n\n"
            + res.to_markdown(index=False, floatfmt='.3f') + "\n")
    out = Path(a.out or Path(__file__).parent / f"results-{device.type}.md")
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return res


if __name__ == '__main__': sys.exit(0 if main() is not None else 1)
