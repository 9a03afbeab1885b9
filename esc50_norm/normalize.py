"Waveform and spectrogram normalization transforms; `MODES`: the spectrogram normalizations, `Mode`: their protocol"
from __future__ import annotations
import warnings
from contextlib import contextmanager

import torch
from fastai.data.all import DataLoaders, Transform

from .audio import AudioTensor
from .checks import check_positive
from .compat import upgrade_spec_normalize
from .spectrogram import AudioSpectrogram
from .spelling import unknown_name
from .stats import Accumulator, RunningExtrema, RunningStats, StatsFileError, accumulate, load_stats, save_stats

__all__ = ['AudioNormalize', 'SpecNormalize', 'Mode', 'MODES', 'get_mode', 'training_inputs', 'find_spec_normalize']


class AudioNormalize(Transform):
    "Give every clip zero mean and unit variance over its samples (silent clips stay all-zero)"
    order = 5
    def __init__(self, eps: float = 1e-8): self.eps = eps

    def encodes(self, x: AudioTensor) -> AudioTensor:
        std, mean = torch.std_mean(x.as_subclass(torch.Tensor), dim=(-2, -1), keepdim=True, correction=0)
        return (x - mean) / std.clamp_min(self.eps)


@contextmanager
def _every_item(dl, shuffle: bool):
    "Temporarily make `dl` yield every item once (no dropped last batch), shuffled or not"
    old = dl.shuffle, dl.drop_last
    dl.shuffle, dl.drop_last = shuffle, False
    try: yield dl
    finally: dl.shuffle, dl.drop_last = old


@contextmanager
def _cut_before(pipe, tfm):
    "Temporarily drop `tfm` and every transform after it from the batch pipeline `pipe` (when `tfm` is in it)"
    fs = getattr(pipe, 'fs', None)
    i = next((i for i, t in enumerate(fs or []) if t is tfm), None)
    if i is None:
        yield
        return
    pipe.fs = fs[:i]
    try: yield
    finally: pipe.fs = fs


def training_inputs(dl, frac: float = 1.0, before=None):
    "Model inputs of every batch of the training `dl` (or of a random `frac` of its batches); refuses a validation dl"
    # with `before`, what that batch transform receives
    if getattr(getattr(dl, 'dataset', None), 'split_idx', 0) == 1:
        raise ValueError("normalization stats must come from the training data, "
                         "but this DataLoader is the validation split")
    if not 0 < frac <= 1: raise ValueError(f"frac must be in (0, 1], got {frac}")
    with _every_item(dl, shuffle=frac < 1), _cut_before(getattr(dl, 'after_batch', None), before):
        n = len(dl)
        for i, b in enumerate(dl):
            if frac < 1 and i >= max(1, round(frac * n)): break
            yield b[0] if isinstance(b, (tuple, list)) else b


class Mode:
    """A spectrogram normalization `(x - shift) / scale` of `SpecNormalize`: a new one is a class and one `MODES` entry.
    A subclass defines `keys`, `accumulator`, `arrays` and `shift_scale` (a per-clip mode: `shift_scale` alone); the
    other members have defaults. A class that does not subclass `Mode` defines all nine"""
    keys: tuple[str, ...] = ()   # the learned stats arrays (attributes of `SpecNormalize`, saved); (): per clip, none
    options: dict = {}           # its own keyword options and their defaults: given to `arrays`, `shift_scale`; saved
    counted: str = ''            # the name of the accumulator's count `n`, kept, saved: 'n_per_bin', 'n_clips'; '': none
    units: tuple[str, str] = ('normalized units', 'offset from the shift')  # the colorbar label; 2nd: `mean_only`
    need: str = 'scale > 0'      # the condition on a positive scale, for errors: 'std > 0', 'hi > lo'

    def shape(self, n_freq='F') -> tuple | None:
        "Each stats array's shape for `n_freq` bins (None: no stats); by default one value, or one per bin"
        return (1, 1, n_freq, 1) if self.keys else None

    def accumulator(self) -> Accumulator | None:
        "A new, empty accumulator of the stats (None: no stats)"
        return None

    def arrays(self, acc, eps: float, **options) -> dict:
        "The stats of a filled `acc`; a scale under `eps` is 1"
        return {}

    def shift_scale(self, x, stats: dict | None, eps: float, **options) -> tuple:
        "The shift and scale from `stats`, or from `x` (per clip)"
        raise NotImplementedError(f"{type(self).__name__} defines no shift_scale")


