"AudioNormalize, AudioToSpec and SpecNormalize on tensors, against direct computations"
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
    assert tuple(one.shape) == (1, 201, 401)
    mel = AudioToSpec(AudioConfig.BasicMelSpectrogram(n_mels=64))(AudioTensor(x, sr=16000))
    assert mel.shape[-2] == 64 and AudioConfig.BasicMelSpectrogram(n_mels=64).n_freq == 64


def test_spectrogram_of_the_wrong_rate_is_refused():
    with pytest.raises(ValueError, match='expects 16000 Hz audio, got 44100 Hz'): AudioToSpec()(AudioTensor(torch.zeros(1, 4410), sr=44100))


@pytest.mark.parametrize('mode,shape', [('global', (1, 1, 1, 1)), ('channel', (1, 1, 7, 1))])
def test_spec_normalize_standardizes_and_decodes_exactly(mode, shape):
    x = specs()
    axes = (0, 1, 2, 3) if mode == 'global' else (0, 1, 3)
    std, mean = torch.std_mean(x.as_subclass(torch.Tensor).double(), dim=axes, keepdim=True, correction=0)
    n = SpecNormalize(mode, mean, std)
    assert tuple(n.mean.shape) == shape
    y = n(x)
    assert isinstance(y, AudioSpectrogram)
    assert torch.allclose(y.mean(dim=axes), torch.zeros(()), atol=1e-5) and torch.allclose(y.std(dim=axes, correction=0), torch.ones(()), atol=1e-5)
    assert torch.allclose(n.decode(y), x, atol=1e-4)


def test_spec_normalize_passes_labels_and_waveforms_through():
    n = SpecNormalize.from_stats(torch.tensor(5.), torch.tensor(2.))
    wave, label = AudioTensor(torch.ones(1, 1, 10), sr=16000), TensorCategory([3])
    xs, w, l = n((specs(), wave, label))
    assert torch.equal(w, wave) and torch.equal(l, label)
    assert torch.allclose(xs, (specs() - 5) / 2)


def test_channel_stats_of_the_wrong_size_name_both_shapes():
    n = SpecNormalize('channel', torch.zeros(5), torch.ones(5))
    with pytest.raises(ValueError, match=r"channel stats of shape \(1, 1, 5, 1\) do not fit spectrograms of shape \(3, 1, 7, 11\)"):
        n(specs())
    with pytest.raises(ValueError, match=r"global stats need shape \(1, 1, 1, 1\), got mean \(1, 1, 5, 1\)"):
        SpecNormalize('global', torch.zeros(5), torch.ones(5))
    with pytest.raises(ValueError, match="'frequency'"): SpecNormalize('frequency')


def test_save_and_load_round_trip(tmp_path):
    x = specs()
    n = SpecNormalize.from_stats(x.mean((0, 1, 3)).flatten(), x.std((0, 1, 3)).flatten())
    n.save(tmp_path / 'stats.json')
    m = SpecNormalize.from_file(tmp_path / 'stats.json')
    assert m.mode == 'channel' and torch.equal(m(x), n(x))
    assert torch.equal(SpecNormalize('channel').load(tmp_path / 'stats.json', n_freq=7).std, n.std)
    with pytest.raises(StatsFileError, match=r"\(1, 1, 7, 1\), but this data needs \(1, 1, 201, 1\)"):
        SpecNormalize('channel').load(tmp_path / 'stats.json', n_freq=201)
    with pytest.raises(ValueError, match='no stats to save'): SpecNormalize('global').save(tmp_path / 'x.json')


def test_without_stats_it_is_the_identity_until_stats_arrive():
    x, n = specs(), SpecNormalize('global', frac=0)
    assert torch.equal(n(x), x) and not n.has_stats
    n.set_stats(x.mean(), x.std())
    assert n(x).abs().mean() < 1
