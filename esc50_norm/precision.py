"Mixed precision on any device: bf16 autocast for the forward pass and the loss (CUDA or CPU), channels-last inputs"
from __future__ import annotations
import functools
import os
import re
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from fastai.callback.core import Callback
from fastai.callback.fp16 import AMPMode, MixedPrecision
from fastcore.foundation import L
from torch.amp import GradScaler, autocast

__all__ = ['BF16Autocast', 'ChannelsLastInput', 'NarrowConvFP32', 'narrow_strided', 'native_bf16', 'has_amx', 'cpu_model',
           'onednn_version', 'machine', 'bf16_cost']

_BF16_FLAGS = {'avx512_bf16', 'amx_bf16', 'bf16'}
"CPU flags of native bf16 arithmetic in /proc/cpuinfo: x86 (AVX-512 BF16, AMX) and Arm (FEAT_BF16)"


@functools.lru_cache(maxsize=None)
def _cpu_flags(cpuinfo: str = '/proc/cpuinfo') -> frozenset:
    "The CPU's feature flags (Linux: 'flags' on x86, 'Features' on Arm); empty where they cannot be read"
    try: text = Path(cpuinfo).read_text()
    except OSError: return frozenset()
    return frozenset(w for line in text.splitlines() if line.split(':')[0].strip() in ('flags', 'Features')
                     for w in line.split(':', 1)[1].split())


def native_bf16(device='cpu') -> bool:
    "Whether `device` computes bf16 natively: a CUDA GPU that supports it, or a CPU with bf16 instructions"
    device = torch.device(device)
    if device.type == 'cuda': return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == 'cpu' and bool(_BF16_FLAGS & _cpu_flags())


def has_amx() -> bool:
    "Whether the CPU has Intel AMX tiles for bf16 (`amx_bf16`), which oneDNN uses for bf16 convolutions and matmuls"
    return 'amx_bf16' in _cpu_flags()


@functools.lru_cache(maxsize=None)
def cpu_model(cpuinfo: str = '/proc/cpuinfo') -> str | None:
    "The CPU's model name (Linux: 'model name' in /proc/cpuinfo), or None where it cannot be read"
    try: text = Path(cpuinfo).read_text()
    except OSError: return None
    names = (l.split(':', 1)[1].strip() for l in text.splitlines() if l.split(':')[0].strip() == 'model name')
    return next(names, None)


def onednn_version() -> str | None:
    "The version of oneDNN (MKL-DNN) torch was built with, from `torch.__config__.show()`, or None"
    m = re.search(r'(?:MKL-DNN|oneDNN) v(\S+)', torch.__config__.show())
    return m.group(1) if m else None


def machine() -> dict:
    "What a result may depend on in the machine: CPU model, its native bf16 and AMX, oneDNN and its ISA cap, threads"
    return dict(cpu=cpu_model(), cpu_bf16=native_bf16('cpu'), cpu_amx=has_amx(), onednn=onednn_version(),
                onednn_max_isa=os.environ.get('ONEDNN_MAX_CPU_ISA'), threads=torch.get_num_threads())


def _step_seconds(model: nn.Module, x: torch.Tensor, bf16: bool, steps: int) -> float:
    "The median seconds of `steps` training steps of `model` on `x` (random labels, Adam), after one warm-up step"
    opt, y = torch.optim.Adam(model.parameters(), 1e-3), torch.zeros(len(x), dtype=torch.long)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):      # the forward pass and the loss only
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def bf16_cost(shape: tuple, n_out: int = 50, steps: int = 3) -> float:
    "How many times as long a CPU training step of xResNet18 on a batch of `shape` takes in bf16 + channels-last as in fp32"
    from fastai.vision.models.xresnet import xresnet18
    if len(shape) != 4 or min(shape) < 1: raise ValueError(f"shape must be (batch, channels, height, width), got {shape!r}")
    secs = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        fmt = torch.channels_last if bf16 else torch.contiguous_format
        model = xresnet18(pretrained=False, c_in=shape[1], n_out=n_out).to(memory_format=fmt)
        guard = NarrowConvFP32(model) if bf16 else None               # as `BF16Autocast` trains it
        secs[bf16] = _step_seconds(model, torch.randn(shape).contiguous(memory_format=fmt), bf16, steps)
        if guard: guard.remove()
    return secs[True] / secs[False]


def narrow_strided(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    "Whether `conv` on `x` is strided along a width narrower than its kernel: where oneDNN's bf16 weight gradient is wrong"
    # benchmarks/bf16_narrow_conv.py: oneDNN 3.12's AVX-512 kernels (AMX, AVX512_CORE_BF16, AVX512_CORE) return garbage,
    # often NaN, for a 3x3 stride-2 convolution of an input 1 wide; its AVX2 kernels and fp32 are right
    return conv.stride[-1] > 1 and x.shape[-1] < conv.kernel_size[-1]


class NarrowConvFP32:
    "Hooks on `model`'s `Conv2d`s that run those `narrow_strided` on their input in fp32 under CPU bf16 autocast"
    def __init__(self, model: nn.Module):
        self.engaged, self._off = set(), None
        self.names = {m: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
        self.handles = [h for m in self.names for h in (m.register_forward_pre_hook(self.before),
                                                         m.register_forward_hook(self.after, always_call=True))]

    def before(self, conv, args):
        x = args[0]
        if not (x.device.type == 'cpu' and torch.is_autocast_enabled('cpu') and narrow_strided(conv, x)): return None
        self._off = torch.autocast('cpu', enabled=False)
        self._off.__enter__()
        self.engaged.add(self.names[conv])
        return (x.float(), *args[1:])

    def after(self, conv, args, out):
        if self._off is not None: self._off.__exit__(None, None, None)
        self._off = None

    def remove(self):
        for h in self.handles: h.remove()

    def __getstate__(self): return {**self.__dict__, '_off': None}


class BF16Autocast(MixedPrecision):
    "bf16 autocast on the model's device, CUDA or CPU, for the forward pass and the loss only"
    # fastai's `to_bf16` enters CUDA's only
    def __init__(self):
        super().__init__(amp_mode=AMPMode.BF16)
        self.guard = None

    def before_fit(self):
        device = next(self.model.parameters()).device.type
        self.guard = None
        if device == 'cuda': return super().before_fit()
        # Leaving autocast after the loss matters: inside one autocast region the bf16 copies of the weights are cached,
        # so a region around the backward pass and the step would train on the weights of the first batch, silently
        self.autocast, self.learn.scaler, self.scales = (autocast(device, dtype=torch.bfloat16),
                                                         GradScaler(device, enabled=False), L())
        self.guard, self._reported = NarrowConvFP32(self.model), False

    def after_batch(self):
        if self.guard is None or self._reported or not self.guard.engaged: return
        self._reported = True
        warnings.warn(f"bf16 on the CPU: {', '.join(self.fp32_convs)} run in fp32 (strided along an input narrower than "
                      "the kernel, where oneDNN's bf16 weight gradient is wrong)", RuntimeWarning)

    def after_fit(self):
        super().after_fit()
        if self.guard is not None: self.guard.remove()

    @property
    def fp32_convs(self) -> tuple | None:
        "The convolutions the CPU guard ran in fp32 (by module name); None on CUDA, or before a fit"
        return None if self.guard is None else tuple(sorted(self.guard.engaged))


class ChannelsLastInput(Callback):
    "A `channels_last` model fed `channels_last` inputs (fastai's `ChannelsLast` converts the model only)"
    order = 1
    def before_fit(self): self.learn.model.to(memory_format=torch.channels_last)
    def before_batch(self): self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) for x in self.xb)
