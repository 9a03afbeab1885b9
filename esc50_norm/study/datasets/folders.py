"A folder-per-class tree as a dataset kind"
from __future__ import annotations
import warnings
from pathlib import Path

import pandas as pd

from ...formats import AUDIO_EXTENSIONS
from .base import DatasetError
from .collection import MadeFolds

__all__ = ['ClassFolders']


class ClassFolders(MadeFolds):
    "A folder-per-class tree, `root/<class>/<clip>`, with seeded, stratified k folds"
    # clips: AUDIO_EXTENSIONS, in nested folders too
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
