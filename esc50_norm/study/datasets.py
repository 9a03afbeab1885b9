"""Labelled audio collections behind one protocol: ESC-50, ESC-10, UrbanSound8K, any CSV, any folder-per-class tree.

`get_dataset(spec)` turns a command line's `--dataset SPEC` into a `Dataset`: its validated metadata in standard
columns (`file`, `label`, `fold`), its folds and classes, its clip duration when it fixes one, and a fingerprint of its
contents.
A new kind is a class (a `Collection` with `_read`; a `MadeFolds` when its clips have no folds) and one entry in
`KINDS`, from any module: then `--dataset KIND:PATH` and `get_dataset` know it.
"""
from __future__ import annotations
import hashlib
import os
import warnings
import zlib
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import soundfile as sf

from .esc50 import FOLDS, esc50_path, read_csv_checked, read_esc10, read_meta

__all__ = ['Dataset', 'DatasetError', 'Collection', 'MadeFolds', 'ESC50', 'ESC10', 'UrbanSound8K', 'CSVDataset',
           'ClassFolders', 'KINDS',
           'AUDIO_EXTENSIONS', 'IMBALANCE', 'get_dataset', 'parse_spec', 'standard_frame', 'check_meta',
           'stratified_folds', 'class_balance', 'check_training', 'check_folds', 'fold_split', 'subset_per_class',
           'clip_info', 'clip_duration', 'summary', 'DURATION_QUANTILE', 'cropping']

STANDARD = ('file', 'label', 'fold')
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')
IMBALANCE = 3.0
"Class imbalance is warned about when the largest class-in-a-fold has more than this many times the smallest's clips"


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
        "Whether a bare path given as a spec is of this kind"
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
        return _generate_folds(df, self.k_folds, self.fold_seed, self.source)

    @property
    def folds(self) -> tuple: return tuple(range(1, self.k_folds + 1)) if self.makes_folds else super().folds
    def _details(self) -> dict: return dict(k=self.k_folds, seed=self.fold_seed) if self.makes_folds else {}


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
        df = _with_columns(read_csv_checked(self.source, DatasetError), self.COLUMNS, self.source)
        df = df.assign(fold=_int_folds(df.fold, self.source))
        return standard_frame(df.assign(file='fold' + df.fold.astype(str) + '/' + df.slice_file_name.astype(str)),
                              'file', 'class', 'fold')


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
        hint = "" if self.columns else "; name them with columns=dict(file=..., label=..., fold=...)"
        df = _with_columns(df, [file, label, *([fold] if fold else [])], self.csv, hint)
        if fold is None: return self._made_folds(standard_frame(df, file, label))
        if (self.k_folds, self.fold_seed) != (_DEFAULTS['k_folds'], _DEFAULTS['fold_seed']):
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


class ClassFolders(MadeFolds):
    "A folder-per-class tree, `root/<class>/<clip>`, with seeded, stratified k folds"
    # clips: wav, flac, ogg, mp3, aiff; in nested folders too
    kind, generic = 'folders', True

    def __init__(self, root, k_folds: int = 5, fold_seed: int = 0):
        super().__init__(k_folds, fold_seed)
        self.root = Path(root).expanduser()
        self.name = self.root.absolute().name

    @classmethod
    def recognises(cls, path: Path) -> bool: return path.is_dir()

    def _read(self) -> pd.DataFrame:
        if not self.root.is_dir(): raise DatasetError(f"{self.root} is not a folder")
        classes = [d for d in sorted(self.root.iterdir()) if d.is_dir() and not d.name.startswith('.')]
        _refuse_loops(self.root, classes)
        rows = [(f.relative_to(self.root).as_posix(), d.name)
                for d in classes for f in sorted(d.rglob('*')) if _is_audio(f, d)]
        if not rows:
            raise DatasetError(f"{self.root} holds no class folders with audio "
                               f"({', '.join(e[1:] for e in AUDIO_EXTENSIONS)}): "
                               "a folder-per-class tree is root/<class>/<clip>")
        stray = [f.name for f in self.root.iterdir() if _is_audio(f, self.root)]
        if stray:
            warnings.warn(f"{self.root}: {len(stray)} audio files lie outside any class folder and are left out: "
                          f"{stray[:5]}")
        df = pd.DataFrame(rows, columns=['file', 'label'])
        return self._made_folds(df)


