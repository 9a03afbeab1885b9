"""The normalizations the study compares, by name. Each is one `Normalization`, a plain record read through three
methods: `spec_cfg(cfg)` (the spectrogram it needs: log, or mel magnitudes for PCEN), `tfms(cfg)` (the batch
transforms of the pipeline) and `frontend(cfg)` (a module before the model, learned with it, or None). `resolve` turns
a name and a recipe's settings into an `Arm`, once: all that the pipeline, the model and the result row need. A new one
is one entry in `NORMALIZATIONS`; a new kind of front end is one entry in `FRONTENDS`, which says what it takes."""
from __future__ import annotations
from dataclasses import dataclass
from typing import Callable

from ..configs import AudioConfig, SpectrogramConfig
from ..spelling import unknown_name

__all__ = ['FrontEnd', 'Normalization', 'NORMALIZATIONS', 'FRONTENDS', 'get_normalization', 'Arm', 'resolve',
           'norm_tfms', 'pcen_module']

def _pcen_learning(*learn: str, **start) -> Callable:
    """A builder of `LearnedPCEN` that learns the parameters named (none: frozen), from librosa's values or those
    `start` gives (`LearnedPCEN`'s `gain`, `bias`, `power`, `time_constant`)"""
    def build(n_freq: int, cfg):
        from ..pcen import LearnedPCEN
        return LearnedPCEN(n_freq, sr=cfg.sample_rate, hop_length=cfg.hop, learn=learn, **start)
    return build


def _bn_freq(n_freq: int, cfg):
    from ..frontend import FreqBatchNorm
    return FreqBatchNorm(n_freq)


def _pcen_frozen_bn(n_freq: int, cfg):
    "librosa's PCEN, frozen, then `FreqBatchNorm` over its bands: frozen PCEN's output normalized per band"
    from torch import nn
    return nn.Sequential(_pcen_learning()(n_freq, cfg), _bn_freq(n_freq, cfg))


def pcen_module(front):
    "The PCEN of a front end: itself, or its first module that is a `LearnedPCEN` (frozen or not); else None"
    from ..pcen import LearnedPCEN
    return None if front is None else next((m for m in front.modules() if isinstance(m, LearnedPCEN)), None)


@dataclass(frozen=True)
class FrontEnd:
    "A model-side front end: `build(n_freq, spectrogram config) -> nn.Module`, and whether it takes magnitudes, not dB"
    build: Callable
    magnitudes: bool = False         # filterbank magnitudes scaled as librosa's (PCEN) in place of the dB spectrogram


FRONTENDS = {'pcen_learned': FrontEnd(_pcen_learning('alpha', 'delta', 'root', 'smooth_coef'), magnitudes=True),
             'pcen_frozen': FrontEnd(_pcen_learning(), magnitudes=True),
             'pcen_learn_smooth': FrontEnd(_pcen_learning('smooth_coef'), magnitudes=True),
             'pcen_learn_compress': FrontEnd(_pcen_learning('alpha', 'delta', 'root'), magnitudes=True),
             'pcen_learn_bias_root': FrontEnd(_pcen_learning('delta', 'root'), magnitudes=True),
             'pcen_learn_gain': FrontEnd(_pcen_learning('alpha'), magnitudes=True),
             'pcen_gain094': FrontEnd(_pcen_learning(gain=0.94), magnitudes=True),
             'pcen_frozen_bn': FrontEnd(_pcen_frozen_bn, magnitudes=True),
             'bn_freq': FrontEnd(_bn_freq)}
"Model-side front ends by name, before the network, trained with it (or frozen)"


@dataclass(frozen=True)
class Normalization:
    "One normalization: per-clip waveform normalization or not; then a `SpecNormalize` mode, fixed PCEN, or a front end"
    wave: bool
    mode: str | None = None          # a `SpecNormalize` mode on the log spectrogram
    mean_only: bool = False          # subtract the mode's mean without dividing
    pcen: bool = False               # fixed PCEN (`librosa.pcen`) on mel magnitudes, in place of the dB step
    front: str | None = None         # a front end of `FRONTENDS` before the model
    compared_with: tuple = ()        # what a report contrasts it with besides its baseline (PCEN, front ends, instance)

    @property
    def magnitudes(self) -> bool:
        "Whether it works on filterbank magnitudes (PCEN, fixed or learned) instead of dB"
        return self.pcen or (self.front is not None and FRONTENDS[self.front].magnitudes)

    @property
    def spec_norm(self) -> str:
        "What normalizes the spectrogram: a SpecNormalize mode, 'pcen', a front end or 'none' (run files' `spec_norm`)"
        return self.mode or ('pcen' if self.pcen else self.front) or 'none'

    def spec_cfg(self, cfg):
        "The spectrogram this normalization needs from the recipe's `cfg`: for PCEN, mel magnitudes scaled as librosa's"
        return cfg.for_pcen() if self.magnitudes else cfg

    def tfms(self, cfg, frac: float = 1.0) -> list:
        "The batch transforms: [AudioNormalize] -> AudioToSpec -> [SpecNormalize | PCEN]"
        from ..normalize import AudioNormalize, SpecNormalize
        from ..pcen import PCEN
        from ..spectrogram import AudioToSpec
        cfg = self.spec_cfg(cfg)
        return [*([AudioNormalize()] if self.wave else []), AudioToSpec(cfg),
                *([SpecNormalize(self.mode, frac=frac, mean_only=self.mean_only)] if self.mode else []),
                *([PCEN(sr=cfg.sample_rate, hop_length=cfg.hop)] if self.pcen else [])]

    def frontend(self, cfg):
        "The module to put before the model (trained with it, exported inside it), or None"
        if self.front is None: return None
        cfg = self.spec_cfg(cfg)
        return FRONTENDS[self.front].build(cfg.n_freq, cfg)


