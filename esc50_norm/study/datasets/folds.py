"Folds: seeded, stratified ones for clips without them; a fold's split; a small subset of every class and fold"
from __future__ import annotations
import zlib

import numpy as np
import pandas as pd

from ...folds import fold_split as _fold_split
from .base import STANDARD, DatasetError

__all__ = ['stratified_folds', 'fold_split', 'subset_per_class']


def stratified_folds(labels, k: int, seed: int = 0, files=None) -> np.ndarray:
    """Seeded, stratified folds 1..k: each class (in sorted order) is shuffled by `seed` and dealt round-robin, going on
    where the previous class stopped, so a class's clips per fold differ by at most one, and so do the folds' sizes"""
    labels = pd.Series(np.asarray(labels, dtype=object))
    order = pd.Series(np.asarray(files if files is not None else range(len(labels)), dtype=object)).astype(str)
    out, start = np.zeros(len(labels), dtype=int), 0
    for label in sorted(labels.unique(), key=str):
        # a fixed order first: the files' sorted names
        idx = order[labels == label].sort_values(kind='stable').index.to_numpy()
        idx = idx[np.random.default_rng([seed, zlib.crc32(str(label).encode())]).permutation(len(idx))]
        out[idx] = (start + np.arange(len(idx))) % k + 1
        start += len(idx)
    return out


def generate_folds(df: pd.DataFrame, k: int, seed: int, source) -> pd.DataFrame:
    "`df` with `fold` made by `stratified_folds`; a class with fewer clips than folds is an error that names it"
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise DatasetError(f"k_folds must be an integer of at least 2, got {k!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DatasetError(f"fold_seed must be a whole number of at least 0, got {seed!r}")
    counts = df.label.astype(str).value_counts()
    few, fit = counts[counts < k], int(counts.min())
    if fit < 2: raise DatasetError(f"{source}: classes with a single clip: {counts[counts < 2].to_dict()}; a class "
                                   "needs a clip to train on and one to validate on: add clips, or leave it out")
    if len(few): raise DatasetError(f"{source}: classes with fewer clips than the {k} folds: {few.to_dict()}; "
                                    f"every fold needs a clip of every class: use --k-folds {fit} or fewer "
                                    f"(k_folds={fit} in Python), or add clips")
    others = [c for c in df.columns if c not in STANDARD]
    return df.assign(fold=stratified_folds(df.label.astype(str), k, seed, df.file))[[*STANDARD, *others]]


def fold_split(df: pd.DataFrame, valid_fold: int) -> tuple[list, list]:
    "The library's `esc50_norm.folds.fold_split`, an unknown fold a `DatasetError`"
    try: return _fold_split(df, valid_fold)
    except ValueError as e: raise DatasetError(str(e)) from None


def subset_per_class(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    "The first `n` clips of every class in every fold (all when `n` is None): small but complete grids for smoke runs"
    if n is None: return df
    return df[df.groupby(['fold', 'label']).cumcount() < n].reset_index(drop=True)
