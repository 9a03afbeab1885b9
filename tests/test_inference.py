"predict(path) before and after export for every kind of learner the library builds; predict_files, load_exported, show()"
import json
import struct
import zipfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from fastai.data.all import CategoryBlock, ColReader, CrossEntropyLossFlat, DataBlock, TfmdDL
from fastai.learner import Learner, load_learner
from torch import nn

from esc50_norm.configs import Decoding
from esc50_norm import (AudioBlock, AudioCropPad, AudioLoadError, AudioNormalize, AudioTensor, AudioToSpec, ModelLoadError,
                        NonFiniteAudioError, PredictionError, SpecNormalize, SpectrogramConfig, find_spec_normalize, load_exported,
                        predict_files)
from esc50_norm.study import FoldSplitter, fold_dataloaders, get_dataset, load_or_build_cache
from esc50_norm.study.demo import make_fake_esc50

pytestmark = pytest.mark.filterwarnings("ignore:load_learner` uses Python")      # files we wrote ourselves
SPEC = SpectrogramConfig(n_fft=256, hop_length=400, mel=True, n_mels=16)
SR, SECONDS = 16000, 3.0
KINDS = ('readme', 'files', 'cached', 'device')


@pytest.fixture(scope='module')
def fake(tmp_path_factory):
    "20 clips of 1-2 s at 16 kHz (some stereo), their cache at 3 s, and odd files: 48 kHz stereo 7 s, 22.05 kHz mono 2 s"
    d = tmp_path_factory.mktemp('inf')
    root = make_fake_esc50(d / 'esc50', clips_per_fold=1, sr=SR, seconds=(1.0, 2.0))
    df = get_dataset(data=root, full=False).meta()
    cache = load_or_build_cache(root / 'audio', df.file, d / 'cache', decoding=Decoding(SR, SECONDS), progress=False)
    rng = np.random.default_rng(1)
    t = np.arange(7 * 48000) / 48000
    sf.write(d / 'stereo48k.wav', np.stack([np.sin(2 * np.pi * 2500 * t), rng.standard_normal(len(t))], 1).astype('float32') * 0.3, 48000)
    sf.write(d / 'mono2s.flac', (0.3 * np.sin(2 * np.pi * 150 * np.arange(44100) / 22050)).astype('float32'), 22050)
    return d, root, df, cache


def tiny_model(n_out): return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_out))


def make_dls(fake, kind):
    d, root, df, cache = fake
    if kind == 'readme':                                      # the README's DataBlock
        dblock = DataBlock(blocks=(AudioBlock(sr=SR, duration=SECONDS), CategoryBlock),
                           get_x=ColReader('file', pref=f'{root}/audio/'), get_y=ColReader('label'),
                           splitter=FoldSplitter(valid_fold=1),
                           batch_tfms=[AudioNormalize(), AudioToSpec(SPEC), SpecNormalize('channel')])
        return dblock.dataloaders(df, bs=4, num_workers=0)
    return fold_dataloaders(df, 1, 'channel', SPEC, pipeline=kind, cache=cache, audio_root=root / 'audio', bs=4, device='cpu')


@pytest.fixture(scope='module')
def learners(fake):
    "Each kind trained for one epoch, with its own folder"
    d, *_ = fake
    res = {}
    for kind in KINDS:
        torch.manual_seed(0)
        dls = make_dls(fake, kind)
        learn = Learner(dls, tiny_model(len(dls.vocab)), loss_func=CrossEntropyLossFlat(), path=d / kind)
        (d / kind).mkdir()
        with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
        res[kind] = learn
    return res


@pytest.fixture(scope='module')
def exported(fake, learners):
    "Each learner exported to `export.pkl` and loaded back with `load_learner`"
    d, *_ = fake
    for learn in learners.values(): learn.export()
    return {kind: load_learner(d / kind / 'export.pkl') for kind in KINDS}


def probs(learn, item): return learn.predict(item)[2]


