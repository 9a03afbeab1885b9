"A self-contained demo: generated ESC-50-shaped clips -> DataBlock -> stats -> show_batch PNG"
from __future__ import annotations
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import soundfile as sf

__all__ = ['make_fake_esc50', 'demo']

CLASSES = ('low_hum', 'whistle', 'chirp', 'noise_burst')


def _clip(kind: str, sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    f = rng.uniform(0.9, 1.1)
    if kind == 'low_hum': x = np.sin(2 * np.pi * 120 * f * t) + 0.5 * np.sin(2 * np.pi * 240 * f * t)
    elif kind == 'whistle': x = np.sin(2 * np.pi * 2500 * f * t)
    elif kind == 'chirp': x = np.sin(2 * np.pi * (300 + 1500 * t / seconds) * f * t)
    else: x = rng.standard_normal(len(t)) * (t % 0.5 < 0.1)
    return (0.3 * x + 0.01 * rng.standard_normal(len(t))).astype('float32')


def make_fake_esc50(path, classes=CLASSES, clips_per_fold: int = 2, sr: int = 22050, seconds=(3.0, 6.0),
                    seed: int = 0) -> Path:
    "Write an ESC-50-shaped folder (meta/esc50.csv + audio/*.wav) of synthetic clips of varying length and channels"
    path, rng = Path(path), np.random.default_rng(seed)
    (path / 'audio').mkdir(parents=True, exist_ok=True)
    (path / 'meta').mkdir(exist_ok=True)
    rows = []
    for fold in range(1, 6):
        for target, kind in enumerate(classes):
            for k in range(clips_per_fold):
                fn = f"{fold}-{target}{k:02d}-A-{target}.wav"
                x = _clip(kind, sr, rng.uniform(*seconds), rng)
                if (fold + k) % 3 == 0: x = np.stack([x, 0.5 * x], 1)
                sf.write(path / 'audio' / fn, x, sr)
                rows.append(dict(filename=fn, fold=fold, target=target, category=kind, esc10=False,
                                 src_file=f"{target}{k:02d}", take='A'))
    pd.DataFrame(rows).to_csv(path / 'meta' / 'esc50.csv', index=False)
    return path


def demo(out='demo'):
    "Build a DataBlock over generated clips, learn channel stats from the training folds; save them, a show_batch PNG"
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ..normalize import find_spec_normalize
    from ..configs import AudioConfig
    from .esc50 import read_meta
    from .pipelines import fold_dataloaders
    out = Path(out)
    root = make_fake_esc50(out / 'fake_esc50')
    df = read_meta(root, full=False).rename(columns=dict(filename='file', category='label'))
    dls = fold_dataloaders(df, valid_fold=1, normalization='channel', spec_cfg=AudioConfig.BasicSpectrogram(),
                           bs=8, pipeline='files', audio_root=root / 'audio', device='cpu')
    norm = find_spec_normalize(dls.train)
    print(f"{len(dls.train.dataset)} training clips (folds 2-5), {len(dls.valid.dataset)} validation clips (fold 1)")
    print(f"pipeline: {dls.train.after_batch}")
    print(f"{norm}: per-bin mean {norm.mean.min():.1f}..{norm.mean.max():.1f} dB, "
          f"std {norm.std.min():.1f}..{norm.std.max():.1f} dB")
    x, _ = dls.one_batch()
    print(f"a normalized training batch {tuple(x.shape)}: mean {x.mean().item():.3f}, std {x.std().item():.3f}")
    print(f"stats saved to {norm.save(out / 'stats.json')}")
    dls.show_batch(max_n=6, figsize=(12, 6))
    plt.savefig(out / 'show_batch.png', dpi=80)
    plt.close('all')
    print(f"show_batch saved to {out / 'show_batch.png'}")
    return dls
