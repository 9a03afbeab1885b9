"Every SpecNormalize mode against numpy written here; stats files across modes; fastai DataLoaders, the callback and show"
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from fastai.data.all import CrossEntropyLossFlat, DataLoader
from fastai.learner import Learner
from torch import nn

from esc50_norm import MODES, AudioSpectrogram, SpecNormalize, SpecStatsCallback, SpectrogramConfig, StatsFileError, find_spec_normalize
from conftest import fake_cached
from esc50_norm.study import norm_tfms
from esc50_norm.study.pipelines import pipeline_dataloaders

PER_CLIP = 'standard deviations (per clip; cannot be decoded)'


def clips(n=10, f=6, t=9, seed=0, silent=False):
    "dB-like spectrograms whose clips differ in level and range; the last one an outlier (or silent: all -100 dB)"
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, f, t, generator=g) * torch.linspace(5, 15, n).view(n, 1, 1, 1) - 40 + torch.linspace(0, 20, f).view(1, 1, f, 1)
    x[-1] = -100 if silent else x[-1] * 8 + 100
    return AudioSpectrogram(x)


def learned(mode, x, bs=3, **kw):
    "A `SpecNormalize` whose `setups` learned its stats from a fastai DataLoader over the clips of `x`, in batches of `bs`"
    norm = SpecNormalize(mode, **kw)
    norm.setups(DataLoader(list(x), bs=bs))
    return norm


def expected(mode, x, mean_only=False):
    "The normalized clips and the learned stats (or None), computed directly with numpy"
    a = x.numpy().astype(np.float64)
    if mode in ('global', 'channel'):
        axes = (0, 1, 2, 3) if mode == 'global' else (0, 1, 3)
        shift, scale = a.mean(axes, keepdims=True), a.std(axes, keepdims=True)
    elif mode == 'minmax':
        shift, scale = a.min((1, 2, 3)).mean(), a.max((1, 2, 3)).mean() - a.min((1, 2, 3)).mean()
    else:
        dims = (-1,) if mode == 'instance' else (1, 2, 3)
        shift, scale = a.mean(dims, keepdims=True), a.std(dims, keepdims=True)
    return (a - shift) / (1 if mean_only else np.where(scale < 1e-6, 1, scale))   # a constant bin or clip is only shifted


@pytest.mark.parametrize('mean_only', [False, True])
@pytest.mark.parametrize('mode', list(MODES))
def test_every_mode_matches_numpy_and_decodes_where_it_can(mode, mean_only):
    x = clips()
    norm = learned(mode, x, mean_only=mean_only)
    y = norm(x)
    assert isinstance(y, AudioSpectrogram)
    np.testing.assert_allclose(y.numpy(), expected(mode, x, mean_only), rtol=1e-4, atol=1e-4)
    one = norm(x[4])                                        # a single item [ch, freq, time] is normalized the same way
    np.testing.assert_allclose(one.numpy(), y[4].numpy(), rtol=1e-5, atol=1e-5)
    assert norm.invertible == (mode in ('global', 'channel', 'minmax'))
    assert norm.learns_stats == norm.invertible and norm.has_stats == norm.learns_stats
    if norm.invertible:
        assert torch.allclose(norm.decode(y), x, atol=1e-4) and not norm.decode(y).normalized
    else:                                                   # decodes leaves them as they are, still marked normalized
        d = norm.decode(y)
        assert torch.equal(d, y) and d.normalized == norm.unit and 'cannot be decoded' in d.normalized


def test_mean_only_subtracts_the_mean_and_decodes_exactly():
    x = clips()
    for mode, axes in (('global', (0, 1, 2, 3)), ('channel', (0, 1, 3))):
        norm = learned(mode, x, mean_only=True)
        mean = x.as_subclass(torch.Tensor).double().mean(axes, keepdim=True)
        y = norm(x)
        assert torch.allclose(y.double(), x.double() - mean, atol=1e-4)
        assert torch.allclose(norm.decode(y), x, atol=1e-4)
        assert torch.allclose(norm.std.double(), x.double().std(axes, keepdim=True, correction=0), rtol=1e-5)  # learned, not used
    lo = learned('minmax', x, mean_only=True)
    assert torch.allclose(lo(x).double(), x.double() - x.flatten(1).amin(1).double().mean(), atol=1e-4)
    assert torch.allclose(learned('instance', x, mean_only=True)(x), x - x.mean(-1, keepdim=True), atol=1e-4)


