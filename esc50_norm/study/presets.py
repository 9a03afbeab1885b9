"Presets: everything that decides a study (grid, data, spectrogram, recipe) as one plain object, its runs, the registry"
from __future__ import annotations
import hashlib
import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

from ..compat import later, later_defaults
from ..configs import AudioConfig, Augment, Decoding, SpectrogramConfig
from ..spelling import unknown_name
from .datasets import check_folds, clip_duration
from .normalizations import NORMALIZATIONS, Arm, resolve
from .sizing import size_recipe, sizing_text

__all__ = ['Job', 'Preset', 'PRESETS', 'CHOSEN', 'chosen', 'get_preset', 'PIPELINES']

PIPELINES = ('device', 'cached', 'files')


def run_id(fold: int, normalization: str, seed: int) -> str: return f"fold{fold}-{normalization}-seed{seed}"


class Job(NamedTuple):
    "One run of a grid: a validation fold (0: none, train on every fold), a normalization and a seed"
    fold: int
    normalization: str
    seed: int
    @property
    def id(self) -> str: return run_id(*self)


def _spec(**kw) -> SpectrogramConfig: return AudioConfig.BasicSpectrogram(**kw)
def _mel(**kw) -> SpectrogramConfig: return AudioConfig.BasicMelSpectrogram(**kw)

GRID_FIELDS = ('name', 'folds', 'normalizations', 'seeds', 'added', 'pipeline', 'dataset', 'given', 'sized')
"""Fields that choose which runs to make, how to feed them, or which data (checked on its own, by fingerprint), and the
notes of sizing (what it kept, what it derived: their effect is in the recipe's own fields): left out of the recipe
hash"""


