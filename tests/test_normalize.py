"AudioNormalize, AudioToSpec and SpecNormalize on tensors, against direct computations"
import json
import re
import warnings

import numpy as np
import pytest
import torch
import torchaudio
from fastai.data.all import TensorCategory

from esc50_norm import (AudioConfig, AudioNormalize, AudioSpectrogram, AudioTensor, AudioToSpec, SpecNormalize,
                        StatsFileError)


def specs(b=3, f=7, t=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    return AudioSpectrogram(torch.randn(b, 1, f, t, generator=g) * 20 - 40 + torch.linspace(0, 30, f).view(1, 1, f, 1))


def test_audio_normalize_gives_each_clip_zero_mean_unit_std():
    x = AudioTensor(torch.randn(4, 1, 1000) * torch.tensor([0.1, 1, 5, 30]).view(4, 1, 1) + 2, sr=16000)
    y = AudioNormalize()(x).numpy()
    for clip, orig in zip(y, x.numpy()):
        assert clip.mean() == pytest.approx(0, abs=1e-5) and clip.std() == pytest.approx(1, abs=1e-4)
        assert np.allclose(clip, (orig - orig.mean()) / orig.std(), atol=1e-4)


def test_silent_clip_stays_finite_zeros():
    y = AudioNormalize()(AudioTensor(torch.zeros(2, 1, 500), sr=16000))
    assert torch.isfinite(y).all() and y.eq(0).all() and isinstance(y, AudioTensor)


def test_basic_spectrogram_shape_and_values_match_torchaudio():
    x = torch.randn(2, 1, 80000)
    s = AudioToSpec(AudioConfig.BasicSpectrogram())(AudioTensor(x, sr=16000))
    assert isinstance(s, AudioSpectrogram) and tuple(s.shape) == (2, 1, 201, 401)
    ref = torchaudio.transforms.AmplitudeToDB('power')(torchaudio.transforms.Spectrogram(n_fft=400, hop_length=200, power=2)(x))
    assert torch.allclose(s.as_subclass(torch.Tensor), ref, atol=1e-4)
    one = AudioToSpec()(AudioTensor(x[0], sr=16000))
    assert tuple(one.shape) == (1, 201, 401) and torch.allclose(one.as_subclass(torch.Tensor), ref[0], atol=1e-4)
    mel = AudioToSpec(AudioConfig.BasicMelSpectrogram(n_mels=64))(AudioTensor(x, sr=16000))
    mel_ref = torchaudio.transforms.AmplitudeToDB('power')(
        torchaudio.transforms.MelSpectrogram(16000, n_fft=1024, hop_length=256, n_mels=64)(x))
    assert mel.shape[-2] == 64 and AudioConfig.BasicMelSpectrogram(n_mels=64).n_freq == 64
    assert torch.allclose(mel.as_subclass(torch.Tensor), mel_ref, atol=1e-3)


def test_spectrogram_of_the_wrong_rate_is_refused():
    with pytest.raises(ValueError, match='expects 16000 Hz audio, got 44100 Hz: give its config sample_rate=44100 '):
        AudioToSpec()(AudioTensor(torch.zeros(1, 4410), sr=44100))


@pytest.mark.parametrize('mode,shape', [('global', (1, 1, 1, 1)), ('channel', (1, 1, 7, 1))])
def test_spec_normalize_standardizes_and_decodes_exactly(mode, shape):
    x = specs()
    axes = (0, 1, 2, 3) if mode == 'global' else (0, 1, 3)
    std, mean = torch.std_mean(x.as_subclass(torch.Tensor).double(), dim=axes, keepdim=True, correction=0)
    flat = lambda t: t.float().flatten() if mode == 'channel' else t.item()      # as a user gives them: a list or a number
    n = SpecNormalize(mode, stats=dict(mean=flat(mean), std=flat(std)))
    assert tuple(n.mean.shape) == shape and n.stats['std'].dtype == torch.float64     # stored in that shape, in float64
    y = n(x)
    assert isinstance(y, AudioSpectrogram)
    assert torch.allclose(y.mean(dim=axes), torch.zeros(()), atol=1e-5) and torch.allclose(y.std(dim=axes, correction=0), torch.ones(()), atol=1e-5)
    assert torch.allclose(n.decode(y), x, atol=1e-4)


def test_spec_normalize_passes_labels_and_waveforms_through():
    n = SpecNormalize('global', stats=dict(mean=5., std=2.))
    wave, label = AudioTensor(torch.ones(1, 1, 10), sr=16000), TensorCategory([3])
    with pytest.warns(UserWarning, match='is an AudioToSpec missing'): xs, w, l = n((specs(), wave, label))
    assert torch.equal(w, wave) and torch.equal(l, label)
    assert torch.allclose(xs, (specs() - 5) / 2)


def test_channel_stats_of_the_wrong_size_name_both_shapes():
    n = SpecNormalize('channel', stats=dict(mean=torch.zeros(5), std=torch.ones(5)))
    with pytest.raises(ValueError, match=r"channel stats of shape \(1, 1, 5, 1\) do not fit spectrograms of shape \(3, 1, 7, 11\)") as e:
        n(specs())
    assert 'loaded from' not in str(e.value)                                    # given, not read from a file
    with pytest.raises(ValueError, match=r"global stats need shape \(1, 1, 1, 1\), got mean \(1, 1, 5, 1\)"):
        SpecNormalize('global', stats=dict(mean=torch.zeros(5), std=torch.ones(5)))
    with pytest.raises(ValueError, match="'frequency'"): SpecNormalize('frequency')


def test_save_and_from_file_round_trip(tmp_path):
    x = specs()
    stats = dict(mean=x.mean((0, 1, 3)).flatten(), std=x.std((0, 1, 3)).flatten())
    n = SpecNormalize('channel', stats=stats, n_per_bin=33)
    n.save(tmp_path / 'stats.json', fold=2)
    m = SpecNormalize.from_file(tmp_path / 'stats.json')
    assert m.mode == 'channel' and m.n_per_bin == 33
    assert torch.equal(m(x), n(x)) and torch.equal(m.stats['std'], n.stats['std'])
    with pytest.raises(ValueError, match=r"channel stats of shape \(1, 1, 7, 1\) do not fit spectrograms of shape \(3, 1, 201, 11\)"
                                         rf".*; they were loaded from {re.escape(str(tmp_path / 'stats.json'))}: move it away"):
        m(specs(f=201))
    with pytest.raises(ValueError, match='no stats to save yet'): SpecNormalize('global').save(tmp_path / 'x.json')


def test_given_constants_normalize_as_the_hand_formula():
    "Fixed dataset constants on log-mel, as AST, PaSST and BEATs use them"
    x = specs()
    n = SpecNormalize('global', stats=dict(mean=-4.27, std=4.57))
    assert n.learns_stats and n.has_stats and n.n_per_bin is None
    assert torch.allclose(n(x).as_subclass(torch.Tensor), (x.as_subclass(torch.Tensor) + 4.27) / 4.57, atol=1e-5)
    c = SpecNormalize('channel', stats=dict(mean=list(range(7)), std=[2.0] * 7))
    assert torch.allclose(c(x).as_subclass(torch.Tensor), (x.as_subclass(torch.Tensor) - torch.arange(7.).view(1, 1, 7, 1)) / 2, atol=1e-5)
    with pytest.raises(ValueError, match=r"global stats are \['mean', 'std'\], got \['mean'\]"): SpecNormalize('global', stats=dict(mean=1.0))


def test_stats_move_with_the_dataloader():
    "fastai's DataLoader moves a transform's `parameters` to its device: the stats follow, no copy in encodes"
    from fastai.data.all import TfmdDL
    n = SpecNormalize('channel', stats=dict(mean=torch.zeros(7), std=torch.ones(7)))
    assert set(n.parameters) == {'mean', 'std'} and n.mean.device.type == 'cpu'
    TfmdDL(list(specs()), bs=2, after_batch=[n], device='meta')
    assert n.mean.device.type == n.std.device.type == 'meta' and n.stats['mean'].dtype == torch.float64


def test_without_stats_it_is_the_identity_and_warns_once():
    x, n = specs(), SpecNormalize('global', frac=0)
    with pytest.warns(UserWarning, match=r"SpecNormalize\(mode='global'.*no stats yet\): spectrograms pass through unnormalized"):
        assert torch.equal(n(x), x) and not n.has_stats
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert torch.equal(n(x), x)                              # once per transform
        t = x.as_subclass(torch.Tensor)                          # per-clip modes need no stats, and do not warn
        own = (t - t.mean(-1, keepdim=True)) / t.std(-1, keepdim=True, correction=0)
        assert torch.allclose(SpecNormalize('instance')(x).as_subclass(torch.Tensor), own, atol=1e-5)
    with pytest.warns(UserWarning, match='no stats yet'): SpecNormalize('minmax', frac=0)(x)   # another transform warns again


BAD = [('global', dict(mean=0.0, std=0.0), r"global stats need std > 0, got mean 0, std 0"),
       ('global', dict(mean=-4.0, std=-2.0), r"global stats need std > 0, got mean -4, std -2"),
       ('global', dict(mean=float('nan'), std=1.0), r"global stats must be finite, got mean nan, std 1"),
       ('channel', dict(mean=[0., 1., 2.], std=[1., float('inf'), 1.]), r"channel stats must be finite, got mean 1, std inf \(bin 1; 1 of 3 bins\)"),
       ('channel', dict(mean=[0., 1., 2.], std=[1., 0., -1.]), r"channel stats need std > 0, got mean 1, std 0 \(bin 1; 2 of 3 bins\)"),
       ('minmax', dict(lo=-3.0, hi=-5.0), r"minmax stats need hi > lo, got lo -3, hi -5"),
       ('minmax', dict(lo=2.0, hi=2.0), r"minmax stats need hi > lo, got lo 2, hi 2")]


@pytest.mark.parametrize('mode,stats,message', BAD)
def test_stats_that_cannot_normalize_are_refused_naming_the_value_and_the_file(tmp_path, mode, stats, message):
    with pytest.raises(ValueError, match=message): SpecNormalize(mode, stats=stats)
    arrays = {k: torch.tensor(v, dtype=torch.float64).view(1, 1, -1, 1) for k, v in stats.items()}
    p = tmp_path / 'bad.json'                                  # as a file of another writer would hold them (json writes NaN, Infinity)
    p.write_text(json.dumps(dict(format='esc50_norm.stats/1', shape=list(next(iter(arrays.values())).shape),
                                 arrays=list(stats), mode=mode, **{k: v.flatten().tolist() for k, v in arrays.items()})))
    with pytest.raises(StatsFileError, match=re.escape(f"stats file {p}: ") + message): SpecNormalize.from_file(p)


def test_a_damaged_stats_file_is_an_error_naming_it(tmp_path):
    good = SpecNormalize('channel', stats=dict(mean=[1., 2., 3.], std=[1., 2., 3.])).save(tmp_path / 'good.json')
    text = good.read_text()
    cases = {'truncated.json': (text[:len(text) // 2], 'is not readable JSON'),
             'shape.json': (text.replace('"shape": [\n  1,\n  1,\n  3,', '"shape": [\n  1,\n  1,\n  4,'), 'is malformed'),
             'global.json': (text.replace('"mode": "channel"', '"mode": "global"'), r"global stats need shape \(1, 1, 1, 1\), got mean \(1, 1, 3, 1\)"),
             'mode.json': (text.replace('"mode": "channel"', '"mode": "frequency"'), r"unknown normalization mode 'frequency'.*; known: \['global'"),
             'arrays.json': (text.replace('"arrays": [\n  "mean",', '"arrays": [\n  "lo",').replace('"mean": [', '"lo": ['), r"channel stats are \['mean', 'std'\], got \['lo', 'std'\]"),
             'list.json': ('[1, 2, 3]', 'is not a JSON object of stats'),
             'binary.json': (None, r'is not text but binary \(an exported model\? load_learner reads those\)')}
    for name, (content, message) in cases.items():
        p = tmp_path / name
        if content is None: p.write_bytes(bytes(range(256)))
        else: assert content != text; p.write_text(content)
        with pytest.raises(StatsFileError, match=re.escape(str(p)) + '.*' + message): SpecNormalize.from_file(p)
    assert torch.equal(SpecNormalize.from_file(good).stats['std'].flatten(), torch.tensor([1., 2., 3.], dtype=torch.float64))


def test_learning_from_waveforms_says_that_an_audio_to_spec_is_missing():
    "batch_tfms=[AudioNormalize(), SpecNormalize()] without AudioToSpec: the stats pass names what it receives"
    from fastai.data.all import TfmdDL
    dl = TfmdDL([AudioTensor(torch.randn(1, 800), sr=16000) for _ in range(4)], bs=2)
    with pytest.raises(ValueError, match=r"receives AudioTensor batches of shape \(2, 1, 800\): put an AudioToSpec before"):
        SpecNormalize('global').learn(dl)


@pytest.mark.parametrize('mode', ['global', 'instance'])
def test_a_waveform_batch_passes_with_a_warning_that_names_the_missing_audio_to_spec(mode):
    "Without a stats pass (stats given, or a per-clip mode) nothing else catches a waveform: it passes, not silently"
    norm = SpecNormalize(mode, stats=dict(mean=torch.tensor(1.), std=torch.tensor(2.)) if mode == 'global' else None)
    wave = AudioTensor(torch.randn(2, 1, 800), sr=16000)
    with pytest.warns(UserWarning, match=r"passes an AudioTensor of shape \(2, 1, 800\) through unnormalized.*"
                                         r"is an AudioToSpec missing before it in batch_tfms\?"):
        out = norm(wave)
    assert out is wave
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        spec = AudioSpectrogram(torch.randn(2, 1, 4, 5) + 1)
        assert norm(spec).normalized and not torch.equal(norm(spec), spec)   # a spectrogram: normalized, no warning


def test_fastais_image_transforms_leave_a_spectrogram_alone():
    "As the library guide says: aug_transforms and ImageNet's Normalize (what vision_learner adds) skip AudioSpectrogram"
    from fastai.vision.all import Normalize, Pipeline, TensorImage, aug_transforms, imagenet_stats
    x = AudioSpectrogram(torch.randn(2, 1, 32, 40) * 10 - 40)
    tfms = Pipeline([*aug_transforms(p_affine=1.0, p_lighting=1.0), Normalize.from_stats(*imagenet_stats, cuda=False)],
                    split_idx=0)
    out = tfms(x)
    assert type(out) is AudioSpectrogram and torch.equal(out, x)
    image = TensorImage(torch.rand(2, 3, 32, 40))                          # the same pipeline changes an image
    assert not torch.allclose(tfms(image), image)