def test_instance_modes_give_each_clip_zero_mean_unit_std():
    x = clips()
    y = SpecNormalize('instance')(x).as_subclass(torch.Tensor)
    assert y.mean(-1).abs().max() < 1e-5 and (y.std(-1, correction=0) - 1).abs().max() < 1e-5
    assert y.mean((0, 1, 3)).abs().max() < 1e-5                # so every bin is centred over the batch as well
    g = SpecNormalize('instance_global')(x).as_subclass(torch.Tensor)
    assert g.mean((1, 2, 3)).abs().max() < 1e-5 and (g.std((1, 2, 3), correction=0) - 1).abs().max() < 1e-5
    assert g.mean(-1).abs().max() > 0.1                        # only per clip, not per bin
    assert not torch.allclose(y, g)


def test_minmax_is_the_mean_of_clip_extremes_and_the_option_takes_the_true_ones():
    x = clips()
    a = x.numpy().astype(np.float64)
    robust, extreme = learned('minmax', x), learned('minmax', x, mean_clip_extremes=False)
    assert robust.stats['lo'].item() == pytest.approx(np.mean([c.min() for c in a]), rel=1e-12)
    assert robust.stats['hi'].item() == pytest.approx(np.mean([c.max() for c in a]), rel=1e-12)
    assert extreme.stats['lo'].item() == pytest.approx(a.min()) and extreme.stats['hi'].item() == pytest.approx(a.max())
    assert robust.n_clips == extreme.n_clips == robust.n == len(x)
    yr, ye = robust(x), extreme(x)
    assert ye.min().item() == pytest.approx(0, abs=1e-6) and ye.max().item() == pytest.approx(1, abs=1e-6)
    spread = lambda y: (y[:-1].max() - y[:-1].min()).item()    # of the ordinary clips
    assert spread(ye) < 0.25 * spread(yr)                       # the outlier clip squashes them only under the true extremes
    assert torch.allclose(robust.decode(yr), x, atol=1e-4) and torch.allclose(extreme.decode(ye), x, atol=1e-4)
    assert 'mean_clip_extremes=False' in repr(extreme) and "mode='minmax'" in repr(extreme)
    with pytest.raises(ValueError, match="'global' normalization has no option 'mean_clip_extremes'"):
        SpecNormalize('global', mean_clip_extremes=False)
    with pytest.raises(ValueError, match=r"'minmax' normalization has no option 'robust' \(its options: mean_clip_extremes"):
        SpecNormalize('minmax', robust=False)


@pytest.mark.parametrize('mean_only', [False, True])
@pytest.mark.parametrize('mode', list(MODES))
def test_a_silent_clip_stays_finite(mode, mean_only):
    "Stats learned from silence alone (std and hi - lo 0, stored as 1) map it to 0; with other clips, as numpy does"
    x = clips(silent=True)
    silent = clips(n=4, silent=True)[-1:].expand(3, -1, -1, -1)     # nothing but silence: std and hi - lo are 0
    only, mixed = learned(mode, silent, mean_only=mean_only), learned(mode, x, mean_only=mean_only)
    assert torch.equal(only(x)[-1], torch.zeros_like(x[-1]))        # -100 dB less its own level, over 1
    assert np.allclose(mixed(x).numpy(), expected(mode, x, mean_only), atol=1e-4)
    for norm in (only, mixed):
        y = norm(x)
        assert torch.isfinite(y).all()
        if norm.invertible: assert torch.allclose(norm.decode(y), x, atol=1e-3)


def test_a_constant_bin_is_only_shifted_and_its_stats_save_and_load(tmp_path):
    x = clips()
    x[..., 2, :] = -100.0                                           # digital silence in bin 2 of every clip: its std is 0
    norm = learned('channel', x)
    a = x.numpy().astype(np.float64)
    std = norm.stats['std'].flatten().numpy()
    assert std[2] == 1.0 and norm.stats['mean'].flatten()[2].item() == -100.0      # stored as 1, not 0 (or eps)
    np.testing.assert_allclose(np.delete(std, 2), np.delete(a.std((0, 1, 3)), 2), rtol=1e-9)
    y = norm(AudioSpectrogram(x - 10))                              # 10 dB quieter than anything seen in training
    assert torch.allclose(y[..., 2, :], torch.full_like(y[..., 2, :], -10.0), atol=1e-4)   # an offset in dB, not -10 / eps
    back = SpecNormalize.from_file(norm.save(tmp_path / 'c.json'))
    assert torch.equal(back(x), norm(x))
    mm = learned('minmax', AudioSpectrogram(torch.full((4, 1, 3, 5), -100.0)))
    assert (mm.stats['lo'].item(), mm.stats['hi'].item()) == (-100.0, -99.0)


