"Metadata tables checked before any work: a readable CSV, the columns it needs, integer folds, the files it lists"
from __future__ import annotations
import os
from pathlib import Path

import pandas as pd

from ..spelling import plural

__all__ = ['read_csv_checked', 'with_columns', 'int_folds', 'check_files']


def read_csv_checked(path, error: type = ValueError) -> pd.DataFrame:
    "Read a metadata CSV; a missing, empty, binary or row-less file is an `error` that names it"
    path = Path(path)
    if not path.is_file(): raise error(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try: df = pd.read_csv(path)
    except pd.errors.EmptyDataError: raise error(f"{path} is empty: a CSV with a header row is needed") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise error(f"{path} is not a readable CSV ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not len(df): raise error(f"{path} has no rows (columns: {list(df.columns)})")
    return df


def with_columns(df: pd.DataFrame, needed, source, hint: str = '', error: type = ValueError) -> pd.DataFrame:
    "`df`, which must have the columns `needed`; the error names `source`, the missing columns and those it has"
    missing = [c for c in needed if c not in df.columns]
    if missing: raise error(f"{source} lacks columns {missing} (it has {list(df.columns)[:12]}){hint}")
    return df


def int_folds(folds: pd.Series, source, error: type = ValueError) -> pd.Series:
    "The fold column as integers; the error names `source` and the values that are not integers (as written)"
    num = pd.to_numeric(folds, errors='coerce')
    bad = folds[num.isna() | (num % 1 != 0)]
    if len(bad): raise error(f"{source}: the fold of {plural(len(bad), 'row')} is not an integer: "
                             f"{list(dict.fromkeys(bad.astype(str)))[:5]}")
    return num.astype(int)


def check_files(files, source, audio_root, error: type = ValueError):
    "Every file under `audio_root` present, a regular file and readable; the errors give the count and the first few"
    missing, unreadable, audio_root = [], [], Path(audio_root)
    for f in files:
        p = audio_root / f
        try: p.stat()
        except FileNotFoundError:
            missing.append(f)
            continue
        except OSError as e:
            unreadable.append(f"{f} ({type(e).__name__})")
            continue
        if not p.is_file(): unreadable.append(f"{f} (not a file)")
        elif not os.access(p, os.R_OK): unreadable.append(f"{f} (no read permission)")
    if missing:
        raise error(f"{len(missing)} of {len(files)} clips listed in {source} are missing from {audio_root}: "
                    f"{missing[:5]}")
    if unreadable:
        raise error(f"{len(unreadable)} clips listed in {source} cannot be read under {audio_root}: {unreadable[:5]}")
