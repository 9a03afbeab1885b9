"PCEN (fixed and learned) against librosa and scipy, its batch transform, and the spectrogram settings it needs"
import json
import math
import pickle

import librosa
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.signal
import torch
import torchaudio

from esc50_norm.audio import AudioCropPad, AudioTensor, DownmixMono, Resample
from esc50_norm.pcen import PCEN, FrozenPCEN, LearnedPCEN, pcen, pcen_compress, pcen_smooth, smoothing_coef
from esc50_norm.configs import AudioConfig, SpectrogramConfig
from esc50_norm.spectrogram import AudioSpectrogram, AudioToSpec

SCALE = 2 ** 31


def clips(bs=3, seconds=2.0, sr=16000, seed=0) -> torch.Tensor:
    "Waveforms in [-1, 1] `[bs, 1, samples]`: a chirp, noise bursts of several loudnesses, digital silence between them"
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sr)) / sr
    out = []
    for i in range(bs):
        chirp = 0.3 * torch.sin(2 * math.pi * (200 + 1500 * i) * t * (1 + t))
        bursts = torch.randn(len(t), generator=g) * (torch.sin(2 * math.pi * (1.5 + i) * t) > 0.3) * 10 ** (-i)
        x = (chirp + bursts).clamp(-1, 1)
        x[int(0.4 * len(t)):int(0.55 * len(t))] = 0                      # silence: S = 0 in every bin
        out.append(x)
    return torch.stack(out).unsqueeze(1)


def mel_magnitudes(x: torch.Tensor, sr=16000, n_fft=1024, hop=256, n_mels=128) -> torch.Tensor:
    "|mel| with torchaudio (power 1) times 2**31: what librosa's docs give `pcen` for audio in [-1, 1]"
    return torchaudio.transforms.MelSpectrogram(sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0)(x) * SCALE


def assert_rel(a, b, rtol, atol=0.0):
    a, b = (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in (a, b))
    assert a.shape == b.shape and np.isfinite(a).all() and np.isfinite(b).all()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


PARAMS = [dict(),
          dict(gain=0.5, bias=10.0, power=0.25, time_constant=0.06),
          dict(sr=22050, hop_length=512, gain=0.8, bias=1.0, power=0.5, time_constant=1.0, eps=1e-3),
          dict(power=0.0), dict(bias=0.0), dict(power=0.0, bias=0.0)]


@pytest.mark.parametrize('kw', PARAMS, ids=lambda kw: ','.join(f"{k}={v}" for k, v in kw.items()) or 'defaults')
def test_pcen_equals_librosa_on_generated_clips(kw):
    S = mel_magnitudes(clips(), sr=kw.get('sr', 16000), hop=kw.get('hop_length', 256))   # [bs, 1, 128, frames]
    assert (S == 0).any() and S.max() > 1e6                                 # silence and loud parts both in
    kw_librosa = dict(sr=16000, hop_length=256, **kw) if 'sr' not in kw else kw   # librosa's defaults are 22050 Hz, hop 512
    with np.errstate(divide='ignore'):                                      # librosa's log(0) for bias=0: exp(-inf) = 0
        ref, ref64 = librosa.pcen(S.numpy(), **kw_librosa), librosa.pcen(S.double().numpy(), **kw_librosa)
    out = pcen(S, **kw)
    assert out.dtype == torch.float32 and out.shape == S.shape
    assert_rel(out, ref, 1e-4)
    out64 = pcen(S.double(), **kw)
    assert out64.dtype == torch.float64
    assert_rel(out64, ref64, 1e-10)
    assert_rel(pcen(S[1, 0], **kw), ref[1, 0], 1e-4)                        # one spectrogram [F, T] the same


def test_pcen_smooth_is_scipys_lfilter_from_librosas_initial_state():
    S = torch.rand(2, 3, 5, 40, dtype=torch.float64) ** 3 * 1e3
    b = smoothing_coef(16000, 256, 0.4)
    zi = scipy.signal.lfilter_zi([b], [1, b - 1])
    ref, _ = scipy.signal.lfilter([b], [1, b - 1], S.numpy(), zi=np.full((1, 1, 1, 1), zi[0]), axis=-1)
    assert_rel(pcen_smooth(S, b), ref, 1e-12)
    coefs = torch.tensor([0.01, 0.04, 0.2, 0.7, 1.0], dtype=torch.float64)  # one per bin
    for i, c in enumerate(coefs.tolist()):
        ref, _ = scipy.signal.lfilter([c], [1, c - 1], S[..., i, :].numpy(), zi=np.full((1, 1, 1), 1 - c), axis=-1)
        np.testing.assert_allclose(pcen_smooth(S, coefs)[..., i, :], ref, rtol=1e-12)