KINDS = {'esc50': ESC50, 'esc10': ESC10, 'urbansound8k': UrbanSound8K, 'csv': CSVDataset, 'folders': ClassFolders}
"""Every kind of dataset by name; a new kind is one entry here. A bare path is claimed by the one kind that recognises
it (a `generic` kind only when no other does)"""
_DEFAULTS = dict(columns=None, k_folds=5, fold_seed=0, full=True)


def _refuse_loops(root: Path, classes):
    "Refuse, by name, a class folder that is a symlink back into the tree (its clips would count twice, as a class)"
    top = root.resolve()
    for d in classes:
        target = d.resolve()
        if d.is_symlink() and (target == top or top in target.parents):
            raise DatasetError(f"{d} is a symlink to {target}, inside the tree {root}: its clips would count twice; "
                               "remove it, or link to a folder outside the tree")


def _is_audio(f: Path, top: Path) -> bool:
    "An audio file (by extension), not hidden, not under a hidden folder below `top`"
    return (f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file()
            and not any(p.startswith('.') for p in f.relative_to(top).parts))


def _parse_columns(columns) -> dict | None:
    "`columns` as a dict (file, label, optional fold), from a dict or a 'file=path,label=class,fold=split' string"
    if columns is None: return None
    if isinstance(columns, str):
        try: columns = dict(kv.split('=', 1) for kv in columns.split(',') if kv)
        except ValueError:
            raise DatasetError(f"columns {columns!r}: expected 'file=COLUMN,label=COLUMN[,fold=COLUMN]'") from None
    columns = {k.strip(): v.strip() for k, v in dict(columns).items()}
    unknown, missing = sorted(set(columns) - set(STANDARD)), [k for k in ('file', 'label') if k not in columns]
    if unknown or missing: raise DatasetError(f"columns {columns}: needs file and label (fold optional); "
                                              + (f"unknown {unknown}" if unknown else f"missing {missing}"))
    return columns


def _with_columns(df: pd.DataFrame, needed, source, hint: str = '') -> pd.DataFrame:
    "`df`, which must have the columns `needed`; the error names `source`, the missing columns and those it has"
    missing = [c for c in needed if c not in df.columns]
    if missing: raise DatasetError(f"{source} lacks columns {missing} (it has {list(df.columns)[:12]}){hint}")
    return df


def _int_folds(folds: pd.Series, source) -> pd.Series:
    "The fold column as integers; the error names `source` and the values that are not integers"
    num = pd.to_numeric(folds, errors='coerce')
    bad = folds[num.isna() | (num % 1 != 0)]
    if len(bad):
        raise DatasetError(f"{source}: {len(bad)} folds are not integers: {list(dict.fromkeys(bad.astype(str)))[:5]}")
    return num.astype(int)


def standard_frame(df: pd.DataFrame, file: str, label: str, fold: str | None = None) -> pd.DataFrame:
    "`file`, `label` (and `fold`) from the source's columns so named, then the source's other columns"
    # a clash is kept as source_<name>
    mapping = {'file': file, 'label': label, **({'fold': fold} if fold else {})}
    std = pd.DataFrame({s: df[c].to_numpy() for s, c in mapping.items()})
    rest = df.drop(columns=[c for s, c in mapping.items() if s == c]).reset_index(drop=True)
    return pd.concat([std, rest.rename(columns={c: f"source_{c}" for c in STANDARD if c in rest.columns})], axis=1)


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


