"Linear-band spectrograms against librosa and numpy, the settings that choose them, and the linear-cpu grid's recipe"
from pathlib import Path

import librosa
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from esc50_norm import AudioTensor, SpecNormalize
from esc50_norm.configs import AudioConfig, SpectrogramConfig
from esc50_norm.spectrogram import AudioToSpec, LinearBands
from esc50_norm.study.presets import get_preset

RESULTS = Path(__file__).resolve().parents[1] / 'results'


def triangles(n_bands: int, sr: int, n_stft: int, f_min=0.0, f_max=None) -> np.ndarray:
    "Triangular bands over f_min..f_max, each from one of n_bands + 2 equally spaced edges to the next but one"
    f, edges = np.linspace(0, sr / 2, n_stft), np.linspace(f_min, f_max or sr / 2, n_bands + 2)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((f - lo) / (mid - lo), (hi - f) / (hi - mid)), 0, None).T       # [n_stft, n_bands]


@pytest.mark.parametrize('kw', [dict(), dict(f_min=100.0, f_max=6000.0)])
def test_linear_bands_are_equally_spaced_triangles(kw):
    fb = LinearBands(24, 16000, n_stft=257, **kw).fb.numpy()
    np.testing.assert_allclose(fb, triangles(24, 16000, 257, **kw), atol=1e-5)
    peaks = fb.argmax(0)
    assert (np.diff(peaks) > 0).all() and np.ptp(np.diff(peaks)) <= 1      # equal steps in Hz, unlike mel bands


def test_a_linear_band_spectrogram_is_librosas_power_stft_through_those_bands_in_db():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 1, 16000, generator=g) * torch.linspace(0.01, 1, 16000)).clamp(-1, 1)
    cfg = AudioConfig.LinearBandSpectrogram(n_mels=64, hop_length=512)
    out = AudioToSpec(cfg)(AudioTensor(x, sr=16000))
    assert out.shape == (2, 1, 64, 32) and cfg.n_freq == 64
    S = np.abs(librosa.stft(x.numpy(), n_fft=1024, hop_length=512, center=True, pad_mode='reflect')) ** 2
    ref = 10 * np.log10(np.maximum(np.einsum('...ft,fb->...bt', S, triangles(64, 16000, 513)), 1e-10))
    np.testing.assert_allclose(out.numpy(), ref, atol=2e-3)


def test_a_sine_lands_in_its_linear_band_and_elsewhere_on_the_mel_scale():
    t = torch.arange(32000) / 16000
    x = AudioTensor(torch.sin(2 * np.pi * 6000 * t)[None, None], sr=16000)
    peak = lambda cfg: int(AudioToSpec(cfg)(x)[0, 0].mean(-1).argmax())
    lin, mel = (AudioConfig.BasicMelSpectrogram(n_mels=64, band_scale=s) for s in ('linear', 'mel'))
    centres = np.linspace(0, 8000, 66)[1:-1]                                  # 125 Hz apart
    assert abs(centres[peak(lin)] - 6000) <= 125 / 2
    mel_centres = librosa.mel_frequencies(66, fmin=0, fmax=8000, htk=True)[1:-1]
    assert peak(mel) == np.abs(mel_centres - 6000).argmin() and peak(mel) > peak(lin)


def test_band_scale_is_checked_before_any_work():
    with pytest.raises(ValueError, match=r"unknown SpectrogramConfig.band_scale 'log'; known: \['mel', 'linear'\]"):
        SpectrogramConfig(mel=True, band_scale='log')
    with pytest.raises(ValueError, match=r"band_scale='linear' spaces a filterbank's bands.*set mel=True"):
        SpectrogramConfig(band_scale='linear')


def test_the_axis_says_what_a_row_is_also_after_decoding():
    x = AudioTensor(torch.randn(4, 1, 16000), sr=16000)
    for cfg, label in ((AudioConfig.LinearBandSpectrogram(n_mels=32), 'linear band'),
                       (AudioConfig.BasicMelSpectrogram(n_mels=32), 'mel band'),
                       (AudioConfig.BasicSpectrogram(), 'frequency bin')):
        s = AudioToSpec(cfg)(x)
        norm = SpecNormalize('global', stats=dict(mean=-40.0, std=20.0))
        back = norm.decode(norm(s))
        torch.testing.assert_close(back, s, atol=1e-3, rtol=0)
        for spec in (s, back):
            ax = spec[0].show()
            assert ax.get_ylabel() == label
            plt.close(ax.figure)


