"""Per-channel energy normalization (PCEN): fixed, as `librosa.pcen`, and learned per channel, as LEAF's `PCENLayer`.

PCEN replaces the log/dB step on mel *magnitudes* (`AudioConfig.PCENMelSpectrogram`: power 1, times 2**31, no dB):
    M   = smoothed S     first-order IIR over time, M[t] = b S[t] + (1 - b) M[t-1], as if S = 1 before frame 0
    out = (S / (eps + M)**gain + bias)**power - bias**power
as Lostanlen et al. (2019), "Per-Channel Energy Normalization: Why and How", and `librosa.pcen` compute it (log-space).
The smoother runs as one `torchaudio.functional.lfilter` over the whole batch (no Python loop over frames), in float32
even under autocast.
"""
from __future__ import annotations
import math

import torch
from fastai.data.all import Transform
from torch import nn
from torchaudio.functional import lfilter

from .checks import check_positive
from .spectrogram import AudioSpectrogram

__all__ = ['smoothing_coef', 'pcen_smooth', 'pcen_compress', 'pcen', 'PCEN', 'LearnedPCEN', 'FrozenPCEN']

_MIN = 1e-6
"`LearnedPCEN`'s floor for the bias (delta) and the smoothing coefficient, which must stay positive"


def smoothing_coef(sr: int = 16000, hop_length: int = 256, time_constant: float = 0.4) -> float:
    "librosa's smoothing coefficient `b` of a time constant in seconds, frames `hop_length` samples apart at `sr` Hz"
    check_positive('PCEN', sr=sr, hop_length=hop_length, time_constant=time_constant)
    t_frames = time_constant * sr / hop_length
    return (math.sqrt(1 + 4 * t_frames ** 2) - 1) / (2 * t_frames ** 2)


def _compute_dtype(x: torch.Tensor) -> torch.dtype: return torch.float64 if x.dtype == torch.float64 else torch.float32


def pcen_smooth(S: torch.Tensor, coef) -> torch.Tensor:
    "librosa's PCEN smoother of `S` `[..., n_mels, frames]` along time: one coefficient, or `coef` `[n_mels]` per bin"
    # per bin: lfilter's conv1d is 3x faster
    coef = torch.as_tensor(coef, dtype=S.dtype, device=S.device).expand(S.shape[-2])
    b = torch.stack([coef, torch.zeros_like(coef)], -1)      # lfilter([b], [1, b - 1]): M[t] = b S[t] + (1 - b) M[t-1]
    a = torch.stack([torch.ones_like(coef), coef - 1], -1)
    t = torch.arange(1, S.shape[-1] + 1, dtype=S.dtype, device=S.device)
    # lfilter starts from rest; librosa's initial state (lfilter_zi) is the response to S = 1 before frame 0:
    # (1 - b)**(t + 1)
    return lfilter(S, a, b, clamp=False) + (1 - coef).unsqueeze(-1) ** t


def pcen_compress(S: torch.Tensor, M: torch.Tensor, gain, bias, power, eps: float = 1e-6) -> torch.Tensor:
    "PCEN's gain control and compression of `S` by its smoothed `M`, in log space as librosa; `bias`, `power` positive"
    smooth = torch.exp(-gain * (math.log(eps) + torch.log1p(M / eps)))
    return bias ** power * torch.expm1(power * torch.log1p(S * smooth / bias))


def _check_params(gain, bias, power, eps, sr, hop_length, time_constant):
    "librosa's checks of the fixed parameters, before any work"
    bad = {k: v for k, v in dict(gain=gain, bias=bias, power=power).items() if not v >= 0}
    if bad: raise ValueError("PCEN needs " + ', '.join(f"{k} >= 0, got {k}={v!r}" for k, v in bad.items()))
    check_positive('PCEN', eps=eps, sr=sr, hop_length=hop_length, time_constant=time_constant)


def _as_magnitudes(S: torch.Tensor, who: str) -> torch.Tensor:
    "`S` as a plain float tensor of non-negative magnitudes (float64 stays float64), or a clear error"
    if not isinstance(S, torch.Tensor): S = torch.as_tensor(S)
    if S.is_complex(): raise ValueError(f"{who} takes magnitudes, got a complex {tuple(S.shape)} tensor: pass S.abs()")
    if S.ndim < 2: raise ValueError(f"{who} takes spectrograms [..., n_mels, frames], got shape {tuple(S.shape)}")
    S = S.as_subclass(torch.Tensor).to(_compute_dtype(S))
    if S.numel() and S.min() < 0:
        raise ValueError(f"{who} takes non-negative magnitudes (mel magnitudes, not dB), "
                         f"got values down to {S.min().item():.4g}")
    return S


