"Waveform and spectrogram normalization transforms; `MODES` is the registry of spectrogram normalizations"
from __future__ import annotations
from contextlib import contextmanager

import torch
from fastai.data.all import DataLoaders, Transform

from .audio import AudioTensor
from .spectrogram import AudioSpectrogram
from .stats import RunningExtrema, RunningStats, StatsFileError, accumulate, load_stats, save_stats

__all__ = ['AudioNormalize', 'SpecNormalize', 'MODES', 'get_mode', 'MeanStd', 'MinMax', 'PerClip', 'training_inputs', 'spec_stats']


class AudioNormalize(Transform):
    "Give every clip zero mean and unit variance over its samples (silent clips stay all-zero)"
    order = 5
    def __init__(self, eps: float = 1e-8): self.eps = eps
    def encodes(self, x: AudioTensor) -> AudioTensor:
        std, mean = torch.std_mean(x.as_subclass(torch.Tensor), dim=(-2, -1), keepdim=True, correction=0)
        return (x - mean) / std.clamp_min(self.eps)


@contextmanager
def _every_item(dl, shuffle: bool):
    "Temporarily make `dl` yield every item once (no dropped last batch), shuffled or not"
    old = dl.shuffle, dl.drop_last
    dl.shuffle, dl.drop_last = shuffle, False
    try: yield dl
    finally: dl.shuffle, dl.drop_last = old


def training_inputs(dl, frac: float = 1.0):
    "Model inputs of every batch of the training `dl`, or of a random `frac` of its batches; refuses a validation dl"
    if getattr(getattr(dl, 'dataset', None), 'split_idx', 0) == 1:
        raise ValueError("normalization stats must come from the training data, but this DataLoader is the validation split")
    if not 0 < frac <= 1: raise ValueError(f"frac must be in (0, 1], got {frac}")
    with _every_item(dl, shuffle=frac < 1):
        n = len(dl)
        for i, b in enumerate(dl):
            if frac < 1 and i >= max(1, round(frac * n)): break
            yield b[0] if isinstance(b, (tuple, list)) else b


class MeanStd:
    "`(x - mean) / std` with the training mean/std over `axes` of `[bs, ch, freq, time]` (the axes left out are kept)"
    keys, options, learns_stats, invertible = ('mean', 'std'), (), True, True
    units = ('standard deviations', 'offset from the training mean')
    def __init__(self, axes: tuple): self.axes = axes
    def shape(self, n_freq='F') -> tuple: return tuple(1 if a in self.axes else n_freq for a in range(4))
    def accumulator(self) -> RunningStats: return RunningStats(self.axes)
    def arrays(self, acc: RunningStats) -> dict: return dict(mean=acc.mean, std=acc.std())
    def shift_scale(self, a: dict) -> tuple: return a['mean'], a['std']


class MinMax:
    "`(x - lo) / (hi - lo)`: lo/hi the mean of the training clips' minima/maxima, or (`robust=False`) their extremes"
    keys, options, learns_stats, invertible = ('lo', 'hi'), ('robust',), True, True
    units = ('fraction of the training range', 'offset from the training minimum')
    def shape(self, n_freq='F') -> tuple: return (1, 1, 1, 1)
    def accumulator(self) -> RunningExtrema: return RunningExtrema()
    def arrays(self, acc: RunningExtrema, robust: bool = True) -> dict:
        return dict(lo=acc.mean_min, hi=acc.mean_max) if robust else dict(lo=acc.min, hi=acc.max)
    def shift_scale(self, a: dict) -> tuple: return a['lo'], a['hi'] - a['lo']


class PerClip:
    "`(x - mean) / std` with each clip's own mean/std over `dims` (utterance MVN): nothing to learn, nothing to invert"
    keys, options, learns_stats, invertible = (), (), False, False
    units = ('standard deviations (per clip; cannot be decoded)', 'offset from the clip mean (per clip; cannot be decoded)')
    def __init__(self, dims: tuple): self.dims = dims
    def shape(self, n_freq='F'): return None
    def accumulator(self): return None
    def of_clip(self, x: torch.Tensor) -> tuple:
        std, mean = torch.std_mean(x.as_subclass(torch.Tensor), dim=self.dims, keepdim=True, correction=0)
        return mean, std