@pytest.mark.parametrize('kind', KINDS)
def test_predict_path_after_export_equals_predict_before(fake, learners, exported, kind):
    d, root, df, cache = fake
    learn, rows = learners[kind], df.index[df.fold == 1][:2]
    before = [probs(learn, df.loc[i]) for i in rows]                   # metadata rows, as in training
    assert not torch.allclose(before[0], before[1], atol=1e-4)          # the model tells these clips apart
    paths = [root / 'audio' / df.file[i] for i in rows]
    assert torch.allclose(probs(learn, paths[0]), before[0], atol=1e-5)
    loaded = exported[kind]
    assert type(loaded.dls.valid) is TfmdDL
    for p, b in zip(paths, before):
        cls, _, pr = loaded.predict(p)
        assert torch.allclose(pr, b, atol=1e-5) and cls == learn.dls.vocab[b.argmax()]
        assert torch.allclose(probs(loaded, str(p)), b, atol=1e-5)
    assert torch.equal(find_spec_normalize(loaded.dls.valid).stats['mean'], find_spec_normalize(learn.dls.valid).stats['mean'])
    if kind in ('readme', 'files'): assert torch.allclose(probs(loaded, df.loc[rows[0]]), before[0], atol=1e-5)   # rows still read files


@pytest.mark.parametrize('kind', ('cached', 'device'))
def test_export_leaves_the_clip_cache_behind(fake, learners, kind):
    d, root, df, cache = fake
    learners[kind].export(f'{kind}.pkl')
    fn = d / kind / f'{kind}.pkl'
    clip_bytes = cache.x[0].numel() * 4
    assert fn.stat().st_size < cache.x.nbytes / 10
    with zipfile.ZipFile(fn) as z:                                      # torch.save: one archive entry per tensor storage
        assert max(i.file_size for i in z.infolist() if '/data/' in i.filename) < clip_bytes
    loaded = load_learner(fn)
    with pytest.raises(ValueError, match=f"clip {df.file[0]}: .*predict from an audio file or AudioTensor"):
        loaded.predict(df.iloc[0])
    kept = probs(learners[kind], df.iloc[0])                            # the learner itself keeps its cache:
    assert torch.allclose(kept, probs(learners[kind], root / 'audio' / df.file[0]), atol=1e-5)   # its row is the file


def by_hand(fn, seconds=SECONDS):
    "Read, mean-downmix, resample to 16 kHz and crop/pad `fn` without the library's transforms"
    data, sr = sf.read(str(fn), dtype='float32', always_2d=True)
    x = torchaudio.functional.resample(torch.from_numpy(data.T.copy()).mean(0, keepdim=True), sr, SR)
    n = round(seconds * SR)
    return AudioTensor(nn.functional.pad(x, (0, max(0, n - x.shape[-1])))[..., :n], sr=SR)


@pytest.mark.parametrize('kind', ('readme', 'device'))
@pytest.mark.parametrize('name', ('stereo48k.wav', 'mono2s.flac'))
def test_any_rate_channels_and_length_are_brought_to_the_training_format(fake, exported, kind, name):
    d, *_ = fake
    loaded = exported[kind]
    ref = probs(loaded, by_hand(d / name))
    assert ref.shape == (4,) and ref.sum() == pytest.approx(1)
    assert torch.allclose(probs(loaded, d / name), ref, atol=1e-5)
    assert torch.allclose(probs(loaded, AudioTensor.create(d / name)), ref, atol=1e-5)     # a raw AudioTensor too
    other = probs(loaded, by_hand(d / ('mono2s.flac' if name == 'stereo48k.wav' else 'stereo48k.wav')))
    assert not torch.allclose(other, ref, atol=1e-4)


def test_predict_files_ranks_the_classes_and_names_bad_files(fake, exported, tmp_path):
    d, root, df, _ = fake
    learn = exported['cached']
    files = [root / 'audio' / df.file[0], d / 'stereo48k.wav', d / 'mono2s.flac']
    res = predict_files(learn, files, top_k=3)
    assert list(res.columns) == ['file', 'rank', 'class', 'probability'] and len(res) == 9
    for f, g in res.groupby('file', sort=False):
        p = probs(learn, f)
        assert g['rank'].tolist() == [1, 2, 3] and g['class'].tolist() == [learn.dls.vocab[i] for i in p.argsort(descending=True)[:3]]
        assert np.allclose(g.probability, p.sort(descending=True).values[:3], atol=1e-5)
    assert len(predict_files(learn, files[:1], top_k=10)) == 4                 # at most every class
    with pytest.raises(AudioLoadError, match=f"not found: {tmp_path / 'nope.wav'}"): predict_files(learn, [files[0], tmp_path / 'nope.wav'])
    with pytest.raises(AudioLoadError, match=f"a folder, not an audio file: {tmp_path}"): predict_files(learn, [files[0], tmp_path])
    assert predict_files(learn, str(files[0]), top_k=2).equals(predict_files(learn, [files[0]], top_k=2))  # one path: one file
    for bad in (dict(bs=-1), dict(bs=0), dict(top_k=0)):                 # not an empty table, nor a late error
        with pytest.raises(ValueError, match=f"predict_files takes whole numbers above 0, got {'='.join(map(str, *bad.items()))}"):
            predict_files(learn, files[:1], **bad)
    (tmp_path / 'bad.ogg').write_text('not audio')
    with pytest.raises(AudioLoadError, match=f"cannot read audio file {tmp_path / 'bad.ogg'}"): predict_files(learn, [tmp_path / 'bad.ogg'])
    with pytest.raises(AudioLoadError, match=f"audio file not found: {tmp_path / 'nope.wav'}$"):    # predict, as predict_files
        learn.predict(tmp_path / 'nope.wav')


