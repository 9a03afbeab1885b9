"Decode once: every clip through the item transforms into one tensor file, with what each clip was (a data report)"
from __future__ import annotations
import hashlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from fastai.data.all import Pipeline
from fastprogress.fastprogress import progress_bar

from ..atomic import remove_stale_temporaries, write_atomic
from ..audio import AudioLoadError, AudioTensor, audio_item_tfms
from ..configs import Decoding
from ..spelling import listed
from .datasets import cropping

__all__ = ['ClipCache', 'load_or_build_cache']

CACHE_VERSION = 2
SHORT = 0.5
"A clip is 'far shorter than the rest' under this fraction of the length clips are cropped/padded to (a truncated file)"


@dataclass
class ClipCache:
    "Decoded clips `x` `[n, 1, samples]` at `sr` Hz, in the order of `filenames` (paths under the audio root)"
    # `info`: each source clip's duration, rate, channels, peak
    x: torch.Tensor
    filenames: list
    sr: int
    settings: dict
    info: pd.DataFrame | None = None

    def __len__(self): return len(self.filenames)
    def __getitem__(self, i) -> AudioTensor: return AudioTensor(self.x[i], sr=self.sr)
    def index(self, filenames) -> torch.Tensor:
        "Positions of `filenames` in the cache"
        pos = {f: i for i, f in enumerate(self.filenames)}
        missing = [f for f in filenames if f not in pos]
        if missing: raise KeyError(f"{len(missing)} clips are not in the cache: {missing[:5]}")
        return torch.tensor([pos[f] for f in filenames], dtype=torch.long)
    def report(self) -> str: return data_report(self.info, self.settings.get('duration'))


def default_cache_dir() -> Path:
    "`$ESC50_NORM_CACHE`, else ~/.cache/esc50_norm"
    return Path(os.environ.get('ESC50_NORM_CACHE', '~/.cache/esc50_norm')).expanduser()


