"A DataBlock's split by a `fold` column: one fold validates, the other folds train"
from __future__ import annotations

import pandas as pd

__all__ = ['fold_split', 'FoldSplitter']


def fold_split(df: pd.DataFrame, valid_fold: int) -> tuple[list, list]:
    "Indices of the training rows (the other folds) and of the validation rows (`valid_fold`; 0: none, all train)"
    if valid_fold == 0: return list(range(len(df))), []
    folds = sorted(map(int, df.fold.unique()))
    if valid_fold not in folds: raise ValueError(f"fold {valid_fold!r} does not exist; this data has folds {folds}")
    is_valid = (df.fold == valid_fold).to_numpy()
    return list(map(int, (~is_valid).nonzero()[0])), list(map(int, is_valid.nonzero()[0]))


class FoldSplitter:
    "Split a metadata frame with a `fold` column: validation = `valid_fold`, training = the other folds (0: all train)"
    def __init__(self, valid_fold: int): self.valid_fold = valid_fold
    def __call__(self, df: pd.DataFrame): return fold_split(df, self.valid_fold)
