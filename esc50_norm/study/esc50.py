"The ESC-50 dataset: where it lives (flag, environment variable or download), its validated metadata, its folds"
from __future__ import annotations
import os
from pathlib import Path

import pandas as pd

__all__ = ['ESC50_URL', 'ENV_VAR', 'ALL_FOLDS', 'FOLDS', 'ESC50Error', 'esc50_path', 'download_esc50', 'read_meta', 'validate_meta',
           'fold_split', 'subset_per_class']

ESC50_URL = 'https://github.com/karolpiczak/ESC-50/archive/master.zip'
ENV_VAR = 'ESC50_PATH'
COLUMNS = ['filename', 'fold', 'target', 'category']
FOLDS = (1, 2, 3, 4, 5)


class ESC50Error(ValueError):
    "ESC-50 cannot be found, downloaded, or does not look like ESC-50"


def _is_esc50(p: Path) -> bool: return (p / 'meta' / 'esc50.csv').is_file() and (p / 'audio').is_dir()


def esc50_path(path=None, download: bool = True) -> Path:
    "The ESC-50 root: `path`, else `$ESC50_PATH`, else the downloaded copy (fetched when `download`)"
    for src, p in (('given path', path), (f'${ENV_VAR}', os.environ.get(ENV_VAR))):
        if not p: continue
        p = Path(p).expanduser()
        if not _is_esc50(p): raise ESC50Error(f"{src} {p} is not an ESC-50 folder: it needs meta/esc50.csv and audio/")
        return p
    if not download: raise ESC50Error(f"no ESC-50 path given: pass --data PATH or set {ENV_VAR}")
    return download_esc50()


def download_esc50(base='~/.fastdownload', url: str = ESC50_URL) -> Path:
    "Download and extract the official ESC-50 zip with fastdownload, then check what was extracted"
    from fastdownload import FastDownload
    try: root = Path(FastDownload(base=base).get(url))
    except Exception as e:
        raise ESC50Error(f"could not download ESC-50 from {url} ({type(e).__name__}: {e}). Offline? "
                         f"Point --data or ${ENV_VAR} at a local copy (meta/esc50.csv + audio/).") from e
    found = root if _is_esc50(root) else next((p for p in root.iterdir() if p.is_dir() and _is_esc50(p)), None)
    if found is None: raise ESC50Error(f"the archive from {url} extracted to {root}, which holds no meta/esc50.csv + audio/")
    validate_meta(pd.read_csv(found / 'meta' / 'esc50.csv'), found)
    return found


def validate_meta(df: pd.DataFrame, root=None, full: bool = True) -> pd.DataFrame:
    "Check the columns, folds and classes (`full`: 2000 rows, 50 classes of 40 clips); every file must exist under `root`/audio"
    missing_cols = [c for c in COLUMNS if c not in df.columns]
    if missing_cols: raise ESC50Error(f"esc50.csv lacks columns {missing_cols}")
    bad_folds = sorted(set(df.fold) - set(FOLDS))
    if bad_folds: raise ESC50Error(f"esc50.csv has folds {bad_folds}; ESC-50 folds are 1-5")
    if df.groupby('target').category.nunique().max() > 1: raise ESC50Error("esc50.csv maps one target to several categories")
    if full:
        per_class = df.category.value_counts()
        if len(df) != 2000: raise ESC50Error(f"esc50.csv has {len(df)} rows, ESC-50 has 2000")
        if len(per_class) != 50: raise ESC50Error(f"esc50.csv has {len(per_class)} classes, ESC-50 has 50")
        odd = per_class[per_class != 40]
        if len(odd): raise ESC50Error(f"classes without 40 clips: {odd.to_dict()}")
        if sorted(df.fold.unique()) != list(FOLDS): raise ESC50Error(f"esc50.csv has folds {sorted(df.fold.unique())}, expected 1-5")
    if root is not None:
        absent = [f for f in df.filename if not (Path(root) / 'audio' / f).is_file()]
        if absent: raise ESC50Error(f"{len(absent)} clips listed in esc50.csv are missing from {Path(root) / 'audio'}: {absent[:5]}")
    return df


def read_meta(root, full: bool = True) -> pd.DataFrame:
    "Read and validate `root`/meta/esc50.csv"
    root = Path(root)
    try: df = pd.read_csv(root / 'meta' / 'esc50.csv')
    except FileNotFoundError: raise ESC50Error(f"{root / 'meta' / 'esc50.csv'} does not exist") from None
    return validate_meta(df, root, full=full).reset_index(drop=True)


ALL_FOLDS = 0
"`valid_fold=ALL_FOLDS`: no validation fold, every clip trains (a model to deploy)"


def fold_split(df: pd.DataFrame, valid_fold: int):
    "Indices of the training rows (the other folds) and of the validation rows (`valid_fold`; `ALL_FOLDS`: none)"
    folds = sorted(df.fold.unique())
    if valid_fold == ALL_FOLDS: return list(range(len(df))), []
    if valid_fold not in folds: raise ESC50Error(f"fold {valid_fold!r} does not exist; this data has folds {folds}")
    is_valid = (df.fold == valid_fold).to_numpy()
    return list(map(int, (~is_valid).nonzero()[0])), list(map(int, is_valid.nonzero()[0]))


def subset_per_class(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    "The first `n` clips of every class in every fold (all when `n` is None): small but complete grids for smoke runs"
    if n is None: return df
    return df[df.groupby(['fold', 'target']).cumcount() < n].reset_index(drop=True)
