"A dataset's clips checked before any work: the frame, its folds, its files, its class balance; a grid's folds"
from __future__ import annotations
import warnings

import pandas as pd

from ...spelling import plural
from ..tables import check_files, int_folds
from .base import STANDARD, Dataset, DatasetError, folds_text

__all__ = ['check_meta', 'class_balance', 'check_training', 'check_folds']

IMBALANCE = 3.0
"Class imbalance is warned about when the largest class-in-a-fold has more than this many times the smallest's clips"


def check_meta(df: pd.DataFrame, source, audio_root, folds: tuple | None = None) -> pd.DataFrame:
    "Validate a standard frame before any work; warn of a strong class imbalance"
    # the errors name `source` and the offending values
    df = _typed(df, source)
    _check_folds_present(df.fold, source, folds)
    counts = df.label.value_counts()
    if len(counts) < 2:
        raise DatasetError(f"{source} has one label only ({counts.index[0]!r}, {counts.iloc[0]} clips): "
                           "a classifier needs clips of at least 2 labels")
    single = sorted(counts.index[counts == 1])
    if single:
        raise DatasetError(f"{source}: {len(single)} labels have a single clip, too few to train and validate on: "
                           f"{single[:8]}")
    dup = list(dict.fromkeys(df.file[df.file.duplicated()]))
    if dup: raise DatasetError(f"{source} lists {len(dup)} files more than once: {dup[:5]}")
    alike = counts.index.to_series().groupby(lambda l: l.strip().casefold()).agg(list)
    if len(alike := [sorted(v) for v in alike if len(v) > 1]):
        warnings.warn(f"{source}: {plural(len(alike), 'set')} of labels differ only in case or spaces and are kept "
                      f"as separate classes: {alike[:5]}")
    check_files(df.file, source, audio_root, DatasetError)
    text, strong = class_balance(df)
    if strong: warnings.warn(f"{source}: strongly imbalanced classes; {text}")
    return df


def _typed(df: pd.DataFrame, source) -> pd.DataFrame:
    "`df` with a file and a label (str) in every row and integer folds"
    missing = [c for c in STANDARD if c not in df.columns]
    if missing: raise DatasetError(f"{source}: no {missing} columns")
    if not len(df): raise DatasetError(f"{source} lists no clips")
    df = df.reset_index(drop=True)
    no_file = df.index[df.file.isna() | (df.file.astype(str).str.strip() == '')]
    if len(no_file):
        raise DatasetError(f"{source}: {len(no_file)} rows have no file: "
                           f"data rows {list(map(int, no_file[:5]))} (from 0)")
    no_label = df.file[df.label.isna() | (df.label.astype(str).str.strip() == '')]
    if len(no_label): raise DatasetError(f"{source}: {len(no_label)} rows have no label: {list(no_label[:5])}")
    return df.assign(file=df.file.astype(str), label=df.label.astype(str), fold=int_folds(df.fold, source, DatasetError))


def _check_folds_present(fold: pd.Series, source, folds: tuple | None):
    "Every fold of `folds` (the kind's fixed ones; else 1..the largest) has clips, and there are no others"
    present = sorted(map(int, fold.unique()))
    if folds is not None and set(present) - set(folds):
        raise DatasetError(f"{source} has folds {sorted(set(present) - set(folds))}; "
                           f"this dataset's folds are {folds_text(folds)}")
    if present[0] < 1:
        raise DatasetError(f"{source} has folds {[f for f in present if f < 1]}: "
                           "folds are numbered from 1 (0 means 'no validation fold')")
    expected = folds if folds is not None else tuple(range(1, present[-1] + 1))
    empty = [f for f in expected if f not in present]
    if empty: raise DatasetError(f"{source}: fold(s) {empty} of {folds_text(expected)} have no clips")


def class_balance(df: pd.DataFrame) -> tuple[str, bool]:
    "A short text on the clips per class and fold (min-max, where), and whether the imbalance is strong (`IMBALANCE`)"
    n = pd.crosstab(df.label, df.fold).stack()
    lo, hi = int(n.min()), int(n.max())
    text = f"clips per class and fold: {lo}-{hi}"
    if lo != hi:
        text += f" (fewest: {n.idxmin()[0]} in fold {n.idxmin()[1]}; most: {n.idxmax()[0]} in fold {n.idxmax()[1]})"
    if lo == 0: text += f"; {int((n == 0).sum())} class-fold pairs have no clip"
    return text, lo == 0 or hi > IMBALANCE * lo


def check_training(df: pd.DataFrame, folds, bs: int, name: str = 'the dataset'):
    "Each validation fold of `folds` (0: none) leaves at least a batch of `bs` clips to train on, or an error"
    present = sorted(map(int, df.fold.unique()))
    for fold in folds:
        n = int((df.fold != fold).sum())
        if n == 0:
            raise DatasetError(f"{name} has only fold {present[0]}: validating on it leaves no clip to train on; "
                               "give it more folds (--k-folds for a CSV without folds), or use train --fold all")
        if n < bs:
            raise DatasetError(f"validating on fold {fold} of {name} leaves {n} clips to train on, fewer than a batch "
                               f"of {bs} (the last, incomplete batch is dropped): lower --bs")


def check_folds(ds: Dataset, folds=None) -> tuple:
    "The folds of a grid (None: all of the dataset's), each one of the dataset's; the error names the absent ones"
    if folds is None: return tuple(ds.folds)
    absent = [f for f in folds if f not in ds.folds]
    if absent: raise DatasetError(f"fold(s) {absent} do not exist in {ds.name}; its folds are {folds_text(ds.folds)}")
    return tuple(int(f) for f in folds)