def _unit_below(scale: torch.Tensor, eps: float) -> torch.Tensor:
    "`scale`, with 1 where it is under `eps` (a constant bin or clip)"
    # such values are only shifted, as scikit-learn's StandardScaler does
    return torch.where(scale < eps, torch.ones_like(scale), scale)


class MeanStd(Mode):
    "`(x - mean) / std` with the training mean/std over `axes` of `[bs, ch, freq, time]` (the axes left out are kept)"
    keys, counted, need = ('mean', 'std'), 'n_per_bin', 'std > 0'
    units = ('standard deviations', 'offset from the training mean')
    def __init__(self, axes: tuple): self.axes = axes
    def shape(self, n_freq='F') -> tuple: return tuple(1 if a in self.axes else n_freq for a in range(4))
    def accumulator(self) -> RunningStats: return RunningStats(self.axes)

    def arrays(self, acc: RunningStats, eps: float) -> dict:
        return dict(mean=acc.mean, std=_unit_below(acc.std(), eps))

    def shift_scale(self, x, stats: dict, eps: float) -> tuple: return stats['mean'], stats['std']


class MinMax(Mode):
    "`(x - lo) / (hi - lo)`: lo/hi the mean of the training clips' minima/maxima, or their extremes"
    keys, counted, need = ('lo', 'hi'), 'n_clips', 'hi > lo'
    options = dict(mean_clip_extremes=True)    # lo/hi: the mean of the clips' minima/maxima; False: the least/largest
    units = ('fraction of the training range', 'offset from the training minimum')
    def shape(self, n_freq='F') -> tuple: return (1, 1, 1, 1)
    def accumulator(self) -> RunningExtrema: return RunningExtrema()

    def arrays(self, acc: RunningExtrema, eps: float, mean_clip_extremes: bool = True) -> dict:
        lo, hi = (acc.mean_min, acc.mean_max) if mean_clip_extremes else (acc.min, acc.max)
        return dict(lo=lo.reshape(1, 1, 1, 1), hi=(lo + _unit_below(hi - lo, eps)).reshape(1, 1, 1, 1))

    def shift_scale(self, x, stats: dict, eps: float, **options) -> tuple:
        return stats['lo'], stats['hi'] - stats['lo']


class PerClip(Mode):
    "`(x - mean) / std` with each clip's own mean/std over `dims` (utterance MVN): nothing to learn, nothing to invert"
    units = ('standard deviations (per clip; cannot be decoded)',
             'offset from the clip mean (per clip; cannot be decoded)')
    def __init__(self, dims: tuple): self.dims = dims

    def shift_scale(self, x, stats, eps: float) -> tuple:
        std, mean = torch.std_mean(x, dim=self.dims, keepdim=True, correction=0)
        return mean, _unit_below(std, eps)


MODES: dict[str, Mode] = {
    'global':          MeanStd(axes=(0, 1, 2, 3)),       # one mean/std, stats [1,1,1,1]
    'channel':         MeanStd(axes=(0, 1, 3)),          # per frequency bin, stats [1,1,F,1]
    'minmax':          MinMax(),                         # lo/hi scalars, stats [1,1,1,1]
    'instance':        PerClip(dims=(-1,)),              # per clip and bin, over time
    'instance_global': PerClip(dims=(-3, -2, -1)),       # per clip, over all its values
}
"The spectrogram normalizations of `SpecNormalize`, by name; a new mode is a `Mode` and one entry here"


def get_mode(name: str) -> Mode:
    "The mode called `name`; the error lists the known ones"
    try: return MODES[name]
    except (KeyError, TypeError):
        raise ValueError(unknown_name('normalization mode', name, MODES)) from None


def _option_names(mode: Mode) -> tuple:
    "The options saved with a mode's stats: `mean_only`, then its own"
    return ('mean_only', *mode.options)


def _counted(mode: Mode, n: int | None) -> dict:
    "The count `n` under the mode's name for it (`Mode.counted`, e.g. n_per_bin); nothing for a mode that counts none"
    return {mode.counted: n} if mode.counted else {}


