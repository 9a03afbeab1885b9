"Plain settings records, readable without torch: spectrograms, fastaudio's named presets, a recipe's augmentations"
from __future__ import annotations
import math
from dataclasses import asdict, dataclass, fields, replace

from .checks import check_positive
from .compat import later, recorded_dict
from .spelling import unknown_name

__all__ = ['SpectrogramConfig', 'AudioConfig', 'PCEN_SCALE', 'BAND_SCALES', 'Augment', 'Decoding']

BAND_SCALES = ('mel', 'linear')
"How a filterbank's bands can be spaced: on the mel scale (torchaudio's HTK mel), or linearly in Hz (`linear_fbanks`)"

PCEN_SCALE = float(2 ** 31)
"librosa's scaling of audio magnitudes in [-1, 1] for PCEN (`librosa.pcen(S * 2**31)`): PCEN's defaults assume it"


@dataclass(frozen=True)
class Decoding:
    "How a clip becomes the model's waveform: resampled to `sr` Hz, downmixed to mono, cropped or padded to `duration`"
    sr: int = 16000
    duration: float = 5.0
    downmix: str = 'mean'                      # how channels become one: 'mean' or 'sum' (`DownmixMono`)
    def as_dict(self) -> dict: return asdict(self)


@dataclass(frozen=True)
class SpectrogramConfig:
    "Every setting that decides a spectrogram: STFT, optional filterbank (mel or linear bands), a scale, optional dB"
    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int | None = None
    hop_length: int | None = 200
    power: float = 2.0
    center: bool = True
    normalized: bool = False
    mel: bool = False                          # a filterbank of `n_mels` triangular bands over f_min..f_max
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    to_db: bool = True
    top_db: float | None = None
    scale: float = later(1.0)                  # the spectrogram (magnitude or power) times it, before any dB step
    band_scale: str = later('mel')             # how the filterbank's bands are spaced: 'mel' or 'linear' (in Hz)

    def __post_init__(self):
        if not self.scale > 0: raise ValueError(f"SpectrogramConfig.scale must be positive, got {self.scale!r}")
        lengths = dict(n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length,
                       n_mels=self.n_mels if self.mel else None)
        check_positive('SpectrogramConfig', whole=True, sample_rate=self.sample_rate,
                       **{k: v for k, v in lengths.items() if v is not None})
        check_positive('SpectrogramConfig', power=self.power)
        if (self.win_length or 0) > self.n_fft:
            raise ValueError(f"SpectrogramConfig: win_length={self.win_length} is longer than n_fft={self.n_fft}")
        if self.mel and self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"SpectrogramConfig: n_mels={self.n_mels} bands over the {self.n_fft // 2 + 1} frequency "
                             f"bins of n_fft={self.n_fft} leave bands empty: fewer bands or a longer n_fft")
        if self.band_scale not in BAND_SCALES:
            raise ValueError(unknown_name('SpectrogramConfig.band_scale', self.band_scale, BAND_SCALES))
        if self.band_scale != 'mel' and not self.mel:
            raise ValueError(f"band_scale={self.band_scale!r} spaces a filterbank's bands, but this spectrogram has "
                             "no filterbank: set mel=True (n_mels bands)")
    def update(self, **kwargs) -> SpectrogramConfig: return replace(self, **_known_fields(kwargs))
    def settings(self) -> dict:
        """What decides the values of its spectrograms, as plain JSON values: every setting resolved (hop, window, top
        frequency), those without effect left out (the filterbank's without one, `top_db` without dB)"""
        d = {**asdict(self), 'hop_length': self.hop, 'win_length': self.win_length or self.n_fft,
             'f_max': self.sample_rate / 2 if self.f_max is None else self.f_max}
        for k in (() if self.mel else ('n_mels', 'f_min', 'f_max', 'band_scale')) + (() if self.to_db else ('top_db',)):
            del d[k]
        return {k: _plain(v) for k, v in d.items()}
    def as_dict(self) -> dict:
        "The settings as a dict; `scale` (a later field) only when it is not 1, so that older recipe hashes still match"
        return recorded_dict(self)
    def for_pcen(self) -> SpectrogramConfig:
        "The same STFT and filterbank stopping where PCEN takes over: magnitudes (power 1) times `PCEN_SCALE`, no dB"
        if not self.mel:
            raise ValueError("PCEN normalizes filterbank energies: this spectrogram has no filterbank (mel=False)")
        return self.update(power=1.0, to_db=False, top_db=None, scale=PCEN_SCALE)
    @property
    def hop(self) -> int:
        "The hop length in samples (torchaudio's default when `hop_length` is None)"
        return self.hop_length or (self.win_length or self.n_fft) // 2
    @property
    def n_freq(self) -> int: return self.n_mels if self.mel else self.n_fft // 2 + 1
    @property
    def freq_label(self) -> str:
        "What one row of the spectrogram is: 'mel band', 'linear band' or 'frequency bin' (of the STFT)"
        return f"{self.band_scale} band" if self.mel else 'frequency bin'
    def n_frames(self, n_samples: int) -> int:
        "Number of STFT frames for a clip of `n_samples`"
        return n_samples // self.hop + 1 if self.center else (n_samples - self.n_fft) // self.hop + 1