def test_smoothing_coef_is_librosas_formula():
    t = 0.4 * 16000 / 256                                                   # time constant in frames
    b = smoothing_coef(16000, 256, 0.4)
    assert b == pytest.approx((math.sqrt(1 + 4 * t ** 2) - 1) / (2 * t ** 2), rel=1e-15) and t ** 2 * b ** 2 + b == pytest.approx(1)


@pytest.mark.parametrize('kw, msg', [(dict(power=-1), 'power >= 0, got power=-1'), (dict(gain=-0.1), 'gain >= 0'),
                                     (dict(bias=-2), 'bias >= 0'), (dict(eps=0), 'PCEN takes numbers above 0, got eps=0'),
                                     (dict(time_constant=0), 'got time_constant=0'), (dict(sr=0), 'got sr=0'),
                                     (dict(hop_length=-256), 'got hop_length=-256')])
def test_pcen_refuses_bad_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg): pcen(torch.ones(1, 4, 8), **kw)
    with pytest.raises(ValueError, match=msg): PCEN(**kw)


def test_pcen_refuses_db_complex_and_1d_input():
    with pytest.raises(ValueError, match=r'non-negative magnitudes \(mel magnitudes, not dB\), got values down to -80'):
        pcen(torch.full((1, 4, 8), -80.0))
    with pytest.raises(ValueError, match=r'complex .* pass S.abs\(\)'): pcen(torch.ones(4, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r'\[\.\.\., n_mels, frames\], got shape \(8,\)'): pcen(torch.ones(8))


def pcen_batch(sr=16000, **kw) -> AudioSpectrogram:
    "A batch of `AudioSpectrogram`s as `AudioToSpec(AudioConfig.PCENMelSpectrogram())` makes them"
    return AudioToSpec(AudioConfig.PCENMelSpectrogram(sample_rate=sr, **kw))(AudioTensor(clips(sr=sr), sr=sr))


def test_pcen_transform_equals_librosa_and_is_marked_not_db():
    x = pcen_batch()
    assert isinstance(x, AudioSpectrogram) and x.shape == (3, 1, 128, 126)
    y = PCEN()(x)
    assert isinstance(y, AudioSpectrogram) and y.normalized == 'PCEN' and y.to_db is False and y.sr == 16000
    assert_rel(y, librosa.pcen(x.numpy(), sr=16000, hop_length=256), 1e-4)
    assert PCEN().decode(y) is y                                            # not invertible: decodes as the identity
    z = PCEN(gain=0.6, power=0.3, time_constant=0.1)(x)
    assert_rel(z, librosa.pcen(x.numpy(), sr=16000, hop_length=256, gain=0.6, power=0.3, time_constant=0.1), 1e-4)


@pytest.mark.gpu
def test_pcen_runs_on_the_batchs_device_and_in_float32_under_autocast():
    x = pcen_batch()
    with torch.autocast('cuda', dtype=torch.bfloat16):
        y = PCEN()(x.cuda())
    assert y.device.type == 'cuda' and y.dtype == torch.float32
    assert_rel(y.cpu(), librosa.pcen(x.numpy(), sr=16000, hop_length=256), 1e-4)


def test_pcen_transform_refuses_db_and_other_rates_or_hops():
    with pytest.raises(ValueError, match=r'in dB: use AudioConfig.PCENMelSpectrogram\(\)'):
        PCEN()(AudioToSpec(AudioConfig.BasicMelSpectrogram())(AudioTensor(clips(1), sr=16000)))
    with pytest.raises(ValueError, match=r'PCEN\(sr=16000, hop_length=256\) got spectrograms with sr=22050'):
        PCEN()(pcen_batch(sr=22050))
    with pytest.raises(ValueError, match=r'with hop_length=512: .* off by 2x'):
        PCEN()(pcen_batch(hop_length=512))
    hand_made = AudioSpectrogram(torch.full((1, 1, 8, 10), -80.0))          # no metadata to go by: its values are checked
    with pytest.raises(ValueError, match=r'PCEN takes non-negative magnitudes .* got values down to -80'): PCEN()(hand_made)
    assert PCEN(sr=22050, hop_length=512)(pcen_batch(sr=22050, hop_length=512)).normalized == 'PCEN'


def colorbar(ax):
    "The label and the tick text of +3 of the colorbar beside `ax`"
    cax = [a for a in ax.figure.axes if a is not ax][0]
    return cax.get_ylabel(), cax.yaxis.get_major_formatter()(3.0, 0)


def test_pcen_output_shows_as_pcen_not_db():
    assert 'dB' in colorbar(AudioToSpec(AudioConfig.BasicMelSpectrogram())(AudioTensor(clips(1), sr=16000))[0].show())[1]
    label, tick = colorbar(PCEN()(pcen_batch())[0].show())
    assert label == 'PCEN' and 'dB' not in tick
    assert 'dB' not in colorbar(pcen_batch()[0].show())[1]                  # the magnitudes before PCEN are not dB either
    plt.close('all')


def test_learned_pcen_equals_pcen_at_init():
    S = mel_magnitudes(clips())
    assert torch.equal(LearnedPCEN(128)(S), pcen(S))
    kw = dict(sr=22050, hop_length=512, gain=0.6, bias=5.0, power=0.25, time_constant=0.1, eps=1e-4)
    assert torch.equal(LearnedPCEN(128, **kw)(S), pcen(S, **kw))
    assert_rel(LearnedPCEN(128)(S), librosa.pcen(S.numpy(), sr=16000, hop_length=256), 1e-4)


def leaf_pcen(S: np.ndarray, p: dict, eps=1e-6) -> np.ndarray:
    "LEAF's formula in float64 with numpy/scipy, per bin: (S / (eps + M)**alpha + delta)**(1/root) - delta**(1/root)"
    out = np.empty(S.shape)
    for i in range(S.shape[-2]):
        c, a, d, r = (float(p[k][i].detach()) for k in ('smooth_coef', 'alpha', 'delta', 'root'))
        M, _ = scipy.signal.lfilter([c], [1, c - 1], S[..., i, :], zi=np.full((1,) * (S.ndim - 1), 1 - c), axis=-1)
        out[..., i, :] = (S[..., i, :] / (eps + M) ** a + d) ** (1 / r) - d ** (1 / r)
    return out


def train(lp, S, steps, lr, sign):
    "`steps` Adam steps on `sign * mean output`; the parameters before"
    before = {k: v.detach().clone() for k, v in lp.named_parameters()}
    opt = torch.optim.Adam(lp.parameters(), lr)
    for _ in range(steps):
        opt.zero_grad(); (sign * lp(S).mean()).backward(); opt.step()
    return before


def test_learned_pcen_gradients_reach_every_parameter_and_training_changes_them():
    S = mel_magnitudes(clips(2, 1.0))
    lp = LearnedPCEN(128)
    lp(S).square().mean().backward()
    for k, p in lp.named_parameters():
        assert p.grad is not None and p.grad.shape == (128,) and torch.isfinite(p.grad).all() and p.grad.abs().min() > 0, k
    before = train(lp, S, 3, 1e-2, 1)
    for k, p in lp.named_parameters(): assert not torch.equal(p, before[k]), k
    out = lp(S)
    assert_rel(out, leaf_pcen(S.double().numpy(), lp.constrained()), 1e-4, 1e-9)   # LEAF's formula, now per bin (it is
                                                                            # not in log space: -2e-16 for silence, not 0)


def test_learned_pcen_gradients_match_finite_differences():
    "The gradients of lfilter with a per-bin coefficient and of the compression, checked in float64"
    S = torch.rand(2, 1, 3, 12, dtype=torch.float64) * 1e3
    coef, alpha, delta, root = (torch.tensor(v, dtype=torch.float64, requires_grad=True)
                                for v in ([0.1, 0.3, 0.6], [0.9, 0.5, 0.98], [2.0, 1.0, 0.5], [2.0, 3.0, 1.5]))
    f = lambda c, a, d, r: pcen_compress(S, pcen_smooth(S, c), a[:, None], d[:, None], 1 / r[:, None], 1e-6)
    assert torch.autograd.gradcheck(f, (coef, alpha, delta, root))


def test_learned_pcen_in_float64_computes_in_float64_and_its_gradient_is_the_finite_difference():
    """A float64 module (`.double()`) computes in float64 (as `pcen` keeps float64): LEAF's formula and gradcheck hold
    there; a float32 module gives float32 on any input, for the float32 network after it"""
    S = torch.rand(2, 1, 4, 16, dtype=torch.float64) * 1e3
    lp = LearnedPCEN(4).double()
    out = lp(S)
    assert out.dtype == torch.float64
    assert_rel(out, leaf_pcen(S.numpy(), lp.constrained()), 1e-12, 1e-12)
    f = lambda *values: torch.func.functional_call(lp, dict(zip(lp.PARAMS, values)), (S,))
    assert torch.autograd.gradcheck(f, tuple(getattr(lp, k).detach().clone().requires_grad_() for k in lp.PARAMS))
    assert all(LearnedPCEN(4)(S.to(d)).dtype == torch.float32 for d in (torch.float64, torch.float32, torch.bfloat16))


def test_learned_pcen_keeps_its_parameters_valid_when_training_pushes_them_out():
    S = mel_magnitudes(clips(2, 1.0))
    lp = LearnedPCEN(128)
    train(lp, S, 4, 1.0, -1)                                               # maximize: alpha -> < 0, root -> < 1, delta -> < 0
    assert (lp.alpha < 0).all() and (lp.root < 1).all() and (lp.delta < 0).any()     # the stored values left their ranges
    p = lp.constrained()
    assert (p['alpha'] >= 0).all() and (p['alpha'] <= 1).all() and (p['root'] >= 1).all() and (p['delta'] > 0).all()
    assert (p['smooth_coef'] > 0).all() and (p['smooth_coef'] <= 1).all()
    out = lp(S)
    assert torch.isfinite(out).all()
    assert_rel(out, leaf_pcen(S.double().numpy(), p), 1e-4, 1e-9)


def test_learned_pcen_pickles_and_gives_the_same_output():
    S = mel_magnitudes(clips(2, 1.0))
    lp = LearnedPCEN(128)
    train(lp, S, 2, 1e-2, 1)
    back = pickle.loads(pickle.dumps(lp))
    assert torch.equal(back(S), lp(S)) and not torch.equal(back(S), pcen(S))
    assert repr(back) == repr(lp) == 'LearnedPCEN(128, sr=16000, hop_length=256, time_constant=0.4, eps=1e-06)'


def test_learned_pcen_computes_in_float32_under_bf16_autocast():
    S = mel_magnitudes(clips(2, 1.0))
    lp = LearnedPCEN(128)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y, y16 = lp(S), lp(S.bfloat16())
    assert y.dtype == y16.dtype == torch.float32 and torch.isfinite(y16).all()
    assert torch.equal(y, lp(S)) and torch.equal(y16, lp(S.bfloat16().float()))


def test_learned_pcen_refuses_other_shapes_and_invalid_starts():
    with pytest.raises(ValueError, match=r'LearnedPCEN\(128\) takes \[bs, 1, 128, frames\] .* got shape \(2, 1, 64, 10\)'):
        LearnedPCEN(128)(torch.ones(2, 1, 64, 10))
    with pytest.raises(ValueError, match='0 < power <= 1.*got power=2'): LearnedPCEN(128, power=2.0)
    with pytest.raises(ValueError, match='gain <= 1.*got gain=1.5'): LearnedPCEN(128, gain=1.5)
    with pytest.raises(ValueError, match='LearnedPCEN takes whole numbers above 0, got n_mels=0'): LearnedPCEN(0)


def test_spectrogram_scale_multiplies_before_db():
    x = AudioTensor(clips(2, 1.0), sr=16000)
    cfg = AudioConfig.BasicMelSpectrogram(n_mels=32, to_db=False)
    plain, scaled = AudioToSpec(cfg)(x), AudioToSpec(cfg.update(scale=1000.0))(x)
    assert_rel(scaled, plain.numpy() * 1000, 1e-6)
    db, db_scaled = (AudioToSpec(cfg.update(to_db=True, scale=s))(x) for s in (1.0, 1000.0))
    audible = plain > 1e-9                                                  # above AmplitudeToDB's floor (amin 1e-10)
    assert audible.float().mean() > 0.5
    np.testing.assert_allclose((db_scaled - db)[audible], 30.0, atol=1e-3)  # power 2: 10 log10(1000) dB more
    with pytest.raises(ValueError, match='scale must be positive, got 0'): SpectrogramConfig(scale=0)


def test_spectrogram_config_records_scale_only_when_set():
    assert 'scale' not in SpectrogramConfig().as_dict() and 'scale' not in AudioConfig.BasicMelSpectrogram().as_dict()
    assert SpectrogramConfig(scale=2.0).as_dict()['scale'] == 2.0
    cfg = AudioConfig.PCENMelSpectrogram()
    assert SpectrogramConfig(**cfg.as_dict()) == cfg and SpectrogramConfig(**SpectrogramConfig().as_dict()) == SpectrogramConfig()


def test_pcen_mel_spectrogram_gives_scaled_mel_magnitudes():
    cfg = AudioConfig.PCENMelSpectrogram()
    assert (cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.power, cfg.to_db, cfg.scale) == (1024, 256, 128, 1.0, False, 2.0 ** 31)
    x = torch.rand(1, 80000) * 2 - 1
    s = AudioToSpec(cfg)(AudioTensor(x, sr=16000))
    assert s.shape == (1, 128, 313) and s.to_db is False
    assert_rel(s, mel_magnitudes(x).numpy(), 1e-6)


def real_clips(root, n=4, sr=16000, seconds=5.0) -> torch.Tensor:
    "The first `n` ESC-50 clips at `sr` Hz, mono, `seconds` long: `[n, 1, samples]`"
    files = sorted((root / 'audio').glob('*.ogg'))[:n]
    tfms = [DownmixMono(), Resample(sr), AudioCropPad(seconds)]
    out = []
    for f in files:
        x = AudioTensor.create(f)
        for t in tfms: x = t(x)
        out.append(x.as_subclass(torch.Tensor))
    return torch.stack(out)


@pytest.mark.slow
def test_pcen_equals_librosa_on_real_clips(shared_esc50):
    x = real_clips(shared_esc50)
    S = mel_magnitudes(x)                                                   # [4, 1, 128, 313]
    assert S.shape == (4, 1, 128, 313)
    ref = librosa.pcen(S.numpy(), sr=16000, hop_length=256)
    assert_rel(pcen(S), ref, 1e-4)
    assert_rel(pcen(S.double()), librosa.pcen(S.double().numpy(), sr=16000, hop_length=256), 1e-10)
    for i in range(len(S)): assert_rel(pcen(S[i, 0]), librosa.pcen(S[i, 0].numpy(), sr=16000, hop_length=256), 1e-4)
    spec = AudioToSpec(AudioConfig.PCENMelSpectrogram())(AudioTensor(x, sr=16000))
    assert_rel(spec, S.numpy(), 1e-6)
    assert_rel(PCEN()(spec), ref, 1e-4)
    assert torch.equal(LearnedPCEN(128)(spec), pcen(spec))


def test_benchmark_writes_a_table_of_both_paths(tmp_path):
    "benchmarks/pcen.py runs, checks the two paths agree and writes its table (its numbers go to notes, not assertions)"
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location('bench_pcen', Path(__file__).parents[1] / 'benchmarks' / 'pcen.py')
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    S = torch.rand(2, 1, 4, 30, dtype=torch.float64) * 1e3
    np.testing.assert_allclose(bench.loop_smooth(S, 0.2), pcen_smooth(S, 0.2), rtol=1e-12)   # the loop is librosa's smoother too
    res = bench.main(['--device', 'cpu', '--bs', '2', '--n-mels', '8', '--frames', '20', '--repeats', '1', '--out', str(tmp_path / 'b.md')])
    assert list(res.what) == ['smoother', 'smoother', 'pcen', 'pcen', 'learned fwd+bwd', 'learned fwd+bwd']
    assert (res.max_rel_diff < 1e-4).all() and '| what' in (tmp_path / 'b.md').read_text()
    with pytest.raises(SystemExit, match='smoother: lfilter and loop differ by'):
        bench.main(['--device', 'cpu', '--bs', '2', '--n-mels', '8', '--frames', '20', '--repeats', '1', '--tolerance', '-1',
                    '--out', str(tmp_path / 'c.md')])


def test_learned_pcen_refuses_db_input_a_bool_and_3d_input():
    lp = LearnedPCEN(16)
    with pytest.raises(ValueError, match='non-negative magnitudes .* got values down to -80'):
        lp(torch.full((2, 1, 16, 10), -80.0))
    db = AudioToSpec(AudioConfig.BasicMelSpectrogram(n_mels=16))(AudioTensor(torch.randn(2, 1, 16000), sr=16000))
    with pytest.raises(ValueError, match='in dB: use AudioConfig.PCENMelSpectrogram'): lp(db)
    with pytest.raises(ValueError, match=r'takes \[bs, 1, 16, frames\]'): lp(torch.ones(1, 16, 10))
    for bad in (True, 0, 16.0):
        with pytest.raises(ValueError, match=f"takes whole numbers above 0, got n_mels={bad!r}"): LearnedPCEN(bad)
    mags = AudioToSpec(AudioConfig.PCENMelSpectrogram(n_mels=16))(AudioTensor(torch.randn(2, 1, 16000), sr=16000))
    assert torch.isfinite(lp(mags)).all()                        # magnitudes that say so: no look at their values
    with pytest.raises(ValueError, match=r'LearnedPCEN\(sr=16000, hop_length=256\) got .* hop_length=512: .* off by 2x'):
        LearnedPCEN(128)(pcen_batch(hop_length=512))
    with pytest.raises(ValueError, match=r'FrozenPCEN\(sr=16000, hop_length=256\) got spectrograms with sr=22050'):
        FrozenPCEN(128)(pcen_batch(sr=22050))
    assert LearnedPCEN(128, hop_length=512)(pcen_batch(hop_length=512)).shape == (3, 1, 128, 63)


@pytest.mark.parametrize('name', ['pcen', 'pcen_learned'])
def test_pcen_of_the_cpu_grid_smooths_at_its_hop_of_512(name):
    "frontends-cpu (64 mel bins, hop 512): the study's PCEN, fixed or learned at init, is librosa's at sr 16000, hop 512"
    from esc50_norm.study.normalizations import get_normalization
    from esc50_norm.study.presets import get_preset
    cfg, norm = get_preset('frontends-cpu').spec, get_normalization(name)
    assert cfg.hop == 512 and cfg.n_freq == 64
    x = AudioTensor(clips(seconds=5.0), sr=16000)
    tfms = norm.tfms(cfg)
    S = tfms[0](x)                                                           # mel magnitudes x 2**31, 64 x 157
    assert S.shape == (3, 1, 64, 157) and S.to_db is False
    assert_rel(S, mel_magnitudes(x, hop=512, n_mels=64).numpy(), 1e-5)
    out = tfms[1](S) if name == 'pcen' else norm.frontend(cfg)(S)
    if name == 'pcen': assert len(tfms) == 2 and tfms[1].hop_length == 512
    else: assert len(tfms) == 1 and norm.frontend(cfg).smooth_coef[0].item() == pytest.approx(smoothing_coef(16000, 512), rel=1e-5)
    ref = librosa.pcen(S.numpy(), sr=16000, hop_length=512)
    assert_rel(out, ref, 1e-4)
    assert np.abs(ref - librosa.pcen(S.numpy(), sr=16000, hop_length=256)).max() > 0.1     # the hop matters


def test_frozen_pcen_is_learned_pcen_at_its_start_and_librosa_and_stays_so_through_training():
    "pcen_learned - pcen_frozen measures learning alone: the same module, input and start; only one of them moves"
    from esc50_norm.pcen import FrozenPCEN
    S = mel_magnitudes(clips(), hop=512, n_mels=64)
    learned, frozen = LearnedPCEN(64, hop_length=512), FrozenPCEN(64, hop_length=512)
    assert torch.equal(learned(S), frozen(S))
    assert_rel(frozen(S), librosa.pcen(S.numpy(), sr=16000, hop_length=512), 1e-4)
    assert list(frozen.parameters()) == [] and sorted(dict(frozen.named_buffers())) == sorted(dict(learned.named_parameters()))
    before = frozen(S)
    for m in (learned, frozen):                                   # one step of what fastai's Adam does, weight decay and all
        net = torch.nn.Sequential(m, torch.nn.Conv2d(1, 2, 3))
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=0.1, weight_decay=0.1)
        net(S).square().mean().backward()
        opt.step()
    assert not torch.equal(learned(S), frozen(S)) and torch.equal(frozen(S), before)


