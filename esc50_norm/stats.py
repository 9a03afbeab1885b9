"Streaming, mergeable float64 accumulators (mean/variance, per-clip extrema), and the stats file that carries them"
# the stats file carries the stats to inference
from __future__ import annotations
import json
import math
from pathlib import Path
from typing import Protocol

import torch

from .atomic import write_atomic
from .compat import upgrade_stats

__all__ = ['Accumulator', 'RunningStats', 'RunningExtrema', 'accumulate', 'save_stats', 'load_stats', 'StatsFileError']


class Accumulator(Protocol):
    "What a mode's stats are streamed into (`Mode.accumulator`): batch by batch, and mergeable across workers"
    n: int                                                   # what it has counted (values per bin, clips); 0: empty
    def update(self, x: torch.Tensor) -> Accumulator: ...    # add the batch `x`; returns itself
    def merge(self, other) -> Accumulator: ...               # fold in another accumulator of its kind; returns itself


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
        if other.axes != self.axes:
            raise ValueError(f"cannot merge stats over axes {other.axes} into axes {self.axes}")
        return self if other.n == 0 else self._merge(other.n, other.mean_, other.m2)

    def _merge(self, n, mean, m2) -> RunningStats:
        if self.n == 0:
            self.n, self.mean_, self.m2 = n, mean.clone(), m2.clone()
            return self
        if mean.shape != self.mean_.shape:
            raise ValueError(f"stats shape {tuple(mean.shape)} does not match accumulated shape "
                             f"{tuple(self.mean_.shape)}")
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
    def mean(self) -> torch.Tensor:
        self._check()
        return self.mean_

    def var(self, correction: int = 0) -> torch.Tensor:
        "Population variance (`correction=0`) or sample variance (`correction=1`)"
        self._check()
        return self.m2 / max(self.n - correction, 1)

    def std(self, correction: int = 0) -> torch.Tensor: return self.var(correction).sqrt()

    def __repr__(self):
        if self.n == 0: return f"RunningStats(axes={self.axes}, empty)"
        return f"RunningStats(axes={self.axes}, n={self.n}, shape={tuple(self.mean_.shape)})"


class RunningExtrema:
    "Minimum and maximum of each clip of batches `[bs, ...]`, streamed: the mean minima/maxima and the true extremes"
    def __init__(self): self.n, self.mean_min_, self.mean_max_, self.min_, self.max_ = 0, None, None, None, None

    def update(self, x: torch.Tensor) -> RunningExtrema:
        "Add the clips of the batch `x` (each clip: everything but the first axis)"
        x = torch.as_tensor(x).detach().as_subclass(torch.Tensor).double()
        if x.ndim < 2:
            raise ValueError(f"RunningExtrema needs a batch of clips [bs, ...], got shape {tuple(x.shape)}")
        if x.numel() == 0: return self
        lo, hi = x.flatten(1).aminmax(dim=1)
        return self._merge(len(lo), lo.mean(), hi.mean(), lo.min(), hi.max())

    def merge(self, other: RunningExtrema) -> RunningExtrema:
        "Fold in the clips of another accumulator"
        return self if other.n == 0 else self._merge(other.n, other.mean_min_, other.mean_max_,
                                                     other.min_, other.max_)

    def _merge(self, n, mean_min, mean_max, lo, hi) -> RunningExtrema:
        if self.n == 0:
            self.n, self.mean_min_, self.mean_max_, self.min_, self.max_ = n, mean_min, mean_max, lo, hi
            return self
        dev, tot = self.min_.device, self.n + n
        self.mean_min_ = self.mean_min_ + (mean_min.to(dev) - self.mean_min_) * (n / tot)
        self.mean_max_ = self.mean_max_ + (mean_max.to(dev) - self.mean_max_) * (n / tot)
        self.min_, self.max_, self.n = torch.minimum(self.min_, lo.to(dev)), torch.maximum(self.max_, hi.to(dev)), tot
        return self

    def _check(self):
        if self.n == 0: raise ValueError("RunningExtrema is empty: update it with data first")

    @property
    def mean_min(self) -> torch.Tensor:
        "Mean of the clips' minima"
        self._check()
        return self.mean_min_

    @property
    def mean_max(self) -> torch.Tensor:
        "Mean of the clips' maxima"
        self._check()
        return self.mean_max_

    @property
    def min(self) -> torch.Tensor:
        "Smallest value of all clips"
        self._check()
        return self.min_

    @property
    def max(self) -> torch.Tensor:
        "Largest value of all clips"
        self._check()
        return self.max_

    def __repr__(self): return f"RunningExtrema({'empty' if self.n == 0 else f'n={self.n} clips'})"


def accumulate(batches, acc) -> Accumulator:
    "Stream every batch of `batches` into `acc`: an `Accumulator`, or the axes of a new `RunningStats`"
    stats = acc if hasattr(acc, 'update') else RunningStats(acc)
    for b in batches: stats.update(b)
    return stats


class StatsFileError(ValueError):
    "A stats file that is missing, malformed, or of the wrong shape"

FORMAT = 'esc50_norm.stats/1'

def save_stats(path, mean: torch.Tensor | None = None, std: torch.Tensor | None = None, **info) -> Path:
    "Write the stats arrays and JSON-able `info` to a readable JSON file, atomically"
    # the arrays: `mean`/`std`, or any tensors passed by name, all of one shape
    arrays = {k: torch.as_tensor(v).double().cpu() for k, v in dict(mean=mean, std=std, **info).items()
              if isinstance(v, torch.Tensor)}
    if not arrays: raise ValueError("save_stats needs at least one tensor of stats")
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if len(set(shapes.values())) > 1: raise ValueError(f"stats arrays must share one shape, got {shapes}")
    if bad := [k for k, v in arrays.items() if not torch.isfinite(v).all()]:
        raise ValueError(f"stats {bad} hold NaN or inf: not saved to {path}")
    info = {k: v for k, v in info.items() if k not in arrays}
    d = dict(format=FORMAT, shape=list(next(iter(shapes.values()))), arrays=list(arrays),
             **{k: v.flatten().tolist() for k, v in arrays.items()}, **info)
    return write_atomic(path, json.dumps(d, indent=1, allow_nan=False))

def load_stats(path, shape=None, mode: str | None = None) -> dict:
    "Read a stats file; its `arrays` come back as float64 tensors, checked against `mode` and `shape` when given"
    path = Path(path)
    try: d = upgrade_stats(json.loads(path.read_text()))
    except FileNotFoundError: raise StatsFileError(f"stats file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise StatsFileError(f"stats file {path} is not text but binary (an exported model? load_learner reads "
                             f"those): {e}") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StatsFileError(f"stats file {path} is not readable JSON: {e}") from e
    except (AttributeError, TypeError) as e:
        raise StatsFileError(f"stats file {path} is not a JSON object of stats: {e}") from e
    if d.get('format') != FORMAT:
        raise StatsFileError(f"stats file {path} has format {d.get('format')!r}, expected {FORMAT!r}")
    try:
        for k in d['arrays']: d[k] = torch.tensor(d[k], dtype=torch.float64).reshape(d['shape'])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise StatsFileError(f"stats file {path} is malformed: {e}") from e
    if mode is not None and d.get('mode') != mode:
        raise StatsFileError(f"stats file {path} holds {d.get('mode')!r} stats, but they are loaded for mode {mode!r}")
    if shape is not None and tuple(d['shape']) != tuple(shape):
        raise StatsFileError(f"stats file {path} holds stats of shape {tuple(d['shape'])}, "
                             f"but this data needs {tuple(shape)}")
    return d