def pcen(S: torch.Tensor, sr: int = 16000, hop_length: int = 256, gain: float = 0.98, bias: float = 2.0,
         power: float = 0.5, time_constant: float = 0.4, eps: float = 1e-6) -> torch.Tensor:
    "`librosa.pcen` of `S` `[..., n_mels, frames]` with the same parameters, on `S`'s device, in float32"
    # float64 stays float64
    _check_params(gain, bias, power, eps, sr, hop_length, time_constant)
    return _pcen(_as_magnitudes(S, 'pcen'), sr, hop_length, gain, bias, power, time_constant, eps)


def _pcen(S: torch.Tensor, sr, hop_length, gain, bias, power, time_constant, eps) -> torch.Tensor:
    "`pcen` of checked magnitudes `S` (a plain float tensor)"
    with torch.autocast(S.device.type, enabled=False):
        M = pcen_smooth(S, smoothing_coef(sr, hop_length, time_constant))
        if power == 0 or bias == 0:                             # librosa's limit cases, in its order
            smooth = torch.exp(-gain * (math.log(eps) + torch.log1p(M / eps)))
            return torch.log1p(S * smooth) if power == 0 else torch.exp(power * (torch.log(S) + torch.log(smooth)))
        # as tensors: LearnedPCEN's float ops
        g, b, p = (torch.tensor(v, dtype=S.dtype, device=S.device) for v in (gain, bias, power))
        return pcen_compress(S, M, g, b, p, eps)


def _check_spec(x, owner: str, sr: int, hop_length: int):
    "Spectrograms made by `AudioToSpec` know their rate, hop and scale: they must be `owner`'s, and not in dB"
    if getattr(x, 'to_db', False):
        raise ValueError(f"{owner} takes mel magnitudes, but these spectrograms are in dB: "
                         "use AudioConfig.PCENMelSpectrogram() (power 1, scale 2**31, to_db=False) in AudioToSpec")
    for k, want in (('sr', sr), ('hop_length', hop_length)):
        if (got := getattr(x, k, None)) is not None and got != want:
            raise ValueError(f"{owner}(sr={sr}, hop_length={hop_length}) got spectrograms with {k}={got}: "
                             f"its smoothing time constant would be off by {got / want:.3g}x; "
                             f"give {owner} the spectrograms' {k}")


class PCEN(Transform):
    "Batch transform: fixed PCEN of mel magnitudes (`AudioConfig.PCENMelSpectrogram`) in place of dB, on their device"
    order = 99
    def __init__(self, sr: int = 16000, hop_length: int = 256, gain: float = 0.98, bias: float = 2.0,
                 power: float = 0.5, time_constant: float = 0.4, eps: float = 1e-6):
        _check_params(gain, bias, power, eps, sr, hop_length, time_constant)
        self.sr, self.hop_length, self.gain, self.bias, self.power, self.time_constant, self.eps = \
            sr, hop_length, gain, bias, power, time_constant, eps

    @property
    def params(self) -> dict:
        return dict(gain=self.gain, bias=self.bias, power=self.power, time_constant=self.time_constant, eps=self.eps)

    def encodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        _check_spec(x, 'PCEN', self.sr, self.hop_length)
        S = x.as_subclass(torch.Tensor)
        # AudioToSpec's spectrograms say they are magnitudes (to_db=False): no look at their values,
        # a GPU sync per batch
        S = S.to(_compute_dtype(S)) if hasattr(x, 'to_db') else _as_magnitudes(S, 'PCEN')
        res = AudioSpectrogram(_pcen(S, self.sr, self.hop_length, **self.params))
        res.set_meta(x, as_copy=True)
        res.normalized, res.to_db = 'PCEN', False
        if getattr(x, 'config', None) is not None: res.config = {**x.config, 'pcen': self.params}   # what made it
        return res

    def decodes(self, x: AudioSpectrogram) -> AudioSpectrogram:
        "PCEN is not invertible: the spectrograms as they are, still marked 'PCEN'"
        return x

    def __repr__(self):
        return (f"PCEN(sr={self.sr}, hop_length={self.hop_length}, "
                + ', '.join(f"{k}={v}" for k, v in self.params.items()) + ")")


