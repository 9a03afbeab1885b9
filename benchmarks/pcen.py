"""Benchmark PCEN's smoother: one torchaudio lfilter over the batch against a plain Python loop over frames.

On the same batch of mel magnitudes (default 64 x 1 x 128 x 313: 5 s clips at 16 kHz, hop 256), in the same run, times
  smoother - `pcen_smooth` (lfilter, per-bin coefficients) against a loop M[t] = b S[t] + (1 - b) M[t-1] over frames,
  pcen     - the whole `pcen` with either smoother,
  learned  - `LearnedPCEN` forward + backward with either smoother (autograd through the loop),
and checks that both give the same numbers (largest relative difference). Seconds are the median of `--repeats` timed
calls after one warm-up, the two paths' calls interleaved; `loop_over_this` is the loop's seconds over these (above 1: faster than the loop). Usage:
  python benchmarks/pcen.py [--device cpu|cuda] [--bs 64] [--out FILE]
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

from esc50_norm.pcen import LearnedPCEN, pcen_compress, pcen_smooth, smoothing_coef
from esc50_norm.study.device import pick_device


def loop_smooth(S: torch.Tensor, coef) -> torch.Tensor:
    "The smoother as a Python loop over frames, from librosa's initial state 1: the reference the lfilter path replaces"
    coef = torch.as_tensor(coef, dtype=S.dtype, device=S.device)
    m, out = torch.ones_like(S[..., 0]), []
    for t in range(S.shape[-1]):
        m = coef * S[..., t] + (1 - coef) * m
        out.append(m)
    return torch.stack(out, -1)


def pcen_with(smooth, S, gain=0.98, bias=2.0, power=0.5, eps=1e-6):
    "`pcen` at its defaults (16 kHz, hop 256, time constant 0.4 s) with the smoother `smooth`"
    t = lambda v: torch.tensor(v, dtype=S.dtype, device=S.device)
    return pcen_compress(S, smooth(S, smoothing_coef()), t(gain), t(bias), t(power), eps)


def learned_with(smooth, lp: LearnedPCEN, S):
    "`LearnedPCEN`'s forward with the smoother `smooth`, and a backward pass; the output and the smoothing coefficients' gradient"
    lp.zero_grad()
    p = lp.constrained()
    col = lambda v: v.unsqueeze(-1)
    out = pcen_compress(S, smooth(S, p['smooth_coef']), col(p['alpha']), col(p['delta']), 1 / col(p['root']), lp.eps)
    out.square().mean().backward()
    return out.detach(), lp.smooth_coef.grad.clone()


def timed(fs, device, repeats: int) -> list:
    "For each function of `fs`: median seconds of `repeats` calls after one warm-up, and its last result; calls interleaved"
    def call(f):
        t0 = time.perf_counter(); res = f()
        if device.type == 'cuda': torch.cuda.synchronize(device)
        return time.perf_counter() - t0, res
    results = [call(f)[1] for f in fs]
    secs = [[] for _ in fs]
    for _ in range(repeats):                                   # fast, loop, fast, loop, ...: both see the same machine load
        for i, f in enumerate(fs):
            t, results[i] = call(f); secs[i].append(t)
    return [(statistics.median(s), r) for s, r in zip(secs, results)]


def max_rel(a, b) -> float:
    a, b = (x if isinstance(x, tuple) else (x,) for x in (a, b))
    return max(((x - y).abs() / y.abs().clamp_min(1e-30)).max().item() for x, y in zip(a, b))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default=None, help="cpu or cuda (default: the GPU if there is one)")
    p.add_argument('--bs', type=int, default=64)
    p.add_argument('--n-mels', type=int, default=128)
    p.add_argument('--frames', type=int, default=313)
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--tolerance', type=float, default=1e-4, help="largest relative difference allowed between the two paths")
    p.add_argument('--out', default=None, help="write the table here (markdown); default benchmarks/pcen-<device>.md")
    a = p.parse_args(argv)
    device = pick_device(a.device)
    g = torch.Generator().manual_seed(0)
    S = (torch.rand(a.bs, 1, a.n_mels, a.frames, generator=g) ** 4 * 2 ** 31).to(device)   # mel-magnitude-like, 0 .. 2**31
    lp = LearnedPCEN(a.n_mels).to(device)
    cases = {'smoother': (lambda: pcen_smooth(S, smoothing_coef()), lambda: loop_smooth(S, smoothing_coef())),
             'pcen': (lambda: pcen_with(pcen_smooth, S), lambda: pcen_with(loop_smooth, S)),
             'learned fwd+bwd': (lambda: learned_with(pcen_smooth, lp, S), lambda: learned_with(loop_smooth, lp, S))}
    rows = []
    for what, (fast, loop) in cases.items():
        (t_fast, r_fast), (t_loop, r_loop) = timed([fast, loop], device, a.repeats)
        diff = max_rel(r_fast, r_loop)
        if not diff <= a.tolerance: raise SystemExit(f"{what}: lfilter and loop differ by {diff:.3g} relative (> {a.tolerance})")
        rows += [dict(what=what, path='lfilter', seconds=t_fast, loop_over_this=t_loop / t_fast, max_rel_diff=diff),
                 dict(what=what, path='loop', seconds=t_loop, loop_over_this=1.0, max_rel_diff=diff)]
        print(f"{what:16s} lfilter {t_fast:8.4f} s  loop {t_loop:8.4f} s  loop/lfilter {t_loop / t_fast:6.2f}  max rel diff {diff:.2g}", flush=True)
    res = pd.DataFrame(rows)
    dev = (torch.cuda.get_device_name(device) if device.type == 'cuda' else
           f"cpu ({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    text = (f"# PCEN smoother benchmark\n\nBatch {a.bs} x 1 x {a.n_mels} x {a.frames} float32, device {dev}, torch {torch.__version__}, "
            f"python {platform.python_version()}; median of {a.repeats} calls after a warm-up, the two paths' calls interleaved. `lfilter`: one "
            f"`torchaudio.functional.lfilter` with per-bin coefficients; `loop`: a Python loop over the {a.frames} frames. "
            f"`max_rel_diff`: the largest relative difference between the two results (for `learned fwd+bwd`, "
            f"of the output and the smoothing coefficients' gradient).\n\n"
            + res.to_markdown(index=False, floatfmt=('', '', '.4f', '.2f', '.1e')) + "\n")
    out = Path(a.out or Path(__file__).parent / f"pcen-{device.type}.md")
    out.write_text(text)
    print(text)
    print(f"written to {out}")
    return res


if __name__ == '__main__': sys.exit(0 if main() is not None else 1)