def _mode_arguments(mode: Mode, name: str, options: dict) -> tuple:
    "The count given among `options` (`Mode.counted`) and the mode's own options, with their defaults"
    # an option the mode does not declare fails, naming those it has
    options = dict(options)
    n = options.pop(mode.counted, None) if mode.counted else None
    if unknown := [k for k in options if k not in mode.options]:
        raise ValueError(f"{name!r} normalization has no option {unknown[0]!r}"
                         + (f" (its options: {', '.join(mode.options)})" if mode.options else ''))
    return n, {k: options.get(k, default) for k, default in mode.options.items()}


def _checked_stats(mode: Mode, name: str, stats: dict, eps: float, options: dict) -> dict:
    "The stats arrays of `mode` (called `name`), float64 of its shape, checked: names, shape, finite, a scale > 0"
    # given as numbers, per-bin 1-d, or of the mode's shape (`_stats_view`); used as they are: no scale becomes 1
    keys = mode.keys
    if not keys: raise ValueError(f"{name!r} normalization takes no stats: it normalizes each clip by its own")
    if set(stats) != set(keys): raise ValueError(f"{name} stats are {list(keys)}, got {list(stats)}")
    a = {k: _stats_view(torch.as_tensor(stats[k], dtype=torch.float64)) for k in keys}
    if (len({v.shape for v in a.values()}) > 1
            or any(v.numel() == 0 or v.shape != mode.shape(v.shape[-2]) for v in a.values())):
        raise ValueError(f"{name} stats need shape {mode.shape()}, got "
                         + ' and '.join(f"{k} {tuple(v.shape)}" for k, v in a.items()))
    for k, v in a.items():
        if not torch.isfinite(v).all():
            raise ValueError(f"{name} stats must be finite, got {_where(a, ~torch.isfinite(v))}")
    _, scale = mode.shift_scale(None, a, eps, **options)
    if not (scale > 0).all(): raise ValueError(f"{name} stats need {mode.need}, got {_where(a, scale <= 0)}")
    return a


def _stats_view(v: torch.Tensor) -> torch.Tensor:
    "A scalar as `[1,1,1,1]`, a 1-d tensor as per-bin `[1,1,F,1]`, anything else as it is"
    return v.reshape(1, 1, 1, 1) if v.numel() == 1 else v.reshape(1, 1, -1, 1) if v.ndim == 1 else v


def _where(stats: dict, bad: torch.Tensor) -> str:
    "The stats at the first bin where `bad` holds, e.g. 'mean -4.2, std 0 (bin 3; 2 of 201 bins)'"
    bad = bad.flatten()
    i = int(bad.nonzero()[0])
    vals = ', '.join(f"{k} {v.flatten()[i].item():g}" for k, v in stats.items())
    return vals if len(bad) == 1 else f"{vals} (bin {i}; {int(bad.sum())} of {len(bad)} bins)"


def _fitted(name: str, shift: torch.Tensor, scale: torch.Tensor, x: torch.Tensor, stats_file=None) -> tuple:
    "The stats' `shift` and `scale` viewed for `x` (a batch `[bs, ch, F, T]` or one item `[ch, F, T]`), in its dtype"
    # on its device; stats whose frequency bins are not those of `x` fail, naming the file they were loaded from
    n = shift.shape[-2]
    if x.ndim < 2 or n not in (1, x.shape[-2]):
        loaded = (f"; they were loaded from {stats_file}: move it away to learn the stats of these spectrograms, "
                  "or load stats made for them") if stats_file else ''
        raise ValueError(f"{name} stats of shape {tuple(shift.shape)} do not fit spectrograms of shape "
                         f"{tuple(x.shape)}: they have {n} frequency bins, "
                         f"the data {x.shape[-2] if x.ndim >= 2 else '?'}{loaded}")
    view = (1,) * (x.ndim - 2) + tuple(shift.shape[-2:])
    return shift.view(view).to(x.device, x.dtype), scale.view(view).to(x.device, x.dtype)


@contextmanager
def _errors_as(error: type, before: str, after: str = ''):
    "A `ValueError` inside is raised again as `error`, its message between `before` and `after`; a `StatsFileError` not"
    try: yield
    except StatsFileError: raise
    except ValueError as e: raise error(f"{before}{e}{after}") from e


