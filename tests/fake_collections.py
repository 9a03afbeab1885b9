"Small generated collections of every dataset kind: short clips at mixed sample rates and channel counts, written with soundfile"
from __future__ import annotations
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

RATES = (8000, 16000, 22050)
CLASSES = ('dog', 'rain', 'siren', 'chirp')


def write_clip(path, seconds: float, sr: int, channels: int = 1, seed: int = 0) -> Path:
    "A tone in noise of `seconds` at `sr` Hz with `channels` channels, in the format of the file's extension"
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t) + 0.02 * rng.standard_normal(len(t))
    x = np.stack([x * (1 - 0.3 * c) for c in range(channels)], 1) if channels > 1 else x
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype('float32'), sr)
    return path


def _clip_args(i: int, rng: np.random.Generator) -> dict:
    "Duration 0.1-0.4 s; the rate and channel count cycle through RATES and 1/2 channels"
    return dict(seconds=round(float(rng.uniform(0.1, 0.4)), 3), sr=RATES[i % len(RATES)], channels=1 + (i % 4 == 1), seed=i)


def make_esc50(path, classes=CLASSES, per_fold: int = 2, esc10: int = 2, seed: int = 0) -> Path:
    "An ESC-50-shaped folder: meta/esc50.csv with ESC-50's columns (the first `esc10` classes marked esc10) + audio/*.wav"
    path, rng, rows = Path(path), np.random.default_rng(seed), []
    for fold in range(1, 6):
        for target, category in enumerate(classes):
            for k in range(per_fold):
                fn = f"{fold}-{1000 * target + k}-A-{target}.wav"
                write_clip(path / 'audio' / fn, **_clip_args(len(rows), rng))
                rows.append(dict(filename=fn, fold=fold, target=target, category=category, esc10=target < esc10,
                                 src_file=1000 * target + k, take='A'))
    (path / 'meta').mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / 'meta' / 'esc50.csv', index=False)
    return path


def make_urbansound8k(path, classes=CLASSES[:3], per_fold: int = 1, folds=range(1, 11), seed: int = 0) -> Path:
    "An UrbanSound8K-shaped folder: metadata/UrbanSound8K.csv (its columns) + audio/fold<k>/<fsID>-<classID>-0-<k>.wav"
    path, rng, rows = Path(path), np.random.default_rng(seed), []
    for fold in folds:
        for cid, cls in enumerate(classes):
            for k in range(per_fold):
                fs_id = 100 * fold + 10 * cid + k
                fn = f"{fs_id}-{cid}-0-{k}.wav"
                write_clip(path / 'audio' / f'fold{fold}' / fn, **_clip_args(len(rows), rng))
                rows.append(dict(slice_file_name=fn, fsID=fs_id, start=0.0, end=0.4, salience=1, fold=fold, classID=cid, **{'class': cls}))
    (path / 'metadata').mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path / 'metadata' / 'UrbanSound8K.csv', index=False)
    return path


def make_folders(path, counts: dict, exts=('wav', 'flac', 'ogg'), seed: int = 0) -> Path:
    "A folder-per-class tree root/<class>/<clip>: `counts` clips per class, the extensions taken in turn"
    path, rng, i = Path(path), np.random.default_rng(seed), 0
    for cls, n in counts.items():
        for k in range(n):
            write_clip(path / cls / f"{cls}_{k:03d}.{exts[i % len(exts)]}", **_clip_args(i, rng))
            i += 1
    return path


def make_csv(path, counts: dict, folds: int | None = 3, seed: int = 0, columns=('path', 'category', 'split')) -> Path:
    """`path` (a .csv) listing clips under its folder's clips/<class>/ with columns named `columns` (file, label, fold):
    `counts` clips per class, dealt to folds 1..`folds` in turn (no fold column when `folds` is None); an extra `note` column"""
    path, rng, rows, i = Path(path), np.random.default_rng(seed), [], 0
    file, label, fold = columns
    for cls, n in counts.items():
        for k in range(n):
            rel = f"clips/{cls}/{k:03d}.wav"
            write_clip(path.parent / rel, **_clip_args(i, rng))
            rows.append({file: rel, label: cls, **({fold: k % folds + 1} if folds else {}), 'note': f"take {k}"})
            i += 1
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


PATTERNS = ('tone', 'up', 'down', 'pulses', 'chord')
"The shapes of `make_tone_classes`' classes: a steady tone, a rising or falling chirp, a pulsed tone, two tones at once"


def tone_clip(pattern: str, f0: float, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of `pattern` around `f0` Hz (jittered by 10%) lasting `seconds` at `sr` Hz: the sound fills the middle
    60-90% of the clip, over a distractor tone of random pitch and noise, both at random levels"""
    t = np.arange(round(seconds * sr)) / sr
    f = f0 * rng.uniform(0.9, 1.1)
    sweep = {'up': f * 2 ** (t / seconds), 'down': f * 2 ** (1 - t / seconds)}.get(pattern, np.full_like(t, f))
    x = np.sin(2 * np.pi * np.cumsum(sweep) / sr + rng.uniform(0, 2 * np.pi))
    if pattern == 'pulses': x *= (np.sin(2 * np.pi * rng.uniform(3, 5) * t) > 0)
    if pattern == 'chord': x = 0.5 * (x + np.sin(2 * np.pi * 1.5 * f * t))
    on = rng.uniform(0.6, 0.9)
    x *= np.abs(t / seconds - 0.5) < on / 2
    distractor = rng.uniform(0, 0.3) * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
    return rng.uniform(0.1, 0.4) * x + distractor + rng.uniform(0.05, 0.3) * rng.standard_normal(len(t))


def make_tone_classes(path, n_classes: int = 10, per_class: int = 30, seconds=(0.6, 2.0), seed: int = 0,
                      rates=(16000, 22050, 44100, 8000), exts=('wav', 'flac')) -> Path:
    """A folder-per-class collection like a small set of spoken words: class k is pattern k % 5 (`PATTERNS`) in one of
    two pitch bands, each clip `seconds` long (uniform), at rates and in formats taken in turn, every 5th one stereo"""
    path, rng, i = Path(path), np.random.default_rng(seed), 0
    for k in range(n_classes):
        pattern, f0 = PATTERNS[k % len(PATTERNS)], (300, 1200, 2400)[k // len(PATTERNS) % 3]
        for j in range(per_class):
            sr, secs = rates[i % len(rates)], float(rng.uniform(*seconds))
            x = tone_clip(pattern, f0, secs, sr, rng)
            x = np.stack([x, 0.8 * x], 1) if i % 5 == 4 else x
            out = path / f"{pattern}{f0}" / f"{j:03d}.{exts[i % len(exts)]}"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, x.astype('float32'), sr)
            i += 1
    return path
