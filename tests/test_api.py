"The package's public API: lazy (no torch or fastai until a name is used), and safe to star-import after fastai's"
import importlib
import subprocess
import sys

import pytest

import esc50_norm


def test_star_import_after_fastai_adds_exactly_all_and_replaces_nothing():
    ns = {}
    exec('from fastai.vision.all import *', ns)
    before = dict(ns)
    exec('from esc50_norm import *', ns)
    assert set(ns) - set(before) == set(esc50_norm.__all__)
    assert not [k for k in before if ns[k] is not before[k]], 'a fastai name was replaced'
    assert ns['AudioCropPad'].__module__ == 'esc50_norm.audio' and ns['CropPad'].__module__.startswith('fastai')


def test_every_public_name_resolves_from_its_submodule():
    assert len(esc50_norm.__all__) == len(set(esc50_norm.__all__))
    for name in esc50_norm.__all__:
        obj = getattr(esc50_norm, name)
        mod = importlib.import_module(f"esc50_norm.{esc50_norm._WHERE[name]}")
        assert getattr(mod, name) is obj and name in mod.__all__, name
    assert {'RandomTimeShift', 'SpecMask', 'Augment', 'find_spec_normalize', 'SpecNormalize', 'AudioCropPad'} <= set(esc50_norm.__all__)
    assert set(esc50_norm.__all__) <= set(dir(esc50_norm))
    assert not any(n.startswith('_') or n in ('study', 'audio', 'normalize', 'stats') for n in esc50_norm.__all__)
    with pytest.raises(AttributeError, match="module 'esc50_norm' has no attribute 'CropPad'"): esc50_norm.CropPad


@pytest.mark.parametrize('module,old,new', [('esc50_norm.audio', 'CropPad', 'AudioCropPad'),
                                            ('esc50_norm.study.train', 'ChannelsLast', 'ChannelsLastInput')])
def test_names_that_older_exports_pickled_unpickle_as_todays_without_being_defined(module, old, new):
    "An export names a class by module and name (pickle's GLOBAL); the old name resolves, but shadows nothing"
    import pickle
    mod = importlib.import_module(module)
    assert pickle.loads(f"c{module}\n{old}\n.".encode()) is getattr(mod, new)
    assert old not in vars(mod) and old not in getattr(mod, '__all__', [])
    with pytest.raises(AttributeError, match="'Nothing'"): pickle.loads(f"c{module}\nNothing\n.".encode())


def test_importing_the_package_imports_neither_torch_nor_fastai():
    code = ("import sys, esc50_norm; heavy = sorted(m for m in ('torch', 'fastai', 'torchaudio') if m in sys.modules); "
            "print(esc50_norm.__version__, heavy)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{esc50_norm.__version__} []"


def test_report_and_help_load_no_training_code():
    "`esc50-norm --help` and `report` read presets and run files: neither torch, fastai nor the study's training modules load"
    code = ("import sys, contextlib, io, esc50_norm.study.report, esc50_norm.study.cli as cli\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit): cli.main(['--help'])\n"
            "from esc50_norm.study.presets import PRESETS\n"
            "print(sorted(m for m in ('torch', 'fastai', 'esc50_norm.study.train', 'esc50_norm.study.engines') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'


def test_fold_splitter_is_the_librarys_and_the_study_still_names_it():
    "`FoldSplitter` lives in the library (esc50_norm.folds); `from esc50_norm.study import FoldSplitter` gives the same"
    import pandas as pd
    from esc50_norm.study import DatasetError, FoldSplitter, fold_split
    assert FoldSplitter is esc50_norm.FoldSplitter and FoldSplitter.__module__ == 'esc50_norm.folds'
    df = pd.DataFrame(dict(fold=[1, 2, 1, 3]))
    assert FoldSplitter(1)(df) == ([1, 3], [0, 2]) and FoldSplitter(0)(df) == ([0, 1, 2, 3], [])
    with pytest.raises(ValueError, match=r"fold 4 does not exist; this data has folds \[1, 2, 3\]"): FoldSplitter(4)(df)
    with pytest.raises(DatasetError, match='fold 4 does not exist'): fold_split(df, 4)     # the study's: its own error


@pytest.mark.parametrize('make,named', [
    (lambda e: e.SpectrogramConfig(n_fft=-400), "n_fft=-400"),
    (lambda e: e.SpectrogramConfig(hop_length=0), "hop_length=0"),
    (lambda e: e.SpectrogramConfig(power=-1.0), "power=-1.0"),
    (lambda e: e.SpectrogramConfig(win_length=800), "win_length=800 is longer than n_fft=400"),
    (lambda e: e.SpectrogramConfig(mel=True, n_mels=0), "n_mels=0"),
    (lambda e: e.SpectrogramConfig(mel=True, n_mels=600, n_fft=1024), "n_mels=600 bands over the 513 frequency bins"),
    (lambda e: e.AudioBlock(sr=0), "Resample takes numbers above 0, got sr=0"),
    (lambda e: e.AudioBlock(duration=-0.1), "AudioCropPad takes numbers above 0, got duration=-0.1"),
    (lambda e: e.AudioBlock(duration=0), "AudioCropPad takes numbers above 0, got duration=0"),
    (lambda e: e.SpecNormalize('instance', eps=0), "SpecNormalize takes numbers above 0, got eps=0"),
    (lambda e: e.SpecNormalize('global', eps=float('nan')), "eps=nan"),
    (lambda e: e.SpecNormalize(None), "unknown normalization mode None"),
    (lambda e: e.SpecStatsCallback(frac=2), "SpecStatsCallback: frac must be in (0, 1], got 2"),
    (lambda e: e.SpecMask(n=-1), "SpecMask takes whole numbers above 0, got n=-1"),
    (lambda e: e.get_audio_files('/no/such/folder'), "/no/such/folder is not a folder"),
    (lambda e: e.AudioConfig.BasicMelSpectrogram(sr=22050), "unknown SpectrogramConfig field ['sr']"),
    (lambda e: e.AudioConfig.BasicMelSpectrogram(sr=22050), "(an AudioBlock's sr is a spectrogram's sample_rate)"),
    (lambda e: e.AudioToSpec(n_mel=64), "unknown SpectrogramConfig field ['n_mel'] (did you mean 'n_mels'?)"),
    (lambda e: e.SpecNormalize.from_file('stats.json', mode='globl'), "unknown normalization mode 'globl' (did you mean 'global'?)"),
])
def test_a_nonsensical_argument_is_refused_at_construction_naming_it(make, named):
    "Refused where it is given, before any data is read: not accepted (silently cropping, NaN) nor failing in a batch"
    with pytest.raises((ValueError, FileNotFoundError, TypeError)) as e: make(esc50_norm)
    assert named in str(e.value)
