"""The standard frame every kind reads its clips into (`file`, `label`, `fold`), the `Dataset` protocol, and
`DatasetError`"""
from __future__ import annotations
from pathlib import Path
from typing import Protocol

import pandas as pd

__all__ = ['STANDARD', 'DatasetError', 'Dataset', 'standard_frame']

STANDARD = ('file', 'label', 'fold')
"The standard columns of a dataset's `meta()`"


class DatasetError(ValueError):
    "A dataset cannot be found, read, or is not valid: the message names the file and the offending values"


class Dataset(Protocol):
    "What every kind of labelled audio collection offers the study"
    kind: str                            # its name in `KINDS`: esc50, esc10, urbansound8k, csv, folders
    name: str                            # what it is called: esc50, esc10, UrbanSound8K, the CSV's / folder's stem
    root: Path                           # its folder: the ESC-50 or UrbanSound8K root, the CSV's folder, the tree
    audio_root: Path                     # the folder `file`s are relative to: path(file) == audio_root / file
    folds: tuple                         # its fold numbers, 1..k; fixed kinds and made folds know them without reading
    classes: tuple                       # its labels, sorted
    duration: float | None               # the clip duration it fixes (ESC-50: 5.0), else None: see `clip_duration`
    def meta(self) -> pd.DataFrame: ...  # a validated row per clip: file, label (str), fold (int), its own columns
    def path(self, file) -> Path: ...    # the audio file of a `file` of `meta()`
    def fingerprint(self) -> str: ...    # a short hash of the sorted (file, label, fold) rows: same clips, same hash
    def describe(self) -> dict: ...      # JSON-able: kind, name, root, clips, classes, folds, fingerprint (+ k, seed)


def standard_frame(df: pd.DataFrame, file: str, label: str, fold: str | None = None) -> pd.DataFrame:
    "`file`, `label` (and `fold`) from the source's columns so named, then the source's other columns"
    # a clash is kept as source_<name>
    mapping = {'file': file, 'label': label, **({'fold': fold} if fold else {})}
    std = pd.DataFrame({s: df[c].to_numpy() for s, c in mapping.items()})
    rest = df.drop(columns=[c for s, c in mapping.items() if s == c]).reset_index(drop=True)
    return pd.concat([std, rest.rename(columns={c: f"source_{c}" for c in STANDARD if c in rest.columns})], axis=1)


def range_text(lo, hi) -> str:
    "Two bounds as a message writes them: `3`, or `2-5`"
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def folds_text(folds) -> str:
    "Folds as a message writes them: `1-5` when consecutive, else their list"
    folds = list(folds)
    return f"{folds[0]}-{folds[-1]}" if folds == list(range(folds[0], folds[-1] + 1)) and len(folds) > 1 else str(folds)
