"DataBlocks on a generated ESC-50-shaped folder: stats from training folds only, three equal pipelines, show_batch, callback"
import json
import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from fastai.data.all import CrossEntropyLossFlat
from fastai.learner import Learner, load_learner
from torch import nn

from esc50_norm import (AudioTensor, AudioToSpec, Augment, SpecNormalize, SpecStatsCallback, SpectrogramConfig, audio_item_tfms,
                        find_spec_normalize, training_inputs)
from esc50_norm.study import fold_split, norm_tfms
from esc50_norm.study.pipelines import pipeline_dataloaders
from conftest import fake_cached
from esc50_norm.study.datasets import DatasetError
from fastai.data.all import Pipeline

SPEC = SpectrogramConfig(n_fft=256, hop_length=160, mel=True, n_mels=24)


@pytest.fixture(scope='module')
def fake(tmp_path_factory): return fake_cached(tmp_path_factory.mktemp('fake'), sr=22050, seconds=(0.8, 1.6), duration=1.0)


def dls_for(fake, mode='channel', pipeline='cached', stats_frac=1.0, augment=None):
    "The 'files' pipeline decodes as the cache was (1 s)"
    root, df, cache = fake
    tfms = norm_tfms(mode, SPEC, stats_frac, augment)
    return pipeline_dataloaders(df, 1, tfms, bs=4, pipeline=pipeline, cache=cache, audio_root=root / 'audio', device='cpu')


def independent_specs(fake, rows):
    "Spectrograms of these metadata rows computed directly: file -> item transforms -> AudioNormalize -> AudioToSpec"
    root, df, _ = fake
    load = Pipeline([AudioTensor.create, *audio_item_tfms(16000, True, 1.0)])
    x = torch.stack([load(root / 'audio' / df.file[i]).as_subclass(torch.Tensor) for i in rows])
    x = (x - x.mean((-2, -1), keepdim=True)) / x.std((-2, -1), keepdim=True, correction=0)
    return AudioToSpec(SPEC)(AudioTensor(x, sr=16000)).as_subclass(torch.Tensor).double()


def all_x(dl):
    return torch.cat([b.as_subclass(torch.Tensor).double() for b in training_inputs(dl)])


@pytest.mark.parametrize('mode,axes', [('global', (0, 1, 2, 3)), ('channel', (0, 1, 3))])
def test_stats_come_from_the_training_folds_only(fake, mode, axes):
    _, df, _ = fake
    train, valid = fold_split(df, 1)
    dls = dls_for(fake, mode)
    norm = find_spec_normalize(dls.train)
    ref_std, ref_mean = torch.std_mean(independent_specs(fake, train), dim=axes, keepdim=True, correction=0)
    assert torch.allclose(norm.stats['mean'], ref_mean, rtol=1e-4, atol=1e-3) and torch.allclose(norm.stats['std'], ref_std, rtol=1e-4)
    _, with_valid = torch.std_mean(independent_specs(fake, train + valid), dim=axes, keepdim=True, correction=0)
    assert not torch.allclose(norm.stats['mean'], with_valid, rtol=1e-3)
    x = all_x(dls.train)                                    # every training item once, normalized
    assert len(x) == len(train)
    assert x.mean(axes).abs().max() < 1e-4 and (x.std(axes, correction=0) - 1).abs().max() < 1e-4


def test_three_pipelines_give_the_same_spectrograms_and_stats(fake):
    got = {p: dls_for(fake, 'channel', p) for p in ('files', 'cached', 'device')}
    xs = {p: dls.valid.one_batch()[0].as_subclass(torch.Tensor) for p, dls in got.items()}
    assert torch.allclose(xs['files'], xs['cached'], atol=1e-5) and torch.allclose(xs['cached'], xs['device'], atol=1e-5)
    means = [find_spec_normalize(dls.train).stats['mean'] for dls in got.values()]
    assert torch.allclose(means[0], means[1], atol=1e-6) and torch.allclose(means[1], means[2], atol=1e-6)


def test_show_batch_writes_a_png(fake, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)          # numpy 2's `__array__` without `copy`: not met
        dls_for(fake, 'global', 'files').show_batch(max_n=4)
    plt.savefig(tmp_path / 'batch.png'); plt.close('all')
    assert (tmp_path / 'batch.png').stat().st_size > 5000


