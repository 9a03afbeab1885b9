"Training-only batch augmentations on the device: random time shift of the waveform, SpecAugment-style masks"
from __future__ import annotations

import torch
import torchaudio.functional as AF
from fastai.data.all import Transform

from .audio import AudioTensor
from .checks import check_positive
from .configs import Augment
from .spectrogram import AudioSpectrogram

__all__ = ['RandomTimeShift', 'SpecMask', 'augment_tfms']


class RandomTimeShift(Transform):
    "Roll each clip of a training batch circularly in time by a random amount, up to `max_frac` of its length"
    split_idx, order = 0, 4
    def __init__(self, max_frac: float = 1.0):
        if not 0 < max_frac <= 1: raise ValueError(f"RandomTimeShift: max_frac must be in (0, 1], got {max_frac}")
        self.max_frac = max_frac

    def encodes(self, x: AudioTensor) -> AudioTensor:
        t = x.as_subclass(torch.Tensor)
        n = t.shape[-1]
        shift = torch.randint(0, max(1, int(self.max_frac * n)), t.shape[:-1] + (1,), device=t.device)
        idx = (torch.arange(n, device=t.device) - shift) % n
        return AudioTensor(t.gather(-1, idx), **x.__dict__)


class SpecMask(Transform):
    "Mask `n` random frequency bands and time spans per clip (up to `freq`/`time` of the axis) with the clip's mean"
    split_idx, order = 0, 100
    def __init__(self, freq: float = 0.2, time: float = 0.2, n: int = 1):
        for name, v in (('freq', freq), ('time', time)):
            if not 0 <= v < 1: raise ValueError(f"SpecMask: {name} must be a fraction in [0, 1), got {v}")
        check_positive('SpecMask', whole=True, n=n)
        self.freq, self.time, self.n = freq, time, n

    def encodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        t = x.as_subclass(torch.Tensor)
        batch = t if t.ndim == 4 else t[None]
        fill = batch.mean(dim=(-2, -1), keepdim=True)
        masked = batch
        for axis, frac in ((2, self.freq), (3, self.time)):
            width = int(frac * batch.shape[axis])
            for _ in range(self.n if width else 0): masked = AF.mask_along_axis_iid(masked, width, float('nan'), axis)
        masked = torch.where(masked.isnan(), fill, masked)
        return AudioSpectrogram(masked if t.ndim == 4 else masked[0], **x.__dict__)


def augment_tfms(aug: Augment | None) -> tuple[list, list]:
    "The transforms of a recipe's augmentations: (on the waveform, on the normalized spectrogram); 0 switches one off"
    if aug is None: return [], []
    return ([RandomTimeShift(aug.shift)] if aug.shift else [],
            [SpecMask(aug.freq_mask, aug.time_mask, aug.masks)] if aug.freq_mask or aug.time_mask else [])
