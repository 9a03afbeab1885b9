"UrbanSound8K as a dataset kind: its metadata CSV and its 10 fixed folds"
from __future__ import annotations
from pathlib import Path

import pandas as pd

from ..tables import int_folds, read_csv_checked, with_columns
from .base import DatasetError, standard_frame
from .collection import Collection

__all__ = ['UrbanSound8K']


class UrbanSound8K(Collection):
    "An UrbanSound8K folder: metadata/UrbanSound8K.csv (slice_file_name, fold, class, ...) + audio/fold1..10/; 10 folds"
    kind, name = 'urbansound8k', 'UrbanSound8K'
    fixed_folds = tuple(range(1, 11))
    COLUMNS = ('slice_file_name', 'fold', 'class')

    def __init__(self, root): self.root = Path(root).expanduser()

    @classmethod
    def recognises(cls, path: Path) -> bool: return (path / 'metadata' / 'UrbanSound8K.csv').is_file()
    @property
    def audio_root(self) -> Path: return self.root / 'audio'
    @property
    def source(self) -> Path: return self.root / 'metadata' / 'UrbanSound8K.csv'

    def _read(self) -> pd.DataFrame:
        df = with_columns(read_csv_checked(self.source, DatasetError), self.COLUMNS, self.source, error=DatasetError)
        df = df.assign(fold=int_folds(df.fold, self.source, DatasetError))
        return standard_frame(df.assign(file='fold' + df.fold.astype(str) + '/' + df.slice_file_name.astype(str)),
                              'file', 'class', 'fold')