def test_validation_dataloader_is_refused_and_unknown_fold_named(fake):
    dls = dls_for(fake)
    with pytest.raises(ValueError, match='validation split'): next(training_inputs(dls.valid))
    with pytest.raises(DatasetError, match='fold 6 does not exist'): fold_split(fake[1], 6)


def test_fraction_uses_about_that_share_of_the_batches(fake):
    half = dls_for(fake, 'global', stats_frac=0.5).train
    norm, n_batches = find_spec_normalize(half), len(half)
    per_clip = SPEC.n_freq * SPEC.n_frames(16000)
    assert norm.n_per_bin == round(0.5 * n_batches) * half.bs * per_clip


def tiny_learner(dls, cbs):
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, len(dls.vocab)))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat(), cbs=cbs)


def deferred(fake, mode, **kw):
    "DataLoaders whose SpecNormalize learns nothing at set-up (`stats_frac=0`): it warns once that it passes spectrograms through"
    with pytest.warns(UserWarning, match='no stats yet'): return dls_for(fake, mode, stats_frac=0, **kw)


def test_stats_deferred_at_set_up_are_learned_from_every_training_batch_by_learn(fake):
    "`frac=0` makes no pass at `dataloaders()`; a bare `learn(dls)` then reads every training clip, not a share of 0"
    _, df, _ = fake
    dls = deferred(fake, 'channel')
    norm = find_spec_normalize(dls.train)
    assert not norm.has_stats and norm.learn(dls) is norm
    ref_std, ref_mean = torch.std_mean(independent_specs(fake, fold_split(df, 1)[0]), dim=(0, 1, 3), keepdim=True, correction=0)
    assert norm.learned == 1.0 and torch.allclose(norm.mean, ref_mean, rtol=1e-4, atol=1e-3) and torch.allclose(norm.std, ref_std, rtol=1e-4)


def test_deferred_stats_warn_again_when_batches_keep_passing_unnormalized_and_not_with_the_callback(fake):
    "frac=0 without SpecStatsCallback: set-up warns once; a run of batches (a fit) warns that none was normalized"
    from esc50_norm.normalize import UNNORMALIZED_BATCHES
    dls = deferred(fake, 'channel')
    passed = find_spec_normalize(dls.train)._passed
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        for _ in range(UNNORMALIZED_BATCHES - passed - 1): dls.train.one_batch()
        assert not said                                                     # show_batch and set-up pass a few
        dls.train.one_batch()
        dls.train.one_batch()
    assert len(said) == 1 and str(said[0].message).endswith(
        f": {UNNORMALIZED_BATCHES} batches have passed through unnormalized: is a model being trained on them? Add "
        "SpecStatsCallback() to the Learner's cbs, or call learn(dls) before fitting")
    fresh = deferred(fake, 'channel')
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        tiny_learner(fresh, SpecStatsCallback()).fit(3)
    assert not [w for w in said if 'unnormalized' in str(w.message)]


def test_callback_learns_saves_and_reloads_the_stats(fake, tmp_path):
    _, df, _ = fake
    dls = deferred(fake, 'channel')                          # no stats at set-up: the callback provides them
    norm = find_spec_normalize(dls.train)
    assert not norm.has_stats
    cb = SpecStatsCallback(fname=tmp_path / 'stats.json')
    tiny_learner(dls, cb).fit(1)
    ref_std, ref_mean = torch.std_mean(independent_specs(fake, fold_split(df, 1)[0]), dim=(0, 1, 3), keepdim=True, correction=0)
    assert cb.source == 'learned' and torch.allclose(norm.mean, ref_mean, rtol=1e-4, atol=1e-3) and torch.allclose(cb.stats['std'], ref_std, rtol=1e-4)
    assert (tmp_path / 'stats.json').exists()
    fresh = deferred(fake, 'channel')
    cb2 = SpecStatsCallback(fname='stats.json')                # relative: under learn.path, as fastai's callbacks
    learn = tiny_learner(fresh, cb2)
    learn.path = tmp_path
    learn.fit(1)
    assert cb2.source == 'file' and not Path('stats.json').exists()   # loaded, not recomputed
    assert torch.equal(find_spec_normalize(fresh.train).stats['mean'], norm.stats['mean'])


