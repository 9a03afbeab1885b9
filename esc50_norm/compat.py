"""Why the library's old files still read: every shim that its files written by earlier versions need, in one place.

The committed results (`results/`) were made before some fields and formats existed. Rather than rewrite
those files (they are data), the code reads them as they are, through the functions here:
- fields added to a dataclass later (`later`) are left out of its recorded form while at their default, so
  the recipe hash of a folder recorded before the field existed is unchanged;
- stats files of the first format hold `mean`/`std` only, without `arrays` or `mode`; files before 0.4.0 name a count
  `count` (now `n_per_bin` for mean/std, `n_clips` for minmax) and minmax's option `robust` (now `mean_clip_extremes`)
  (`upgrade_stats`, `RENAMED_FIELDS`);
- models exported by 0.2.0 (`Learner.export`, `study --save-models`) name `esc50_norm.audio.CropPad`, now
  `AudioCropPad`; models the study exported with channels-last before `ChannelsLastInput` moved into the library name
  `esc50_norm.study.train.ChannelsLast` (both in `RENAMED`, answered by `old_names`); 0.2.0's pickled `SpecNormalize`
  holds a `stats` dict beside float32 copies, a `count` and `robust` (`upgrade_spec_normalize`).
The study's results folders have their own: `esc50_norm.study.compat`.
"""
from __future__ import annotations
import sys
from dataclasses import asdict, field, fields

__all__ = ['later', 'recorded_dict', 'upgrade_stats', 'RENAMED_FIELDS', 'RENAMED', 'old_names',
           'upgrade_spec_normalize']

_LATER = {'recorded': 'unless default'}


def later(default=None):
    "A dataclass field added after results were recorded: recorded (and hashed) only when it differs from its default"
    return field(default=default, metadata=_LATER)


def later_defaults(cls) -> dict:
    "The fields of dataclass `cls` added later, with their defaults"
    return {f.name: f.default for f in fields(cls) if f.metadata.get('recorded') == 'unless default'}


def recorded_dict(obj) -> dict:
    "`asdict(obj)` without the later fields that still have their default: the form files record and hashes see"
    d, defaults = asdict(obj), later_defaults(type(obj))
    return {k: v for k, v in d.items() if not (k in defaults and v == defaults[k])}


RENAMED_FIELDS = {'global': {'count': 'n_per_bin'}, 'channel': {'count': 'n_per_bin'},
                  'minmax': {'count': 'n_clips', 'robust': 'mean_clip_extremes'}}
"Fields of stats files and `SpecNormalize` state before 0.4.0, by mode: old name -> today's"


def _renamed_fields(d: dict, mode: str | None) -> dict:
    "`d` with the fields `RENAMED_FIELDS` gives for `mode` under today's names"
    for old, new in RENAMED_FIELDS.get(mode, {}).items():
        if old in d: d.setdefault(new, d.pop(old))
    return d


def upgrade_stats(d: dict) -> dict:
    "A stats file's dict in today's form: the first format's `mean`/`std` only (mode by shape); fields renamed since"
    d.setdefault('arrays', ['mean', 'std'])
    if 'mode' not in d and d['arrays'] == ['mean', 'std']:
        d['mode'] = 'global' if len(d.get('mean') or []) == 1 else 'channel'
    return _renamed_fields(d, d.get('mode'))


RENAMED = {'esc50_norm.audio': {'CropPad': 'AudioCropPad'},
           'esc50_norm.study.train': {'ChannelsLast': 'ChannelsLastInput'}}   # the study's own callback, once
"Names of earlier versions that exported models still ask for, by module: old name -> today's"


def old_names(module: str):
    "A module `__getattr__` that answers the old names `RENAMED` lists for `module` with today's objects"
    def __getattr__(name: str):
        if name in RENAMED.get(module, {}): return getattr(sys.modules[module], RENAMED[module][name])
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return __getattr__


def upgrade_spec_normalize(state: dict) -> dict:
    "The pickled state of a `SpecNormalize` in today's form"
    # 0.2.0 kept a `stats` dict and float32 `_shift`/`_scale` copies
    if 'stats' in state:
        state.update(state.pop('stats') or {})
        state.pop('_shift', None)
        state.pop('_scale', None)
    _renamed_fields(state, state.get('mode'))
    for k in state['_mode'].keys: state.setdefault(k, None)
    state.setdefault('_passed', int(state.pop('_warned', False)))   # older pickles: a flag, `_warned`, not a count
    state.setdefault('learned', None)                  # models before it was recorded: their stats count as given
    state.setdefault('stats_file', None)               # models before it was recorded: no file named
    state.setdefault('spectrogram', None)              # models before it was recorded: settings not known
    return state