@pytest.mark.parametrize('learn', [('smooth_coef',), ('alpha', 'delta', 'root'), ('root',)])
def test_learned_pcen_learns_only_the_parameters_it_names(learn):
    "learn=...: those train; the others stay buffers at librosa's values; at its start it is FrozenPCEN, and pickles"
    S = mel_magnitudes(clips(2, 1.0), hop=512, n_mels=64)
    lp = LearnedPCEN(64, hop_length=512, learn=learn)
    assert sorted(n for n, _ in lp.named_parameters()) == sorted(learn) and sorted(lp.state_dict()) == sorted(LearnedPCEN.PARAMS)
    assert torch.equal(lp(S), FrozenPCEN(64, hop_length=512)(S))
    start = {k: v.clone() for k, v in lp.state_dict().items()}
    net = torch.nn.Sequential(lp, torch.nn.Conv2d(1, 2, 3))
    opt = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.1)    # every parameter of the model, as fastai's
    net(S).square().mean().backward()
    opt.step()
    assert {k for k, v in lp.state_dict().items() if not torch.equal(v, start[k])} == set(learn)
    assert_rel(lp(S), leaf_pcen(S.double().numpy(), lp.constrained()), 1e-4, 1e-9)
    back = pickle.loads(pickle.dumps(lp))
    assert torch.equal(back(S), lp(S)) and repr(back) == repr(lp)
    assert repr(lp) == f"LearnedPCEN(64, sr=16000, hop_length=512, time_constant=0.4, eps=1e-06, learn={learn})"