def test_predict_files_warns_about_silent_and_short_files_and_never_answers_nan(fake, exported, tmp_path):
    d, root, df, _ = fake
    learn, ok = exported['readme'], root / 'audio' / df.file[0]
    sf.write(tmp_path / 'silent.wav', np.zeros(3 * SR, 'float32'), SR)
    sf.write(tmp_path / 'short.wav', 0.3 * np.random.default_rng(0).standard_normal(int(1.4 * SR)).astype('float32'), SR)
    noise = lambda seed, s: 0.3 * np.random.default_rng(seed).standard_normal(int(s * SR)).astype('float32')
    for name, seed, seconds in [('long-enough', 1, 1.6), ('not-too-long', 2, 5.9), ('long', 3, 6.5)]:
        sf.write(tmp_path / f'{name}.wav', noise(seed, seconds), SR)
    files = [ok] + [tmp_path / f'{n}.wav' for n in ('silent', 'short', 'long-enough', 'not-too-long', 'long')]
    with pytest.warns(UserWarning) as seen: res = predict_files(learn, files)
    messages = [str(w.message) for w in seen]
    assert f"audio file {tmp_path / 'silent.wav'} is silent (all samples are zero)" in messages[0]
    assert f"audio file {tmp_path / 'short.wav'} lasts 1.40 s, under half the 3 s of the training clips" in messages[1]
    assert messages[2] == (f"audio file {tmp_path / 'long.wav'} lasts 6.50 s, over twice the 3 s of the training clips: "
                           "the model hears its first 3 s")
    assert len(messages) == 3 and res.probability.notna().all()   # 1.6 and 5.9 s are near enough the 3 s: no warning
    head = tmp_path / 'head.wav'                                    # what the model hears of the long clip: its start
    sf.write(head, noise(3, 6.5)[:3 * SR], SR)
    assert predict_files(learn, [head]).equals(predict_files(learn, [tmp_path / 'long.wav']).assign(file=str(head)))
    json.dumps(res.to_dict(orient='records'), allow_nan=False)                   # what the CLI's --json prints
    sf.write(tmp_path / 'nan.wav', np.full(SR, np.nan, 'float32'), SR, subtype='FLOAT')
    with pytest.raises(NonFiniteAudioError, match=f"{tmp_path / 'nan.wav'} holds {SR} samples that are NaN or inf"):
        predict_files(learn, [ok, tmp_path / 'nan.wav'])


def test_a_file_with_non_finite_probabilities_is_an_error_naming_it(fake, tmp_path):
    "A model that answers NaN for zero-padded clips (the `NanIfPadded` layer): predict_files names that file, never returns NaN"
    d, root, df, _ = fake
    learn = load_learner(d / 'readme' / 'export.pkl')
    learn.model = nn.Sequential(NanIfPadded(), learn.model)
    x = 0.3 * np.random.default_rng(0).standard_normal(int(SECONDS * SR)).astype('float32')
    sf.write(tmp_path / 'full.wav', x, SR)
    sf.write(tmp_path / 'padded.wav', x[:2 * SR], SR)                       # 2 s: padded to 3 s, not short enough to warn
    assert predict_files(learn, [tmp_path / 'full.wav']).probability.notna().all()
    with pytest.raises(PredictionError, match=f"NaN or inf probabilities for {tmp_path / 'padded.wav'}$"):
        predict_files(learn, [tmp_path / 'full.wav', tmp_path / 'padded.wav'])