def test_linear_cpu_is_mel_cpu_but_for_the_spacing_of_its_bands():
    lin, mel = (get_preset(n).update(duration=5.0, bf16=True, channels_last=True) for n in ('linear-cpu', 'mel-cpu'))
    a, b = lin.recipe(), mel.recipe()
    assert a['spec'].pop('band_scale') == 'linear' and 'band_scale' not in b['spec']       # mel: the default, unrecorded
    assert a == b and lin.training_hash() != mel.training_hash()
    assert set(lin.normalizations) <= set(mel.normalizations) and lin.seeds == mel.seeds and lin.folds == mel.folds
    assert lin.smoke().spec.band_scale == 'linear'


def test_mel_aug_cpu_is_mel_cpu_but_for_the_strong_recipes_augmentation():
    aug, mel, strong = (get_preset(n).update(duration=5.0, bf16=True, channels_last=True)
                        for n in ('mel-aug-cpu', 'mel-cpu', 'frontends-cpu'))
    a, b, c = aug.recipe(), mel.recipe(), strong.recipe()
    assert {k for k in a if a.get(k) != b.get(k)} | {k for k in b if a.get(k) != b.get(k)} == {'augment', 'mixup'}
    assert (a['augment'], a['mixup']) == (c['augment'], c['mixup']) and a['spec'] == c['spec']
    assert {k for k in a if a.get(k) != c.get(k)} == {'epochs', 'lr'}     # against the strong recipe: its schedule
    assert set(aug.normalizations) <= set(mel.normalizations) and aug.seeds == mel.seeds and aug.folds == mel.folds


def test_mel_aug60_cpu_splits_the_schedule_into_epochs_alone_and_learning_rate_alone():
    long, short, strong = (get_preset(n).update(duration=5.0, bf16=True, channels_last=True)
                           for n in ('mel-aug60-cpu', 'mel-aug-cpu', 'frontends-cpu'))
    a, b, c = long.recipe(), short.recipe(), strong.recipe()
    assert {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} == {'epochs'} and a['epochs'] == 60 == c['epochs']
    assert {k for k in a.keys() | c.keys() if a.get(k) != c.get(k)} == {'lr'} and (a['lr'], c['lr']) == (1e-3, 2e-3)
    assert (long.normalizations, long.seeds, long.folds) == (short.normalizations, short.seeds, short.folds)
    assert set(long.normalizations) <= set(strong.normalizations) and 0 in strong.seeds


def test_mel60_cpu_completes_a_two_by_two_of_augmentation_and_epochs():
    "mel-cpu, mel-aug-cpu, mel60-cpu, mel-aug60-cpu: each side of the square changes epochs alone or augmentation alone"
    made = lambda n: get_preset(n).update(duration=5.0, bf16=True, channels_last=True)
    four = {n: made(n) for n in ('mel-cpu', 'mel-aug-cpu', 'mel60-cpu', 'mel-aug60-cpu')}
    r = {n: p.recipe() for n, p in four.items()}
    changed = lambda a, b: {k for k in r[a].keys() | r[b].keys() if r[a].get(k) != r[b].get(k)}
    assert changed('mel-cpu', 'mel60-cpu') == {'epochs'} == changed('mel-aug-cpu', 'mel-aug60-cpu')
    assert changed('mel60-cpu', 'mel-aug60-cpu') == {'augment', 'mixup'} == changed('mel-cpu', 'mel-aug-cpu')
    assert r['mel60-cpu']['epochs'] == 60 and r['mel-cpu']['epochs'] == 20
    grid = lambda p: (p.normalizations, p.seeds, p.folds)
    assert grid(four['mel60-cpu']) == grid(four['mel-aug-cpu']) == grid(four['mel-aug60-cpu'])
    assert set(four['mel60-cpu'].normalizations) <= set(four['mel-cpu'].normalizations)


def test_the_committed_mel_cpu_folder_keeps_its_recipe_hash():
    "band_scale came later: at its default it is left out of the recipe, so mel-cpu's hash is the one its runs recorded"
    from esc50_norm.study.runs import read_preset, read_results
    hashes = set(read_results(RESULTS / 'mel-cpu').training_hash)
    assert hashes == {read_preset(RESULTS / 'mel-cpu').training_hash()} and len(hashes) == 1
