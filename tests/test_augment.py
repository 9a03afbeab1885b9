"Training-only augmentations: time shift and masks against direct checks, off for validation, seeded"
import pytest
import torch
from fastai.torch_core import set_seed

from esc50_norm import AudioSpectrogram, AudioTensor, Augment, RandomTimeShift, SpecMask, augment_tfms


def test_time_shift_rolls_each_clip_circularly_by_its_own_amount():
    x = AudioTensor(torch.randn(6, 1, 50), sr=16000)
    set_seed(0)
    y = RandomTimeShift(1.0)(x, split_idx=0)
    assert isinstance(y, AudioTensor) and y.sr == 16000
    shifts = []
    for a, b in zip(x, y):
        s = [k for k in range(50) if torch.equal(torch.roll(a, k, -1), b)]
        assert len(s) == 1
        shifts += s
    assert len(set(shifts)) > 1
    assert RandomTimeShift(1.0)(x, split_idx=1) is x                  # validation batches are left alone
    with pytest.raises(ValueError, match='max_frac'): RandomTimeShift(1.5)


def test_masks_cover_bands_filled_with_each_clips_mean():
    g = torch.Generator().manual_seed(1)
    x = AudioSpectrogram(torch.randn(8, 1, 20, 30, generator=g) * 5 + torch.arange(8.).view(8, 1, 1, 1) * 10)
    set_seed(0)
    y = SpecMask(freq=0.25, time=0.2)(x, split_idx=0)
    assert isinstance(y, AudioSpectrogram) and y.shape == x.shape
    changed = (y != x)
    rows = cols = 0
    for a, b, c in zip(x, y, changed):
        assert torch.allclose(b[c], a.mean().expand(int(c.sum())))      # masked values are the clip's own mean
        full_rows = c[0].all(1).nonzero().flatten()                      # a frequency band: whole rows, contiguous, <= 5 bins
        assert len(full_rows) <= 5 and (len(full_rows) < 2 or (full_rows.diff() == 1).all())
        full_cols = c[0].all(0).nonzero().flatten()
        assert len(full_cols) <= 6 and (len(full_cols) < 2 or (full_cols.diff() == 1).all())
        assert torch.equal(c[0], c[0].all(1)[:, None] | c[0].all(0)[None, :])   # every changed value lies in a band
        rows, cols = rows + len(full_rows), cols + len(full_cols)
    assert rows > 0 and cols > 0                                         # both kinds of mask were drawn
    assert SpecMask()(x, split_idx=1) is x
    set_seed(0)
    assert torch.equal(SpecMask(freq=0.25, time=0.2)(x, split_idx=0), y)   # seeded: the same masks again


def test_augment_builds_only_what_is_switched_on():
    assert augment_tfms(Augment()) == ([], []) and augment_tfms(None) == ([], [])
    a = Augment(shift=0.5, freq_mask=0.2)
    wave, spec = augment_tfms(a)
    assert [type(t) for t in wave] == [RandomTimeShift] and [type(t) for t in spec] == [SpecMask]
    assert wave[0].max_frac == 0.5 and (spec[0].freq, spec[0].time, spec[0].n) == (0.2, 0, a.masks)
    assert Augment(**a.as_dict()) == a


def _mixup(x: torch.Tensor, seed: int) -> torch.Tensor:
    "fastai's `MixUp.before_batch` on the batch `x` (10 classes), the learner reduced to what it reads and writes"
    from types import SimpleNamespace
    from fastai.callback.mixup import MixUp
    y = torch.arange(len(x)) % 10
    cb = MixUp(0.4)
    cb.learn, cb.stack_y = SimpleNamespace(xb=(x,), yb=(y,), x=x, y=y), True
    set_seed(seed)
    cb.before_batch()
    return cb.learn.xb[0]


def _strong(x, seed: int, before=None, after=None):
    "The strong recipe's spectrogram augmentation (masks, then mixup), with a normalization before or after it"
    if before is not None: x = before(x)
    set_seed(seed)
    x = _mixup(SpecMask(freq=0.2, time=0.2)(x, split_idx=0).as_subclass(torch.Tensor), seed)
    return x if after is None else after(AudioSpectrogram(x)).as_subclass(torch.Tensor)


def test_global_statistics_give_the_model_one_input_before_or_after_the_masks_and_mixup():
    # one affine map for every clip and bin commutes with a fill by the clip's mean and with mixup's blend, so the same
    # global statistics applied after the augmentation, where the front ends stand, feed the model what `global` feeds
    # it; a map per bin (channel statistics) does not commute with the masks' fill
    from esc50_norm import SpecNormalize
    g = torch.Generator().manual_seed(2)
    n_freq = 16
    x = AudioSpectrogram(torch.randn(12, 1, n_freq, 40, generator=g) * 6 - 30
                         + torch.linspace(-20, 20, n_freq).view(1, 1, n_freq, 1))
    glob = SpecNormalize('global', stats=dict(mean=-30.0, std=8.0))
    a, b = _strong(x, 0, before=glob), _strong(x, 0, after=glob)
    assert not torch.equal(a, glob(x).as_subclass(torch.Tensor))        # the augmentation did act
    assert torch.allclose(a, b, atol=1e-5)
    chan = SpecNormalize('channel', stats=dict(mean=torch.linspace(-50, -10, n_freq), std=torch.linspace(2, 12, n_freq)))
    assert not torch.allclose(_strong(x, 0, before=chan), _strong(x, 0, after=chan), atol=1e-2)
    mixed = lambda v: _mixup(v.as_subclass(torch.Tensor), 0)          # mixup alone commutes with a map per bin too
    assert torch.allclose(mixed(chan(x)), chan(AudioSpectrogram(mixed(x))).as_subclass(torch.Tensor), atol=1e-5)
