"What the kinds share: `Collection` (metadata read once, checked, fingerprinted), `MadeFolds` (folds made when absent)"
from __future__ import annotations
import hashlib
from pathlib import Path

import pandas as pd

from .base import STANDARD
from .checks import check_meta
from .folds import generate_folds

__all__ = ['FOLD_DEFAULTS', 'Collection', 'MadeFolds']

FOLD_DEFAULTS = dict(k_folds=5, fold_seed=0)
"The folds `MadeFolds` makes unless told otherwise: 5, seed 0"


class Collection:
    "What the kinds share: `meta()` (read once by the kind's `_read`, validated), paths, classes, fingerprint, describe"
    kind: str = ''
    duration: float | None = None
    options: tuple = ()                         # the `get_dataset` options the kind takes (beyond its path)
    fixed_folds: tuple | None = None            # the folds the kind always has (ESC-50: 1-5), else None
    needs_path: bool = True                     # False: it finds its data without one (ESC-50: $ESC50_PATH, download)
    generic: bool = False                       # True: it takes any folder or file of its type (folders, csv), so it
                                                # claims a bare path only when no other kind recognises it
    _meta: pd.DataFrame | None = None

    @classmethod
    def recognises(cls, path: Path) -> bool:
        "Whether a bare path given as `--dataset` is of this kind"
        return False

    @property
    def audio_root(self) -> Path: return self.root
    @property
    def source(self) -> Path: return self.root
    def _read(self) -> pd.DataFrame: raise NotImplementedError
    def _details(self) -> dict: return {}                 # what `describe` adds for this kind

    def meta(self) -> pd.DataFrame:
        "The clips in standard columns, validated on first use (later calls return the same frame)"
        if self._meta is None: self._meta = check_meta(self._read(), self.source, self.audio_root, self.fixed_folds)
        return self._meta

    @property
    def folds(self) -> tuple: return self.fixed_folds or tuple(sorted(map(int, self.meta().fold.unique())))
    @property
    def classes(self) -> tuple: return tuple(sorted(self.meta().label.unique()))
    def path(self, file) -> Path: return self.audio_root / file

    def fingerprint(self) -> str:
        "A short hash of the sorted (file, label, fold) rows"
        rows = self.meta()[list(STANDARD)].sort_values('file')
        text = '\n'.join(f"{f}\t{l}\t{k}" for f, l, k in rows.itertuples(index=False))
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def describe(self) -> dict:
        "What the dataset is, JSON-able, for preset.json and the run files"
        df = self.meta()
        return dict(kind=self.kind, name=self.name, root=str(Path(self.root).absolute()), clips=len(df),
                    classes=len(self.classes), folds=list(self.folds), fingerprint=self.fingerprint(),
                    duration=self.duration, **self._details())

    def __repr__(self): return f"{type(self).__name__}({str(self.source)!r})"


class MadeFolds(Collection):
    "A kind whose clips may come without folds: it makes `k_folds` seeded, stratified ones (`stratified_folds`)"
    options = ('k_folds', 'fold_seed')
    def __init__(self, k_folds: int = 5, fold_seed: int = 0): self.k_folds, self.fold_seed = k_folds, fold_seed
    @property
    def makes_folds(self) -> bool: return True                  # a kind whose source may hold folds says when it does
    def _made_folds(self, df: pd.DataFrame) -> pd.DataFrame:
        return generate_folds(df, self.k_folds, self.fold_seed, self.source)

    @property
    def folds(self) -> tuple: return tuple(range(1, self.k_folds + 1)) if self.makes_folds else super().folds
    def _details(self) -> dict: return dict(k=self.k_folds, seed=self.fold_seed) if self.makes_folds else {}