def test_stats_learned_from_non_finite_spectrograms_are_refused():
    x = clips()
    x[3, 0, 1, 4] = float('nan')
    with pytest.raises(ValueError, match=r"stats learned from the training data: channel stats must be finite, got mean nan, std nan \(bin 1; 1 of 6 bins\)"):
        learned('channel', x)
    assert not SpecNormalize('channel').has_stats


def test_instance_modes_learn_nothing_and_save_nothing(tmp_path):
    norm = SpecNormalize('instance')
    norm.setups(DataLoader(list(clips()), bs=3))
    assert not norm.has_stats and norm.stats is None and 'per-clip' in repr(norm)
    with pytest.raises(ValueError, match='no stats to save: it normalizes each clip by its own'): norm.save(tmp_path / 's.json')
    with pytest.raises(ValueError, match="'instance_global' normalization learns no stats"): SpecNormalize('instance_global').learn(DataLoader(list(clips()), bs=3))
    with pytest.raises(ValueError, match='takes no stats'): SpecNormalize('instance', stats=dict(mean=0., std=1.))
    assert not (tmp_path / 's.json').exists()


def test_stats_files_hold_the_mode_and_its_options_and_load_back(tmp_path):
    x = clips()
    norm = learned('minmax', x, mean_clip_extremes=False, mean_only=True)
    d = json.loads(norm.save(tmp_path / 'mm.json', fold=3).read_text())
    assert d['format'] == 'esc50_norm.stats/1' and d['mode'] == 'minmax' and d['arrays'] == ['lo', 'hi']
    assert d['shape'] == [1, 1, 1, 1] and d['n_clips'] == 10 and d['mean_only'] is True and d['fold'] == 3
    assert d['mean_clip_extremes'] is False and 'count' not in d and 'robust' not in d
    assert d['lo'] == [pytest.approx(float(x.min()))] and 'mean' not in d
    back = SpecNormalize.from_file(tmp_path / 'mm.json')                # mode and options come from the file
    assert back.mode == 'minmax' and back.mean_only and not back.mean_clip_extremes and torch.equal(back(x), norm(x))
    again = SpecNormalize.from_file(tmp_path / 'mm.json', mode='minmax', mean_clip_extremes=False, mean_only=True)
    assert torch.equal(again(x), norm(x))


def test_a_stats_file_of_one_mode_is_refused_by_another(tmp_path):
    x = clips()
    learned('global', x).save(tmp_path / 'g.json')
    learned('minmax', x).save(tmp_path / 'mm.json')
    learned('channel', x, mean_only=True).save(tmp_path / 'c.json')
    with pytest.raises(StatsFileError, match=r"g\.json holds 'global' stats, but they are loaded for mode 'minmax'"):
        SpecNormalize.from_file(tmp_path / 'g.json', mode='minmax')        # same [1,1,1,1] shape: refused by mode
    with pytest.raises(StatsFileError, match=r"mm\.json holds 'minmax' stats, but they are loaded for mode 'global'"):
        SpecNormalize.from_file(tmp_path / 'mm.json', mode='global')
    with pytest.raises(StatsFileError, match=r"mm\.json holds 'minmax' stats, but they are loaded for mode 'instance'"):
        SpecNormalize.from_file(tmp_path / 'mm.json', mode='instance')
    with pytest.raises(StatsFileError, match=r"c\.json was saved with mean_only=True, but this SpecNormalize has mean_only=False"):
        SpecNormalize.from_file(tmp_path / 'c.json', mean_only=False)
    with pytest.raises(StatsFileError, match=r"mm\.json was saved with mean_clip_extremes=True, but this SpecNormalize "
                                             r"has mean_clip_extremes=False"):
        SpecNormalize.from_file(tmp_path / 'mm.json', mean_clip_extremes=False)


