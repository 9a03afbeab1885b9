"Any CSV of clips as a dataset kind: its file, label and (optional) fold columns"
from __future__ import annotations
from pathlib import Path

import pandas as pd

from ..tables import read_csv_checked, with_columns
from .base import STANDARD, DatasetError, standard_frame
from .collection import FOLD_DEFAULTS, MadeFolds

__all__ = ['CSVDataset']


class CSVDataset(MadeFolds):
    "Any CSV of clips: `columns` names its file, label and (optional) fold columns"
    # files relative to the CSV's folder, or absolute
    kind, options, generic = 'csv', ('columns', 'k_folds', 'fold_seed'), True

    def __init__(self, csv, columns=None, k_folds: int = 5, fold_seed: int = 0):
        super().__init__(k_folds, fold_seed)
        self.csv = Path(csv).expanduser()
        self.root, self.name = self.csv.parent, self.csv.stem
        self.columns = _parse_columns(columns)

    @classmethod
    def recognises(cls, path: Path) -> bool: return path.is_file() and path.suffix.lower() == '.csv'
    @property
    def source(self) -> Path: return self.csv

    def _read(self) -> pd.DataFrame:
        df = read_csv_checked(self.csv, DatasetError)
        self.used_columns = self.columns or dict(file='file', label='label',
                                                 **({'fold': 'fold'} if 'fold' in df.columns else {}))
        file, label, fold = (self.used_columns.get(k) for k in STANDARD)
        hint = "" if self.columns else ("; name them with --columns file=...,label=...,fold=... "
                                        "(columns=dict(file=..., label=..., fold=...) in Python)")
        df = with_columns(df, [file, label, *([fold] if fold else [])], self.csv, hint, DatasetError)
        if fold is None: return self._made_folds(standard_frame(df, file, label))
        if (self.k_folds, self.fold_seed) != tuple(FOLD_DEFAULTS.values()):
            raise DatasetError(f"{self.csv} has its own folds (column {fold!r}); "
                               "k_folds and fold_seed apply only to CSVs without one")
        return standard_frame(df, file, label, fold)

    @property
    def makes_folds(self) -> bool:
        "Whether the folds are made: `columns` name no fold column, or (not named) the CSV has none"
        if self.columns is not None: return 'fold' not in self.columns
        return 'fold' not in self._meta_columns()

    def _meta_columns(self) -> dict:
        self.meta()
        return self.used_columns

    def _details(self) -> dict: return dict(csv=str(self.csv), columns=self._meta_columns(), **super()._details())


def _parse_columns(columns) -> dict | None:
    "`columns` as a dict (file, label, optional fold), from a dict or a 'file=path,label=class,fold=split' string"
    if columns is None: return None
    if isinstance(columns, str):
        pairs = [tuple(kv.split('=', 1)) for kv in columns.split(',') if kv]
        if any(len(kv) != 2 for kv in pairs):
            raise DatasetError(f"columns {columns!r}: expected 'file=COLUMN,label=COLUMN[,fold=COLUMN]'")
        keys = [k.strip() for k, _ in pairs]
        if twice := sorted({k for k in keys if keys.count(k) > 1}):
            raise DatasetError(f"columns {columns!r}: {', '.join(twice)} given more than once")
        columns = dict(pairs)
    columns = {k.strip(): v.strip() for k, v in dict(columns).items()}
    unknown, missing = sorted(set(columns) - set(STANDARD)), [k for k in ('file', 'label') if k not in columns]
    if unknown or missing: raise DatasetError(f"columns {columns}: needs file and label (fold optional); "
                                              + (f"unknown {unknown}" if unknown else f"missing {missing}"))
    named = list(columns.values())
    if shared := sorted({c for c in named if named.count(c) > 1}):
        raise DatasetError(f"columns {columns}: the column {', '.join(map(repr, shared))} is named for two roles")
    return columns
