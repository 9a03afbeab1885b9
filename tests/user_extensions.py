"""What a user writes in their own file to extend the library: a spectrogram normalization mode and a dataset kind.

Each is a class and one entry: `MODES['scaled'] = Scaled()`, `KINDS['labelsjson'] = LabelsJSON` (test_extend.py)."""
from __future__ import annotations
import json
from pathlib import Path

import pandas as pd
import torch

from esc50_norm import RunningStats
from esc50_norm.study.datasets import Collection, standard_frame


class Scaled:
    "AST's normalization: `(x - mean) / (k * std)` with one training mean/std (AST divides by 2 std: `k=2`)"
    keys, options, counted, need = ('mean', 'std'), dict(k=2.0), 'n_per_bin', 'std > 0'
    units = ('multiples of k standard deviations', 'offset from the training mean')
    def shape(self, n_freq='F') -> tuple: return (1, 1, 1, 1)
    def accumulator(self) -> RunningStats: return RunningStats((0, 1, 2, 3))
    def arrays(self, acc: RunningStats, eps: float, k: float = 2.0) -> dict:        # a scale under eps stored as 1
        std = acc.std()
        return dict(mean=acc.mean, std=torch.where(std < eps, torch.ones_like(std), std))
    def shift_scale(self, x, stats: dict, eps: float, k: float = 2.0) -> tuple: return stats['mean'], k * stats['std']


class LabelsJSON(Collection):
    "A folder of clips with a labels.json: {file: [label, fold]}"
    kind = 'labelsjson'
    def __init__(self, root): self.root, self.name = Path(root), Path(root).name
    @classmethod
    def recognises(cls, path: Path) -> bool: return (path / 'labels.json').is_file()
    @property
    def source(self) -> Path: return self.root / 'labels.json'

    def _read(self) -> pd.DataFrame:
        rows = [(f, label, fold) for f, (label, fold) in json.loads(self.source.read_text()).items()]
        return standard_frame(pd.DataFrame(rows, columns=['file', 'label', 'fold']), 'file', 'label', 'fold')


def make_labels_json(path, per_fold: int = 1, folds: int = 2) -> Path:
    "A labels.json folder of the fake collections' clips: 4 classes x `folds` folds x `per_fold` clips"
    from fake_collections import CLASSES, write_clip
    path, labels = Path(path), {}
    for fold in range(1, folds + 1):
        for c, cls in enumerate(CLASSES):
            for k in range(per_fold):
                f = f"clips/{cls}-{fold}-{k}.wav"
                write_clip(path / f, seconds=0.3, sr=16000, seed=100 * fold + 10 * c + k)
                labels[f] = [cls, fold]
    (path / 'labels.json').write_text(json.dumps(labels))
    return path
