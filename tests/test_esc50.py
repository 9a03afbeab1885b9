"Finding, downloading, validating and caching ESC-50"

import warnings

import pandas as pd
import pytest
import soundfile as sf
import torch

from esc50_norm.configs import Decoding
from esc50_norm import AudioConfig, AudioLoadError, AudioTensor, audio_item_tfms
from esc50_norm.study import ESC50Error, esc50_path, fold_dataloaders, load_or_build_cache, read_meta
from esc50_norm.study.datasets import get_dataset, subset_per_class
from esc50_norm.study.demo import make_fake_esc50
from esc50_norm.study.esc50 import download_esc50, read_esc10
from fastai.data.all import Pipeline


@pytest.fixture
def fake(tmp_path):
    return make_fake_esc50(tmp_path / 'esc50', clips_per_fold=1, sr=16000, seconds=(0.5, 1.0))


def test_path_from_flag_then_environment(fake, monkeypatch, tmp_path):
    monkeypatch.setenv('ESC50_PATH', str(fake))
    assert esc50_path() == fake and esc50_path(fake) == fake
    with pytest.raises(ESC50Error, match=f"given path {tmp_path} is not an ESC-50 folder"): esc50_path(tmp_path)
    monkeypatch.setenv('ESC50_PATH', str(tmp_path / 'nowhere'))
    with pytest.raises(ESC50Error, match=r"\$ESC50_PATH .*nowhere is not an ESC-50 folder"): esc50_path()
    monkeypatch.delenv('ESC50_PATH')
    with pytest.raises(ESC50Error, match='pass --data PATH or set ESC50_PATH'): esc50_path(download=False)


def test_offline_download_says_what_to_do(tmp_path):
    with pytest.raises(ESC50Error, match=r"could not download ESC-50 from http://127\.0\.0\.1:9/none\.zip.*Offline\? Point --data"):
        download_esc50(base=tmp_path, url='http://127.0.0.1:9/none.zip')


def test_partial_folder_fails_full_validation_but_passes_structural(fake):
    with pytest.raises(ESC50Error, match='has 20 rows, ESC-50 has 2000'): read_meta(fake)
    assert len(read_meta(fake, full=False)) == 20


def test_missing_clip_and_bad_fold_are_named(fake):
    (fake / 'audio' / '3-000-A-0.wav').unlink()
    with pytest.raises(ESC50Error, match='3-000-A-0.wav'): read_meta(fake, full=False)
    df = pd.read_csv(fake / 'meta' / 'esc50.csv')
    df.loc[0, 'fold'] = 9
    df.to_csv(fake / 'meta' / 'esc50.csv', index=False)
    with pytest.raises(ESC50Error, match=r'folds \[9\]'): read_meta(fake, full=False)


@pytest.mark.parametrize('content,message', [(b'', 'is empty: a CSV with a header row is needed'),
                                              (bytes(range(256)) * 8, 'is not a readable CSV'),
                                              (b'a,b\n', r"has no rows \(columns: \['a', 'b'\]\)"),
                                              (b'a,b\n1,2\n', r"lacks columns \['filename', 'fold', 'target', 'category'\] \(it has \['a', 'b'\]\)")])
def test_empty_binary_or_foreign_csv_is_named(fake, content, message):
    (fake / 'meta' / 'esc50.csv').write_bytes(content)
    with pytest.raises(ESC50Error, match=f"{fake / 'meta' / 'esc50.csv'} {message}"): read_meta(fake, full=False)


def test_non_integer_folds_are_named(fake):
    df = pd.read_csv(fake / 'meta' / 'esc50.csv')
    df.assign(fold=['one', '2.5', *df.fold[2:]]).to_csv(fake / 'meta' / 'esc50.csv', index=False)
    with pytest.raises(ESC50Error, match=r"esc50\.csv: the fold of 2 rows is not an integer: \['one', '2\.5'\]"): read_meta(fake, full=False)