class SpecNormalize(Transform):
    "Normalize `AudioSpectrogram`s `(x - shift) / scale` by one of the `MODES`, from stats or each clip's own"
    order = 99
    def __init__(self, mode: str = 'global', stats: dict | None = None, frac: float = 1.0, eps: float = 1e-6,
                 mean_only: bool = False, **options):
        """`mode`: a name of `MODES`; `stats`: its arrays, else `setups` learns them from `frac` of the training batches
        (0: later, `learn` or `SpecStatsCallback`); `eps`: a learned scale (std, hi - lo) under it, a constant bin, is
        stored as 1, so that bin is only shifted; `mean_only`: shift without scaling; `options`: the mode's own
        (`Mode.options`, e.g. `mean_clip_extremes` of 'minmax')"""
        # options also carry the count of given stats (`_mode_arguments`)
        self.mode, self._mode = mode, get_mode(mode)           # an unknown mode fails here, naming itself
        n, options = _mode_arguments(self._mode, mode, options)
        if not 0 <= frac <= 1: raise ValueError(f"frac must be in [0, 1] (0: learn the stats later), got {frac}")
        check_positive('SpecNormalize', eps=eps)
        self.frac, self.eps, self.mean_only, self._passed = frac, eps, mean_only, 0    # batches passed unnormalized
        self.learned = None                         # the share of training batches `learn` used; None: given or loaded
        self.stats_file = None                      # the stats file they were loaded from, if any
        self.spectrogram = None                     # the settings of the spectrograms they describe, where known
        self.__dict__.update({**options, **dict.fromkeys(self._mode.keys), **_counted(self._mode, None)})   # no stats
        if stats is not None: self._set(stats, n)

    def __setstate__(self, state: dict):
        "Unpickle (`load_learner`), also models exported by 0.2.0 (`esc50_norm.compat.upgrade_spec_normalize`)"
        self.__dict__.update(upgrade_spec_normalize(state))

    @classmethod
    def from_file(cls, path, mode: str | None = None, **kwargs) -> SpecNormalize:
        "Build from a stats file written by `save`, with its mode and options (`mode` and `kwargs` must match them)"
        if mode is not None: get_mode(mode)                     # an unknown mode fails here, naming itself
        d = load_stats(path, mode=mode)
        with _errors_as(StatsFileError, f"stats file {path}: "): norm = cls(**_file_arguments(d, path, kwargs))
        if not isinstance(d.get('spectrogram') or {}, dict):
            raise StatsFileError(f"stats file {path}: its spectrogram settings are {d['spectrogram']!r}, not a mapping")
        norm.stats_file, norm.spectrogram = str(path), d.get('spectrogram')
        return norm

    @property
    def parameters(self) -> tuple:
        "The stats attributes: fastai's `DataLoader.to` moves them to its device as `Normalize`'s (float64: not MPS)"
        return self._mode.keys

    @property
    def learns_stats(self) -> bool:
        "Whether stats come from the training data (and can be saved)"
        return bool(self._mode.keys)

    @property
    def invertible(self) -> bool:
        "Whether `decodes` gives the spectrogram back: the shift and scale do not depend on the clip"
        return self.learns_stats

    @property
    def has_stats(self) -> bool:
        "Whether the stats are there (learned, given or loaded)"
        return self.learns_stats and getattr(self, self._mode.keys[0]) is not None

    @property
    def stats(self) -> dict | None:
        "The mode's stats arrays (float64, on the DataLoader's device), or None"
        return {k: getattr(self, k) for k in self._mode.keys} if self.has_stats else None

    @property
    def unit(self) -> str:
        "What normalized values measure (the colorbar label)"
        return self._mode.units[self.mean_only]

    @property
    def options(self) -> dict:
        "`mean_only` and the mode's own options"
        return {k: getattr(self, k) for k in _option_names(self._mode)}

    @property
    def n(self) -> int | None:
        "The count behind the stats, of what the mode's accumulator counts (`Mode.counted`: values per bin, clips)"
        return getattr(self, self._mode.counted) if self._mode.counted else None

    @property
    def _mode_options(self) -> dict: return {k: getattr(self, k) for k in self._mode.options}

    def _set(self, stats: dict, n: int | None = None, learned: float | None = None,
             stats_file=None, spectrogram: dict | None = None) -> SpecNormalize:
        """Check the mode's stats arrays (`_checked_stats`) and use them from now on: learned from a share, or from a
        file; `spectrogram`: the settings of the spectrograms they describe, if known"""
        stats = _checked_stats(self._mode, self.mode, stats, self.eps, self._mode_options)
        for k, v in {**stats, **_counted(self._mode, n)}.items(): setattr(self, k, v)
        self.learned, self.stats_file = learned, None if stats_file is None else str(stats_file)
        self.spectrogram = spectrogram
        return self

    def learn(self, dl, frac: float | None = None) -> SpecNormalize:
        "Learn the stats from what this transform receives in every training batch of `dl` (or `frac` of them)"
        # the one stats pass, of `setups` and `SpecStatsCallback`; built with `frac=0` (deferred): every batch
        if not self.learns_stats:
            raise ValueError(f"{self.mode!r} normalization learns no stats: it normalizes each clip by its own")
        frac = (self.frac or 1.0) if frac is None else frac
        inputs = training_inputs(dl.train if isinstance(dl, DataLoaders) else dl, frac, before=self)
        settings = []                               # each batch's spectrogram settings, as `AudioToSpec` marks them
        acc = accumulate(_noting_settings(map(_spectrogram, inputs), settings), self._mode.accumulator())
        with _errors_as(ValueError, "stats learned from the training data: ",
                        " (do the training spectrograms hold NaN or inf?)"):
            return self._set(self._mode.arrays(acc, self.eps, **self._mode_options), acc.n, learned=frac,
                             spectrogram=settings[0] if settings and all(s == settings[0] for s in settings) else None)

    def setups(self, dl):
        "Learn the stats from the training `dl` (or `frac` of it), unless the mode learns none or they are given"
        # `frac=0` defers them
        if not self.learns_stats or self.has_stats or not self.frac: return
        try: self.learn(dl)
        except AttributeError as e:
            raise RuntimeError(f"SpecNormalize could not compute stats from {type(dl).__name__}: {e}") from e

    def _shift_scale(self, x: torch.Tensor) -> tuple:
        "Shift and scale for `x`, in its dtype: its own (per-clip modes), or the stats, checked against `x`"
        if self.learns_stats: _check_settings(self, getattr(x, 'config', None))
        x = x.as_subclass(torch.Tensor)
        shift, scale = self._mode.shift_scale(x, self.stats, self.eps, **self._mode_options)
        if self.learns_stats: shift, scale = _fitted(self.mode, shift, scale, x, self.stats_file)
        return shift, (torch.ones_like(scale) if self.mean_only else scale)

    def encodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        if self.learns_stats and not self.has_stats: return _unnormalized(self, x)
        m, s = self._shift_scale(x)
        res = (x - m) / s
        res.normalized = self.unit
        return res

    def encodes(self, x: AudioTensor) -> AudioTensor:
        "A waveform passes through, as fastai passes any type it does not normalize, with a warning: is AudioToSpec missing?"
        warnings.warn(f"{self!r} passes an AudioTensor of shape {tuple(x.shape)} through unnormalized: it normalizes "
                      "AudioSpectrograms; is an AudioToSpec missing before it in batch_tfms?", stacklevel=2)
        return x

    def decodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        "The spectrogram back where invertible; per-clip modes return `x` as it is, still marked as normalized"
        if not (self.invertible and self.has_stats): return x
        m, s = self._shift_scale(x)
        res = x * s + m
        res.normalized = False
        return res

    def save(self, path, **info):
        "Write the stats, mode, options and count `n` to a JSON stats file, atomically; `info`: more JSON-able fields"
        fields = _file_fields(self)                   # a mode without stats, or no stats yet: refused before writing
        return save_stats(path, **fields, **info)

    def __repr__(self):
        opts = ''.join(f", {k}={v!r}" for k, v in self.options.items())
        return f"SpecNormalize(mode={self.mode!r}{opts}: {_stats_described(self)})"