class NanIfPadded(nn.Module):
    "NaN for every clip whose last two spectrogram frames are equal (zero padding), the input as it is for the others"
    def forward(self, x):
        padded = (x[..., -1] == x[..., -2]).flatten(1).all(1)
        return torch.where(padded.view(-1, 1, 1, 1), torch.full_like(x, float('nan')), x)


def test_load_exported_names_the_file(fake, learners, tmp_path):
    d, *_ = fake
    with pytest.raises(ModelLoadError, match=f"{tmp_path / 'none.pkl'} does not exist"): load_exported(tmp_path / 'none.pkl')
    (tmp_path / 'text.pkl').write_text('hello')
    with pytest.raises(ModelLoadError, match=f"cannot load model file {tmp_path / 'text.pkl'}"): load_exported(tmp_path / 'text.pkl')
    torch.save({'w': torch.zeros(2)}, tmp_path / 'weights.pth')
    with pytest.raises(ModelLoadError, match=f"model file {tmp_path / 'weights.pth'} holds a dict, not a fastai Learner"):
        load_exported(tmp_path / 'weights.pth')                # a state dict saved where a model was expected
    learners['files'].export('model.pkl')
    assert isinstance(load_exported(d / 'files' / 'model.pkl'), Learner)


def test_show_plays_the_clip_only_in_a_notebook(monkeypatch, capsys):
    import esc50_norm.audio as audio
    import IPython.display
    clip, shown = AudioTensor(torch.randn(2, 800), sr=8000), []
    clip.show(); clip.show(hear=True)
    assert capsys.readouterr() == ('', '')                               # outside IPython: nothing printed, nothing played
    monkeypatch.setattr(audio, 'in_notebook', lambda: True)
    monkeypatch.setattr(IPython.display, 'display', shown.append)
    clip.show(); clip.show(hear=False); AudioTensor(torch.zeros(1, 80), sr=8000).show()
    assert [type(o).__name__ for o in shown] == ['Audio', 'Audio']
    assert shown[0].data[:4] == b'RIFF' and struct.unpack('<HI', shown[0].data[22:28]) == (2, 8000)   # WAV: 2 channels, 8 kHz
    plt.close('all')


OLD = Path(__file__).parent / 'data' / 'export-0.2.0'
V030 = Path(__file__).parent / 'data' / 'export-0.3.0'


@pytest.mark.parametrize('mode', ['channel', 'minmax'])
def test_a_model_exported_by_0_2_0_still_loads_and_predicts_as_it_did(mode, tmp_path):
    "tests/data/export-0.2.0: learners exported by 0.2.0 (CropPad, SpecNormalize's old state) and what they predicted then"
    expected = json.loads((OLD / 'predictions.json').read_text())
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=expected['clips_per_fold'], sr=expected['sr'], seconds=tuple(expected['seconds']))
    learn = load_exported(OLD / f'{mode}.pkl')
    norm = find_spec_normalize(learn.dls.valid)
    assert norm.mode == mode and norm.has_stats and isinstance(learn.dls.after_item.fs[2], AudioCropPad)
    probs = learn.predict(root / 'audio' / expected['clip'])[2]
    assert torch.allclose(probs, torch.tensor(expected[mode]), atol=1e-5)


@pytest.mark.parametrize('mode', ['channel', 'minmax'])
def test_a_model_exported_by_0_3_0_still_loads_and_predicts_as_it_did(mode, tmp_path):
    "tests/data/export-0.3.0 (made by its make.py at 0.3.0): SpecNormalize's `count` and minmax's `robust` renamed since"
    expected = json.loads((V030 / 'predictions.json').read_text())
    assert expected['version'] == '0.3.0'
    root = make_fake_esc50(tmp_path / 'esc50', clips_per_fold=expected['clips_per_fold'], sr=expected['sr'],
                           seconds=tuple(expected['seconds']))
    learn = load_exported(V030 / f'{mode}.pkl')
    norm = find_spec_normalize(learn.dls.valid)
    assert norm.mode == mode and norm.has_stats and norm.n > 0 and not hasattr(norm, 'count')
    if mode == 'minmax': assert norm.mean_clip_extremes is True and 'robust' not in norm.__dict__
    probs = learn.predict(root / 'audio' / expected['clip'])[2]
    assert torch.allclose(probs, torch.tensor(expected[mode]), atol=1e-5)
