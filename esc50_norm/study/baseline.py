"""A classical baseline beside every study: logistic regression on per-clip MFCC statistics, on the same folds and
clips.

It says what accuracy the data allows without deep learning, so that a deep model far below it points at its recipe
(too few steps or frames, cropped clips) rather than at the data. Computed once per results folder (`baseline.json`).
"""
from __future__ import annotations
import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ['compute_baseline', 'read_baseline', 'ensure_baseline', 'baseline_text']

FEATURES = dict(n_mfcc=20, n_mels=64, n_fft=1024, hop_length=256, stats=['mean', 'std', 'delta mean', 'delta std'])
"Per clip: 20 MFCCs (64 mel bins, n_fft 1024, hop 256) over the frames of its own length: mean, std, of their deltas"
CLASSIFIER = 'StandardScaler + LogisticRegression(C=1, max_iter=2000) (scikit-learn)'
VERSION = 2
"2: MFCCs in float64, where float32's CPU-dependent rounding moved single clips' predictions (1: float32)"
FILE = 'baseline.json'


def clip_features(x, sr: int, lengths=None, chunk: int = 64) -> np.ndarray:
    """`FEATURES` of clips `x` `[n, 1, samples]` at `sr` Hz; `lengths`: each clip's samples before padding (None: all).
    In float64, so that the CPU's FFT and matrix kernels do not decide a clip's prediction"""
    import torch, torchaudio
    f = FEATURES
    mfcc = torchaudio.transforms.MFCC(sr, n_mfcc=f['n_mfcc'], log_mels=True,
                                      melkwargs=dict(n_fft=f['n_fft'], hop_length=f['hop_length'], n_mels=f['n_mels']))
    mfcc = mfcc.double()
    n = x.shape[-1]
    lengths = np.full(len(x), n) if lengths is None else np.minimum(np.asarray(lengths), n)
    rows = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            m = mfcc(x[i:i + chunk, 0].double().cpu()).numpy()                      # [b, n_mfcc, frames]
            for k, c in enumerate(m):
                c = c[:, :max(2, 1 + int(lengths[i + k]) // f['hop_length'])]     # the clip's frames, not padding
                d = np.diff(c, axis=1)
                rows.append(np.concatenate([c.mean(1), c.std(1), d.mean(1), d.std(1)]))
    return np.stack(rows)


def fold_accuracies(X: np.ndarray, labels, folds, valid_folds) -> dict:
    "Accuracy on each of `valid_folds` of `CLASSIFIER` trained on the clips of the other folds"
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    labels, folds, out = np.asarray(labels), np.asarray(folds), {}
    for f in valid_folds:
        train, valid = folds != f, folds == f
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(X[train], labels[train])
        out[int(f)] = float((clf.predict(X[valid]) == labels[valid]).mean())
    return out


def baseline_key(preset, ds) -> dict:
    "What decides the baseline: the data (fingerprint), the clips (rate, crop length, downmix, subset), the features"
    return dict(version=VERSION, dataset=ds.fingerprint(), sr=preset.sr, duration=preset.duration,
                downmix=preset.downmix, clips_per_class=preset.clips_per_class, features=FEATURES)


def compute_baseline(cache, df: pd.DataFrame, folds) -> dict:
    "The baseline on the clips of `cache` in the rows of `df` (file, label, fold), per validation fold of `folds`"
    pos = cache.index(list(df.file)).numpy()
    lengths = None
    if cache.info is not None and len(cache.info) == len(cache):
        lengths = (cache.info.duration.to_numpy()[pos] * cache.sr).round().astype(int)
    X = clip_features(cache.x[pos], cache.sr, lengths)
    per_fold = fold_accuracies(X, df.label.to_numpy(), df.fold.to_numpy(), folds)
    return dict(features=FEATURES, classifier=CLASSIFIER, per_fold={str(k): v for k, v in per_fold.items()},
                mean=float(np.mean(list(per_fold.values()))), chance=float(1 / df.label.nunique()), clips=len(df))


def read_baseline(out) -> dict | None:
    "The baseline of results folder `out` (baseline.json), or None when it has none or it cannot be read"
    f = Path(out) / FILE
    try: d = json.loads(f.read_text())
    except (OSError, ValueError): return None
    return d if isinstance(d, dict) and isinstance(d.get('per_fold'), dict) else None


def made_by() -> dict:
    "The machine and software that computed a baseline: a run's environment and provenance, scikit-learn and numpy"
    import sklearn
    from .runs import environment, provenance
    return dict(**environment(), sklearn=sklearn.__version__, numpy=np.__version__, **provenance())


def ensure_baseline(study, log=print) -> dict:
    "The baseline of a study on every fold of its dataset: read from its folder when its key matches, else computed"
    import time
    from ..atomic import write_atomic
    from .train import load_study_data
    key, old = baseline_key(study.preset, study.dataset), read_baseline(study.out)
    if old is not None and old.get('key') == key: return old
    t0 = time.perf_counter()
    data = load_study_data(study.preset, study.dataset, study.cache_dir, 'cpu', progress=True, log=log)
    b = compute_baseline(data.cache, data.df, study.dataset.folds)
    b.update(key=key, seconds=round(time.perf_counter() - t0, 1), made_by=made_by())
    Path(study.out).mkdir(parents=True, exist_ok=True)
    write_atomic(Path(study.out) / FILE, json.dumps(b, indent=1))
    if log: log(baseline_text(b, study.preset.folds))
    return b


def baseline_text(b: dict, folds=None) -> str:
    "One line: the baseline's mean over `folds` (None: all it has) and per fold"
    per = {int(k): v for k, v in b['per_fold'].items() if folds is None or int(k) in set(folds)}
    return (f"classical baseline (MFCC statistics + logistic regression): {np.mean(list(per.values())):.4f} on folds "
            f"{list(per)} ({', '.join(f'fold {k} {v:.3f}' for k, v in per.items())}); chance {b['chance']:.3f}")
