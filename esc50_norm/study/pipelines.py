"DataLoaders of one validation fold through three pipelines that share their transforms: files, cached clips, device"
from __future__ import annotations
from pathlib import Path

import pandas as pd
import torch
from fastai.data.all import CategoryBlock, ColReader, DataBlock, DataLoaders

from ..audio import AudioBlock
from ..configs import Decoding
from ..device_dl import DeviceDL
from ..folds import FoldSplitter
from ..spectrogram import AudioToSpec
from .cache import ClipCache
from .normalizations import norm_tfms

__all__ = ['files_datablock', 'cached_datablock', 'device_dataloaders', 'pipeline_dataloaders',
           'fold_dataloaders']


class CachedClip:
    "Look a metadata row's clip up in a `ClipCache`; it pickles (`Learner.export`) without the cache"
    def __init__(self, cache: ClipCache): self.cache, self.pos = cache, {f: i for i, f in enumerate(cache.filenames)}
    def __call__(self, row):
        if self.cache is None:
            raise ValueError(f"clip {row['file']}: no clip cache here (it is not pickled, as by Learner.export; "
                             "use num_workers=0 with cached clips); predict from an audio file or AudioTensor")
        try: return self.cache[self.pos[row['file']]]
        except KeyError: raise KeyError(f"clip {row['file']} is not in the cache") from None
    def __getstate__(self): return dict(cache=None, pos={})


def files_datablock(audio_root, valid_fold: int, batch_tfms=None, sr: int = 16000, duration: float = 5.0,
                    downmix: str = 'mean') -> DataBlock:
    "Per-item pipeline, as fastaudio does it: every item is decoded and resampled from its file (`audio_root`/`file`)"
    return DataBlock(blocks=(AudioBlock(sr, True, duration, downmix), CategoryBlock),
                     get_x=ColReader('file', pref=f"{Path(audio_root)}/"), get_y=ColReader('label'),
                     splitter=FoldSplitter(valid_fold), batch_tfms=batch_tfms)


def cached_datablock(cache: ClipCache, valid_fold: int, batch_tfms=None) -> DataBlock:
    "Cached CPU pipeline: items are looked up in the decoded clips; a file or `AudioTensor` is decoded as they were"
    # (a file or `AudioTensor`: what `predict` is given)
    s = cache.settings                                   # the AudioBlock's transforms are no-ops on the cached clips
    return DataBlock(blocks=(AudioBlock(cache.sr, True, s['duration'], s['downmix']), CategoryBlock),
                     get_x=CachedClip(cache), get_y=ColReader('label'), splitter=FoldSplitter(valid_fold),
                     batch_tfms=batch_tfms)


def device_dataloaders(cache: ClipCache, df: pd.DataFrame, valid_fold: int, batch_tfms=None, bs: int = 64,
                       device=None) -> DataLoaders:
    "Device-resident pipeline: the clips move to `device` once (no copy when there) and both DataLoaders index them"
    dblock = cached_datablock(cache, valid_fold)
    dsets = dblock.datasets(df)
    o2i = dsets.vocab.o2i
    clips = cache.x if device is None else cache.x.to(device)
    def part(ds):
        pos = cache.index(list(ds.items.file)).to(clips.device)
        return dict(clips=clips, index=pos, labels=torch.tensor([o2i[c] for c in ds.items.label]), sr=cache.sr)
    train = DeviceDL(dsets.train, bs=bs, shuffle=True, drop_last=True, device=device or clips.device,
                     after_item=dblock.item_tfms, after_batch=batch_tfms, **part(dsets.train))
    valid = train.new(dsets.valid, shuffle=False, drop_last=False, **part(dsets.valid))
    return DataLoaders(train, valid, device=train.device)


def pipeline_dataloaders(df: pd.DataFrame, valid_fold: int, batch_tfms: list, bs: int = 64, pipeline: str = 'device',
                         cache: ClipCache | None = None, audio_root=None, device=None) -> DataLoaders:
    "DataLoaders for one validation fold, its batches through `batch_tfms`, by `pipeline`: 'files', 'cached' or 'device'"
    # 'device' and 'cached' look the clips up in `cache`; 'files' decodes `audio_root`/`file` at the spectrogram's rate,
    # as `cache` was (its duration, downmix; none: `Decoding`'s defaults)
    if pipeline in ('device', 'cached') and cache is None: raise ValueError(f"pipeline {pipeline!r} needs a ClipCache")
    if pipeline == 'device': return device_dataloaders(cache, df, valid_fold, batch_tfms, bs=bs, device=device)
    if pipeline == 'cached':
        return cached_datablock(cache, valid_fold, batch_tfms).dataloaders(df, bs=bs, device=device, num_workers=0)
    if pipeline == 'files':
        if audio_root is None:
            raise ValueError("the 'files' pipeline needs the folder the clips' paths start from (audio_root)")
        sr = next(t.cfg.sample_rate for t in batch_tfms if isinstance(t, AudioToSpec))
        s = cache.settings if cache is not None else Decoding().as_dict()
        dblock = files_datablock(audio_root, valid_fold, batch_tfms, sr, s['duration'], s['downmix'])
        return dblock.dataloaders(df, bs=bs, device=device, num_workers=0)
    raise ValueError(f"pipeline must be 'files', 'cached' or 'device', got {pipeline!r}")


def fold_dataloaders(df: pd.DataFrame, valid_fold: int, normalization: str = 'channel', spec_cfg=None,
                     pipeline: str = 'device', cache: ClipCache | None = None, audio_root=None,
                     **kwargs) -> DataLoaders:
    "DataLoaders for one validation fold and normalization (on `spec_cfg`) by `pipeline`; `kwargs`: `bs`, `device`"
    return pipeline_dataloaders(df, valid_fold, norm_tfms(normalization, spec_cfg), pipeline=pipeline, cache=cache,
                                audio_root=audio_root, **kwargs)