def _spectrogram(x):
    "`x`, a batch of spectrograms to learn stats from; anything else (a waveform) is an error saying what is missing"
    if isinstance(x, AudioSpectrogram): return x
    raise ValueError(f"SpecNormalize learns its stats from AudioSpectrograms, but it receives {type(x).__name__} "
                     f"batches of shape {tuple(x.shape)}: put an AudioToSpec before it in batch_tfms")


def find_spec_normalize(dl) -> SpecNormalize | None:
    "The `SpecNormalize` among the batch transforms of `dl` (a DataLoader, or DataLoaders: their training one), if any"
    return next((t for t in getattr(dl.after_batch, 'fs', []) if isinstance(t, SpecNormalize)), None)


UNNORMALIZED_BATCHES = 8
"How many batches pass through a `SpecNormalize` without its stats before it warns that training may be under way"


def _unnormalized(norm: SpecNormalize, x):
    """`x` as it is, with a warning the first time `norm` passes spectrograms through without the stats it needs, and
    another after `UNNORMALIZED_BATCHES` (more than set-up and `show_batch` pass: a fit without them?)"""
    norm._passed += 1
    if norm._passed == 1:
        warnings.warn(f"{norm!r}: spectrograms pass through unnormalized until its stats are learned (setups with "
                      "frac > 0, learn(dl), SpecStatsCallback), given (stats=) or loaded (from_file)", stacklevel=2)
    elif norm._passed == UNNORMALIZED_BATCHES:
        warnings.warn(f"{norm!r}: {UNNORMALIZED_BATCHES} batches have passed through unnormalized: is a model being "
                      "trained on them? Add SpecStatsCallback() to the Learner's cbs, or call learn(dls) before "
                      "fitting", stacklevel=2)
    return x