MODES = {
    'global':          MeanStd(axes=(0, 1, 2, 3)),       # one mean/std, stats [1,1,1,1]
    'channel':         MeanStd(axes=(0, 1, 3)),          # per frequency bin, stats [1,1,F,1]
    'minmax':          MinMax(),                         # lo/hi scalars, stats [1,1,1,1]
    'instance':        PerClip(dims=(-1,)),              # per clip and bin, over time
    'instance_global': PerClip(dims=(-3, -2, -1)),       # per clip, over all its values
}
"The spectrogram normalizations of `SpecNormalize`, by name; a new mode is one entry here"


def get_mode(name: str):
    "The mode called `name`; the error lists the known ones"
    try: return MODES[name]
    except KeyError: raise ValueError(f"normalization mode must be one of {list(MODES)}, got {name!r}") from None


def spec_stats(dl, mode: str = 'global', frac: float = 1.0):
    "The filled accumulator of `mode` (`RunningStats` or `RunningExtrema`) over the spectrograms of the training `dl`"
    acc = get_mode(mode).accumulator()
    if acc is None: raise ValueError(f"{mode!r} normalization learns no stats: it normalizes each clip by its own")
    return accumulate(training_inputs(dl, frac), acc)


class SpecNormalize(Transform):
    "Normalize `AudioSpectrogram`s `(x - shift) / scale` by one of the `MODES`, from learned stats or each clip's own; `mean_only`: `x - shift`"
    order = 99
    def __init__(self, mode: str = 'global', *arrays, frac: float = 1.0, eps: float = 1e-6, mean_only: bool = False,
                 robust: bool = True, **stats):
        "Stats given as the mode's arrays (`mean, std` or `lo=, hi=`), or learned in `setups` from `frac` of the training batches (`frac=0`: later)"
        self.mode, self._mode = mode, get_mode(mode)           # an unknown mode fails here, naming itself
        if not robust and 'robust' not in self._mode.options: raise ValueError(f"{mode!r} normalization has no option 'robust'")
        self.frac, self.eps, self.mean_only, self.robust = frac, eps, mean_only, robust
        self.stats = self.count = None
        if arrays or stats: self.set_stats(*arrays, **stats)

    @classmethod
    def from_stats(cls, mean, std, **kwargs) -> SpecNormalize:
        "Build from known mean/std; the mode ('global' or 'channel') follows from their shape"
        return cls('channel' if torch.as_tensor(mean).numel() > 1 else 'global', mean, std, **kwargs)

    @classmethod
    def from_file(cls, path, **kwargs) -> SpecNormalize:
        "Build from a stats file written by `save`, with its mode and options"
        d = load_stats(path)
        opts = {k: d[k] for k in _option_names(get_mode(d['mode'])) if k in d}
        return cls(d['mode'], **{**opts, **kwargs})._use(d, path)

    @property
    def learns_stats(self) -> bool: "Whether stats come from the training data (and can be saved)"; return self._mode.learns_stats
    @property
    def invertible(self) -> bool: "Whether `decodes` gives the spectrogram back"; return self._mode.invertible
    @property
    def has_stats(self) -> bool: return self.stats is not None
    @property
    def label(self) -> str: "What normalized values measure (the colorbar label)"; return self._mode.units[self.mean_only]
    @property
    def options(self) -> dict: "`mean_only` and the mode's own options"; return {k: getattr(self, k) for k in _option_names(self._mode)}
    def stats_shape(self, n_freq='F') -> tuple: return self._mode.shape(n_freq)

    def set_stats(self, *arrays, count=None, **named):
        "Use these stats from now on: the mode's arrays by position or name, of shape `stats_shape()` (1-d: per bin)"
        keys = self._mode.keys
        if not keys: raise ValueError(f"{self.mode!r} normalization takes no stats: it normalizes each clip by its own")
        a = {**dict(zip(keys, arrays)), **named}
        if len(arrays) > len(keys) or set(a) != set(keys): raise ValueError(f"{self.mode} stats are {list(keys)}, got {len(arrays)} positional and {list(named)}")
        a = {k: _stats_view(torch.as_tensor(v).double()) for k, v in a.items()}
        if len({v.shape for v in a.values()}) > 1 or any(v.shape != self._mode.shape(v.shape[-2]) for v in a.values()):
            raise ValueError(f"{self.mode} stats need shape {self.stats_shape()}, got " + ' and '.join(f"{k} {tuple(v.shape)}" for k, v in a.items()))
        self.stats, self.count = a, count
        shift, scale = self._mode.shift_scale(a)
        self._shift, self._scale = shift.float(), torch.ones_like(shift).float() if self.mean_only else scale.float().clamp_min(self.eps)

    def set_running(self, acc):
        "Use the stats of a finished accumulator of this mode"
        self.set_stats(**self._mode.arrays(acc, **{k: getattr(self, k) for k in self._mode.options}), count=acc.n)

    @property
    def mean(self): "float32 mean of the 'global'/'channel' stats"; return self._array('mean')
    @property
    def std(self): "float32 std of the 'global'/'channel' stats"; return self._array('std')
    @property                                                   # float64 mean/std, as callers of the first version read them
    def _mean64(self): return self.stats['mean']
    @property
    def _std64(self): return self.stats['std']
    def _array(self, k): return self.stats[k].float() if self.has_stats and k in self.stats else None

    def setups(self, dl):
        "Learn stats from the whole training `dl` (or `frac` of it) unless the mode learns none, or they are given or deferred"
        if not self.learns_stats or self.has_stats or not self.frac: return
        if isinstance(dl, DataLoaders): dl = dl.train
        try: self.set_running(spec_stats(dl, self.mode, self.frac))
        except AttributeError as e: raise RuntimeError(f"SpecNormalize could not compute stats from {type(dl).__name__}: {e}") from e

    def _shift_scale(self, x: torch.Tensor) -> tuple:
        "Shift and scale for `x`: its own (per-clip modes), or the stats, checked against `x` and moved to its device"
        if not self.learns_stats:
            m, s = self._mode.of_clip(x)
            return m, torch.ones_like(s) if self.mean_only else s.clamp_min(self.eps)
        n = self._shift.shape[-2]
        if x.ndim < 2 or n not in (1, x.shape[-2]):
            raise ValueError(f"{self.mode} stats of shape {tuple(self._shift.shape)} do not fit spectrograms of shape "
                             f"{tuple(x.shape)}: they have {n} frequency bins, the data {x.shape[-2] if x.ndim >= 2 else '?'}")
        if self._shift.device != x.device: self._shift, self._scale = self._shift.to(x.device), self._scale.to(x.device)
        shape = (1,) * (x.ndim - 2) + tuple(self._shift.shape[-2:])
        return self._shift.view(shape), self._scale.view(shape)

    def encodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        if self.learns_stats and not self.has_stats: return x
        m, s = self._shift_scale(x)
        res = (x - m) / s
        res.normalized = self.label
        return res

    def decodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        "The spectrogram back where invertible; per-clip modes return `x` as it is, still marked as normalized"
        if not (self.invertible and self.has_stats): return x
        m, s = self._shift_scale(x)
        res = x * s + m
        res.normalized = False
        return res

    def save(self, path, **info):
        "Write the stats with mode, options and count to a JSON stats file"
        if not self.learns_stats: raise ValueError(f"{self!r} has no stats to save: it normalizes each clip by its own (learns_stats is False)")
        if not self.has_stats: raise ValueError("SpecNormalize has no stats to save yet")
        return save_stats(path, **self.stats, mode=self.mode, count=self.count, **self.options, **info)

    def load(self, path, n_freq: int | None = None):
        "Read stats saved by `save`; mode, options and shape (`n_freq` bins, when given) must match this normalizer"
        return self._use(load_stats(path, shape=None if n_freq is None else self.stats_shape(n_freq), mode=self.mode), path)

    def _use(self, d: dict, path):
        "Take the stats of a loaded stats file, whose options (where it has them) must be this normalizer's"
        for k, v in self.options.items():
            if k in d and d[k] != v: raise StatsFileError(f"stats file {path} was saved with {k}={d[k]!r}, but this SpecNormalize has {k}={v!r}")
        self.set_stats(**{k: d[k] for k in d['arrays']}, count=d.get('count'))
        return self

    def __repr__(self):
        opts = ''.join(f", {k}={v!r}" for k, v in self.options.items())
        what = ('per-clip stats' if not self.learns_stats else f"stats {'/'.join(self.stats)} {tuple(self._shift.shape)}, count {self.count}"
                if self.has_stats else 'no stats yet')
        return f"SpecNormalize(mode={self.mode!r}{opts}: {what})"


def _option_names(mode) -> tuple: return ('mean_only', *mode.options)


def _stats_view(v: torch.Tensor) -> torch.Tensor:
    "A scalar as `[1,1,1,1]`, a 1-d tensor as per-bin `[1,1,F,1]`, anything else as it is"
    return v.reshape(1, 1, 1, 1) if v.numel() == 1 else v.reshape(1, 1, -1, 1) if v.ndim == 1 else v
