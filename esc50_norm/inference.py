"Predict with an exported learner: load it, and rank the classes of audio files"
from __future__ import annotations
import warnings
from pathlib import Path

import pandas as pd
import torch
import fastai.callback.progress  # noqa: F401  (`Learner.no_bar`)
from fastai.learner import Learner, load_learner

from .audio import AudioCropPad, AudioLoadError, AudioTensor
from .checks import check_positive

__all__ = ['ModelLoadError', 'PredictionError', 'load_exported', 'predict_files', 'top_k_table', 'training_duration']


class ModelLoadError(ValueError):
    "A model file that is missing, unreadable, or not an exported fastai `Learner`"


class PredictionError(ValueError):
    "A prediction that is not a probability: the model gives NaN or inf for a file"


def load_exported(path, cpu: bool = True) -> Learner:
    "`load_learner` with an error naming a missing, unreadable or foreign file"
    # `load_learner`, not fastai's `load_model`, which loads weights
    path = Path(path)
    if path.is_dir(): raise ModelLoadError(f"model file {path} is a folder, not a file written by Learner.export")
    if not path.is_file(): raise ModelLoadError(f"model file {path} does not exist")
    try: learn = load_learner(path, cpu=cpu)
    except Exception as e:
        held = _held(path)                  # fastai fails on a foreign object before it could be named: name it here
        if held is not None and not isinstance(held, Learner): raise _foreign(path, held) from e
        raise ModelLoadError(f"cannot load model file {path} (is it a file written by Learner.export?): {e}") from e
    if not isinstance(learn, Learner): raise _foreign(path, learn)
    return learn


def _held(path: Path):
    "What a torch file holds, or None when it cannot be read as one"
    try: return torch.load(path, map_location='cpu', weights_only=False)
    except Exception: return None


def _foreign(path: Path, obj) -> ModelLoadError:
    return ModelLoadError(f"model file {path} holds a {type(obj).__name__}, not a fastai Learner written by Learner.export")


def top_k_table(probs: torch.Tensor, vocab, items, top_k: int = 5) -> pd.DataFrame:
    "One row per item and rank: file, rank (1 = most likely), class, probability"
    p, i = probs.float().topk(min(top_k, probs.shape[-1]), dim=-1)
    return pd.DataFrame([{'file': str(f), 'rank': r + 1, 'class': vocab[int(c)], 'probability': float(q)}
                         for f, ps, cs in zip(items, p, i) for r, (q, c) in enumerate(zip(ps, cs))])


def training_duration(learn: Learner) -> float | None:
    "The duration in seconds the learner's item transforms crop or pad a clip to (its `AudioCropPad`), if any"
    fs = getattr(getattr(learn.dls.valid, 'after_item', None), 'fs', [])
    return next((t.duration for t in fs if isinstance(t, AudioCropPad)), None)


def _check_clip(fn, x: AudioTensor, duration: float | None):
    "Warn, naming `fn`, about a silent clip or one far shorter or longer than the training clips"
    if not x.as_subclass(torch.Tensor).any():
        warnings.warn(f"audio file {fn} is silent (all samples are zero): its prediction means little")
    if duration and x.duration < duration / 2:
        warnings.warn(f"audio file {fn} lasts {x.duration:.2f} s, under half the {duration:g} s of the training clips: "
                      f"it is zero-padded to {duration:g} s")
    if duration and x.duration > duration * 2:
        warnings.warn(f"audio file {fn} lasts {x.duration:.2f} s, over twice the {duration:g} s of the training clips: "
                      f"the model hears its first {duration:g} s")


def predict_files(learn: Learner, files, top_k: int = 5, bs: int = 16) -> pd.DataFrame:
    "The `top_k` classes of each audio file (any rate and channels) through the learner's validation transforms"
    # warns about silent files and files far shorter or longer than the training clips (cropped to their start)
    check_positive('predict_files', whole=True, top_k=top_k, bs=bs)
    files = [Path(files)] if isinstance(files, (str, Path)) else [Path(f) for f in files]     # one file, or several
    if folders := [str(f) for f in files if f.is_dir()]:
        raise AudioLoadError(f"a folder, not an audio file: {', '.join(folders)} (give the files in it)")
    if missing := [str(f) for f in files if not f.is_file()]:
        raise AudioLoadError(f"audio file not found: {', '.join(missing)}")
    duration, probs = training_duration(learn), []
    for i in range(0, len(files), bs):              # a batch of files at a time: errors and warnings name them
        clips = [AudioTensor.create(f) for f in files[i:i + bs]]
        for f, x in zip(files[i:i + bs], clips): _check_clip(f, x, duration)
        with learn.no_bar(): probs.append(learn.get_preds(dl=learn.dls.test_dl(clips, bs=bs, num_workers=0))[0])
    probs = torch.cat(probs) if probs else torch.zeros(0, len(learn.dls.vocab))
    if bad := [str(f) for f, ok in zip(files, torch.isfinite(probs).all(-1)) if not ok]:
        raise PredictionError(f"the model gives NaN or inf probabilities for {', '.join(bad)}")
    return top_k_table(probs, learn.dls.vocab, files, top_k)