def _generate_folds(df: pd.DataFrame, k: int, seed: int, source) -> pd.DataFrame:
    "`df` with `fold` made by `stratified_folds`; a class with fewer clips than folds is an error that names it"
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise DatasetError(f"k_folds must be an integer of at least 2, got {k!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DatasetError(f"fold_seed must be a whole number of at least 0, got {seed!r}")
    counts = df.label.astype(str).value_counts()
    few = counts[counts < k]
    if len(few): raise DatasetError(f"{source}: classes with fewer clips than the {k} folds: {few.to_dict()}; "
                                    "every fold needs a clip of every class: "
                                    f"use k_folds={max(2, int(counts.min()))} or fewer, or add clips")
    others = [c for c in df.columns if c not in STANDARD]
    return df.assign(fold=stratified_folds(df.label.astype(str), k, seed, df.file))[[*STANDARD, *others]]


def check_meta(df: pd.DataFrame, source, audio_root, folds: tuple | None = None) -> pd.DataFrame:
    "Validate a standard frame before any work; warn of a strong class imbalance"
    # the errors name `source` and the offending values
    df = _typed(df, source)
    _check_folds_present(df.fold, source, folds)
    counts = df.label.value_counts()
    single = sorted(counts.index[counts == 1])
    if single:
        raise DatasetError(f"{source}: {len(single)} labels have a single clip, too few to train and validate on: "
                           f"{single[:8]}")
    dup = list(dict.fromkeys(df.file[df.file.duplicated()]))
    if dup: raise DatasetError(f"{source} lists {len(dup)} files more than once: {dup[:5]}")
    _check_files(df.file, source, Path(audio_root))
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
    return df.assign(file=df.file.astype(str), label=df.label.astype(str), fold=_int_folds(df.fold, source))


def _check_folds_present(fold: pd.Series, source, folds: tuple | None):
    "Every fold of `folds` (the kind's fixed ones; else 1..the largest) has clips, and there are no others"
    present = sorted(map(int, fold.unique()))
    if folds is not None and set(present) - set(folds):
        raise DatasetError(f"{source} has folds {sorted(set(present) - set(folds))}; "
                           f"this dataset's folds are {_span(folds)}")
    if present[0] < 1:
        raise DatasetError(f"{source} has folds {[f for f in present if f < 1]}: "
                           "folds are numbered from 1 (0 means 'no validation fold')")
    expected = folds if folds is not None else tuple(range(1, present[-1] + 1))
    empty = [f for f in expected if f not in present]
    if empty: raise DatasetError(f"{source}: fold(s) {empty} of {_span(expected)} have no clips")


def _range(lo, hi) -> str: return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _span(folds) -> str:
    folds = list(folds)
    return f"{folds[0]}-{folds[-1]}" if folds == list(range(folds[0], folds[-1] + 1)) and len(folds) > 1 else str(folds)


def _check_files(files, source, audio_root: Path):
    "Every file present, a regular file and readable; the errors give the count and the first few"
    missing, unreadable = [], []
    for f in files:
        p = audio_root / f
        try: st = p.stat()
        except FileNotFoundError:
            missing.append(f)
            continue
        except OSError as e:
            unreadable.append(f"{f} ({type(e).__name__})")
            continue
        if not p.is_file(): unreadable.append(f"{f} (not a file)")
        elif not os.access(p, os.R_OK): unreadable.append(f"{f} (no read permission)")
    if missing:
        raise DatasetError(f"{len(missing)} of {len(files)} clips listed in {source} are missing from {audio_root}: "
                           f"{missing[:5]}")
    if unreadable:
        raise DatasetError(f"{len(unreadable)} clips listed in {source} cannot be read under {audio_root}: "
                           f"{unreadable[:5]}")


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
    if absent: raise DatasetError(f"fold(s) {absent} do not exist in {ds.name}; its folds are {_span(ds.folds)}")
    return tuple(int(f) for f in folds)


def fold_split(df: pd.DataFrame, valid_fold: int) -> tuple[list, list]:
    "Indices of the training rows (the other folds) and of the validation rows (`valid_fold`; 0: none, all train)"
    if valid_fold == 0: return list(range(len(df))), []
    folds = sorted(map(int, df.fold.unique()))
    if valid_fold not in folds: raise DatasetError(f"fold {valid_fold!r} does not exist; this data has folds {folds}")
    is_valid = (df.fold == valid_fold).to_numpy()
    return list(map(int, (~is_valid).nonzero()[0])), list(map(int, is_valid.nonzero()[0]))


def subset_per_class(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    "The first `n` clips of every class in every fold (all when `n` is None): small but complete grids for smoke runs"
    if n is None: return df
    return df[df.groupby(['fold', 'label']).cumcount() < n].reset_index(drop=True)


def clip_info(ds: Dataset, files=None) -> pd.DataFrame:
    "Each clip's duration (s), sample rate, channels and frames from its header (soundfile: nothing is decoded)"
    rows, bad = [], []
    for f in (ds.meta().file if files is None else files):
        try: i = sf.info(str(ds.path(f)))
        except Exception as e:
            bad.append(f"{f} ({getattr(e, 'error_string', None) or type(e).__name__})")
            continue
        rows.append((f, i.frames / i.samplerate, i.samplerate, i.channels, i.frames))
    if bad: raise DatasetError(f"{len(bad)} clips of {ds.name} are not readable audio: {bad[:5]}")
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
             f"of {_range(sizes.min(), sizes.max())} clips"
             + (f" (made with k={gen['k']}, seed {gen['seed']})" if 'k' in gen else '')
             + f"; fingerprint {gen['fingerprint']}", class_balance(df)[0]]
    return '\n'.join(lines)


def parse_spec(spec=None, data=None) -> tuple[str, Path | None]:
    "The kind and path of a spec: None or KIND (path: `data`), KIND:PATH, or a bare PATH recognised by `KINDS`"
    kinds = ', '.join(KINDS)
    if spec is None or str(spec).lower() in KINDS: return ('esc50' if spec is None else str(spec).lower()), data
    spec = str(spec)
    head, sep, tail = spec.partition(':')
    if sep and head.lower() in KINDS:
        if data is not None: raise DatasetError(f"dataset {spec!r} names its path; do not give data={data!r} as well")
        if not tail: raise DatasetError(f"dataset {spec!r} names no path after '{head}:'")
        return head.lower(), Path(tail).expanduser()
    path = Path(spec).expanduser()
    if path.exists():
        if data is not None: raise DatasetError(f"dataset {spec!r} is a path; do not give data={data!r} as well")
        return claimed_by(path), path
    if sep and len(head) > 1: raise DatasetError(f"unknown dataset kind {head!r} in {spec!r}; kinds: {kinds}")
    raise DatasetError(f"dataset {spec!r} is neither a kind ({kinds}) nor an existing path")


def claimed_by(path: Path) -> str:
    "The kind a bare path is of: the one kind that recognises it, else the one `generic` kind that does; never two"
    for generic in (False, True):
        kinds = [k for k, cls in KINDS.items() if cls.generic == generic and cls.recognises(path)]
        if len(kinds) > 1: raise DatasetError(f"{path} is recognised by kinds {kinds}: name one, KIND:{path}")
        if kinds: return kinds[0]
    raise DatasetError(f"{path} is not a dataset: a folder or a .csv file is (kinds: {', '.join(KINDS)})")


def get_dataset(spec=None, data=None, columns=None, k_folds: int = 5, fold_seed: int = 0, full: bool = True) -> Dataset:
    """The dataset of a spec: None or `esc50` (ESC-50 at `data`, else $ESC50_PATH, else downloaded), `esc10` likewise,
    KIND:PATH, or a bare PATH (an ESC-50 or UrbanSound8K folder, a .csv file, a folder-per-class tree)"""
    kind, path = parse_spec(spec, data)
    cls = KINDS[kind]
    options = dict(columns=columns, k_folds=k_folds, fold_seed=fold_seed, full=full)
    if not full and 'full' not in cls.options:
        raise DatasetError(f"partial data (--partial-data, full=False) applies to esc50 and esc10 only; a {kind} "
                           "dataset is used as it is")
    unused = [k for k, v in options.items() if k not in cls.options and k != 'full' and v != _DEFAULTS[k]]
    if unused: raise DatasetError(f"{', '.join(unused)} do not apply to {kind} datasets"
                                  + (f" (their folds are fixed: {_span(cls.fixed_folds)})" if cls.fixed_folds else ''))
    if path is None and cls.needs_path:
        raise DatasetError(f"dataset kind {kind!r} needs a path: {kind}:PATH or data=PATH")
    return cls(path, **{k: options[k] for k in cls.options})
