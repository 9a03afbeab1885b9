"ESC-50 and ESC-10 as dataset kinds (their files: `esc50_norm.study.esc50`)"
from __future__ import annotations
from functools import cached_property
from pathlib import Path

import pandas as pd

from ..esc50 import FOLDS, esc50_path, read_esc10, read_meta
from .base import standard_frame
from .collection import Collection

__all__ = ['ESC50', 'ESC10']


class ESC50(Collection):
    "An ESC-50 folder: meta/esc50.csv + audio/; `full`: all of ESC-50, else any ESC-50-shaped folder"
    # all of ESC-50: 2000 clips, 50 classes of 40
    kind = name = 'esc50'
    duration, fixed_folds, options, needs_path = 5.0, FOLDS, ('full',), False

    def __init__(self, root=None, full: bool = True): self._given, self.full = root, full

    @classmethod
    def recognises(cls, path: Path) -> bool: return (path / 'meta' / 'esc50.csv').is_file()
    @cached_property
    def root(self) -> Path: return esc50_path(self._given)      # the given folder, else $ESC50_PATH, else the download
    @property
    def audio_root(self) -> Path: return self.root / 'audio'
    @property
    def source(self) -> Path: return self.root / 'meta' / 'esc50.csv'
    def _read(self) -> pd.DataFrame:
        df = read_meta(self.root, full=self.full, check_files=False)          # `meta()` checks the files
        return standard_frame(df, 'filename', 'category', 'fold')
    def __repr__(self): return f"{type(self).__name__}({str(self.__dict__.get('root', self._given))!r})"


class ESC10(ESC50):
    "ESC-10, the 10-class subset of ESC-50 marked by esc50.csv's `esc10` column, in the same 5 folds"
    # `full`: 400 clips, 10 classes of 40
    kind = name = 'esc10'

    @classmethod
    def recognises(cls, path: Path) -> bool: return False    # a bare ESC-50 folder is esc50; esc10 is asked by name
    def _read(self) -> pd.DataFrame:
        return standard_frame(read_esc10(self.root, full=self.full, check_files=False), 'filename', 'category', 'fold')
