"DataLoaders for ESC-50-shaped data through three pipelines that share their transforms: files, cached clips, device"
from __future__ import annotations
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from fastai.data.all import CategoryBlock, ColReader, DataBlock, DataLoaders

from ..audio import AudioBlock
from .cache import ClipCache
from ..device_dl import DeviceDL
from .esc50 import fold_split
from ..normalize import AudioNormalize, SpecNormalize
from ..spectrogram import AudioToSpec, SpectrogramConfig

__all__ = ['Normalization', 'NORMALIZATIONS', 'get_normalization', 'norm_tfms', 'FoldSplitter', 'CachedClip', 'files_datablock', 'cached_datablock',
           'device_dataloaders', 'esc50_dataloaders']

@dataclass(frozen=True)
class Normalization:
    "One normalization of the study: per-clip waveform normalization or not, then a `SpecNormalize` mode or none"
    wave: bool
    spec: str | None = None
    mean_only: bool = False

    def tfms(self, spec_cfg: SpectrogramConfig | None = None, frac: float = 1.0) -> list:
        "[AudioNormalize] -> AudioToSpec -> [SpecNormalize]"
        return [*([AudioNormalize()] if self.wave else []), AudioToSpec(spec_cfg),
                *([SpecNormalize(self.spec, frac=frac, mean_only=self.mean_only)] if self.spec else [])]


NORMALIZATIONS = {
    'none':             Normalization(wave=False),
    'wave':             Normalization(wave=True),
    'global':           Normalization(wave=True,  spec='global'),
    'channel':          Normalization(wave=True,  spec='channel'),
    'global_nowave':    Normalization(wave=False, spec='global'),
    'channel_nowave':   Normalization(wave=False, spec='channel'),
    'global_meanonly':  Normalization(wave=True,  spec='global', mean_only=True),
    'channel_meanonly': Normalization(wave=True,  spec='channel', mean_only=True),
    'minmax':           Normalization(wave=True,  spec='minmax'),
    'minmax_nowave':    Normalization(wave=False, spec='minmax'),
    'instance':         Normalization(wave=True,  spec='instance'),
    'instance_global':  Normalization(wave=True,  spec='instance_global'),
}
"Every normalization the study knows, by name; a new one is one entry here"


def get_normalization(name: str) -> Normalization:
    "The normalization called `name`; the error lists the known ones"
    try: return NORMALIZATIONS[name]
    except KeyError: raise ValueError(f"unknown normalization {name!r}; known: {list(NORMALIZATIONS)}") from None


def norm_tfms(normalization: str, spec_cfg: SpectrogramConfig | None = None, frac: float = 1.0, augment=None) -> list:
    "The batch transforms of `normalization`, with the training-only augmentations of `augment` around them"
    tfms = get_normalization(normalization).tfms(spec_cfg, frac)
    return tfms if augment is None else [*augment.wave_tfms(), *tfms, *augment.spec_tfms()]


class FoldSplitter:
    "Split an ESC-50 metadata frame: validation = `valid_fold`, training = the other folds"
    def __init__(self, valid_fold: int): self.valid_fold = valid_fold
    def __call__(self, df: pd.DataFrame): return fold_split(df, self.valid_fold)


class CachedClip:
    "Look a metadata row's clip up in a `ClipCache`; it pickles (`Learner.export`) without the cache"
    def __init__(self, cache: ClipCache): self.cache, self.pos = cache, {f: i for i, f in enumerate(cache.filenames)}
    def __call__(self, row):
        if self.cache is None: raise ValueError(f"clip {row['filename']}: no clip cache here (it is not pickled, as by Learner.export; "
                                                "use num_workers=0 with cached clips); predict from an audio file or AudioTensor")
        try: return self.cache[self.pos[row['filename']]]
        except KeyError: raise KeyError(f"clip {row['filename']} is not in the cache") from None
    def __getstate__(self): return dict(cache=None, pos={})


def files_datablock(root, valid_fold: int, batch_tfms=None, sr: int = 16000, duration: float = 5.0, downmix: str = 'mean') -> DataBlock:
    "Per-item pipeline, as fastaudio does it: every item is decoded and resampled from its file"
    return DataBlock(blocks=(AudioBlock(sr, True, duration, downmix), CategoryBlock),
                     get_x=ColReader('filename', pref=f"{Path(root) / 'audio'}/"), get_y=ColReader('category'),
                     splitter=FoldSplitter(valid_fold), batch_tfms=batch_tfms)


def cached_datablock(cache: ClipCache, valid_fold: int, batch_tfms=None) -> DataBlock:
    "Cached CPU pipeline: items are looked up in the decoded clips; a file or `AudioTensor` (`predict`) is decoded as they were"
    s = cache.settings                                   # the AudioBlock's transforms are no-ops on the cached clips
    audio = AudioBlock(cache.sr, True, s.get('duration', cache.x.shape[-1] / cache.sr), s.get('downmix', 'mean'))
    return DataBlock(blocks=(audio, CategoryBlock), get_x=CachedClip(cache), get_y=ColReader('category'),
                     splitter=FoldSplitter(valid_fold), batch_tfms=batch_tfms)


def device_dataloaders(cache: ClipCache, df: pd.DataFrame, valid_fold: int, batch_tfms=None, bs: int = 64,
                       device=None) -> DataLoaders:
    "Device-resident pipeline: the clips of `df` move to `device` once; batches are index slices there"
    dblock = cached_datablock(cache, valid_fold)
    dsets = dblock.datasets(df)
    o2i = dsets.vocab.o2i
    clips = cache.x if device is None else cache.x.to(device)
    def part(ds):
        pos = cache.index(list(ds.items.filename)).to(clips.device)
        return dict(clips=clips[pos], labels=torch.tensor([o2i[c] for c in ds.items.category]), sr=cache.sr)
    train = DeviceDL(dsets.train, bs=bs, shuffle=True, drop_last=True, device=device or clips.device,
                     after_item=dblock.item_tfms, after_batch=batch_tfms, **part(dsets.train))
    valid = train.new(dsets.valid, shuffle=False, drop_last=False, **part(dsets.valid))
    return DataLoaders(train, valid, device=train.device)


def esc50_dataloaders(df: pd.DataFrame, valid_fold: int, normalization: str = 'channel', spec_cfg=None, bs: int = 64,
                      pipeline: str = 'device', cache: ClipCache | None = None, root=None, device=None,
                      stats_frac: float = 1.0, downmix: str = 'mean', duration: float = 5.0, augment=None) -> DataLoaders:
    "ESC-50 DataLoaders for one fold and normalization through `pipeline` ('files', 'cached' or 'device')"
    tfms = norm_tfms(normalization, spec_cfg, stats_frac, augment)
    if pipeline == 'files':
        sr = next(t.cfg.sample_rate for t in tfms if isinstance(t, AudioToSpec))
        return files_datablock(root, valid_fold, tfms, sr=sr, duration=duration, downmix=downmix).dataloaders(df, bs=bs, device=device, num_workers=0)
    if cache is None: raise ValueError(f"pipeline {pipeline!r} needs a ClipCache")
    if pipeline == 'cached': return cached_datablock(cache, valid_fold, tfms).dataloaders(df, bs=bs, device=device, num_workers=0)
    if pipeline == 'device': return device_dataloaders(cache, df, valid_fold, tfms, bs=bs, device=device)
    raise ValueError(f"pipeline must be 'files', 'cached' or 'device', got {pipeline!r}")
