"Spectrogram settings, the batch transform that computes them, and the tensor type that shows them"
from __future__ import annotations
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import torch
import torchaudio
from fastai.data.all import TensorImageBase, Transform
from fastai.vision.data import get_grid
from plum import dispatch

from .audio import AudioTensor
from .compat import later, recorded_dict

__all__ = ['AudioSpectrogram', 'SpectrogramConfig', 'AudioConfig', 'AudioToSpec', 'show_batch']


class AudioSpectrogram(TensorImageBase):
    "A (batch of) spectrogram(s) `[channels, freq, time]` that shows itself with a colorbar in dB, or in what its values measure"
    def show(self, ctx=None, title=None, figsize=(5, 3), colorbar=True, **kwargs):
        "Show the first channel as an image, low frequencies at the bottom"
        if ctx is None: _, ctx = plt.subplots(figsize=figsize)
        im = self.detach().cpu().float()
        while im.ndim > 2: im = im[0]
        img = ctx.imshow(im, origin='lower', aspect='auto', cmap=kwargs.pop('cmap', 'magma'), **kwargs)
        if colorbar:
            unit = getattr(self, 'normalized', False)           # False, or what normalized values measure ('PCEN', ...)
            cb = ctx.figure.colorbar(img, ax=ctx, format='%+.0f dB' if getattr(self, 'to_db', True) and not unit else None)
            if unit: cb.set_label(unit if isinstance(unit, str) else 'standard deviations')
        ctx.set_xlabel('frame'); ctx.set_ylabel('mel bin' if getattr(self, 'mel', False) else 'frequency bin')
        if title is not None: ctx.set_title(str(title))
        return ctx


@dispatch
def show_batch(x: AudioSpectrogram, y, samples, ctxs=None, max_n=9, nrows=None, ncols=None, figsize=None, **kwargs):
    "Show spectrograms in a grid, titled by their labels"
    if ctxs is None: ctxs = get_grid(min(len(samples), max_n), nrows=nrows, ncols=ncols, figsize=figsize)
    ctxs = [s[0].show(ctx=c, title=s[1] if len(s) > 1 else None, **kwargs) for s, c, _ in zip(samples, ctxs, range(max_n))]
    ctxs[0].figure.tight_layout()
    return ctxs


@dataclass(frozen=True)
class SpectrogramConfig:
    "Every setting that decides a spectrogram: STFT, optional mel filterbank, a scale factor, optional dB scale"
    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int | None = None
    hop_length: int | None = 200
    power: float = 2.0
    center: bool = True
    normalized: bool = False
    mel: bool = False
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    to_db: bool = True
    top_db: float | None = None
    scale: float = later(1.0)                  # the spectrogram (magnitude or power) is multiplied by it before any dB step

    def __post_init__(self):
        if not self.scale > 0: raise ValueError(f"SpectrogramConfig.scale must be positive, got {self.scale!r}")
    def update(self, **kwargs) -> SpectrogramConfig: return replace(self, **kwargs)
    def as_dict(self) -> dict:
        "The settings as a dict; `scale` (a later field) only when it is not 1, so that older recipe hashes still match"
        return recorded_dict(self)
    @property
    def hop(self) -> int:
        "The hop length in samples (torchaudio's default when `hop_length` is None)"
        return self.hop_length or (self.win_length or self.n_fft) // 2
    @property
    def n_freq(self) -> int: return self.n_mels if self.mel else self.n_fft // 2 + 1
    def n_frames(self, n_samples: int) -> int:
        "Number of STFT frames for a clip of `n_samples`"
        return n_samples // self.hop + 1 if self.center else (n_samples - self.n_fft) // self.hop + 1


class AudioConfig:
    "Named spectrogram presets, as fastaudio users know them; keyword arguments override any field"
    @staticmethod
    def BasicSpectrogram(**kwargs) -> SpectrogramConfig:
        "16 kHz, n_fft=400, hop=200, power 2, dB: `[1, 201, 401]` for a 5 s clip"
        return SpectrogramConfig(**kwargs)
    @staticmethod
    def BasicMelSpectrogram(**kwargs) -> SpectrogramConfig:
        "16 kHz, n_fft=1024, hop=256, 128 mel bins, power 2, dB"
        return SpectrogramConfig(**{**dict(n_fft=1024, hop_length=256, mel=True, n_mels=128), **kwargs})
    @staticmethod
    def PCENMelSpectrogram(**kwargs) -> SpectrogramConfig:
        "The input `PCEN` expects: 16 kHz, n_fft=1024, hop=256, 128 mel bins, magnitudes (power 1) times 2**31, no dB"
        return AudioConfig.BasicMelSpectrogram(**{**dict(power=1.0, to_db=False, scale=float(2 ** 31)), **kwargs})


class _Scale(torch.nn.Module):
    "Multiply by a constant factor (`SpectrogramConfig.scale`)"
    def __init__(self, factor: float): super().__init__(); self.factor = factor
    def forward(self, x): return x * self.factor
    def extra_repr(self): return f"factor={self.factor}"


class AudioToSpec(Transform):
    "Batch transform: `AudioTensor` -> `AudioSpectrogram` with torchaudio, on whatever device the batch is on"
    order = 10
    def __init__(self, cfg: SpectrogramConfig | None = None, **kwargs):
        self.cfg = (cfg or AudioConfig.BasicSpectrogram()).update(**kwargs)
        c = self.cfg
        stft = dict(n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length, power=c.power,
                    center=c.center, normalized=c.normalized)
        spec = (torchaudio.transforms.MelSpectrogram(c.sample_rate, f_min=c.f_min, f_max=c.f_max, n_mels=c.n_mels, **stft)
                if c.mel else torchaudio.transforms.Spectrogram(**stft))
        scale = [_Scale(c.scale)] if c.scale != 1 else []
        db = [torchaudio.transforms.AmplitudeToDB('power' if c.power == 2 else 'magnitude', top_db=c.top_db)] if c.to_db else []
        self.pipe = torch.nn.Sequential(spec, *scale, *db)

    def encodes(self, x: AudioTensor) -> AudioSpectrogram:
        sr = getattr(x, 'sr', None)
        if sr is not None and sr != self.cfg.sample_rate:
            raise ValueError(f"AudioToSpec expects {self.cfg.sample_rate} Hz audio, got {sr} Hz: resample first")
        self.pipe.to(x.device)
        with torch.autocast(x.device.type, enabled=False):
            s = self.pipe(x.as_subclass(torch.Tensor).float())
        return AudioSpectrogram(s, sr=self.cfg.sample_rate, mel=self.cfg.mel, to_db=self.cfg.to_db, hop_length=self.cfg.hop)
