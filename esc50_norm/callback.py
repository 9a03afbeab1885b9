"A fastai callback that learns spectrogram normalization stats from the training data and saves/loads them"
from __future__ import annotations
from pathlib import Path

import torch
from fastai.callback.core import Callback

from .normalize import MODES, SpecNormalize, get_mode, training_inputs

__all__ = ['SpecStatsCallback', 'find_spec_normalize']


def find_spec_normalize(dl) -> SpecNormalize | None:
    "The `SpecNormalize` in `dl`'s batch transforms, if any"
    return next((t for t in getattr(dl.after_batch, 'fs', []) if isinstance(t, SpecNormalize)), None)


class SpecStatsCallback(Callback):
    "Accumulate spectrogram stats over training batches only, expose them, hand them to `SpecNormalize`, save/load them; per-clip modes: nothing to do"
    order = -20
    def __init__(self, mode: str | None = None, frac: float = 1.0, fname=None, when: str = 'before_fit', norm: SpecNormalize | None = None):
        "`when='before_fit'`: one no-grad pass over the training data; `'first_epoch'`: the inputs of the first training epoch"
        if when not in ('before_fit', 'first_epoch'): raise ValueError(f"when must be 'before_fit' or 'first_epoch', got {when!r}")
        if mode is not None and mode not in MODES: raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        self.mode, self.frac, self.when, self.norm = mode, frac, when, norm
        self.fname = Path(fname) if fname else None
        self.stats = None                                       # the mode's accumulator (None for per-clip modes)

    @property
    def mean(self) -> torch.Tensor: return self.stats.mean
    @property
    def std(self) -> torch.Tensor: return self.stats.std()

    def _target(self) -> SpecNormalize | None:
        return self.norm if self.norm is not None else find_spec_normalize(self.dls.train)

    def before_fit(self):
        if not hasattr(self, 'dls') or self.dls is None: return
        norm = self._target()
        if norm is not None and self.mode not in (None, norm.mode):
            raise ValueError(f"SpecStatsCallback(mode={self.mode!r}) does not fit the DataLoaders' SpecNormalize(mode={norm.mode!r})")
        self.stats = get_mode(self.mode or (norm.mode if norm is not None else 'global')).accumulator()
        self._collecting = False
        if self.stats is None or norm is not None and norm.has_stats: return
        if self.fname is not None and self.fname.exists():
            if norm is None: raise ValueError(f"stats file {self.fname} exists, but the DataLoaders have no SpecNormalize to load it into")
            norm.load(self.fname)
            return
        if self.when == 'first_epoch': self._collecting = True; return
        with torch.no_grad():
            for x in training_inputs(self.dls.train, self.frac): self.stats.update(x)
        self._hand_over(norm)

    def before_batch(self):
        if self._collecting and self.training and self.iter < max(1, round(self.frac * self.n_iter)): self.stats.update(self.xb[0])

    def after_epoch(self):
        if self._collecting:
            self._collecting = False
            self._hand_over(self._target())

    def _hand_over(self, norm):
        "Give the finished stats to `norm` and write them to `fname`"
        if norm is None: return
        norm.set_running(self.stats)
        if self.fname is not None: norm.save(self.fname, source='SpecStatsCallback', frac=self.frac)