def test_learned_pcen_refuses_to_learn_what_it_has_not():
    with pytest.raises(ValueError, match=r"learn names \['gain'\], which are not among its parameters "
                                         r"\['alpha', 'delta', 'root', 'smooth_coef'\]"):
        LearnedPCEN(64, learn=('smooth_coef', 'gain'))
    assert [n for n, _ in LearnedPCEN(64, learn='root').named_parameters()] == ['root']    # one name, not its letters
    with pytest.raises(TypeError, match='learn'): FrozenPCEN(64, learn=('alpha',))


@pytest.mark.parametrize('name,learn', [('pcen_learn_smooth', ['smooth_coef']),
                                        ('pcen_learn_compress', ['alpha', 'delta', 'root']),
                                        ('pcen_learn_bias_root', ['delta', 'root']),
                                        ('pcen_learn_gain', ['alpha'])])
def test_the_study_learns_pcen_in_parts_from_frozen_pcens_start(name, learn):
    "pcen_learn_smooth, _compress, _bias_root and _gain: frozen PCEN's input and start, one part of its parameters trained"
    from esc50_norm.study.normalizations import get_normalization
    from esc50_norm.study.presets import get_preset
    from esc50_norm.study.train import model_for
    preset = get_preset('frontends-cpu')
    part, frozen = get_normalization(name), get_normalization('pcen_frozen')
    assert part.spec_cfg(preset.spec) == frozen.spec_cfg(preset.spec) and not part.wave
    assert [type(t) for t in preset.arm(name).tfms] == [type(t) for t in preset.arm('pcen_frozen').tfms]
    S = part.tfms(preset.spec)[0](AudioTensor(clips(seconds=5.0), sr=16000))
    m, mf = model_for(preset.arm(name), 50), model_for(preset.arm('pcen_frozen'), 50)
    assert torch.equal(m[0](S), mf[0](S)) and type(m[0]) is LearnedPCEN
    assert sorted(n for n, _ in m[0].named_parameters()) == learn
    n_params = lambda m: sum(p.numel() for p in m.parameters())
    assert n_params(m) - n_params(mf) == len(learn) * 64


