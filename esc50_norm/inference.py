"Predict with an exported learner: load it, and rank the classes of audio files"
from __future__ import annotations
from pathlib import Path

import pandas as pd
import torch
import fastai.callback.progress  # noqa: F401  (`Learner.no_bar`)
from fastai.learner import Learner, load_learner

from .audio import AudioLoadError

__all__ = ['ModelLoadError', 'load_exported', 'predict_files', 'top_k_table']


class ModelLoadError(ValueError):
    "A model file that is missing, unreadable, or not an exported fastai `Learner`"


def load_exported(path, cpu: bool = True) -> Learner:
    "`load_learner` (not fastai's `load_model`, which loads weights), with an error naming a missing, unreadable or foreign file"
    path = Path(path)
    if not path.is_file(): raise ModelLoadError(f"model file {path} does not exist")
    try: learn = load_learner(path, cpu=cpu)
    except Exception as e: raise ModelLoadError(f"cannot load model file {path} (is it a file written by Learner.export?): {e}") from e
    if not isinstance(learn, Learner):
        raise ModelLoadError(f"model file {path} holds a {type(learn).__name__}, not a fastai Learner written by Learner.export")
    return learn


def top_k_table(probs: torch.Tensor, vocab, items, top_k: int = 5) -> pd.DataFrame:
    "One row per item and rank: file, rank (1 = most likely), class, probability"
    p, i = probs.float().topk(min(top_k, probs.shape[-1]), dim=-1)
    return pd.DataFrame([{'file': str(f), 'rank': r + 1, 'class': vocab[int(c)], 'probability': float(q)}
                         for f, ps, cs in zip(items, p, i) for r, (q, c) in enumerate(zip(ps, cs))])


def predict_files(learn: Learner, files, top_k: int = 5, bs: int = 16) -> pd.DataFrame:
    "The `top_k` classes of each audio file (any rate, channels, length) through the learner's own transforms"
    files = [Path(f) for f in files]
    if missing := [str(f) for f in files if not f.is_file()]: raise AudioLoadError(f"audio file not found: {', '.join(missing)}")
    dl = learn.dls.test_dl(files, bs=bs, num_workers=0)
    with learn.no_bar(): probs, _ = learn.get_preds(dl=dl)
    return top_k_table(probs, learn.dls.vocab, files, top_k)
