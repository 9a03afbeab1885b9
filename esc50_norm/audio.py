"Audio tensors, file loading and the item transforms that bring any clip to one rate, one channel, one length"
from __future__ import annotations
from functools import lru_cache
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch
import torchaudio
from fastai.data.all import L, TensorBase, Transform, TransformBlock, get_files
from fastcore.imports import in_notebook

from .checks import check_positive
from .compat import old_names
from .formats import AUDIO_EXTENSIONS

__all__ = ['AudioLoadError', 'NonFiniteAudioError', 'AudioTensor', 'DownmixMono', 'Resample', 'AudioCropPad',
           'AudioBlock', 'audio_item_tfms', 'get_audio_files']


class AudioLoadError(ValueError):
    "An audio file that cannot be decoded, or holds no samples"


class NonFiniteAudioError(AudioLoadError):
    "An audio file (float WAV, say) whose samples are not all finite: NaN or inf"


class AudioTensor(TensorBase):
    "A waveform `[channels, samples]` (or a batch `[bs, channels, samples]`) that knows its sample rate `sr`"
    @classmethod
    def create(cls, fn: Path | str | AudioTensor, **kwargs) -> AudioTensor:
        "Read an audio file (`AUDIO_EXTENSIONS`) with soundfile (an `AudioTensor` passes through)"
        # the error names the file when it is unreadable, empty or not finite
        if isinstance(fn, AudioTensor): return fn
        fn = Path(fn)
        try: data, sr = sf.read(str(fn), dtype='float32', always_2d=True)
        except Exception as e:
            if not fn.exists(): raise AudioLoadError(f"audio file not found: {fn}") from e
            raise AudioLoadError(f"cannot read audio file {fn}: {e}") from e
        if data.shape[0] == 0: raise AudioLoadError(f"audio file {fn} holds no samples")
        if not (finite := np.isfinite(data)).all():
            raise NonFiniteAudioError(f"audio file {fn} holds {int((~finite).sum())} samples that are NaN or inf "
                                      f"(of {data.size})")
        return cls(torch.from_numpy(data.T.copy()), sr=sr, fn=str(fn))

    @property
    def nchannels(self) -> int: return self.shape[-2]
    @property
    def nsamples(self) -> int: return self.shape[-1]
    @property
    def duration(self) -> float: return self.nsamples / self.sr

    def show(self, ctx=None, title=None, figsize=(6, 2), hear: bool = True, **kwargs):
        "Plot the waveform of every channel against time in seconds, and play it under the plot in Jupyter (`hear`)"
        if ctx is None: _, ctx = plt.subplots(figsize=figsize)
        x = self.detach().cpu().float().reshape(-1, self.nsamples)
        t = torch.arange(self.nsamples) / getattr(self, 'sr', 1)
        for i, ch in enumerate(x): ctx.plot(t, ch, lw=0.5, alpha=0.8, label=f"ch {i}")
        ctx.set_xlabel('time (s)')
        ctx.set_xlim(0, float(t[-1]) if len(t) else 1)
        if title: ctx.set_title(title)
        if hear and in_notebook(): play(x, getattr(self, 'sr', 16000))
        return ctx


def play(x: torch.Tensor, sr: int, caption: str | None = None):
    "Display an audio player for the channels `x` (a silent clip is not scaled), after `caption` when given"
    from IPython.display import Audio, Markdown, display
    if caption: display(Markdown(caption))
    display(Audio(x.numpy(), rate=sr, normalize=bool(x.abs().max() > 0)))


def _retype(new, like: AudioTensor, **meta) -> AudioTensor:
    "Wrap `new` as an `AudioTensor` carrying `like`'s metadata, updated by `meta`"
    return AudioTensor(new, **{**getattr(like, '__dict__', {}), **meta})


class DownmixMono(Transform):
    "Mix all channels into one; `how='mean'` keeps the level, `how='sum'` matches ESC-50 v2's WAVs"
    order = 1
    def __init__(self, how: str = 'mean'):
        if how not in ('mean', 'sum'): raise ValueError(f"DownmixMono: how must be 'mean' or 'sum', got {how!r}")
        self.how = how
    def encodes(self, x: AudioTensor) -> AudioTensor:
        if x.nchannels == 1: return x
        mixed = x.mean(-2, keepdim=True) if self.how == 'mean' else x.sum(-2, keepdim=True)
        return _retype(mixed.as_subclass(torch.Tensor), x)


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    "One windowed-sinc kernel per rate pair, built once"
    return torchaudio.transforms.Resample(orig, new)


class Resample(Transform):
    "Resample to `sr` Hz with torchaudio's windowed-sinc filter (a no-op when the rate already matches)"
    order = 2
    def __init__(self, sr: int = 16000):
        check_positive('Resample', sr=sr)
        self.sr = int(sr)
    def encodes(self, x: AudioTensor) -> AudioTensor:
        if x.sr == self.sr: return x
        rs = _resampler(int(x.sr), self.sr).to(x.device)
        return _retype(rs(x.as_subclass(torch.Tensor)), x, sr=self.sr)


class AudioCropPad(Transform):
    "Crop the end off, or zero-pad the end, to exactly `duration` seconds"
    order = 3
    def __init__(self, duration: float = 5.0):
        check_positive('AudioCropPad', duration=duration)
        self.duration = duration
    def encodes(self, x: AudioTensor) -> AudioTensor:
        n = round(self.duration * x.sr)
        if x.nsamples == n: return x
        t = x.as_subclass(torch.Tensor)
        t = t[..., :n] if t.shape[-1] >= n else torch.nn.functional.pad(t, (0, n - t.shape[-1]))
        return _retype(t, x)


def audio_item_tfms(sr: int = 16000, mono: bool = True, duration: float | None = 5.0, downmix: str = 'mean') -> list:
    "The item transforms that bring a clip to `sr` Hz, one channel and `duration` seconds"
    return [*([DownmixMono(downmix)] if mono else []), Resample(sr), *([AudioCropPad(duration)] if duration is not None else [])]


def get_audio_files(path, recurse: bool = True, folders=None, extensions=AUDIO_EXTENSIONS) -> L:
    """The audio files in `path` (`AUDIO_EXTENSIONS`, any case), recursively by default, only in `folders` if given:
    fastai's `get_image_files` for audio"""
    if not Path(path).is_dir(): raise FileNotFoundError(f"get_audio_files: {path} is not a folder")
    return get_files(path, extensions=extensions, recurse=recurse, folders=folders)


def AudioBlock(sr: int = 16000, mono: bool = True, duration: float | None = 5.0,
               downmix: str = 'mean') -> TransformBlock:
    """A `TransformBlock` reading audio files into `AudioTensor`s of `sr` Hz, mono (channels mixed by `downmix`: 'mean'
    or 'sum') and `duration` seconds (cropped or zero-padded at the end; None keeps each clip's length, so that a
    batch needs clips of one length)"""
    return TransformBlock(type_tfms=AudioTensor.create, item_tfms=audio_item_tfms(sr, mono, duration, downmix))


__getattr__ = old_names(__name__)
"What models exported by earlier versions ask for under an old name (`esc50_norm.compat.RENAMED`)"