NORMALIZATIONS = {
    'none':             Normalization(wave=False),
    'wave':             Normalization(wave=True),
    'global':           Normalization(wave=True,  mode='global'),
    'channel':          Normalization(wave=True,  mode='channel'),
    'global_nowave':    Normalization(wave=False, mode='global'),
    'channel_nowave':   Normalization(wave=False, mode='channel'),
    'global_meanonly':  Normalization(wave=True,  mode='global', mean_only=True),
    'channel_meanonly': Normalization(wave=True,  mode='channel', mean_only=True),
    'minmax':           Normalization(wave=True,  mode='minmax'),
    'minmax_nowave':    Normalization(wave=False, mode='minmax'),
    # per clip and bin, against per clip over all values: what removing each clip's spectral envelope does
    'instance':         Normalization(wave=True,  mode='instance', compared_with=('instance_global',)),
    'instance_global':  Normalization(wave=True,  mode='instance_global'),
    # PCEN assumes audio in [-1, 1] (its scaling and bias do): no waveform normalization before it.
    # Lostanlen et al. 2019, librosa's defaults, as a batch transform (before any augmentation of the spectrogram)
    'pcen':             Normalization(wave=False, pcen=True, compared_with=('global',)),
    # LEAF: per-channel PCEN at the model input, learned in training (after the augmentation)
    'pcen_learned':     Normalization(wave=False, front='pcen_learned',
                                      compared_with=('global', 'pcen', 'pcen_frozen')),
    # that module frozen at its start, librosa's PCEN: pcen_learned - pcen_frozen is what learning alone gives
    'pcen_frozen':      Normalization(wave=False, front='pcen_frozen', compared_with=('global', 'pcen')),
    # learned PCEN in parts: the smoother alone (per-channel smooth_coef), or all that follows it (alpha, delta, root);
    # against the module frozen, what learning each part gives, and against learning all, what the other part adds
    'pcen_learn_smooth':   Normalization(wave=False, front='pcen_learn_smooth',
                                         compared_with=('pcen_frozen', 'pcen_learned')),
    'pcen_learn_compress': Normalization(wave=False, front='pcen_learn_compress',
                                         compared_with=('pcen_frozen', 'pcen_learned')),
    # the compression curve alone (bias and root, per channel; the gain exponent alpha fixed): against the module
    # frozen, what learning the curve gives, and against gain, bias and root learned, what learning the gain adds
    'pcen_learn_bias_root': Normalization(wave=False, front='pcen_learn_bias_root',
                                          compared_with=('pcen_frozen', 'pcen_learn_compress')),
    # the gain exponent alone (alpha, per channel; bias, root and smoother fixed): against the module frozen, what
    # learning the gain gives, and against gain, bias and root learned, what learning bias and root adds
    'pcen_learn_gain':  Normalization(wave=False, front='pcen_learn_gain',
                                      compared_with=('pcen_frozen', 'pcen_learn_compress')),
    # frozen PCEN with a lower gain exponent in every band (0.94, about the mean pcen_learn_gain ended with; librosa's
    # 0.98): against the module frozen, what the lower exponent gives, and against it learned, what learning adds
    'pcen_gain094':     Normalization(wave=False, front='pcen_gain094',
                                      compared_with=('pcen_frozen', 'pcen_learn_gain')),
    # frozen PCEN's output normalized per band by input BatchNorm: does normalizing its scale and range give what
    # learning gain, bias and root gives?
    'pcen_frozen_bn':   Normalization(wave=False, front='pcen_frozen_bn',
                                      compared_with=('pcen_frozen', 'pcen_learn_compress')),
    # PANNs' bn0: BatchNorm over mel bins at input
    'bn_freq':          Normalization(wave=True,  front='bn_freq', compared_with=('global',)),
}
"Every normalization the study knows, by name; a new one is one entry here"


def get_normalization(name: str) -> Normalization:
    "The normalization called `name`; the error lists the known ones"
    try: return NORMALIZATIONS[name]
    except KeyError:
        raise ValueError(unknown_name('normalization', name, NORMALIZATIONS)) from None


@dataclass(frozen=True)
class Arm:
    "One normalization resolved for a recipe: the spectrogram it works on, the pipeline's batch transforms, its front end"
    name: str
    normalization: Normalization
    spec: SpectrogramConfig          # the spectrogram it works on (mel magnitudes for PCEN)
    tfms: list                       # [augmentations of the waveform], the normalization's transforms, [of the spectrogram]

    def frontend(self):
        "A new module to put before the model (trained with it, exported inside it), or None"
        front = self.normalization.front
        return None if front is None else FRONTENDS[front].build(self.spec.n_freq, self.spec)


def resolve(name: str, spec_cfg=None, frac: float = 1.0, augment=None) -> Arm:
    "Normalization `name` on `spec_cfg` (default `BasicSpectrogram`), with the training-only augmentations of `augment`"
    from ..augment import augment_tfms
    n, wave, spec = get_normalization(name), *augment_tfms(augment)
    cfg = spec_cfg or AudioConfig.BasicSpectrogram()
    return Arm(name, n, n.spec_cfg(cfg), [*wave, *n.tfms(cfg, frac), *spec])


def norm_tfms(normalization: str, spec_cfg=None, frac: float = 1.0, augment=None) -> list:
    "The batch transforms of `normalization`, with the training-only augmentations of `augment` around them"
    return resolve(normalization, spec_cfg, frac, augment).tfms
