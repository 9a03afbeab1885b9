"""Recipes sized by the data: enough spectrogram frames per clip, enough optimizer steps, a batch that fits the training
set.

The presets are fixed in absolute units tuned to ESC-50 (5-s clips, 1600 training clips). On another collection a
preset's hop, batch and epochs are adjusted so that a clip has at least `MIN_FRAMES` frames, an epoch at least
`MIN_BATCHES` batches and a run at least `MIN_STEPS` optimizer steps; fields set by hand (`Preset.given`) are kept.
"""
from __future__ import annotations
import math

import pandas as pd

from ..configs import SpectrogramConfig
from .datasets import subset_per_class

__all__ = ['MIN_FRAMES', 'MIN_STEPS', 'n_frames', 'hop_for', 'bs_for', 'epochs_for', 'train_clips', 'steps',
           'size_recipe', 'sizing_text']

TUNED_ON = ('esc50', 'esc10')
"Dataset kinds whose clips the presets were tuned on (ESC-50's): their recipes are used as they are, never sized"
MIN_FRAMES = 64
"A clip's spectrogram has at least this many frames (quick on ESC-50: 79)"
MIN_STEPS = 200
"A run trains at least this many optimizer steps (quick on ESC-50: 100; blog: 500)"
MIN_BATCHES = 4
"An epoch has at least this many batches (ESC-50 at bs 64: 25)"


def n_frames(spec: SpectrogramConfig, duration: float) -> int:
    "Spectrogram frames of a clip of `duration` s under `spec`: its `n_frames`"
    return spec.n_frames(round(spec.sample_rate * duration))


def hop_for(spec: SpectrogramConfig, duration: float, min_frames: int = MIN_FRAMES) -> int:
    "The spectrogram's hop (`SpectrogramConfig.hop`), halved until a clip of `duration` s has `min_frames` frames"
    hop = spec.hop
    while hop > 1 and n_frames(spec.update(hop_length=hop), duration) < min_frames: hop //= 2
    return hop


def bs_for(bs: int, n_train: int, min_batches: int = MIN_BATCHES) -> int:
    "The batch size, halved (down to 2) until `n_train` clips make at least `min_batches` full batches"
    while bs > 2 and n_train // bs < min_batches: bs //= 2
    return bs


def steps(n_train: int, bs: int, epochs: int) -> int:
    "Optimizer steps of a run: full batches (the last, incomplete one is dropped) times epochs"
    return n_train // bs * epochs


def epochs_for(epochs: int, n_train: int, bs: int, min_steps: int = MIN_STEPS) -> int:
    "At least `epochs`, and enough epochs of `n_train` clips at batch `bs` for `min_steps` optimizer steps"
    per_epoch = n_train // bs
    return epochs if per_epoch < 1 else max(epochs, math.ceil(min_steps / per_epoch))


def train_clips(meta: pd.DataFrame, folds, clips_per_class: int | None = None) -> int:
    "The smallest training set of the grid's validation `folds`: the clips (of the preset's subset) outside each"
    df = subset_per_class(meta, clips_per_class)
    return int(min(len(df) - int((df.fold == f).sum()) for f in folds))


def size_recipe(preset, ds) -> dict:
    """What `preset` (folds and duration decided) changes for dataset `ds`: field -> new value, and `sized`, the record
    of what was derived; {} for the kinds of `TUNED_ON`, or when nothing needs changing"""
    if ds.kind in TUNED_ON: return {}
    cfg, given = preset.spec, set(preset.given)
    n_train = train_clips(ds.meta(), preset.folds, preset.clips_per_class)
    hop = cfg.hop if 'spec' in given else hop_for(cfg, preset.duration)
    bs = preset.bs if 'bs' in given else bs_for(preset.bs, n_train)
    epochs = preset.epochs if 'epochs' in given else epochs_for(preset.epochs, n_train, bs)
    new = dict(hop_length=hop, bs=bs, epochs=epochs)
    old = dict(hop_length=cfg.hop, bs=preset.bs, epochs=preset.epochs)
    if new == old: return {}
    sized = {k: [old[k], v] for k, v in new.items() if v != old[k]}
    sized.update(frames=n_frames(cfg.update(hop_length=hop), preset.duration), steps=steps(n_train, bs, epochs),
                 train_clips=n_train, duration=preset.duration,
                 rules=dict(min_frames=MIN_FRAMES, min_batches=MIN_BATCHES, min_steps=MIN_STEPS))
    return dict(spec=cfg if hop == cfg.hop else cfg.update(hop_length=hop), bs=bs, epochs=epochs, sized=sized)


def sizing_text(name: str, sized: dict) -> str:
    "One line on what `size_recipe` derived"
    parts = []
    if 'hop_length' in sized: parts.append(f"hop {sized['hop_length'][0]} -> {sized['hop_length'][1]} "
                                           f"({sized['frames']} frames per {sized['duration']:.2f}-s clip; "
                                           f"at least {MIN_FRAMES})")
    if 'bs' in sized: parts.append(f"bs {sized['bs'][0]} -> {sized['bs'][1]} ({sized['train_clips']} training clips; "
                                   f"at least {MIN_BATCHES} batches an epoch)")
    if 'epochs' in sized: parts.append(f"epochs {sized['epochs'][0]} -> {sized['epochs'][1]} "
                                       f"({sized['steps']} optimizer steps; at least {MIN_STEPS})")
    return f"recipe sized for {name}: {'; '.join(parts)}. --epochs and --bs given by hand are kept as they are."