def test_first_version_stats_files_still_load(tmp_path):
    for name, mean in (('g', [3.0]), ('c', [1.0, 2.0, 3.0])):     # written before modes had other arrays: mean/std, no mode
        (tmp_path / f'{name}.json').write_text(json.dumps({'format': 'esc50_norm.stats/1', 'shape': [1, 1, len(mean), 1],
                                                           'mean': mean, 'std': [2.0] * len(mean), 'count': 7}))
    g, c = SpecNormalize.from_file(tmp_path / 'g.json'), SpecNormalize.from_file(tmp_path / 'c.json')
    assert g.mode == 'global' and c.mode == 'channel' and g.n_per_bin == 7 and not c.mean_only
    x = clips(f=3)
    assert torch.allclose(c(x), (x - torch.tensor([1., 2., 3.]).view(1, 1, 3, 1)) / 2)
    with pytest.raises(StatsFileError, match="holds 'global' stats, but they are loaded for mode 'minmax'"): SpecNormalize.from_file(tmp_path / 'g.json', mode='minmax')
    (tmp_path / 'run.json').write_text('{"format": "esc50_norm.stats/1", "shape": [1, 1, 1, 1], "mean": [-13.378051973537135], '
                                       '"std": [34.01601603491473], "mode": "global", "count": 128961600, "fold": 1, "normalization": "global"}')
    committed = SpecNormalize.from_file(tmp_path / 'run.json', mode='global')   # verbatim, a results file of that version
    assert committed.n_per_bin == 128961600 and committed.stats['std'].item() == 34.01601603491473
    assert not committed.mean_only


def test_minmax_stats_files_of_0_2_0_name_count_and_robust_and_still_load(tmp_path):
    "0.2.0 saved `count` and minmax's `robust` (esc50_norm.compat.RENAMED_FIELDS): today n_clips, mean_clip_extremes"
    old = {'format': 'esc50_norm.stats/1', 'shape': [1, 1, 1, 1], 'arrays': ['lo', 'hi'], 'lo': [-80.0], 'hi': [0.0],
           'mode': 'minmax', 'count': 12, 'mean_only': False, 'robust': False}
    (tmp_path / 'mm.json').write_text(json.dumps(old))
    old = SpecNormalize.from_file(tmp_path / 'mm.json', mean_clip_extremes=False)
    assert old.n_clips == 12 and old.mean_clip_extremes is False and old.stats['hi'].item() == 0.0
    assert json.loads(old.save(tmp_path / 'again.json').read_text())['n_clips'] == 12


def test_given_stats_are_named_by_the_arrays_of_the_mode():
    n = SpecNormalize('minmax', stats=dict(lo=torch.tensor(-80.), hi=torch.tensor(0.)))
    assert torch.allclose(n(AudioSpectrogram(torch.full((1, 2, 2), -40.))), torch.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match=r"minmax stats are \['lo', 'hi'\]"): SpecNormalize('minmax', stats=dict(mean=torch.zeros(()), std=torch.ones(())))
    with pytest.raises(ValueError, match=r"minmax stats need shape \(1, 1, 1, 1\), got lo \(1, 1, 4, 1\)"):
        SpecNormalize('minmax', stats=dict(lo=torch.zeros(4), hi=torch.ones(4)))


# On fastai DataLoaders of a generated ESC-50-shaped folder

SPEC = SpectrogramConfig(n_fft=256, hop_length=160, mel=True, n_mels=16)


@pytest.fixture(scope='module')
def fake(tmp_path_factory): return fake_cached(tmp_path_factory.mktemp('fake'), sr=16000, seconds=(0.5, 1.0), duration=0.5)[1:]


def dls_for(fake, normalization, stats_frac=1.0):
    df, cache = fake
    return pipeline_dataloaders(df, 1, norm_tfms(normalization, SPEC, stats_frac), bs=4, pipeline='cached', cache=cache, device='cpu')


def every_x(dl):
    return np.concatenate([b[0].numpy() for b in dl.new(shuffle=False, drop_last=False)]).astype(np.float64)


