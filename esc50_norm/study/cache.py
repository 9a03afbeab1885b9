"Decode once: every clip through the item transforms into one tensor file, keyed by the source files and settings"
from __future__ import annotations
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from fastai.data.all import Pipeline
from fastprogress.fastprogress import progress_bar

from ..audio import AudioLoadError, AudioTensor, audio_item_tfms

__all__ = ['ClipCache', 'cache_key', 'build_cache', 'load_or_build_cache', 'default_cache_dir']

CACHE_VERSION = 1


@dataclass
class ClipCache:
    "Decoded clips `x` `[n, 1, samples]` at `sr` Hz, in the order of `filenames`"
    x: torch.Tensor
    filenames: list
    sr: int
    settings: dict

    def __len__(self): return len(self.filenames)
    def __getitem__(self, i) -> AudioTensor: return AudioTensor(self.x[i], sr=self.sr)
    def index(self, filenames) -> torch.Tensor:
        "Positions of `filenames` in the cache"
        pos = {f: i for i, f in enumerate(self.filenames)}
        missing = [f for f in filenames if f not in pos]
        if missing: raise KeyError(f"{len(missing)} clips are not in the cache: {missing[:5]}")
        return torch.tensor([pos[f] for f in filenames])


def default_cache_dir() -> Path:
    "`$ESC50_NORM_CACHE`, else ~/.cache/esc50_norm"
    return Path(os.environ.get('ESC50_NORM_CACHE', '~/.cache/esc50_norm')).expanduser()


def cache_key(files, **settings) -> str:
    "A hash of the files (path, size, mtime) and the decoding settings"
    h = hashlib.sha1(json.dumps(dict(version=CACHE_VERSION, **settings), sort_keys=True).encode())
    for f in files:
        st = Path(f).stat()
        h.update(f"{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def build_cache(files, sr: int = 16000, duration: float = 5.0, downmix: str = 'mean', progress: bool = True) -> ClipCache:
    "Decode, downmix, resample and crop/pad every file; the error names every unreadable file"
    tfms = Pipeline([AudioTensor.create, *audio_item_tfms(sr, True, duration, downmix)])
    x = torch.zeros(len(files), 1, round(sr * duration))
    bad, silent = [], []
    for i, f in enumerate(progress_bar(files, leave=False) if progress else files):
        try: a = tfms(f)
        except AudioLoadError as e: bad.append(str(e)); continue
        x[i] = a.as_subclass(torch.Tensor)
        if not x[i].any(): silent.append(str(f))
    if bad: raise AudioLoadError(f"{len(bad)} clips could not be read:\n" + "\n".join(bad))
    if silent: warnings.warn(f"{len(silent)} clips are all zeros (silent): {silent[:5]}")
    return ClipCache(x, [Path(f).name for f in files], sr, dict(sr=sr, duration=duration, downmix=downmix))


def load_or_build_cache(files, cache_dir=None, sr: int = 16000, duration: float = 5.0, downmix: str = 'mean',
                        progress: bool = True) -> ClipCache:
    "The cached clips for `files` and settings, decoding them once and saving them atomically"
    files = [Path(f) for f in files]
    settings = dict(sr=sr, duration=duration, downmix=downmix)
    path = Path(cache_dir or default_cache_dir()) / f"clips-{cache_key(files, **settings)}.pt"
    if path.exists():
        d = torch.load(path, weights_only=True)
        return ClipCache(d['x'], d['filenames'], d['sr'], d['settings'])
    cache = build_cache(files, sr, duration, downmix, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f'.{os.getpid()}.tmp')
    torch.save(dict(x=cache.x, filenames=cache.filenames, sr=cache.sr, settings=cache.settings), tmp)
    tmp.replace(path)
    return cache