@pytest.mark.parametrize('kind', ['esc50', 'esc10'])
def test_a_read_validates_the_table_once_and_the_files_once(kind, fake, monkeypatch):
    "A dataset's `meta()`: ESC-50's table checks once (esc50.validate_meta), the files once (datasets.check_meta)"
    from esc50_norm.study import esc50
    from esc50_norm.study.datasets import checks
    df = pd.read_csv(fake / 'meta' / 'esc50.csv')
    df.assign(esc10=df.target < 2).to_csv(fake / 'meta' / 'esc50.csv', index=False)
    calls = []
    for mod, name in ((esc50, 'validate_meta'), (esc50, '_with_audio'), (checks, 'check_files')):
        monkeypatch.setattr(mod, name, lambda *a, _f=getattr(mod, name), _n=name, **k: calls.append(_n) or _f(*a, **k))
    assert len(get_dataset(kind, data=fake, full=False).meta()) == (20 if kind == 'esc50' else 10)
    assert calls == ['validate_meta', 'check_files']


def test_esc10_rows_are_the_marked_ones(fake):
    with pytest.raises(ESC50Error, match='marks no clip as ESC-10'): read_esc10(fake, full=False)
    df = pd.read_csv(fake / 'meta' / 'esc50.csv')
    df.assign(esc10=df.target < 2).to_csv(fake / 'meta' / 'esc50.csv', index=False)
    ten = read_esc10(fake, full=False)
    assert ten.filename.tolist() == df.filename[df.target < 2].tolist() and set(ten.category) == set(df.category[df.target < 2])
    with pytest.raises(ESC50Error, match='ESC-10 has 400 clips, 10 classes of 40; these esc10 rows have 10 clips, 2 classes'): read_esc10(fake)
    (fake / 'audio' / ten.filename[3]).unlink()
    with pytest.raises(ESC50Error, match=f"1 of 10 clips listed in .*esc50.csv are missing .*{ten.filename[3]}"): read_esc10(fake, full=False)
    df.drop(columns='esc10').to_csv(fake / 'meta' / 'esc50.csv', index=False)
    with pytest.raises(ESC50Error, match='has no esc10 column'): read_esc10(fake, full=False)


def test_cache_is_built_once_and_names_unreadable_clips(fake, tmp_path):
    df = read_meta(fake, full=False)
    files = [fake / 'audio' / f for f in df.filename]
    a = load_or_build_cache(fake / 'audio', df.filename, tmp_path / 'c', decoding=Decoding(duration=1.0), progress=False)
    assert a.x.shape == (20, 1, 16000) and len(list((tmp_path / 'c').glob('clips-*.pt'))) == 1
    direct = Pipeline([AudioTensor.create, *audio_item_tfms(16000, True, 1.0)])(files[3])
    assert torch.equal(a.x[3], direct.as_subclass(torch.Tensor))
    b = load_or_build_cache(fake / 'audio', df.filename, tmp_path / 'c', decoding=Decoding(duration=1.0), progress=False)
    assert torch.equal(a.x, b.x) and b.filenames == a.filenames
    assert len(list((tmp_path / 'c').glob('clips-*.pt'))) == 1
    files[5].write_bytes(b'not audio at all')
    with pytest.raises(AudioLoadError, match=files[5].name):
        load_or_build_cache(fake / 'audio', df.filename, tmp_path / 'c', decoding=Decoding(duration=1.0), progress=False)


def test_silent_clip_is_cached_with_a_warning_naming_it(fake, tmp_path):
    df = read_meta(fake, full=False)
    sf.write(fake / 'audio' / df.filename[0], torch.zeros(8000).numpy(), 16000)
    with pytest.warns(UserWarning, match=f"silent.*{df.filename[0]}"):
        load_or_build_cache(fake / 'audio', df.filename, tmp_path / 'c', decoding=Decoding(duration=1.0), progress=False)


