"""Front ends: `nn.Module`s before the model that normalize its spectrogram input with parameters learned with it.

Unlike a batch transform (`SpecNormalize`, `PCEN`), a front end is part of the network: the optimizer trains its
parameters, `Learner.export` saves it with the model, and it runs wherever the model runs, e.g.
`nn.Sequential(FreqBatchNorm(128), xresnet18(c_in=1, n_out=50))`. Learned PCEN is a front end too: `pcen.LearnedPCEN`.
"""
from __future__ import annotations

import torch
from torch import nn

from .checks import check_positive

__all__ = ['FreqBatchNorm']


class FreqBatchNorm(nn.BatchNorm2d):
    "PANNs' `bn0`: batch norm over the frequency bins of `[bs, 1, n_freq, frames]` in float32"
    # stats per bin, over batch and time
    def __init__(self, n_freq: int, eps: float = 1e-5, momentum: float = 0.1):
        check_positive('FreqBatchNorm', whole=True, n_freq=n_freq)                      # the frequency bins
        super().__init__(n_freq, eps=eps, momentum=momentum)
        nn.init.ones_(self.weight)                                 # PANNs' init_bn
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] != self.num_features:
            raise ValueError(f"FreqBatchNorm({self.num_features}) takes [bs, channels, {self.num_features}, frames], "
                             f"got shape {tuple(x.shape)}")
        x = x.as_subclass(torch.Tensor)
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float().transpose(1, 2)).transpose(1, 2)