def _plain(v):
    "A setting as JSON writes it: a numpy number as Python's, a non-finite float as its repr ('inf')"
    v = v.item() if hasattr(v, 'item') else v
    return repr(v) if isinstance(v, float) and not math.isfinite(v) else v


def _known_fields(kwargs: dict) -> dict:
    "`kwargs`, each a field of `SpectrogramConfig`; another name is a TypeError naming the closest (`sr`: `sample_rate`)"
    known = [f.name for f in fields(SpectrogramConfig)]
    if unknown := [k for k in kwargs if k not in known]:
        alias = " (an AudioBlock's sr is a spectrogram's sample_rate)" if 'sr' in unknown else ''
        raise TypeError(unknown_name('SpectrogramConfig field', unknown, known) + alias)
    return kwargs


class AudioConfig:
    "Named spectrogram presets, as fastaudio users know them; keyword arguments override any field"
    @staticmethod
    def BasicSpectrogram(**kwargs) -> SpectrogramConfig:
        "16 kHz, n_fft=400, hop=200, power 2, dB: `[1, 201, 401]` for a 5 s clip"
        return SpectrogramConfig(**_known_fields(kwargs))
    @staticmethod
    def BasicMelSpectrogram(**kwargs) -> SpectrogramConfig:
        "16 kHz, n_fft=1024, hop=256, 128 mel bins, power 2, dB"
        return SpectrogramConfig(**{**dict(n_fft=1024, hop_length=256, mel=True, n_mels=128), **_known_fields(kwargs)})
    @staticmethod
    def LinearBandSpectrogram(**kwargs) -> SpectrogramConfig:
        "BasicMelSpectrogram with its 128 bands spaced linearly over 0 Hz..sr/2 instead of on the mel scale"
        return AudioConfig.BasicMelSpectrogram(**{**dict(band_scale='linear'), **kwargs})
    @staticmethod
    def PCENMelSpectrogram(**kwargs) -> SpectrogramConfig:
        "The input `PCEN` expects: 16 kHz, n_fft=1024, hop=256, 128 mel bins, magnitudes (power 1) times 2**31, no dB"
        return AudioConfig.BasicMelSpectrogram().for_pcen().update(**kwargs)


@dataclass(frozen=True)
class Augment:
    "A recipe's augmentations: time shift of the waveform, masks on the normalized spectrogram (0: off)"
    # `augment_tfms` builds them
    shift: float = 0.0
    freq_mask: float = 0.0
    time_mask: float = 0.0
    masks: int = 1

    def as_dict(self) -> dict: return asdict(self)
