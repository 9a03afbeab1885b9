"The deep model against the classical baseline of the same folds: the table, the verdict, the likely cause"
from __future__ import annotations
import numpy as np
import pandas as pd

from ..presets import Preset
from .statistics import fold_table

__all__ = ['baseline_table', 'baseline_verdict']


FAR_BELOW = 0.05
def baseline_table(df: pd.DataFrame, b: dict) -> pd.DataFrame:
    "Per fold of the runs, the baseline beside each normalization's mean over seeds; last, the mean over those folds"
    t = fold_table(df)
    t.insert(0, 'baseline', [b['per_fold'].get(str(int(f)), np.nan) for f in t.index])
    t.index = t.index.astype(str)
    t.loc['mean'] = t.mean()
    return t


def _cause(df: pd.DataFrame, preset: Preset) -> str:
    "The likely cause of a deep model far below the baseline: too few optimizer steps, too few frames, or neither"
    from ..sizing import MIN_FRAMES, MIN_STEPS, n_frames
    n_train = int(df.n_train.min()) if 'n_train' in df else None
    steps = None if n_train is None else n_train // preset.bs * preset.epochs
    nf, hop = n_frames(preset.spec, preset.duration), preset.spec.hop
    causes = []
    if steps is not None and steps < MIN_STEPS:
        batches = n_train // preset.bs
        causes.append(f"too few optimizer steps ({steps}: {batches} batches of {preset.bs} per epoch x "
                      f"{preset.epochs} epochs; a sized recipe trains at least {MIN_STEPS}: "
                      f"--epochs {-(-MIN_STEPS // max(batches, 1))} does with these batches)")
    if nf < MIN_FRAMES:
        causes.append(f"too few spectrogram frames per clip ({nf} at hop {hop}; a sized recipe gives at least "
                      f"{MIN_FRAMES})")
    return '; '.join(causes) or (f"not the recipe's size ({steps} optimizer steps, {nf} frames per clip): try more "
                                 "epochs, another learning rate or a longer --duration")


def baseline_verdict(df: pd.DataFrame, b: dict, preset: Preset) -> str:
    "One sentence: the best normalization's mean against the baseline's on the same folds; when far below, the cause"
    t = baseline_table(df, b).drop(index='mean')
    shared = {k: t.loc[t[k].notna() & t.baseline.notna(), [k, 'baseline']].mean() for k in t.columns.drop('baseline')}
    shared = {k: m for k, m in shared.items() if m.notna().all()}        # a normalization on the baseline's folds
    if not shared: return "No fold holds both the runs and the classical baseline: nothing to compare."
    best = max(shared, key=lambda k: shared[k][k])
    mean, base = shared[best][best], shared[best]['baseline']
    gap, what = mean - base, f"its best normalization, {best}, reaches {mean:.4f} against {base:.4f}"
    if gap >= -FAR_BELOW:
        where = 'above' if gap > 0 else f'within {FAR_BELOW} of'
        return f"The deep model is {where} the classical baseline: {what} ({gap:+.4f})."
    return (f"**The deep model is far below the classical baseline**: {what} ({gap:+.4f}). "
            f"Likely cause: {_cause(df, preset)}.")


