"Spectrograms: the batch transform that computes them, the tensor type that shows them, and how fastai shows them"
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
import torchaudio
import fastai.interpret  # noqa: F401 (its untyped plot_top_losses first: plum ranks Any as any type, takes the later)
from fastai.data.all import TensorCategory, TensorImageBase, Transform
from fastai.vision.data import get_grid
from fastcore.imports import in_notebook
from plum import dispatch

from .audio import AudioTensor, play
from .configs import AudioConfig, SpectrogramConfig

__all__ = ['AudioSpectrogram', 'AudioToSpec', 'LinearBands', 'show_batch', 'show_results', 'plot_top_losses']


class AudioSpectrogram(TensorImageBase):
    "A (batch of) spectrogram(s) `[channels, freq, time]` shown with a colorbar in dB, or in what its values measure"
    def show(self, ctx=None, title=None, figsize=(5, 3), colorbar=True, **kwargs):
        "Show the first channel as an image, low frequencies at the bottom"
        if ctx is None: _, ctx = plt.subplots(figsize=figsize)
        im = self.detach().cpu().float().as_subclass(torch.Tensor)
        while im.ndim > 2: im = im[0]
        img = ctx.imshow(im.numpy(), origin='lower', aspect='auto', cmap=kwargs.pop('cmap', 'magma'), **kwargs)
        if colorbar:
            unit = getattr(self, 'normalized', False)           # False, or what normalized values measure ('PCEN', ...)
            cb = ctx.figure.colorbar(img, ax=ctx,
                                     format='%+.0f dB' if getattr(self, 'to_db', True) and not unit else None)
            if unit: cb.set_label(unit if isinstance(unit, str) else 'standard deviations')
        ctx.set_xlabel('frame')
        label = getattr(self, 'freq_label', None)              # older pickles: `mel` alone
        ctx.set_ylabel(label or ('mel band' if getattr(self, 'mel', False) else 'frequency bin'))
        if title is not None: ctx.set_title(str(title))
        return ctx


@dispatch
def show_batch(x: AudioSpectrogram, y, samples, ctxs=None, max_n=9, nrows=None, ncols=None, figsize=None, **kwargs):
    "Show spectrograms in a grid, titled by their labels"
    if ctxs is None: ctxs = get_grid(min(len(samples), max_n), nrows=nrows, ncols=ncols, figsize=figsize)
    ctxs = [s[0].show(ctx=c, title=s[1] if len(s) > 1 else None, **kwargs)
            for s, c, _ in zip(samples, ctxs, range(max_n))]
    ctxs[0].figure.tight_layout()
    return ctxs


@dispatch
def show_results(x: AudioSpectrogram, y, samples, outs, ctxs=None, max_n=9, nrows=None, ncols=None, figsize=None,
                 **kwargs):
    "Show spectrograms in one grid, titled by label over prediction: green where they agree, red where not, as images"
    if ctxs is None: ctxs = get_grid(min(len(samples), max_n), nrows=nrows, ncols=ncols, figsize=figsize)
    # without labels (a test_dl), the prediction alone
    ctxs = [s[0].show(ctx=c, title=f"{s[1]}\n{o[0]}" if len(s) > 1 else str(o[0]), **kwargs)
            for s, o, c, _ in zip(samples, outs, ctxs, range(max_n))]
    for c, s, o in zip(ctxs, samples, outs):
        if len(s) > 1: c.title.set_color('green' if str(s[1]) == str(o[0]) else 'red')
    ctxs[0].figure.tight_layout()
    return ctxs


@dispatch
def plot_top_losses(x: AudioSpectrogram, y: TensorCategory, samples, outs, raws, losses, nrows=None, ncols=None,
                    figsize=None, hear: bool = True, **kwargs):
    "Show each spectrogram titled by label, prediction, loss and probability; in a notebook, play the clips (`hear`)"
    title = 'label / prediction / loss / probability'
    axs = get_grid(len(samples), nrows=nrows, ncols=ncols, figsize=figsize, title=title)
    for ax, s, o, r, l in zip(axs, samples, outs, raws, losses):
        s[0].show(ctx=ax, title=f"{s[1]} / {o[0]} / {l.item():.2f} / {r.max().item():.2f}", **kwargs)
    axs[0].figure.tight_layout()
    clips = getattr(x, 'clips', None)                  # the waveforms behind the batch, when one batch holds them all
    if hear and in_notebook() and clips is not None and len(clips) == len(samples):
        for s, o, clip in zip(samples, outs, clips): play(clip.detach().cpu().float(), x.sr, f"{s[1]} / {o[0]}")
    return axs