def test_stats_the_callback_served_stay_in_validation_and_in_the_exported_model(fake, tmp_path, monkeypatch):
    """fastai runs `before_fit` in `validate` and `predict` too: there, and in the model exported and loaded elsewhere
    beside another stats.json, the callback neither reads nor writes a file and the stats stay those of training"""
    (tmp_path / 'train').mkdir(), (tmp_path / 'elsewhere').mkdir()
    root, df, _ = fake
    learn = tiny_learner(deferred(fake, 'channel', pipeline='files'), SpecStatsCallback(fname='stats.json'))
    learn.path = tmp_path / 'train'
    learn.fit(1)
    trained = {k: v.clone() for k, v in learn.spec_stats.stats.items()}
    (tmp_path / 'train' / 'stats.json').unlink()
    learn.validate()                                             # would have written stats.json again
    assert not (tmp_path / 'train' / 'stats.json').exists()
    learn.export(tmp_path / 'model.pkl')
    monkeypatch.chdir(tmp_path / 'elsewhere')
    SpecNormalize('channel', stats={k: v + 123 for k, v in trained.items()}).save('stats.json')   # another model's
    loaded = load_learner(tmp_path / 'model.pkl')
    loaded.path = Path('.')
    loaded.predict(root / 'audio' / df.file[0])
    norm = find_spec_normalize(loaded.dls.train)
    assert loaded.spec_stats.source == 'learned'
    assert all(torch.equal(norm.stats[k].cpu(), v.cpu()) for k, v in trained.items())
    assert sorted(p.name for p in (tmp_path / 'elsewhere').iterdir()) == ['stats.json']


def test_a_stats_file_that_does_not_fit_the_spectrograms_is_named_at_the_first_batch(fake, tmp_path):
    "A stats file of 7 bins left where the callback looks: the error names it and says what to do"
    f = tmp_path / 'stats.json'
    SpecNormalize('channel', stats=dict(mean=torch.zeros(7), std=torch.ones(7))).save(f)
    with pytest.raises(ValueError, match=rf"stats of shape \(1, 1, 7, 1\) do not fit .* {SPEC.n_freq}; they were "
                                         rf"loaded from {re.escape(str(f))}: move it away"):
        tiny_learner(deferred(fake, 'channel'), SpecStatsCallback(fname=f)).fit(1)


def test_callback_learns_what_setups_learns_not_the_augmentations_after_the_normalization(fake):
    "The strong recipe masks the normalized spectrograms (SpecMask after SpecNormalize): the masks are not in the stats"
    _, df, _ = fake
    masks = Augment(freq_mask=0.5, time_mask=0.5)
    set_up = find_spec_normalize(dls_for(fake, 'global', augment=masks).train)
    dls = deferred(fake, 'global', augment=masks)
    assert [type(t).__name__ for t in dls.train.after_batch.fs][-2:] == ['SpecNormalize', 'SpecMask']
    cb = SpecStatsCallback()
    tiny_learner(dls, cb).fit(1)
    std, mean = torch.std_mean(independent_specs(fake, fold_split(df, 1)[0]), correction=0)
    for k, ref in (('mean', mean), ('std', std)):
        assert torch.allclose(cb.stats[k].flatten(), ref.view(1), rtol=1e-4), k
        assert torch.allclose(cb.stats[k], set_up.stats[k], rtol=1e-9), k
    assert cb.target.n_per_bin == set_up.n_per_bin == len(dls.train.dataset) * SPEC.n_freq * SPEC.n_frames(16000)


def test_callback_refuses_a_learner_without_spec_normalize_and_needs_no_stats_when_given(fake):
    with pytest.raises(ValueError, match='has no SpecNormalize'): tiny_learner(dls_for(fake, 'wave'), SpecStatsCallback()).fit(1)
    dls = dls_for(fake, 'global')
    norm = find_spec_normalize(dls.train)
    norm._set({k: v.clone() for k, v in norm.stats.items()})         # given, as stats= gives them
    before = dict(norm.stats)
    cb = SpecStatsCallback()
    tiny_learner(dls, cb).fit(1)
    assert cb.source == 'given' and all(cb.stats[k] is v for k, v in before.items())


