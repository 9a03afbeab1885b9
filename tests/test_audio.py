"Reading files, and the item transforms that bring any clip to 16 kHz, mono, 5 s"
import numpy as np
import pytest
import soundfile as sf
import torch
from fastai.data.all import Pipeline

from esc50_norm import (AudioCropPad, AudioLoadError, AudioTensor, DownmixMono, NonFiniteAudioError, Resample, audio_item_tfms,
                        get_audio_files)


def write(path, x, sr):
    sf.write(path, x, sr)
    return path


def test_44k_stereo_file_becomes_16k_mono_of_80000_samples(tmp_path):
    t = np.arange(int(44100 * 5.5)) / 44100
    f = write(tmp_path / 'st.wav', np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], 1).astype('float32'), 44100)
    a = AudioTensor.create(f)
    assert (a.sr, a.nchannels, a.nsamples, a.duration) == (44100, 2, len(t), pytest.approx(5.5))
    b = Pipeline(audio_item_tfms())(a)
    assert isinstance(b, AudioTensor) and b.sr == 16000 and tuple(b.shape) == (1, 80000)
    assert b.abs().max().item() == pytest.approx(0.5, abs=0.01)      # mean of a unit sine and silence


def test_short_clip_is_zero_padded_at_the_end_and_long_one_cropped():
    x = AudioTensor(torch.ones(1, 1000), sr=1000)
    p = AudioCropPad(1.5)(x)
    assert p.shape[-1] == 1500 and p[0, :1000].eq(1).all() and p[0, 1000:].eq(0).all()
    c = AudioCropPad(0.25)(AudioTensor(torch.arange(1000.).view(1, -1), sr=1000))
    assert torch.equal(c[0], torch.arange(250.)) and c.sr == 1000


def test_downmix_mean_and_sum():
    x = AudioTensor(torch.tensor([[1., 2.], [3., 6.]]), sr=8000)
    assert torch.equal(DownmixMono('mean')(x), torch.tensor([[2., 4.]]))
    assert torch.equal(DownmixMono('sum')(x), torch.tensor([[4., 8.]]))
    assert DownmixMono()(x).sr == 8000
    with pytest.raises(ValueError, match="'max'"): DownmixMono('max')


def test_resample_keeps_the_frequency_of_a_sine():
    sr = 48000
    t = torch.arange(sr) / sr
    y = Resample(16000)(AudioTensor(torch.sin(2 * torch.pi * 1000 * t).view(1, -1), sr=sr))
    assert y.sr == 16000 and y.shape[-1] == 16000
    spectrum = torch.fft.rfft(y[0].as_subclass(torch.Tensor)).abs()
    assert spectrum.argmax().item() == 1000               # 1 s of signal: bin k is k Hz
    assert Resample(16000)(y) is y                          # already at the rate: untouched


def test_corrupt_and_empty_files_raise_naming_the_file(tmp_path):
    bad = tmp_path / 'corrupt-clip.wav'
    bad.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(AudioLoadError, match='corrupt-clip.wav'): AudioTensor.create(bad)
    empty = write(tmp_path / 'empty-clip.wav', np.zeros((0, 1), 'float32'), 16000)
    with pytest.raises(AudioLoadError, match='empty-clip.wav holds no samples'): AudioTensor.create(empty)
    with pytest.raises(AudioLoadError, match='missing.ogg'): AudioTensor.create(tmp_path / 'missing.ogg')


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_a_file_of_non_finite_samples_is_refused_naming_the_file(tmp_path, bad):
    x = np.zeros((1600, 2), 'float32')
    x[100:103, 1] = bad
    sf.write(tmp_path / 'nan-clip.wav', x, 16000, subtype='FLOAT')
    assert not np.isfinite(sf.read(tmp_path / 'nan-clip.wav')[0]).all()      # the file really holds them
    with pytest.raises(NonFiniteAudioError, match=r"nan-clip\.wav holds 3 samples that are NaN or inf \(of 3200\)"):
        AudioTensor.create(tmp_path / 'nan-clip.wav')
    assert issubclass(NonFiniteAudioError, AudioLoadError)


def test_ogg_and_flac_read_like_wav(tmp_path):
    x = (0.1 * np.random.default_rng(1).standard_normal((16000, 1))).astype('float32')
    f = AudioTensor.create(write(tmp_path / 'a.flac', x, 16000))
    o = AudioTensor.create(write(tmp_path / 'a.ogg', x, 16000))
    assert f.shape == o.shape == (1, 16000) and torch.allclose(f[0], torch.from_numpy(x[:, 0]), atol=1e-4)
    assert torch.corrcoef(torch.stack([o[0], f[0]]))[0, 1] > 0.9   # lossy, but the same signal


def test_get_audio_files_lists_what_create_reads_in_a_folder_tree(tmp_path):
    "Audio files of any case, in subfolders; not other files; `folders` and `recurse` as fastai's get_files"
    x = np.zeros((160, 1), 'float32')
    made = []
    for p in ('dog/a.wav', 'dog/b.FLAC', 'cat/c.ogg', 'cat/deep/d.wav', 'e.wav'):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        made.append(write(tmp_path / p, x, 16000))
    (tmp_path / 'dog' / 'notes.txt').write_text('not audio')
    (tmp_path / 'cat' / 'c.ogg.csv').write_text('a,b')
    assert sorted(get_audio_files(tmp_path)) == sorted(made)
    assert sorted(get_audio_files(tmp_path, folders=['dog'])) == made[:2]
    assert list(get_audio_files(tmp_path, recurse=False)) == [tmp_path / 'e.wav']
    assert all(AudioTensor.create(f).shape == (1, 160) for f in get_audio_files(tmp_path))
    assert list(get_audio_files(tmp_path, extensions=['.ogg'])) == [made[2]]


@pytest.mark.skipif('MP3' not in sf.available_formats(), reason="this libsndfile (< 1.1) has no MP3")
def test_mp3_and_aiff_are_listed_and_read_as_the_folders_dataset_kind_takes_them(tmp_path):
    "One list of extensions for the library and the study: what get_audio_files lists, AudioTensor.create reads"
    from esc50_norm.study.datasets import ClassFolders
    t = np.arange(16000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype('float32')
    (tmp_path / 'a').mkdir()
    made = [write(tmp_path / 'a' / n, x, 16000) for n in ('b.mp3', 'c.AIFF')]
    sf.write(tmp_path / 'a' / 'd.aif', x, 16000, format='AIFF')             # soundfile names .aiff only
    made.append(tmp_path / 'a' / 'd.aif')
    (tmp_path / 'b').mkdir()
    made += [write(tmp_path / 'b' / n, x, 16000) for n in ('e.wav', 'f.wav')]
    assert sorted(get_audio_files(tmp_path)) == sorted(made)
    meta = ClassFolders(tmp_path, k_folds=2).meta()                        # the study's folder-per-class kind
    assert sorted(meta.file) == sorted(f.relative_to(tmp_path).as_posix() for f in made)
    for f in made:
        a = AudioTensor.create(f)
        assert a.sr == 16000 and abs(a.shape[-1] - 16000) < 2000            # mp3 adds the encoder's delay and padding
        spectrum = np.abs(np.fft.rfft(a[0, :16000].numpy()))
        assert abs(spectrum.argmax() - 440) <= 1                            # the same tone, 1 Hz a bin


def test_show_plots_the_waveform():
    import matplotlib.pyplot as plt
    ax = AudioTensor(torch.randn(2, 800), sr=8000).show()
    assert len(ax.lines) == 2 and ax.get_xlim()[1] == pytest.approx(799 / 8000)
    plt.close('all')
