"Waveform and spectrogram normalization transforms; spectrogram stats are learned from the training data"
from __future__ import annotations
from contextlib import contextmanager

import torch
from fastai.data.all import DataLoaders, Transform

from .audio import AudioTensor
from .spectrogram import AudioSpectrogram
from .stats import STATS_AXES, RunningStats, accumulate, load_stats, save_stats

__all__ = ['AudioNormalize', 'SpecNormalize', 'training_inputs', 'spec_stats']


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


def spec_stats(dl, mode: str = 'global', frac: float = 1.0) -> RunningStats:
    "Streaming mean/std of the spectrograms of the training `dl` for `mode` ('global' or 'channel')"
    return accumulate(training_inputs(dl, frac), _axes(mode))


def _axes(mode: str) -> tuple:
    try: return STATS_AXES[mode]
    except KeyError: raise ValueError(f"normalization mode must be one of {list(STATS_AXES)}, got {mode!r}") from None


class SpecNormalize(Transform):
    "Normalize `AudioSpectrogram`s with `global` (one scalar) or `channel` (one per frequency bin) mean/std"
    order = 99
    def __init__(self, mode: str = 'global', mean=None, std=None, frac: float = 1.0, eps: float = 1e-6, mean_only: bool = False):
        "Stats given as `mean`/`std`, or learned in `setups` from `frac` of the training batches (`frac=0`: later)"
        _axes(mode)                                             # an unknown mode fails here, naming itself
        self.mode, self.frac, self.eps, self.count, self.mean_only = mode, frac, eps, None, mean_only
        self.mean = self.std = None
        if mean is not None or std is not None: self.set_stats(mean, std)

    @classmethod
    def from_stats(cls, mean, std, **kwargs) -> SpecNormalize:
        "Build from known stats; the mode follows from their shape"
        mean = torch.as_tensor(mean)
        return cls('channel' if mean.numel() > 1 else 'global', mean, std, **kwargs)

    @classmethod
    def from_file(cls, path, **kwargs) -> SpecNormalize:
        "Build from a stats file written by `save`"
        d = load_stats(path)
        res = cls(d.get('mode', 'channel' if d['mean'].numel() > 1 else 'global'), d['mean'], d['std'], **kwargs)
        res.count = d.get('count')
        return res

    @property
    def has_stats(self) -> bool: return self.mean is not None

    def set_stats(self, mean, std, count=None):
        "Use these stats from now on (shape `[1,1,1,1]` for global, `[1,1,F,1]` for channel)"
        mean, std = torch.as_tensor(mean).double(), torch.as_tensor(std).double()
        if mean.numel() == 1: mean, std = mean.reshape(1, 1, 1, 1), std.reshape(1, 1, 1, 1)
        elif mean.ndim == 1: mean, std = mean.reshape(1, 1, -1, 1), std.reshape(1, 1, -1, 1)
        want = 'global' if mean.numel() == 1 else 'channel'
        if mean.shape != std.shape or want != self.mode or (want == 'channel' and mean.shape != (1, 1, mean.numel(), 1)):
            raise ValueError(f"{self.mode} stats need shape {self.stats_shape()}, got mean {tuple(mean.shape)} and std {tuple(std.shape)}")
        self._mean64, self._std64, self.count = mean, std, count
        self.mean, self.std = mean.float(), std.float().clamp_min(self.eps)

    def set_running(self, stats: RunningStats):
        "Use the stats of a finished accumulator"
        self.set_stats(stats.mean, stats.std(), count=stats.n)

    def stats_shape(self, n_freq='F') -> tuple: return (1, 1, 1, 1) if self.mode == 'global' else (1, 1, n_freq, 1)

    def setups(self, dl):
        "Learn stats from the whole training `dl` (or `frac` of it) unless they are given or deferred"
        if self.has_stats or not self.frac: return
        if isinstance(dl, DataLoaders): dl = dl.train
        try: self.set_running(spec_stats(dl, self.mode, self.frac))
        except AttributeError as e: raise RuntimeError(f"SpecNormalize could not compute stats from {type(dl).__name__}: {e}") from e

    def _fit(self, x: torch.Tensor):
        "Check that the stats fit `x`, and move them to its device"
        if self.mode == 'channel' and (x.ndim < 2 or x.shape[-2] != self.mean.shape[-2]):
            raise ValueError(f"channel stats of shape {tuple(self.mean.shape)} do not fit spectrograms of shape "
                             f"{tuple(x.shape)}: they have {self.mean.shape[-2]} frequency bins, the data {x.shape[-2] if x.ndim >= 2 else '?'}")
        if self.mean.device != x.device: self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        shape = (1,) * (x.ndim - 2) + tuple(self.mean.shape[-2:])
        return self.mean.view(shape), self.std.view(shape)

    def encodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        if not self.has_stats: return x
        m, s = self._fit(x)
        res = (x - m) / s
        res.normalized = True
        return res

    def decodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        if not self.has_stats: return x
        m, s = self._fit(x)
        res = x * s + m
        res.normalized = False
        return res

    def save(self, path, **info):
        "Write the stats (with mode and count) to a JSON stats file"
        if not self.has_stats: raise ValueError("SpecNormalize has no stats to save yet")
        return save_stats(path, self._mean64, self._std64, mode=self.mode, count=self.count, **info)

    def load(self, path, n_freq: int | None = None):
        "Read stats saved by `save`; the shape must match this mode (and `n_freq` bins, when given)"
        want = None if n_freq is None else self.stats_shape(n_freq)
        d = load_stats(path, shape=want)
        self.set_stats(d['mean'], d['std'], count=d.get('count'))
        return self

    def __repr__(self):
        return f"SpecNormalize(mode={self.mode!r}, " + (f"stats {tuple(self.mean.shape)} from {self.count} values)" if self.has_stats else "no stats yet)")