def test_frozen_pcen_normalized_per_band_is_frozen_pcen_then_batchnorm_over_its_bands():
    """pcen_frozen_bn: frozen PCEN's input and output, then per band (over batch and time) standardized and scaled by
    BatchNorm's weight and bias, the only parameters it trains; its run file records the PCEN's values"""
    import json
    from esc50_norm.frontend import FreqBatchNorm
    from esc50_norm.study.normalizations import get_normalization
    from esc50_norm.study.presets import get_preset
    from esc50_norm.study.train import frontend_params, model_for
    preset = get_preset('frontends-cpu')
    assert get_normalization('pcen_frozen_bn').spec_cfg(preset.spec) == get_normalization('pcen_frozen').spec_cfg(preset.spec)
    assert [type(t) for t in preset.arm('pcen_frozen_bn').tfms] == [type(t) for t in preset.arm('pcen_frozen').tfms]
    S = get_normalization('pcen_frozen').tfms(preset.spec)[0](AudioTensor(clips(bs=3, seconds=5.0), sr=16000))
    m, mf = model_for(preset.arm('pcen_frozen_bn'), 50), model_for(preset.arm('pcen_frozen'), 50)
    pcen, bn = m[0]
    assert type(pcen) is LearnedPCEN and type(bn) is FreqBatchNorm and bn.num_features == 64
    P = mf[0](S).float()
    assert torch.equal(pcen(S), mf[0](S))
    with torch.no_grad(): bn.weight.fill_(2.), bn.bias.fill_(0.5)
    mean, var = P.mean(dim=(0, 1, 3), keepdim=True), P.var(dim=(0, 1, 3), unbiased=False, keepdim=True)
    assert torch.allclose(m[0](S), 2 * (P - mean) / torch.sqrt(var + 1e-5) + 0.5, atol=1e-4)
    assert sorted(n for n, p in m[0].named_parameters() if p.requires_grad) == ['1.bias', '1.weight']
    ended = json.loads(frontend_params(m)['frontend_params'])
    assert sorted(ended) == ['alpha', 'delta', 'root', 'smooth_coef'] and len(ended['alpha']) == 64
    assert ended == json.loads(frontend_params(mf)['frontend_params'])          # librosa's start, as frozen PCEN's


