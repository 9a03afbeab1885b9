"Streaming, mergeable mean/variance in float64, and the stats file that carries them to inference"
from __future__ import annotations
import json
import math
from itertools import islice
from pathlib import Path

import torch

__all__ = ['RunningStats', 'accumulate', 'STATS_AXES', 'save_stats', 'load_stats', 'StatsFileError']

STATS_AXES = {'global': (0, 1, 2, 3), 'channel': (0, 1, 3)}
"Reduction axes of a `[bs, channels, freq, time]` batch for each normalization mode"


class RunningStats:
    "Count, mean and sum of squared deviations over `axes`, updated batch by batch (Chan et al.'s parallel formula)"
    def __init__(self, axes=(0,)):
        self.axes = tuple(sorted(axes) if not isinstance(axes, int) else (axes,))
        self.n, self.mean_, self.m2 = 0, None, None

    def update(self, x: torch.Tensor) -> RunningStats:
        "Add every element of `x`, reduced over `axes`"
        x = torch.as_tensor(x).detach().as_subclass(torch.Tensor).double()
        if any(a >= x.ndim or a < 0 for a in self.axes):
            raise ValueError(f"RunningStats: axes {self.axes} do not fit a tensor of shape {tuple(x.shape)}")
        n = math.prod(x.shape[a] for a in self.axes)
        if n == 0: return self
        var, mean = torch.var_mean(x, dim=self.axes, keepdim=True, correction=0)
        return self._merge(n, mean, var * n)

    def merge(self, other: RunningStats) -> RunningStats:
        "Fold in the statistics of another accumulator over the same axes"
        if other.axes != self.axes: raise ValueError(f"cannot merge stats over axes {other.axes} into axes {self.axes}")
        return self if other.n == 0 else self._merge(other.n, other.mean_, other.m2)

    def _merge(self, n, mean, m2) -> RunningStats:
        if self.n == 0:
            self.n, self.mean_, self.m2 = n, mean.clone(), m2.clone()
            return self
        if mean.shape != self.mean_.shape:
            raise ValueError(f"stats shape {tuple(mean.shape)} does not match accumulated shape {tuple(self.mean_.shape)}")
        mean, m2 = mean.to(self.mean_.device), m2.to(self.mean_.device)
        tot = self.n + n
        delta = mean - self.mean_
        self.mean_ = self.mean_ + delta * (n / tot)
        self.m2 = self.m2 + m2 + delta.square() * (self.n * n / tot)
        self.n = tot
        return self

    def _check(self):
        if self.n == 0: raise ValueError("RunningStats is empty: update it with data first")

    @property
    def mean(self) -> torch.Tensor: self._check(); return self.mean_
    def var(self, correction: int = 0) -> torch.Tensor:
        "Population variance (`correction=0`) or sample variance (`correction=1`)"
        self._check(); return self.m2 / max(self.n - correction, 1)
    def std(self, correction: int = 0) -> torch.Tensor: return self.var(correction).sqrt()
    def __repr__(self):
        if self.n == 0: return f"RunningStats(axes={self.axes}, empty)"
        return f"RunningStats(axes={self.axes}, n={self.n}, shape={tuple(self.mean_.shape)})"


def accumulate(batches, axes, frac: float = 1.0, n_batches: int | None = None) -> RunningStats:
    "Stream `batches` (the first `frac` of `n_batches` when given) through a `RunningStats` over `axes`"
    if not 0 < frac <= 1: raise ValueError(f"frac must be in (0, 1], got {frac}")
    stats = RunningStats(axes)
    if n_batches is not None: batches = islice(batches, max(1, math.ceil(frac * n_batches)))
    for b in batches: stats.update(b)
    return stats


class StatsFileError(ValueError):
    "A stats file that is missing, malformed, or of the wrong shape"

FORMAT = 'esc50_norm.stats/1'

def save_stats(path, mean: torch.Tensor, std: torch.Tensor, **info) -> Path:
    "Write mean/std (and any JSON-able `info`, such as mode, count, config) to a readable JSON file"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mean, std = torch.as_tensor(mean).double().cpu(), torch.as_tensor(std).double().cpu()
    d = dict(format=FORMAT, shape=list(mean.shape), mean=mean.flatten().tolist(), std=std.flatten().tolist(), **info)
    tmp = path.with_suffix(path.suffix + '.tmp')
    tmp.write_text(json.dumps(d, indent=1))
    tmp.replace(path)
    return path

def load_stats(path, shape=None) -> dict:
    "Read a stats file; `mean`/`std` come back as float64 tensors, checked against `shape` when given"
    path = Path(path)
    try: d = json.loads(path.read_text())
    except FileNotFoundError: raise StatsFileError(f"stats file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as e: raise StatsFileError(f"stats file {path} is not readable JSON: {e}") from e
    if d.get('format') != FORMAT: raise StatsFileError(f"stats file {path} has format {d.get('format')!r}, expected {FORMAT!r}")
    try:
        d['mean'] = torch.tensor(d['mean'], dtype=torch.float64).reshape(d['shape'])
        d['std'] = torch.tensor(d['std'], dtype=torch.float64).reshape(d['shape'])
    except (KeyError, RuntimeError) as e: raise StatsFileError(f"stats file {path} is malformed: {e}") from e
    if shape is not None and tuple(d['shape']) != tuple(shape):
        raise StatsFileError(f"stats file {path} holds stats of shape {tuple(d['shape'])}, but this data needs {tuple(shape)}")
    return d
