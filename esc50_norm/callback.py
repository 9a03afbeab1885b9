"A fastai callback that gives the DataLoaders' `SpecNormalize` its stats before fitting: from a file, or learned"
# learned as `setups` learns them
from __future__ import annotations
import warnings
from pathlib import Path

import torch
from fastai.callback.core import Callback

from .normalize import SpecNormalize, find_spec_normalize, get_mode

__all__ = ['SpecStatsCallback']


class SpecStatsCallback(Callback):
    "Before fitting, give the training DataLoader's `SpecNormalize` its stats: read from `fname`, else learned"
    # learned (and saved to `fname`) when `fname` does not exist
    order = -20
    def __init__(self, fname=None, frac: float = 1.0, mode: str | None = None, norm: SpecNormalize | None = None):
        "`frac`: the share of training batches to learn from; `mode`: the one the `SpecNormalize` must have; `norm`: it"
        # `norm`: the DataLoaders' `SpecNormalize`, else found among their batch transforms
        if mode is not None: get_mode(mode)                     # an unknown mode fails here, naming itself
        if not 0 < frac <= 1: raise ValueError(f"SpecStatsCallback: frac must be in (0, 1], got {frac!r}")
        self.fname, self.frac, self.mode, self.norm = Path(fname) if fname else None, frac, mode, norm
        # the SpecNormalize served; where its stats came from: 'given', 'file', 'learned'
        self.target, self.source = None, None

    @property
    def stats(self) -> dict | None:
        "The mode's stats arrays (float64), as `SpecNormalize.stats`; None for per-clip modes or before fitting"
        return None if self.target is None else self.target.stats

    def before_fit(self):
        # fastai calls `before_fit` in `validate`, `get_preds`, `predict` and `tta` too: a `SpecNormalize` this callback
        # has served keeps its stats there, in a later fit and in an exported model, and no file is read or written
        norm = self.norm if self.norm is not None else find_spec_normalize(self.dls.train)
        if norm is not None and norm is self.target and self.source is not None and norm.has_stats: return
        self.target = norm
        if norm is None:
            raise ValueError("SpecStatsCallback: the training DataLoader has no SpecNormalize "
                             "among its batch transforms")
        if self.mode not in (None, norm.mode):
            raise ValueError(f"SpecStatsCallback(mode={self.mode!r}) does not fit the DataLoaders' "
                             f"SpecNormalize(mode={norm.mode!r})")
        self.source = None
        fname = None if self.fname is None else self.learn.path / self.fname     # as fastai's CSVLogger
        if not norm.learns_stats: return
        if norm.has_stats and norm.learned is None: self.source = 'given'      # stats= or loaded: used as they are
        elif fname is not None and fname.exists():
            loaded = SpecNormalize.from_file(fname, mode=norm.mode, **norm.options)
            if norm.learned == 1.0: _warn_if_stale(fname, loaded, norm)
            dev = self.dls.train.device
            norm._set({k: v if dev is None else v.to(dev) for k, v in loaded.stats.items()}, loaded.n, stats_file=fname,
                      spectrogram=loaded.spectrogram)
            self.source = 'file'
        else:
            if norm.learned != self.frac:            # not learned by `setups` from this share of the batches: learn
                with torch.no_grad(): norm.learn(self.dls.train, self.frac)
            self.source = 'learned'
            if fname is not None: norm.save(fname, source='SpecStatsCallback', frac=self.frac)


def _warn_if_stale(fname, loaded: SpecNormalize, learned: SpecNormalize, rtol: float = 1e-3):
    """Warn when the stats read from `fname` differ (beyond `rtol` of each array's largest value) from those `setups`
    has just learned from every batch of these DataLoaders; stats of other spectrograms are left to the error that
    names them (their settings or their shape differ)"""
    made = (loaded.spectrogram, learned.spectrogram)
    pairs = [(loaded.stats[k].cpu(), v.cpu()) for k, v in learned.stats.items()]
    if (None not in made and made[0] != made[1]) or any(a.shape != b.shape for a, b in pairs): return
    diff = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-12)) for a, b in pairs)
    if diff > rtol:
        warnings.warn(f"SpecStatsCallback: the stats in {fname} differ from those learned from these DataLoaders "
                      f"(by up to {diff:.2%}); the file's are used: delete it to use and save the new ones, or build "
                      "SpecNormalize with frac=0 to skip learning them", stacklevel=3)