def cache_key(paths, **settings) -> str:
    "A hash of the source files (path, size, mtime) and the decoding settings"
    h = hashlib.sha1(json.dumps(dict(version=CACHE_VERSION, **settings), sort_keys=True).encode())
    for f in paths:
        st = Path(f).stat()
        h.update(f"{Path(f).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def odd_clips(info: pd.DataFrame, duration: float | None = None) -> dict:
    "Source clips that are silent (all zeros) or far shorter than crop length `duration` (None: the median): name -> s"
    limit = SHORT * (info.duration.median() if duration is None else duration)
    short = info.duration < limit
    return {'silent (all zeros)': dict(zip(info.filename[info.peak == 0], info.duration[info.peak == 0])),
            f"far shorter than the rest (under {limit:.2f} s, zero-padded)":
                dict(zip(info.filename[short], info.duration[short]))}


def data_report(info: pd.DataFrame | None, duration: float | None = None) -> str:
    "A few lines on the source clips: durations, rates, channels; clips silent, far shorter or cropped (to `duration`)"
    if info is None or not len(info): return "no source information (a cache built by an older version)"
    d = info.duration
    rates = ', '.join(f"{int(r)} Hz x{n}" for r, n in info.sr.value_counts().sort_index().items())
    lines = [f"{len(info)} clips: {d.min():.2f}-{d.max():.2f} s (median {d.median():.2f} s); {rates}; "
             f"{int((info.channels > 1).sum())} with more than one channel"]
    for what, clips in odd_clips(info, duration).items():
        names = [f"{f} ({s:.2f} s)" for f, s in clips.items()]
        lines.append(f"{what}: {listed(names) if names else 'none'}")
    cut = cropping(d, duration) if duration is not None else ''
    return '\n'.join(lines + ([f"cropped: {cut}"] if cut else []))


def _decoding_progress(files: list, progress: bool, log=None):
    "`files` under a progress bar on a terminal; elsewhere (a file, a pipe) a few lines through `log`, or nothing"
    if not progress: return files
    if sys.stdout.isatty(): return progress_bar(files, leave=False)
    return _lines(files, log or print)


def _lines(files: list, log, parts: int = 4):
    "Yield `files`, logging how far it got at every quarter"
    marks = {round(len(files) * k / parts) for k in range(1, parts)}
    for i, f in enumerate(files):
        if i in marks: log(f"decoding: {i} of {len(files)} clips")
        yield f


def build_cache(audio_root, files, decoding: Decoding = Decoding(), progress: bool = True, log=None) -> ClipCache:
    """Decode, downmix, resample and crop/pad every file under `audio_root`, noting each source's duration, rate,
    channels and peak; odd clips are warned about unless `log` is given (the caller prints the data report)"""
    sr, duration, downmix = decoding.sr, decoding.duration, decoding.downmix
    tfms = Pipeline(audio_item_tfms(sr, True, duration, downmix))
    files = [str(f) for f in files]
    x = torch.zeros(len(files), 1, round(sr * duration))
    bad, info = [], []
    for i, f in enumerate(_decoding_progress(files, progress, log)):
        try: a = AudioTensor.create(Path(audio_root) / f)
        except AudioLoadError as e:
            bad.append(str(e))
            continue
        info.append(dict(filename=f, duration=a.duration, sr=a.sr, channels=a.nchannels, peak=float(a.abs().max())))
        x[i] = tfms(a).as_subclass(torch.Tensor)
    if bad: raise AudioLoadError(f"{len(bad)} clips under {audio_root} could not be used:\n" + "\n".join(bad))
    cache = ClipCache(x, files, sr, decoding.as_dict(), pd.DataFrame(info))
    if log is None and any(odd_clips(cache.info, duration).values()):
        warnings.warn(f"some clips under {audio_root} may not be what they seem:\n{cache.report()}")
    return cache


def _load(path: Path) -> ClipCache | None:
    "The cache file at `path`, or None (with a warning naming it) when it cannot be read: it is then rebuilt"
    try:
        d = torch.load(path, weights_only=True)
        return ClipCache(d['x'], list(d['filenames']), d['sr'], d['settings'], pd.DataFrame(d['info']))
    except Exception as e:
        warnings.warn(f"clip cache {path} is damaged ({type(e).__name__}: {e}); decoding the clips again")
        return None


def _mismatch(cache: ClipCache, files: list, settings: dict) -> str | None:
    "Why a cache file that loads is not the cache of `files` decoded with `settings` (None: it is)"
    n = round(settings['sr'] * settings['duration'])
    if cache.filenames != files: return f"it lists {len(cache.filenames)} clips, not the {len(files)} expected"
    shape = (len(files), 1, n)
    if tuple(cache.x.shape) != shape: return f"its clips tensor is {tuple(cache.x.shape)}, not {shape}"
    if cache.sr != settings['sr'] or cache.settings != settings:
        return f"it was decoded with {cache.settings}, not {settings}"
    return None


def load_or_build_cache(audio_root, files, cache_dir=None, decoding: Decoding = Decoding(), progress: bool = True,
                        log=None, name: str = 'clips') -> ClipCache:
    "The clips `files` (paths under `audio_root`) of dataset `name` decoded by `decoding`, read from the cache"
    # else decoded once and saved, atomically
    files = [str(f) for f in files]
    settings = decoding.as_dict()
    folder = Path(cache_dir or default_cache_dir())
    path = folder / f"{name}-{cache_key([Path(audio_root) / f for f in files], name=name, **settings)}.pt"
    if path.exists() and (cache := _load(path)) is not None:
        if (why := _mismatch(cache, files, settings)) is None: return cache
        warnings.warn(f"clip cache {path} is damaged ({why}); decoding the clips again")
    cache = build_cache(audio_root, files, decoding, progress, log)
    if log: log(f"decoded {len(cache)} clips into {path}\n{cache.report()}")
    remove_stale_temporaries(folder)                       # what killed builds left behind
    write_atomic(path, lambda tmp: torch.save(dict(x=cache.x, filenames=cache.filenames, sr=cache.sr,
                                                   settings=cache.settings, info=cache.info.to_dict(orient='list')),
                                              tmp))
    return cache
