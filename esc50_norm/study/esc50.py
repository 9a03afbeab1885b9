"ESC-50's own: where it lives (flag, environment variable or download), its metadata and full-data checks, ESC-10"
from __future__ import annotations
import os
from pathlib import Path

import pandas as pd

from . import tables
from .tables import int_folds, read_csv_checked, with_columns

__all__ = ['ESC50_URL', 'ENV_VAR', 'FOLDS', 'ESC50Error', 'esc50_path', 'download_esc50', 'read_meta', 'validate_meta',
           'read_esc10']

ESC50_URL = 'https://github.com/karolpiczak/ESC-50/archive/master.zip'
ENV_VAR = 'ESC50_PATH'
COLUMNS = ['filename', 'fold', 'target', 'category']
FOLDS = (1, 2, 3, 4, 5)


class ESC50Error(ValueError):
    "ESC-50 cannot be found, downloaded, or does not look like ESC-50"


def _is_esc50(p: Path) -> bool: return (p / 'meta' / 'esc50.csv').is_file() and (p / 'audio').is_dir()
def _csv(root) -> Path: return Path(root) / 'meta' / 'esc50.csv'


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
    if found is None:
        raise ESC50Error(f"the archive from {url} extracted to {root}, which holds no meta/esc50.csv + audio/")
    read_meta(found)
    return found


def validate_meta(df: pd.DataFrame, root=None, full: bool = True) -> pd.DataFrame:
    "Check the table of `root`/meta/esc50.csv: columns, folds and classes (`full`: 2000 rows, 50 classes of 40 clips)"
    csv = _csv(root) if root is not None else 'esc50.csv'
    df = with_columns(df, COLUMNS, csv, error=ESC50Error)
    df = df.assign(fold=int_folds(df.fold, csv, ESC50Error))
    bad_folds = sorted(set(df.fold) - set(FOLDS))
    if bad_folds: raise ESC50Error(f"{csv} has folds {bad_folds}; ESC-50 folds are 1-5")
    if df.groupby('target').category.nunique().max() > 1:
        raise ESC50Error(f"{csv} maps one target to several categories")
    if full:
        per_class = df.category.value_counts()
        if len(df) != 2000: raise ESC50Error(f"{csv} has {len(df)} rows, ESC-50 has 2000")
        if len(per_class) != 50: raise ESC50Error(f"{csv} has {len(per_class)} classes, ESC-50 has 50")
        odd = per_class[per_class != 40]
        if len(odd): raise ESC50Error(f"{csv}: classes without 40 clips: {odd.to_dict()}")
        if sorted(df.fold.unique()) != list(FOLDS):
            raise ESC50Error(f"{csv} has folds {sorted(map(int, df.fold.unique()))}, expected 1-5")
    return df


def _with_audio(df: pd.DataFrame, root) -> pd.DataFrame:
    "`df`, whose every `filename` must be a readable file under `root`/audio"
    tables.check_files(df.filename, _csv(root), Path(root) / 'audio', ESC50Error)
    return df


def read_meta(root, full: bool = True, check_files: bool = True) -> pd.DataFrame:
    "Read and validate `root`/meta/esc50.csv once: the native frame (filename, fold, target, category, esc10, ...)"
    # check_files=False: the caller checks them (a `Dataset`'s `meta()` does, for every kind)
    df = validate_meta(read_csv_checked(_csv(root), ESC50Error), root, full=full).reset_index(drop=True)
    return _with_audio(df, root) if check_files else df


def read_esc10(root, full: bool = True, check_files: bool = True) -> pd.DataFrame:
    "The ESC-10 rows of `root`/meta/esc50.csv (its `esc10` column), validated once; `full`: 400 clips, 10 classes of 40"
    csv = _csv(root)
    df = validate_meta(read_csv_checked(csv, ESC50Error), root, full=False)
    if 'esc10' not in df.columns: raise ESC50Error(f"{csv} has no esc10 column, which marks the ESC-10 clips")
    marked = df.esc10.astype(str).str.lower()
    odd = sorted(set(marked) - {'true', 'false'})
    if odd: raise ESC50Error(f"{csv}: the esc10 column holds {odd[:5]}, expected True/False")
    df = df[marked == 'true'].reset_index(drop=True)
    if not len(df): raise ESC50Error(f"{csv} marks no clip as ESC-10 (esc10 is False everywhere)")
    if full:
        per_class = df.category.value_counts()
        if len(df) != 400 or len(per_class) != 10 or (per_class != 40).any():
            raise ESC50Error(f"{csv}: ESC-10 has 400 clips, 10 classes of 40; these esc10 rows have {len(df)} clips, "
                             f"{len(per_class)} classes ({per_class.to_dict()})")
    return _with_audio(df, root) if check_files else df