def test_the_study_feeds_frozen_and_learned_pcen_alike():
    "In the study both front ends take the same magnitudes from the same pipeline and start from the same parameters"
    from esc50_norm.study.normalizations import get_normalization
    from esc50_norm.study.presets import get_preset
    from esc50_norm.study.train import model_for
    preset = get_preset('frontends-cpu')
    cfg = preset.spec
    frozen, learned = get_normalization('pcen_frozen'), get_normalization('pcen_learned')
    assert frozen.spec_cfg(cfg) == learned.spec_cfg(cfg) == cfg.for_pcen() and not frozen.wave
    x = AudioTensor(clips(seconds=5.0), sr=16000)
    tf, tl = frozen.tfms(cfg), learned.tfms(cfg)
    assert [type(t) for t in tf] == [type(t) for t in tl] == [AudioToSpec]
    S = tf[0](x)
    mf, ml = model_for(preset.arm('pcen_frozen'), 50), model_for(preset.arm('pcen_learned'), 50)
    assert torch.equal(mf[0](S), ml[0](tl[0](x)))
    n_params = lambda m: sum(p.numel() for p in m.parameters())
    assert n_params(ml) - n_params(mf) == 4 * 64                      # alpha, delta, root, smooth_coef per band


def test_an_arm_is_the_normalization_resolved_once_for_its_recipe():
    "What the pipeline, the model and the result row need, from one lookup: spectrogram, batch transforms, a front end"
    from esc50_norm.study.normalizations import NORMALIZATIONS, norm_tfms
    from esc50_norm.study.presets import get_preset
    p = get_preset('frontends-cpu')
    arm = p.arm('pcen_learned')
    assert arm.normalization is NORMALIZATIONS['pcen_learned'] and arm.spec == p.spec.for_pcen()
    assert [type(t).__name__ for t in arm.tfms] == ['RandomTimeShift', 'AudioToSpec', 'SpecMask']
    assert arm.tfms[1].cfg == arm.spec
    assert [type(t) for t in norm_tfms('pcen_learned', p.spec, p.stats_frac, p.augment)] == [type(t) for t in arm.tfms]
    a, b = arm.frontend(), arm.frontend()
    assert type(a).__name__ == 'LearnedPCEN' and a is not b and p.arm('global').frontend() is None