def _noting_settings(xs, settings: list):
    "The spectrograms `xs` as they come, each one's settings (`AudioToSpec`'s `config` mark, or None) added to `settings`"
    for x in xs:
        settings.append(getattr(x, 'config', None))
        yield x


def _check_settings(norm: SpecNormalize, settings: dict | None):
    "Refuse spectrograms made with other `settings` than those `norm`'s stats describe (where both are known)"
    if settings is None or norm.spectrogram is None or settings == norm.spectrogram: return
    diff = ', '.join(f"{k}={norm.spectrogram.get(k)!r} there, {settings.get(k)!r} here"
                     for k in sorted({*settings, *norm.spectrogram}) if settings.get(k) != norm.spectrogram.get(k))
    learn = "move the stats file away" if norm.stats_file else "norm.learn(dls)"
    source = f"loaded from {norm.stats_file}" if norm.stats_file else "learned"
    raise ValueError(f"{norm.mode} stats {source} describe spectrograms made with other settings ({diff}): learn "
                     f"the stats of these spectrograms ({learn}), or make the spectrograms as they were")


def _stats_described(norm: SpecNormalize) -> str:
    "The stats of `norm` for its repr: their names, shape and count, or that there are none (yet)"
    if not norm.learns_stats: return 'per-clip stats'
    if not norm.has_stats: return 'no stats yet'
    shape = tuple(norm.stats[norm._mode.keys[0]].shape)
    return f"stats {'/'.join(norm._mode.keys)} {shape}, {norm._mode.counted} {norm.n}"


def _file_arguments(d: dict, path, kwargs: dict) -> dict:
    "The `SpecNormalize` arguments of the stats file `d` (read from `path`): its mode, arrays, count, options, `kwargs`"
    # an option in `kwargs` that the file holds with another value fails
    m = get_mode(d.get('mode'))
    opts = {k: d[k] for k in _option_names(m) if k in d}
    for k, v in opts.items():
        if k in kwargs and kwargs[k] != v:
            raise StatsFileError(f"stats file {path} was saved with {k}={v!r}, "
                                 f"but this SpecNormalize has {k}={kwargs[k]!r}")
    return dict(mode=d['mode'], stats={k: d[k] for k in d['arrays']}, **_counted(m, d.get(m.counted)),
                **{**kwargs, **opts})


def _file_fields(norm: SpecNormalize) -> dict:
    "What `SpecNormalize.save` writes to a stats file: its stats, mode, count `n` and options"
    if not norm.learns_stats:
        raise ValueError(f"{norm!r} has no stats to save: it normalizes each clip by its own "
                         "(learns_stats is False)")
    if not norm.has_stats: raise ValueError("SpecNormalize has no stats to save yet")
    return dict(**norm.stats, mode=norm.mode, **_counted(norm._mode, norm.n), **norm.options,
                **({} if norm.spectrogram is None else dict(spectrogram=norm.spectrogram)))
