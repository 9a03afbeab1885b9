"Every kind by name (`KINDS`), and `get_dataset`: the dataset a `--dataset` argument names"
from __future__ import annotations
from pathlib import Path

from ...spelling import did_you_mean
from .base import Dataset, DatasetError, folds_text
from .collection import FOLD_DEFAULTS
from .csvfile import CSVDataset
from .esc import ESC10, ESC50
from .folders import ClassFolders
from .urbansound import UrbanSound8K

__all__ = ['KINDS', 'get_dataset']

KINDS = {'esc50': ESC50, 'esc10': ESC10, 'urbansound8k': UrbanSound8K, 'csv': CSVDataset, 'folders': ClassFolders}
"""Every kind of dataset by name; a new kind is one entry here. A bare path is claimed by the one kind that recognises
it (a `generic` kind only when no other does)"""
_DEFAULTS = dict(columns=None, **FOLD_DEFAULTS, full=True)


def kind_and_path(dataset=None, data=None) -> tuple[str, Path | None]:
    "The kind and path `--dataset` names: None or KIND (path: `data`), KIND:PATH, or a bare PATH recognised by `KINDS`"
    kinds = ', '.join(KINDS)
    if dataset is None or str(dataset).lower() in KINDS:
        return ('esc50' if dataset is None else str(dataset).lower()), data
    dataset = str(dataset)
    head, sep, tail = dataset.partition(':')
    if sep and head.lower() in KINDS:
        if data is not None:
            raise DatasetError(f"dataset {dataset!r} names its path; do not give data={data!r} as well")
        if not tail: raise DatasetError(f"dataset {dataset!r} names no path after '{head}:'")
        return head.lower(), Path(tail).expanduser()
    path = Path(dataset).expanduser()
    if path.exists():
        if data is not None: raise DatasetError(f"dataset {dataset!r} is a path; do not give data={data!r} as well")
        return claimed_by(path), path
    if sep and len(head) > 1:
        raise DatasetError(f"unknown dataset kind {head!r} in {dataset!r}{did_you_mean(head.lower(), KINDS)}; "
                           f"kinds: {kinds}")
    raise DatasetError(f"dataset {dataset!r} is neither a kind ({kinds}) nor an existing path")


def claimed_by(path: Path) -> str:
    "The kind a bare path is of: the one kind that recognises it, else the one `generic` kind that does; never two"
    for generic in (False, True):
        kinds = [k for k, cls in KINDS.items() if cls.generic == generic and cls.recognises(path)]
        if len(kinds) > 1: raise DatasetError(f"{path} is recognised by kinds {kinds}: name one, KIND:{path}")
        if kinds: return kinds[0]
    raise DatasetError(f"{path} is not a dataset: a folder or a .csv file is (kinds: {', '.join(KINDS)})")


def get_dataset(dataset=None, data=None, columns=None, k_folds: int = 5, fold_seed: int = 0,
                full: bool = True) -> Dataset:
    """The dataset `--dataset` names: None or `esc50` (ESC-50 at `data`, else $ESC50_PATH, else downloaded), `esc10`
    likewise, KIND:PATH, or a bare PATH (an ESC-50 or UrbanSound8K folder, a .csv file, a folder-per-class tree)"""
    kind, path = kind_and_path(dataset, data)
    cls = KINDS[kind]
    options = dict(columns=columns, k_folds=k_folds, fold_seed=fold_seed, full=full)
    if not full and 'full' not in cls.options:
        raise DatasetError(f"partial data (--partial-data, full=False) applies to esc50 and esc10 only; a {kind} "
                           "dataset is used as it is")
    unused = [k for k, v in options.items() if k not in cls.options and k != 'full' and v != _DEFAULTS[k]]
    if unused: raise DatasetError(f"{', '.join(unused)} do not apply to {kind} datasets"
                                  + (f" (their folds are fixed: {folds_text(cls.fixed_folds)})" if cls.fixed_folds else ''))
    if path is None and cls.needs_path:
        raise DatasetError(f"dataset kind {kind!r} needs a path: {kind}:PATH or data=PATH")
    return cls(path, **{k: options[k] for k in cls.options})
