"""Labelled audio collections behind one protocol: ESC-50, ESC-10, UrbanSound8K, any CSV, any folder-per-class tree.

`get_dataset(dataset)` turns a command line's `--dataset` into a `Dataset`: its validated metadata in standard
columns (`file`, `label`, `fold`), its folds and classes, its clip duration when it fixes one, and a fingerprint of its
contents.
A new kind is a class (a `Collection` with `_read`; a `MadeFolds` when its clips have no folds) and one entry in
`KINDS`, from any module: then `--dataset KIND:PATH` and `get_dataset` know it.

Its modules, each importing only those before it: `base` (the standard frame, the protocol, the error), `checks`
(clips checked before any work), `folds` (made, split, subset), `collection` (what the kinds share), one module per
kind (`esc`, `urbansound`, `csvfile`, `folders`), `clips` (their durations), `registry` (`KINDS`, `get_dataset`).
"""
from .base import Dataset, DatasetError, standard_frame
from .checks import check_folds, check_meta, check_training, class_balance
from .folds import fold_split, stratified_folds, subset_per_class
from .collection import Collection, MadeFolds
from .esc import ESC10, ESC50
from .urbansound import UrbanSound8K
from .csvfile import CSVDataset
from .folders import ClassFolders
from .clips import clip_duration, clip_info, cropping, summary
from .registry import KINDS, get_dataset

__all__ = ['Dataset', 'DatasetError', 'Collection', 'MadeFolds', 'ESC50', 'ESC10', 'UrbanSound8K', 'CSVDataset',
           'ClassFolders', 'KINDS', 'get_dataset', 'standard_frame', 'check_meta', 'stratified_folds', 'class_balance',
           'check_training', 'check_folds', 'fold_split', 'subset_per_class', 'clip_info', 'clip_duration', 'summary',
           'cropping']