@dataclass
class Preset:
    "Everything that decides a study: the grid, the data, the spectrogram, the training recipe"
    name: str
    folds: tuple | None = (1,)                 # None: every fold of the dataset
    normalizations: tuple = ('none', 'global', 'channel')
    seeds: tuple = (0, 1, 2, 3, 4)
    epochs: int = 20
    bs: int = 64
    lr: float = 1e-3
    spec: SpectrogramConfig = field(default_factory=_spec)      # recorded as its dict (`SpectrogramConfig.as_dict`)
    sr: int = 16000
    duration: float | None = None              # None: the dataset's (ESC-50: 5 s), else its clips' 99th percentile
    downmix: str = 'sum'
    clips_per_class: int | None = None
    pipeline: str = 'device'
    bf16: bool | None = None                   # None: bf16 autocast on CUDA and on a CPU with native bf16, else fp32
    channels_last: bool | None = None          # None: with bf16
    stats_frac: float = 1.0
    augment: Augment | None = later(None)      # None: no augmentation; recorded as its dict
    mixup: float = later(0.0)                  # fastai MixUp's alpha; 0: off
    dataset: dict | None = later(None)         # `Dataset.describe()` of the data; None: ESC-50, from before that
    given: tuple = later(())                   # recipe fields set by hand (epochs, bs, spec): sizing keeps them
    sized: dict | None = later(None)           # what sizing derived: field -> [preset's, derived], frames, steps
    added: tuple = later(())                   # grids run into the folder beside the main one: {folds, normalizations,
                                               # seeds} each, where the axes' union would plan runs nobody asked for

    def __post_init__(self):
        self.folds = None if self.folds is None else tuple(int(f) for f in self.folds)
        self.seeds, self.normalizations = tuple(int(s) for s in self.seeds), tuple(self.normalizations)
        self.given = tuple(self.given)
        if isinstance(self.spec, dict): self.spec = SpectrogramConfig(**self.spec)     # as read from a preset.json
        if isinstance(self.augment, dict): self.augment = Augment(**self.augment) if self.augment else None
        self.added = tuple({k: tuple(g[k]) for k in _AXES} for g in self.added)
        unknown = [n for n in self.normalizations if n not in NORMALIZATIONS]
        if unknown:
            raise ValueError(unknown_name('normalizations', unknown, NORMALIZATIONS))
        if self.folds is not None and [f for f in self.folds if f < 1]:
            raise ValueError(f"folds are numbered from 1, got {list(self.folds)} "
                             "(fold 0, 'no validation fold', is for `train` only)")
        for name, ok in (('epochs', self.epochs >= 1), ('bs', self.bs >= 1), ('sr', self.sr >= 1),
                         ('lr', math.isfinite(self.lr) and self.lr > 0),
                         ('duration', self.duration is None or math.isfinite(self.duration) and self.duration > 0),
                         ('clips_per_class', self.clips_per_class is None or self.clips_per_class >= 1),
                         ('stats_frac', 0 < self.stats_frac <= 1),
                         ('mixup', math.isfinite(self.mixup) and self.mixup >= 0)):
            if not ok: raise ValueError(f"{name} must be {_RULES[name]}, got {getattr(self, name)!r}")
        if self.pipeline not in PIPELINES:
            raise ValueError(unknown_name('pipeline', self.pipeline, PIPELINES))
        if self.folds == () or not (self.seeds and self.normalizations):
            raise ValueError("a preset needs at least one fold, seed and normalization")

    @property
    def decoding(self) -> Decoding:
        "How the clips are decoded for this recipe (its duration decided for a dataset first)"
        if self.duration is None: raise ValueError("resolve the preset for a dataset first: its clip duration")
        return Decoding(self.sr, self.duration, self.downmix)
    def arm(self, normalization: str) -> Arm:
        "Normalization `normalization` resolved for this recipe: its spectrogram, batch transforms and front end"
        return resolve(normalization, self.spec, self.stats_frac, self.augment)

    def as_dict(self) -> dict:
        "Every field as JSON has it: the spectrogram and augmentation as their dicts (preset.json's form)"
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(spec=self.spec.as_dict(), augment=self.augment and self.augment.as_dict())
        return json.loads(json.dumps(d))
    def update(self, **kwargs) -> Preset: return replace(self, **kwargs)

    @property
    def grids(self) -> list:
        "The grids this preset plans, each {folds, normalizations, seeds}: its own, then those added to its folder"
        return [{k: getattr(self, k) for k in _AXES}, *self.added]

    def jobs(self) -> list:
        "Every (fold, normalization, seed) of the grids, once each"
        if self.folds is None:
            raise ValueError(f"preset {self.name!r} runs every fold of its dataset: resolve it for a dataset first")
        return list(dict.fromkeys(j for g in self.grids for j in _product(g)))

    def grown(self, other: Preset) -> Preset:
        "This folder's preset planning `other`'s runs too: a grid takes `other`'s axes where that plans nothing else"
        new = set(other.jobs())
        if new <= set(self.jobs()): return self
        grids = self.grids
        for i, g in enumerate(grids):
            union = {k: tuple(dict.fromkeys(g[k] + getattr(other, k))) for k in _AXES}
            if set(_product(union)) == set(_product(g)) | new:
                grids[i] = union
                break
        else: grids.append(other.grids[0])
        return self.update(**grids[0], added=tuple(grids[1:]))

    def for_dataset(self, ds, log=print) -> Preset:
        "The preset with the dataset's part decided: its folds (None: all; others checked), clip duration and sizing"
        p = self.update(folds=check_folds(ds, self.folds), duration=clip_duration(ds, self.duration, log=log))
        return p.sized_for(ds, log)

    def sized_for(self, ds, log=print) -> Preset:
        "The recipe sized for dataset `ds` (folds and duration decided): enough frames, batches and steps, reported"
        changes = size_recipe(self, ds)
        if not changes: return self
        if log: log(sizing_text(ds.name, changes['sized']))
        return self.update(**changes)

    def resolved(self, device) -> Preset:
        "The preset with its device-dependent defaults decided: bf16 and channels-last on CUDA or a native-bf16 CPU"
        if self.bf16 is not None and self.channels_last is not None: return self
        from ..precision import native_bf16                   # imports torch: only when a default is to be decided
        fast = str(device).split(':')[0] == 'cuda' or native_bf16(device)
        return self.update(bf16=fast if self.bf16 is None else self.bf16,
                           channels_last=fast if self.channels_last is None else self.channels_last)

    def recipe(self) -> dict:
        "What decides one run's result: every field but the grid's, later fields only where they are not their default"
        defaults = later_defaults(Preset)
        d = {k: v for k, v in self.as_dict().items() if not (k in defaults and v == json.loads(json.dumps(defaults[k])))}
        if d['bf16'] is None or d['channels_last'] is None:
            raise ValueError("resolve the preset for a device first: Preset.resolved(device)")
        if d['duration'] is None:
            raise ValueError("resolve the preset for a dataset first: its clip duration decides the runs")
        return {k: v for k, v in d.items() if k not in GRID_FIELDS}

    def training_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.recipe(), sort_keys=True).encode()).hexdigest()[:12]

    def smoke(self) -> Preset:
        "The same recipe and normalizations shrunk for CI: folds 1-2, one seed, one epoch, 1 clip per class and fold"
        # and 16 bands (on the preset's band scale)
        return self.update(name=f"{self.name}-smoke", folds=(1, 2), seeds=(0,), epochs=1, bs=16, clips_per_class=1,
                           spec=_spec(n_fft=256, hop_length=2000, mel=True, n_mels=16,
                                      band_scale=self.spec.band_scale), given=('epochs', 'bs', 'spec'))