class LearnedPCEN(nn.Module):
    """PCEN with per-channel trainable gain `alpha`, bias `delta`, `root` (1/power) and smoothing coefficient
    `smooth_coef` (LEAF's `PCENLayer`), a front end trained with the model; input and output `[bs, 1, n_mels, frames]`,
    float32 (float64 for a module made float64 with `.double()`, as `pcen` keeps float64).

    At initialisation it computes `pcen(x, sr, hop_length, gain, bias, power, time_constant, eps)`. As LEAF does, the
    forward pass clamps the parameters into their valid ranges (the stored values may leave them; their gradient is
    then 0): 0 <= alpha <= 1, root >= 1, 1e-6 <= smooth_coef <= 1, and (unlike LEAF, which lets it go negative)
    delta >= 1e-6. `constrained()` gives the values in use. It smooths as librosa does, from an initial state of 1
    (LEAF: the first frame).

    `learn` names the parameters that train (default all four); the others are buffers, fixed at their start: e.g.
    `learn=('smooth_coef',)` learns the smoother alone, `learn=('alpha', 'delta', 'root')` all that follows it."""
    PARAMS = ('alpha', 'delta', 'root', 'smooth_coef')
    def __init__(self, n_mels: int, sr: int = 16000, hop_length: int = 256, gain: float = 0.98, bias: float = 2.0,
                 power: float = 0.5, time_constant: float = 0.4, eps: float = 1e-6, learn=PARAMS):
        super().__init__()
        learn = (learn,) if isinstance(learn, str) else tuple(learn)
        if set(learn) - set(self.PARAMS):
            raise ValueError(f"{type(self).__name__}: learn names {sorted(set(learn) - set(self.PARAMS))}, which are "
                             f"not among its parameters {list(self.PARAMS)}")
        check_positive('LearnedPCEN', whole=True, n_mels=n_mels)
        _check_params(gain, bias, power, eps, sr, hop_length, time_constant)
        bad = [f"{k}={v!r}" for k, v, ok in (('gain', gain, gain <= 1), ('bias', bias, bias >= _MIN),
                                             ('power', power, 0 < power <= 1)) if not ok]
        if bad:
            raise ValueError("LearnedPCEN starts inside its valid ranges (gain <= 1, bias >= 1e-6, 0 < power <= 1), "
                             "got " + ', '.join(bad))
        self.n_mels, self.sr, self.hop_length, self.time_constant, self.eps = n_mels, sr, hop_length, time_constant, eps
        self.learn = tuple(k for k in self.PARAMS if k in learn)
        start = dict(alpha=gain, delta=bias, root=1 / power, smooth_coef=smoothing_coef(sr, hop_length, time_constant))
        for k in self.PARAMS:
            v = torch.full((n_mels,), float(start[k]))
            if k in self.learn: self.register_parameter(k, nn.Parameter(v))
            else: self.register_buffer(k, v)

    def constrained(self) -> dict:
        "The parameters the forward pass uses, clamped into their valid ranges"
        # as LEAF's `minimum`/`maximum`/`clip_by_value`
        return dict(alpha=self.alpha.clamp(0, 1), delta=self.delta.clamp_min(_MIN), root=self.root.clamp_min(1),
                    smooth_coef=self.smooth_coef.clamp(_MIN, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2] != self.n_mels:
            raise ValueError(f"LearnedPCEN({self.n_mels}) takes [bs, 1, {self.n_mels}, frames] mel magnitudes, "
                             f"got shape {tuple(x.shape)}")
        _check_spec(x, type(self).__name__, self.sr, self.hop_length)
        # AudioToSpec's spectrograms say they are magnitudes: no look at their values (a GPU sync per batch)
        x = x.as_subclass(torch.Tensor) if hasattr(x, 'to_db') else _as_magnitudes(x, 'LearnedPCEN')
        with torch.autocast(x.device.type, enabled=False):
            x, p = x.to(_compute_dtype(self.alpha)), self.constrained()    # fp32 (bf16 in), float64 if the module is
            M = pcen_smooth(x, p['smooth_coef'])
            col = lambda v: v.to(x.dtype).unsqueeze(-1)        # [n_mels] -> [n_mels, 1], against [..., n_mels, frames]
            return pcen_compress(x, M, col(p['alpha']), col(p['delta']), 1 / col(p['root']), self.eps)

    def extra_repr(self) -> str:
        learn = getattr(self, 'learn', self.PARAMS)            # models exported before `learn` learn all four
        return (f"{self.n_mels}, sr={self.sr}, hop_length={self.hop_length}, time_constant={self.time_constant}, "
                f"eps={self.eps}" + ('' if learn == self.PARAMS else f", learn={learn}"))


class FrozenPCEN(LearnedPCEN):
    """`LearnedPCEN` with its parameters frozen at their initial values (buffers, not parameters): fixed PCEN as a
    module at the model input, fed what `LearnedPCEN` is fed, so that the two differ in learning alone. It computes
    `pcen(x, sr, hop_length, gain, bias, power, time_constant, eps)`; no optimizer, weight decay or `unfreeze` moves
    it. The same as `LearnedPCEN(n_mels, learn=())`."""
    def __init__(self, n_mels: int, **kwargs):
        super().__init__(n_mels, learn=(), **kwargs)
