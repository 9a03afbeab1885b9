"The normalizations the study compares, by name: each is waveform normalization or not, then a spectrogram normalization or none"
from __future__ import annotations
from dataclasses import dataclass

__all__ = ['Normalization', 'NORMALIZATIONS', 'get_normalization', 'norm_tfms']


@dataclass(frozen=True)
class Normalization:
    "One normalization of the study: per-clip waveform normalization or not, then a `SpecNormalize` mode or none"
    wave: bool
    spec: str | None = None
    mean_only: bool = False

    def tfms(self, spec_cfg=None, frac: float = 1.0) -> list:
        "The batch transforms: [AudioNormalize] -> AudioToSpec -> [SpecNormalize]"
        from ..normalize import AudioNormalize, SpecNormalize
        from ..spectrogram import AudioToSpec
        return [*([AudioNormalize()] if self.wave else []), AudioToSpec(spec_cfg),
                *([SpecNormalize(self.spec, frac=frac, mean_only=self.mean_only)] if self.spec else [])]


NORMALIZATIONS = {
    'none':             Normalization(wave=False),
    'wave':             Normalization(wave=True),
    'global':           Normalization(wave=True,  spec='global'),
    'channel':          Normalization(wave=True,  spec='channel'),
    'global_nowave':    Normalization(wave=False, spec='global'),
    'channel_nowave':   Normalization(wave=False, spec='channel'),
    'global_meanonly':  Normalization(wave=True,  spec='global', mean_only=True),
    'channel_meanonly': Normalization(wave=True,  spec='channel', mean_only=True),
    'minmax':           Normalization(wave=True,  spec='minmax'),
    'minmax_nowave':    Normalization(wave=False, spec='minmax'),
    'instance':         Normalization(wave=True,  spec='instance'),
    'instance_global':  Normalization(wave=True,  spec='instance_global'),
}
"Every normalization the study knows, by name; a new one is one entry here"


def get_normalization(name: str) -> Normalization:
    "The normalization called `name`; the error lists the known ones"
    try: return NORMALIZATIONS[name]
    except KeyError: raise ValueError(f"unknown normalization {name!r}; known: {list(NORMALIZATIONS)}") from None


def norm_tfms(normalization: str, spec_cfg=None, frac: float = 1.0, augment=None) -> list:
    "The batch transforms of `normalization`, with the training-only augmentations of `augment` around them"
    tfms = get_normalization(normalization).tfms(spec_cfg, frac)
    return tfms if augment is None else [*augment.wave_tfms(), *tfms, *augment.spec_tfms()]