_AXES = ('folds', 'normalizations', 'seeds')
def _product(g: dict) -> list: return [Job(f, n, s) for f in g['folds'] for n in g['normalizations'] for s in g['seeds']]


_RULES = dict(epochs='at least 1', bs='at least 1', sr='at least 1', lr='a positive number',
              duration='a positive number of seconds', clips_per_class='at least 1 (or None: all)',
              stats_frac='in (0, 1]', mixup='0 (off) or a positive alpha')

_STRONG_AUG = Augment(shift=1.0, freq_mask=0.2, time_mask=0.2, masks=1)
_MEL_CPU = _mel(n_mels=64, hop_length=512)      # 1x64x157 for 5 s at 16 kHz: the CPU grids' input
_LINEAR_CPU = _mel(n_mels=64, hop_length=512, band_scale='linear')   # the same, 64 bands spaced linearly over 0-8 kHz
_FRONTENDS = ('global', 'channel', 'instance', 'pcen', 'pcen_learned', 'bn_freq', 'pcen_frozen')   # frontends' arms

PRESETS = {
    # the reference recipe: BasicSpectrogram 1x201x401, xResNet18 from scratch, bs 64, fit_one_cycle(20), fold 1,
    # 5 seeds;
    # folds=None: every fold of the dataset (ESC-50: 1-5, UrbanSound8K: 1-10)
    'blog': Preset('blog'),
    'cv': Preset('cv', folds=None),
    # separates waveform from spectrogram normalization, which the reference blog confounded
    'ablation': Preset('ablation',
                       normalizations=('none', 'wave', 'global', 'channel', 'global_nowave', 'channel_nowave')),
    # the cv grid on log-mel input (128 mel bins x 313 frames) over the normalizations other systems use
    'mel': Preset('mel', folds=None, normalizations=('none', 'wave', 'global', 'channel', 'minmax', 'instance'),
                  spec=_mel()),
    # a strong from-scratch recipe: log-mel, time shift + masks on the GPU batch, mixup, 80 epochs of one-cycle at 2e-3
    'strong': Preset('strong', folds=None, normalizations=('none', 'global', 'channel', 'instance'), seeds=(0, 1, 2),
                     epochs=80, lr=2e-3, spec=_mel(), augment=_STRONG_AUG, mixup=0.4),
    # the strong recipe over the normalizations strong systems use: PCEN fixed (librosa) and learned (LEAF), PANNs'
    # input BatchNorm over mel bins, against global, channel and per-clip statistics; pcen_frozen: learned PCEN's module
    # frozen at its start, so that pcen_learned - pcen_frozen is learning alone; 5 seeds a fold
    'frontends': Preset('frontends', folds=None, normalizations=_FRONTENDS, seeds=(0, 1, 2, 3, 4), epochs=80, lr=2e-3,
                        spec=_mel(), augment=_STRONG_AUG, mixup=0.4),
    # the mel grid sized for 2 CPU cores (about 5 h in bf16 here): 64 mel bins x 157 frames (hop 512), 20 epochs
    'mel-cpu': Preset('mel-cpu', folds=None, normalizations=('none', 'wave', 'global', 'channel', 'minmax', 'instance'),
                      seeds=(0, 1), spec=_MEL_CPU),
    # mel-cpu exactly (the same size, recipe, seeds and precision) but for the spacing of its 64 bands, linear in Hz:
    # every run pairs with the mel-cpu run of the same fold, normalization and seed
    'linear-cpu': Preset('linear-cpu', folds=None, normalizations=('none', 'wave', 'global', 'channel'), seeds=(0, 1),
                         spec=_LINEAR_CPU),
    # mel-cpu exactly but for the strong recipe's augmentation (time shift, one frequency and one time mask, mixup 0.4),
    # on the two arms whose gap the strong recipe narrowed: each run pairs with mel-cpu's of the same fold, arm and seed
    'mel-aug-cpu': Preset('mel-aug-cpu', folds=None, normalizations=('global', 'instance'), seeds=(0, 1),
                          spec=_MEL_CPU, augment=_STRONG_AUG, mixup=0.4),
    # mel-aug-cpu exactly but for 60 epochs (frontends-cpu's): each run pairs with mel-aug-cpu's of the same fold, arm
    # and seed (epochs alone) and, seed 0, with frontends-cpu's (learning rate alone, 1e-3 against 2e-3)
    'mel-aug60-cpu': Preset('mel-aug60-cpu', folds=None, normalizations=('global', 'instance'), seeds=(0, 1),
                            epochs=60, spec=_MEL_CPU, augment=_STRONG_AUG, mixup=0.4),
    # mel-cpu exactly but for 60 epochs, on mel-aug-cpu's two arms: with mel-cpu, mel-aug-cpu and mel-aug60-cpu a 2x2 of
    # augmentation x epochs, whose interaction (`compare --minus`) asks whether augmentation's effect depends on epochs
    'mel60-cpu': Preset('mel60-cpu', folds=None, normalizations=('global', 'instance'), seeds=(0, 1), epochs=60,
                        spec=_MEL_CPU),
    # the strong and frontends grids on mel-cpu's input, one seed, 60 epochs: fold 1 global reached 0.790 at 60
    # (results/frontends-cpu-probe60), 0.7775 at 40 and 0.7675 at 45 (probe40, probe45), under the 0.78 asked for.
    # A run costs 32 min on one thread beside another (16 s an epoch of the grid on 2 cores): 8 h for 30 runs
    'strong-cpu': Preset('strong-cpu', folds=None, normalizations=('none', 'global', 'channel', 'instance'), seeds=(0,),
                         epochs=60, lr=2e-3, spec=_MEL_CPU, augment=_STRONG_AUG, mixup=0.4),
    'frontends-cpu': Preset('frontends-cpu', folds=None, normalizations=_FRONTENDS, seeds=(0,), epochs=60, lr=2e-3,
                            spec=_MEL_CPU, augment=_STRONG_AUG, mixup=0.4),
    # a real but small comparison for 2 CPU cores (about 7 minutes): 32 mel bins x 79 frames, 4 epochs, 3 seeds
    'quick': Preset('quick', seeds=(0, 1, 2), epochs=4, spec=_spec(n_fft=1024, hop_length=1024, mel=True, n_mels=32)),
}
PRESETS['smoke'] = PRESETS['blog'].smoke().update(name='smoke')     # CI's end-to-end run of the reference recipe

