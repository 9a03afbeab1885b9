"FreqBatchNorm against PANNs' formulation of bn0 (transpose -> BatchNorm2d over mel bins -> transpose back)"
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from esc50_norm.frontend import FreqBatchNorm


def panns_bn0(bn0: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    "PANNs' models.py on our layout: x [bs, 1, F, T] -> theirs [bs, 1, T, F] -> transpose(1, 3) -> bn0 -> transpose(1, 3) -> ours"
    x = x.transpose(2, 3)
    return bn0(x.transpose(1, 3)).transpose(1, 3).transpose(2, 3)


def batch(seed=0, bs=6, f=16, t=40):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(bs, 1, f, t, generator=g) * torch.linspace(0.5, 20, f).view(1, 1, f, 1) + torch.linspace(-60, 10, f).view(1, 1, f, 1)


def random_state(bn: nn.BatchNorm2d, seed=1):
    "Non-trivial weight, bias and running stats, so that equal outputs mean equal use of each"
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean): t.copy_(torch.randn(t.shape, generator=g))
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)


def test_init_is_panns_and_train_mode_gives_each_bin_zero_mean_unit_std():
    fbn = FreqBatchNorm(16)
    assert torch.equal(fbn.weight, torch.ones(16)) and torch.equal(fbn.bias, torch.zeros(16))
    x = batch()
    y = fbn(x).detach().numpy()
    per_bin = y.transpose(2, 0, 1, 3).reshape(16, -1)                       # [F, bs * T]
    np.testing.assert_allclose(per_bin.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(per_bin.std(1), 1, atol=1e-3)
    xs = x.numpy().transpose(2, 0, 1, 3).reshape(16, -1)
    np.testing.assert_allclose(y.transpose(2, 0, 1, 3).reshape(16, -1), (xs - xs.mean(1, keepdims=True)) / np.sqrt(xs.var(1, keepdims=True) + 1e-5), atol=1e-4)
    np.testing.assert_allclose(fbn.running_mean, 0.1 * xs.mean(1), rtol=1e-5)      # momentum 0.1 from 0


@pytest.mark.parametrize('train', [True, False])
def test_equals_panns_bn0_with_the_same_state(train):
    fbn, bn0 = FreqBatchNorm(16), nn.BatchNorm2d(16)
    random_state(bn0)
    fbn.load_state_dict(bn0.state_dict())                                  # the same keys as PANNs' bn0
    fbn.train(train); bn0.train(train)
    for seed in range(3):                                                   # a few batches: running stats evolve alike
        x = batch(seed)
        torch.testing.assert_close(fbn(x), panns_bn0(bn0, x), rtol=1e-6, atol=1e-6)
    for k, v in bn0.state_dict().items(): torch.testing.assert_close(fbn.state_dict()[k], v, rtol=1e-6, atol=1e-6)
    if not train:
        x = batch(5)
        ref = (x - bn0.running_mean.view(1, 1, -1, 1)) / (bn0.running_var.view(1, 1, -1, 1) + 1e-5).sqrt() * bn0.weight.view(1, 1, -1, 1) + bn0.bias.view(1, 1, -1, 1)
        torch.testing.assert_close(fbn(x), ref.detach(), rtol=1e-5, atol=1e-5)


def test_float32_under_bf16_autocast_and_pickles():
    fbn = FreqBatchNorm(16)
    x = batch()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = fbn(x.bfloat16())
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    torch.testing.assert_close(y, FreqBatchNorm(16)(x.bfloat16().float()), rtol=0, atol=0)
    back = pickle.loads(pickle.dumps(fbn.eval()))
    assert torch.equal(back(x), fbn(x))


def test_refuses_other_shapes():
    with pytest.raises(ValueError, match=r'FreqBatchNorm\(16\) takes \[bs, channels, 16, frames\], got shape \(2, 1, 8, 40\)'):
        FreqBatchNorm(16)(torch.ones(2, 1, 8, 40))


@pytest.mark.parametrize('bad', [0, -3, True, 16.0])
def test_freq_batch_norm_needs_a_positive_number_of_bins(bad):
    with pytest.raises(ValueError, match=f"FreqBatchNorm takes whole numbers above 0, got n_freq={bad!r}"): FreqBatchNorm(bad)