def test_setups_learns_minmax_from_the_training_split_only(fake):
    plain = dls_for(fake, 'wave')                                   # the same spectrograms, not normalized
    train, valid = every_x(plain.train), every_x(plain.valid)
    norm = find_spec_normalize(dls_for(fake, 'minmax').train)
    assert norm.mode == 'minmax' and norm.n_clips == len(train)
    assert norm.stats['lo'].item() == pytest.approx(train.min((1, 2, 3)).mean(), rel=1e-5)
    assert norm.stats['hi'].item() == pytest.approx(train.max((1, 2, 3)).mean(), rel=1e-5)
    both = np.concatenate([train, valid])
    assert norm.stats['lo'].item() != pytest.approx(both.min((1, 2, 3)).mean(), rel=1e-5)
    mean_only = find_spec_normalize(dls_for(fake, 'channel_meanonly').train)
    assert mean_only.mean_only and torch.allclose(mean_only.stats['mean'].flatten(), torch.tensor(train.mean((0, 1, 3))), rtol=1e-5)


def tiny_learner(dls, cbs):
    return Learner(dls, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, len(dls.vocab))), loss_func=CrossEntropyLossFlat(), cbs=cbs)


def test_callback_learns_and_saves_minmax_stats(fake, tmp_path):
    "Stats in minmax mode, exposed by the callback as by SpecNormalize (`cb.stats`), against numpy over the training clips"
    train = every_x(dls_for(fake, 'wave').train)                    # the same spectrograms, not normalized
    with pytest.warns(UserWarning, match='no stats yet'): dls = dls_for(fake, 'minmax', stats_frac=0)
    norm = find_spec_normalize(dls.train)
    cb = SpecStatsCallback(fname=tmp_path / 'mm.json')
    tiny_learner(dls, cb).fit(1)
    assert cb.source == 'learned' and norm.n_clips == len(train) and cb.stats['lo'] is norm.lo
    assert cb.stats['lo'].item() == pytest.approx(train.min((1, 2, 3)).mean(), rel=1e-5)
    assert cb.stats['hi'].item() == pytest.approx(train.max((1, 2, 3)).mean(), rel=1e-5)
    assert torch.equal(SpecNormalize.from_file(tmp_path / 'mm.json').stats['hi'], norm.stats['hi'])
    with pytest.raises(ValueError, match=r"SpecStatsCallback\(mode='global'\) does not fit .* SpecNormalize\(mode='minmax'\)"):
        tiny_learner(dls_for(fake, 'minmax'), SpecStatsCallback(mode='global')).fit(1)
    with pytest.warns(UserWarning, match='no stats yet'): other = dls_for(fake, 'channel', stats_frac=0)
    with pytest.raises(StatsFileError, match=r"mm\.json holds 'minmax' stats, but they are loaded for mode 'channel'"):
        tiny_learner(other, SpecStatsCallback(fname=tmp_path / 'mm.json')).fit(1)


@pytest.mark.parametrize('normalization', ['instance', 'instance_global'])
def test_callback_is_a_no_op_for_per_clip_modes(fake, tmp_path, normalization):
    dls = dls_for(fake, normalization)
    cb = SpecStatsCallback(fname=tmp_path / 's.json')
    learn = tiny_learner(dls, cb)
    learn.fit(1)
    assert cb.stats is None and not (tmp_path / 's.json').exists()
    x = learn.dls.train.one_batch()[0].as_subclass(torch.Tensor)
    dims = -1 if normalization == 'instance' else (1, 2, 3)
    assert x.mean(dims).abs().max() < 1e-4 and (x.std(dims, correction=0) - 1).abs().max() < 1e-4


def colorbar_labels(fig): return [ax.get_ylabel() for ax in fig.axes]


def test_show_batch_says_per_clip_values_cannot_be_decoded(fake):
    dls_for(fake, 'instance').show_batch(max_n=2)
    labels = colorbar_labels(plt.gcf()); plt.close('all')
    assert labels.count(PER_CLIP) == 2
    dls_for(fake, 'minmax').show_batch(max_n=2)                        # decoded back to dB: no such label
    labels = colorbar_labels(plt.gcf()); plt.close('all')
    assert PER_CLIP not in labels and 'standard deviations' not in labels
    ax = SpecNormalize('instance_global')(clips())[0].show()
    assert PER_CLIP in colorbar_labels(ax.figure); plt.close('all')
    ax = learned('minmax', clips())(clips())[0].show()                  # shown without decoding: says what it is
    assert 'fraction of the training range' in colorbar_labels(ax.figure); plt.close('all')