CHOSEN = {
    'blog': "Taken from the reference blog post (\"Normalizing spectrograms for deep learning\", 2020, fastaudio): "
            "its spectrogram, model, batch size, learning rate and 20 epochs, and its fold 1; nothing was tuned here.",
    'cv': "The `blog` recipe unchanged, over all five folds: nothing was tuned here.",
    'ablation': "The `blog` recipe unchanged; the normalizations separate waveform from spectrogram normalization, "
                "which the reference post confounded. Nothing was tuned here.",
    'mel': "The `cv` grid on fastaudio's default log-mel input (`BasicMelSpectrogram`, 128 bins); the training recipe "
           "is the `blog` one, not tuned.",
    'strong': "Chosen from a calibration probe on fold 1, seed 0, of `global` only (results/README.md: 0.838 at 80 "
              "epochs with time shift, masks and mixup 0.4 at lr 2e-3): a setting chosen on a validation fold of "
              "the grid, for one arm.",
    'frontends': "The `strong` recipe (chosen on fold 1 for `global`, see `strong`) over the front ends.",
    'mel-cpu': "The `mel` grid sized for this repository's 2 CPU cores: 64 mel bins, hop 512 (1x64x157), 20 epochs, "
               "2 seeds, to fit about 5 h; the training recipe is the `blog` one, not tuned.",
    'linear-cpu': "`mel-cpu` exactly but for the spacing of its 64 bands (linear in Hz), so that every run pairs with "
                  "a `mel-cpu` run; nothing was tuned here.",
    'mel-aug-cpu': "`mel-cpu` exactly but for the `strong` recipe's augmentation (time shift, masks, mixup 0.4), so "
                   "that every run pairs with a `mel-cpu` run; nothing was tuned here.",
    'mel-aug60-cpu': "`mel-aug-cpu` exactly but for `frontends-cpu`'s 60 epochs, so that every run pairs with a "
                     "`mel-aug-cpu` run and, seed 0, with a `frontends-cpu` run; nothing was tuned here.",
    'mel60-cpu': "`mel-cpu` exactly but for 60 epochs, on `mel-aug-cpu`'s arms and seeds, so that every run pairs with "
                 "a `mel-cpu` run (epochs alone) and a `mel-aug60-cpu` run (augmentation alone); nothing was tuned here.",
    'strong-cpu': "The `strong` recipe on `mel-cpu`'s input, one seed. Its epochs were raised from 40 to 45 to 60 "
                  "because fold-1 `global` validation accuracy fell under 0.78 (0.7775 at 40, 0.7675 at 45, 0.790 at "
                  "60: results/frontends-cpu-probe40, -probe45, -probe60): a setting chosen on a test fold of the "
                  "grid, for one arm.",
    'frontends-cpu': "The `frontends` grid (the `strong` recipe) on `mel-cpu`'s input, one seed. Its epochs were "
                     "raised from 40 to 45 to 60 because fold-1 `global` validation accuracy fell under 0.78 (0.7775 "
                     "at 40, 0.7675 at 45, 0.790 at 60: results/frontends-cpu-probe40, -probe45, -probe60): a setting "
                     "chosen on a test fold of the grid, for one arm.",
    'quick': "Sized by hand to run in minutes on 2 CPU cores (32 mel bins x 79 frames, 4 epochs, 3 seeds), not tuned: "
             "a small real comparison, not an answer.",
    'smoke': "The `blog` recipe shrunk for CI (folds 1-2, one seed, one epoch, one clip per class and fold): it tests "
             "the code, not the normalizations.",
}
"How each preset's settings were chosen, and on which data (the report prints it; not part of the recipe hash)"


def chosen(name: str) -> str:
    "How preset `name`'s settings were chosen ('not recorded' for a preset outside the registry)"
    return CHOSEN.get(name, f"not recorded (preset {name!r} is not in the registry)")


def get_preset(name: str, smoke: bool = False, **overrides) -> Preset:
    "A preset by name (`smoke`: its CI-sized form), with any field overridden (and so kept by sizing)"
    try: p = PRESETS[name]
    except KeyError:
        raise ValueError(unknown_name('preset', name, PRESETS)) from None
    p, overrides = (p.smoke() if smoke else p), {k: v for k, v in overrides.items() if v is not None}
    given = tuple(dict.fromkeys([*p.given, *(k for k in ('epochs', 'bs', 'spec') if k in overrides)]))
    return p.update(**overrides, given=given)