def test_callback_writes_and_reads_its_file_when_setups_learned_the_stats(fake, tmp_path):
    "The default set-up (frac=1.0): setups has learned the stats; the callback saves them, a later one reads them"
    f = tmp_path / 'stats.json'
    dls = dls_for(fake, 'channel')
    learned = dict(find_spec_normalize(dls.train).stats)
    cb = SpecStatsCallback(fname=f)
    tiny_learner(dls, cb).fit(1)
    assert cb.source == 'learned' and f.exists()
    assert all(cb.stats[k] is v for k, v in learned.items())                   # not learned twice
    from esc50_norm import SpecNormalize
    SpecNormalize('channel', stats={k: v + 1 for k, v in learned.items()}).save(f)
    fresh = dls_for(fake, 'channel')
    cb2 = SpecStatsCallback(fname=f)
    with pytest.warns(UserWarning, match=rf"the stats in {re.escape(str(f))} differ from those learned from these "
                                         r"DataLoaders \(by up to [\d.]+%\); the file's are used: delete it"):
        tiny_learner(fresh, cb2).fit(1)
    assert cb2.source == 'file' and torch.allclose(cb2.stats['mean'], learned['mean'] + 1)
    SpecNormalize('channel', stats=learned).save(f)                        # the same stats: read without a word
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        tiny_learner(dls_for(fake, 'channel'), SpecStatsCallback(fname=f)).fit(1)
    assert not [w for w in said if 'SpecStatsCallback' in str(w.message)]
    SpecNormalize('channel', stats={k: v[..., :3, :] for k, v in learned.items()}).save(f)    # 3 bins: not these spectrograms'
    with pytest.raises(ValueError, match=re.escape(str(f))):
        tiny_learner(dls_for(fake, 'channel'), SpecStatsCallback(fname=f)).fit(1)


def test_stats_record_the_spectrograms_they_describe_and_refuse_others(fake, tmp_path):
    """Learned stats keep the settings of the spectrograms they came from; their file holds them, and spectrograms of
    the same shape made otherwise (another f_max) are refused, naming the file and the setting, by the transform and
    by the callback; stats given without settings are used on any spectrograms"""
    f, other = tmp_path / 'stats.json', SPEC.update(f_max=4000.0)
    dls = dls_for(fake, 'channel')
    norm = find_spec_normalize(dls.train)
    assert norm.spectrogram == SPEC.settings() and (norm.spectrogram['n_mels'], norm.spectrogram['f_max']) == (24, 8000)
    norm.save(f)
    assert json.loads(f.read_text())['spectrogram'] == norm.spectrogram
    x = AudioTensor(torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(0)), sr=16000)
    loaded = SpecNormalize.from_file(f)
    assert torch.equal(loaded(AudioToSpec(SPEC)(x)), norm(AudioToSpec(SPEC)(x)))
    refused = rf"channel stats loaded from {re.escape(str(f))} describe spectrograms made with other settings \(f_max=8000.0 there, 4000.0 here\)"
    with pytest.raises(ValueError, match=refused): loaded(AudioToSpec(other)(x))
    a = AudioToSpec(SPEC)
    assert a(x).config is a(x).config                                     # the mark is made once, not per batch
    same = SPEC.update(f_max=8000, win_length=256, hop_length=160)          # other words for the same spectrograms
    assert torch.equal(loaded(AudioToSpec(same)(x)), norm(AudioToSpec(SPEC)(x)))
    given = SpecNormalize('channel', stats=loaded.stats)
    assert given.spectrogram is None and given(AudioToSpec(other)(x)).shape == (2, 1, 24, SPEC.n_frames(16000))
    root, df, cache = fake
    with pytest.warns(UserWarning, match='no stats yet'):                  # deferred: the callback gives them
        elsewhere = pipeline_dataloaders(df, 1, norm_tfms('channel', other, 0, None), bs=4, pipeline='cached',
                                         cache=cache, audio_root=root / 'audio', device='cpu')
    with pytest.raises(ValueError, match=refused): tiny_learner(elsewhere, SpecStatsCallback(fname=f)).fit(1)


def test_spectrogram_settings_are_plain_json_resolved_and_only_those_with_an_effect():
    "A numpy sample rate, PCEN's 2**31 scale, no filterbank, no dB: what a stats file records round-trips through JSON"
    import numpy as np
    from esc50_norm import AudioConfig
    c = SpectrogramConfig(sample_rate=np.int64(22050), n_fft=512, hop_length=None, top_db=80.0)
    d = json.loads(json.dumps(c.settings()))
    assert d == c.settings() and type(d['sample_rate']) is int and d['hop_length'] == 256 and d['win_length'] == 512
    assert not {'n_mels', 'f_min', 'f_max', 'band_scale'} & set(d) and d['top_db'] == 80.0     # no filterbank
    p = AudioConfig.PCENMelSpectrogram().settings()
    assert json.loads(json.dumps(p)) == p and p['scale'] == 2.0 ** 31 and 'top_db' not in p and p['f_max'] == 8000