def test_pcen_with_a_lower_fixed_gain_exponent_is_frozen_pcen_at_that_gain():
    "pcen_gain094: pcen_frozen's input and place, librosa's PCEN with gain 0.94 in every band, nothing trained"
    from esc50_norm.study.normalizations import get_normalization
    from esc50_norm.study.presets import get_preset
    from esc50_norm.study.train import frontend_params, model_for
    preset = get_preset('frontends-cpu')
    assert get_normalization('pcen_gain094').spec_cfg(preset.spec) == get_normalization('pcen_frozen').spec_cfg(preset.spec)
    assert [type(t) for t in preset.arm('pcen_gain094').tfms] == [type(t) for t in preset.arm('pcen_frozen').tfms]
    S = get_normalization('pcen_gain094').tfms(preset.spec)[0](AudioTensor(clips(seconds=5.0), sr=16000))
    m, mf = model_for(preset.arm('pcen_gain094'), 50), model_for(preset.arm('pcen_frozen'), 50)
    assert not list(m[0].parameters()) and sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in mf.parameters())
    spec = preset.spec
    assert torch.equal(m[0](S), pcen(S.as_subclass(torch.Tensor), sr=spec.sample_rate, hop_length=spec.hop, gain=0.94))
    assert_rel(m[0](S), librosa.pcen(S.as_subclass(torch.Tensor).numpy(), sr=spec.sample_rate, hop_length=spec.hop,
                                     gain=0.94), 1e-4)
    assert not torch.equal(m[0](S), mf[0](S))
    assert set(json.loads(frontend_params(m)['frontend_params'])['alpha']) == {0.94}