class _Scale(torch.nn.Module):
    "Multiply by a constant factor (`SpectrogramConfig.scale`)"
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x): return x * self.factor
    def extra_repr(self): return f"factor={self.factor}"


class LinearBands(torch.nn.Module):
    "A filterbank of `n_bands` triangular bands spaced linearly over f_min..f_max (`torchaudio`'s `linear_fbanks`)"
    # the linear counterpart of torchaudio's `MelScale`: [..., n_stft, frames] -> [..., n_bands, frames]
    def __init__(self, n_bands: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None,
                 n_stft: int = 201):
        super().__init__()
        f_max = float(f_max if f_max is not None else sample_rate // 2)
        self.register_buffer('fb', torchaudio.functional.linear_fbanks(n_stft, f_min, f_max, n_bands, sample_rate))

    def forward(self, spec): return (spec.transpose(-1, -2) @ self.fb).transpose(-1, -2)
    def extra_repr(self): return f"n_stft={self.fb.shape[0]}, n_bands={self.fb.shape[1]}"


def _filterbank_spectrogram(c: SpectrogramConfig, stft: dict) -> torch.nn.Module:
    "torchaudio's STFT, then the filterbank of `c` if it has one (mel or linear bands)"
    if not c.mel: return torchaudio.transforms.Spectrogram(**stft)
    if c.band_scale == 'mel':
        return torchaudio.transforms.MelSpectrogram(c.sample_rate, f_min=c.f_min, f_max=c.f_max, n_mels=c.n_mels,
                                                    **stft)
    return torch.nn.Sequential(torchaudio.transforms.Spectrogram(**stft),
                               LinearBands(c.n_mels, c.sample_rate, c.f_min, c.f_max, n_stft=c.n_fft // 2 + 1))


class AudioToSpec(Transform):
    "Batch transform: `AudioTensor` -> `AudioSpectrogram` with torchaudio, on whatever device the batch is on"
    order = 10
    def __init__(self, cfg: SpectrogramConfig | None = None, **kwargs):
        "`cfg`: the settings (default `AudioConfig.BasicSpectrogram()`), with any of its fields overridden by `kwargs`"
        self.cfg = (cfg or AudioConfig.BasicSpectrogram()).update(**kwargs)
        c = self.cfg
        stft = dict(n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length, power=c.power,
                    center=c.center, normalized=c.normalized)
        spec = _filterbank_spectrogram(c, stft)
        scale = [_Scale(c.scale)] if c.scale != 1 else []
        db = ([torchaudio.transforms.AmplitudeToDB('power' if c.power == 2 else 'magnitude', top_db=c.top_db)]
              if c.to_db else [])
        self.pipe = torch.nn.Sequential(spec, *scale, *db)

    @property
    def settings(self) -> dict:
        "`cfg.settings()`, the mark each of its spectrograms carries: computed once, not per batch"
        if '_settings' not in self.__dict__: self._settings = self.cfg.settings()      # models exported before it
        return self._settings

    def encodes(self, x: AudioTensor) -> AudioSpectrogram:
        sr = getattr(x, 'sr', None)
        if sr is not None and sr != self.cfg.sample_rate:
            raise ValueError(f"AudioToSpec expects {self.cfg.sample_rate} Hz audio, got {sr} Hz: give its config "
                             f"sample_rate={sr} (the AudioBlock's sr), or resample the audio to {self.cfg.sample_rate} Hz")
        self.pipe.to(x.device)
        with torch.autocast(x.device.type, enabled=False):
            s = self.pipe(x.as_subclass(torch.Tensor).float())
        meta = dict(sr=self.cfg.sample_rate, mel=self.cfg.mel, freq_label=self.cfg.freq_label, to_db=self.cfg.to_db,
                    hop_length=self.cfg.hop, config=self.settings)
        return AudioSpectrogram(s, **meta, clips=x.as_subclass(torch.Tensor) if x.ndim == 3 else None)
