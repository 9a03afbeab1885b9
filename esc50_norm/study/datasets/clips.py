"What a dataset's clips are like: their headers, the duration they are cropped/padded to and its cost, a summary"
from __future__ import annotations
import numpy as np
import pandas as pd
import soundfile as sf

from ...spelling import plural
from .base import Dataset, DatasetError, range_text
from .checks import class_balance

__all__ = ['clip_info', 'clip_duration', 'cropping', 'summary']


def clip_info(ds: Dataset, files=None) -> pd.DataFrame:
    "Each clip's duration (s), sample rate, channels and frames from its header (soundfile: nothing is decoded)"
    rows, bad = [], []
    for f in (ds.meta().file if files is None else files):
        try: i = sf.info(str(ds.path(f)))
        except Exception as e:
            bad.append(f"{f} ({getattr(e, 'error_string', None) or type(e).__name__})")
            continue
        rows.append((f, i.frames / i.samplerate, i.samplerate, i.channels, i.frames))
    if bad: raise DatasetError(f"{plural(len(bad), 'clip')} of {ds.name} {'is' if len(bad) == 1 else 'are'} not "
                               f"readable audio: {bad[:5]}")
    return pd.DataFrame(rows, columns=['file', 'duration', 'sr', 'channels', 'frames'])


DURATION_QUANTILE = 0.99
"Without a fixed duration, clips are cropped/padded to this quantile of their durations: nearly every clip stays whole"


def clip_duration(ds: Dataset, given: float | None = None, info: pd.DataFrame | None = None, log=print) -> float:
    "The duration clips are cropped/padded to: `given`, else the dataset's own, else the 99th percentile of its clips"
    if given is not None: return float(given)
    if ds.duration is not None: return float(ds.duration)
    d = (clip_info(ds) if info is None else info).duration
    length = float(np.quantile(d, DURATION_QUANTILE, method='higher'))
    if log:
        log(f"{ds.name}: no fixed clip duration; clips are cropped/padded to {length:.3f} s, the "
            f"{DURATION_QUANTILE * 100:.0f}th percentile of its {len(d)} clips (they last "
            f"{d.min():.2f}-{d.max():.2f} s, median {d.median():.2f} s; --duration sets it)")
        cut = cropping(d, length)
        if cut: log(f"warning: {cut}")
    return length


def cropping(durations, length: float) -> str:
    "What cropping clips of `durations` (s) to `length` s costs: how many are cut and how much they lose ('' when none)"
    d = pd.Series(np.asarray(durations, dtype=float))
    lost = (1 - length / d[d > length]).sort_values()
    if not len(lost): return ''
    half = int((lost > 0.5).sum())
    return (f"{len(lost)} of {len(d)} clips are longer than {length:.2f} s and are cropped, losing "
            f"{lost.median():.0%} of the clip (median) and at most {lost.max():.0%}"
            + (f"; {half} lose more than half" if half else '')
            + f"; --duration {d.max():.2f} keeps every clip whole")


def summary(ds: Dataset) -> str:
    "Two lines on a dataset: clips, classes, folds and their sizes; class balance (its clips: `ClipCache.report`)"
    df = ds.meta()
    sizes = df.fold.value_counts()
    gen = ds.describe()
    lines = [f"{ds.name} ({ds.kind}, {ds.root}): {len(df)} clips, {len(ds.classes)} classes, {len(ds.folds)} folds "
             f"of {range_text(sizes.min(), sizes.max())} clips"
             + (f" (made with k={gen['k']}, seed {gen['seed']})" if 'k' in gen else '')
             + f"; fingerprint {gen['fingerprint']}", class_balance(df)[0]]
    return '\n'.join(lines)
