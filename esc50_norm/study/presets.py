"Presets: everything that decides a study (grid, data, spectrogram, recipe) as one plain object, and their registry"
from __future__ import annotations
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace

import torch

from ..augment import Augment
from ..spectrogram import AudioConfig, SpectrogramConfig
from .data import NORMALIZATIONS
from .esc50 import FOLDS

__all__ = ['Preset', 'PRESETS', 'get_preset', 'GRID_FIELDS']


def _spec(**kw) -> dict: return AudioConfig.BasicSpectrogram(**kw).as_dict()
def _mel(**kw) -> dict: return AudioConfig.BasicMelSpectrogram(**kw).as_dict()

GRID_FIELDS = ('name', 'folds', 'normalizations', 'seeds', 'pipeline')
"Fields that choose which runs to make or how to feed them, not what one run computes: left out of the recipe hash"
_LATER = dict(metadata={'hash': 'unless default'})
"Fields added after results were recorded: hashed only when they differ from their default, so older folders still match"


@dataclass
class Preset:
    "Everything that decides a study: the grid, the data, the spectrogram, the training recipe"
    name: str
    folds: tuple = (1,)
    normalizations: tuple = ('none', 'global', 'channel')
    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 20
    bs: int = 64
    lr: float = 1e-3
    spec: dict = field(default_factory=_spec)
    sr: int = 16000
    duration: float = 5.0
    downmix: str = 'sum'
    clips_per_class: int | None = None
    pipeline: str = 'device'
    bf16: bool | None = None                   # None: bf16 autocast on CUDA, fp32 elsewhere
    channels_last: bool | None = None          # None: channels-last on CUDA
    stats_frac: float = 1.0
    augment: dict | None = field(default=None, **_LATER)   # Augment fields; None: no augmentation
    mixup: float = field(default=0.0, **_LATER)            # fastai MixUp's alpha; 0: off

    def __post_init__(self):
        self.folds, self.seeds = tuple(int(f) for f in self.folds), tuple(int(s) for s in self.seeds)
        self.normalizations = tuple(self.normalizations)
        unknown = [n for n in self.normalizations if n not in NORMALIZATIONS]
        if unknown: raise ValueError(f"unknown normalizations {unknown}; known: {list(NORMALIZATIONS)}")
        bad = [f for f in self.folds if f not in FOLDS]
        if bad: raise ValueError(f"fold(s) {bad} do not exist; ESC-50 folds are 1-5")
        if self.augment is not None: Augment(**self.augment)      # an unknown augmentation field fails here

    @property
    def spec_cfg(self) -> SpectrogramConfig: return SpectrogramConfig(**self.spec)
    @property
    def augmentation(self) -> Augment | None: return Augment(**self.augment) if self.augment else None
    def as_dict(self) -> dict: return json.loads(json.dumps(asdict(self)))
    def update(self, **kwargs) -> Preset: return replace(self, **kwargs)

    def resolved(self, device) -> Preset:
        "The preset with its device-dependent defaults decided: bf16 and channels-last on CUDA, fp32 elsewhere"
        cuda = torch.device(device).type == 'cuda'
        return self.update(bf16=cuda if self.bf16 is None else self.bf16,
                           channels_last=cuda if self.channels_last is None else self.channels_last)

    def recipe(self) -> dict:
        "What decides one run's result: every field but the grid's, later fields only where they differ from their default"
        d = self.as_dict()
        if d['bf16'] is None or d['channels_last'] is None: raise ValueError("resolve the preset for a device first")
        later = {f.name: f.default for f in fields(self) if f.metadata.get('hash') == 'unless default'}
        return {k: v for k, v in d.items() if k not in GRID_FIELDS and not (k in later and v == later[k])}

    def training_hash(self) -> str: return hashlib.sha1(json.dumps(self.recipe(), sort_keys=True).encode()).hexdigest()[:12]

    def smoke(self) -> Preset:
        "The same recipe and normalizations shrunk for CI: folds 1-2, one seed, one epoch, 1 clip per class and fold, 16 mel bins"
        return self.update(name=f"{self.name}-smoke", folds=(1, 2), seeds=(0,), epochs=1, bs=16, clips_per_class=1,
                           spec=_spec(n_fft=256, hop_length=2000, mel=True, n_mels=16))


_STRONG_AUG = dict(shift=1.0, freq_mask=0.2, time_mask=0.2, masks=1)

PRESETS = {
    # the reference recipe: BasicSpectrogram 1x201x401, xResNet18 from scratch, bs 64, fit_one_cycle(20), fold 1, 5 seeds
    'blog': Preset('blog'),
    'cv': Preset('cv', folds=FOLDS),
    # separates waveform from spectrogram normalization, which the reference blog confounded
    'ablation': Preset('ablation', normalizations=('none', 'wave', 'global', 'channel', 'global_nowave', 'channel_nowave')),
    # the cv grid on log-mel input (128 mel bins x 313 frames) over the normalizations other systems use
    'mel': Preset('mel', folds=FOLDS, normalizations=('none', 'wave', 'global', 'channel', 'minmax', 'instance'), spec=_mel()),
    # a strong from-scratch recipe: log-mel, time shift + masks on the GPU batch, mixup, 80 epochs of one-cycle at 2e-3
    'strong': Preset('strong', folds=FOLDS, normalizations=('none', 'global', 'channel', 'instance'), seeds=(0, 1, 2),
                     epochs=80, lr=2e-3, spec=_mel(), augment=_STRONG_AUG, mixup=0.4),
    # a real but small comparison for 2 CPU cores (about 7 minutes): 32 mel bins x 79 frames, 4 epochs, 3 seeds
    'quick': Preset('quick', seeds=(0, 1, 2), epochs=4, spec=_spec(n_fft=1024, hop_length=1024, mel=True, n_mels=32)),
}
PRESETS['smoke'] = PRESETS['blog'].smoke().update(name='smoke')     # CI's end-to-end run of the reference recipe


def get_preset(name: str, smoke: bool = False, **overrides) -> Preset:
    "A preset by name (`smoke`: its CI-sized form), with any field overridden"
    try: p = PRESETS[name]
    except KeyError: raise ValueError(f"unknown preset {name!r}; known: {list(PRESETS)}") from None
    return (p.smoke() if smoke else p).update(**{k: v for k, v in overrides.items() if v is not None})