def test_cache_keeps_each_source_clip_and_reports_odd_ones(fake, tmp_path):
    "Each clip's original duration, rate and channels travel with the cache; silent and far-too-short clips are named"
    df = read_meta(fake, full=False)
    sf.write(fake / 'audio' / df.filename[1], torch.rand(3000).numpy() - 0.5, 16000)          # 0.19 s among 0.5-1 s clips
    with pytest.warns(UserWarning, match=f"far shorter than the rest.*{df.filename[1]} \\(0.19 s\\)"):
        cache = load_or_build_cache(fake / 'audio', df.filename, tmp_path / 'c', decoding=Decoding(duration=1.0), progress=False)
    info = cache.info.set_index('filename')
    for f in df.filename[:6]:
        direct = AudioTensor.create(fake / 'audio' / f)
        assert info.loc[f, 'duration'] == pytest.approx(direct.duration) and info.loc[f, 'channels'] == direct.nchannels
        assert info.loc[f, 'sr'] == direct.sr
    again = load_or_build_cache(fake / 'audio', df.filename, tmp_path / 'c', decoding=Decoding(duration=1.0), progress=False)
    assert again.info.equals(cache.info) and again.report() == cache.report()
    assert cache.report().splitlines()[0].startswith('20 clips: 0.19-') and 'silent (all zeros): none' in cache.report()


@pytest.mark.slow
def test_a_truncated_ogg_is_named_in_the_data_report(shared_esc50, tmp_path):
    "5 kB of a 5 s ESC-50 clip decode to 2 s: the cache pads it, and the data report says so"
    meta = read_meta(shared_esc50).iloc[:40]
    files = [shared_esc50 / 'audio' / f for f in meta.filename]
    (tmp_path / 'cut.ogg').write_bytes(files[0].read_bytes()[:5000])
    logs = []
    with warnings.catch_warnings():                      # logged, it is not warned about as well
        warnings.simplefilter('error', UserWarning)
        load_or_build_cache(tmp_path, ['cut.ogg', *files[1:]], tmp_path / 'c', progress=False, log=logs.append)
    assert 'far shorter than the rest (under 2.50 s, zero-padded): cut.ogg (2.03 s)' in logs[0] and logs[0].startswith('decoded 40 clips')


@pytest.mark.slow
def test_real_copy_validates_in_full(shared_esc50):
    df = read_meta(shared_esc50)
    assert len(df) == 2000 and df.category.nunique() == 50 and sorted(df.fold.unique()) == [1, 2, 3, 4, 5]


@pytest.mark.slow
def test_real_48k_and_stereo_clips_become_16k_mono_5s(shared_esc50):
    df = read_meta(shared_esc50)
    infos = {f: sf.info(shared_esc50 / 'audio' / f) for f in df.filename[:400]}
    pick = [next(f for f, i in infos.items() if i.samplerate == 48000), next(f for f, i in infos.items() if i.channels == 2)]
    load = Pipeline([AudioTensor.create, *audio_item_tfms()])
    for f in pick:
        x = load(shared_esc50 / 'audio' / f)
        assert x.sr == 16000 and tuple(x.shape) == (1, 80000) and torch.isfinite(x).all() and x.abs().max() > 0


@pytest.mark.slow
def test_real_clips_through_the_files_datablock(shared_esc50):
    df = subset_per_class(get_dataset(data=shared_esc50).meta(), 1)
    df = df[df.target < 4].reset_index(drop=True)
    dls = fold_dataloaders(df, 1, 'channel', AudioConfig.BasicSpectrogram(), bs=8, pipeline='files', audio_root=shared_esc50 / 'audio',
                           device='cpu')
    x, y = dls.train.one_batch()
    assert tuple(x.shape) == (8, 1, 201, 401) and torch.isfinite(x).all() and len(dls.vocab) == 4


def test_the_data_report_names_eight_odd_clips_and_counts_the_rest():
    "Ten silent clips of twenty: the first eight by name and duration, then how many more; none where there are none"
    from esc50_norm.study.cache import data_report
    info = pd.DataFrame(dict(filename=[f"c{i}.wav" for i in range(20)], duration=5.0, sr=16000, channels=1,
                             peak=[0.0] * 10 + [0.5] * 10))
    silent = next(line for line in data_report(info).splitlines() if line.startswith('silent'))
    assert silent == "silent (all zeros): " + ', '.join(f"c{i}.wav (5.00 s)" for i in range(8)) + " and 2 more"
    assert "far shorter than the rest (under 2.50 s, zero-padded): none" in data_report(info)
