"Mixed precision on any device: bf16 autocast for the forward pass and the loss (CUDA or CPU), channels-last inputs"
from __future__ import annotations
import functools
import os
import re
from pathlib import Path

import torch
from fastai.callback.core import Callback
from fastai.callback.fp16 import AMPMode, MixedPrecision
from fastcore.foundation import L
from torch.amp import GradScaler, autocast

__all__ = ['BF16Autocast', 'ChannelsLastInput', 'native_bf16', 'has_amx', 'cpu_model', 'onednn_version', 'machine']

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
    return next((l.split(':', 1)[1].strip() for l in text.splitlines() if l.split(':')[0].strip() == 'model name'), None)


def onednn_version() -> str | None:
    "The version of oneDNN (MKL-DNN) torch was built with, from `torch.__config__.show()`, or None"
    m = re.search(r'(?:MKL-DNN|oneDNN) v(\S+)', torch.__config__.show())
    return m.group(1) if m else None


def machine() -> dict:
    "What a result may depend on in the machine: CPU model, its native bf16 and AMX, oneDNN and its ISA cap, threads"
    return dict(cpu=cpu_model(), cpu_bf16=native_bf16('cpu'), cpu_amx=has_amx(), onednn=onednn_version(),
                onednn_max_isa=os.environ.get('ONEDNN_MAX_CPU_ISA'), threads=torch.get_num_threads())


class BF16Autocast(MixedPrecision):
    "bf16 autocast on the model's device, CUDA or CPU, for the forward pass and the loss only"
    # fastai's `to_bf16` enters CUDA's only
    def __init__(self): super().__init__(amp_mode=AMPMode.BF16)

    def before_fit(self):
        device = next(self.model.parameters()).device.type
        if device == 'cuda': return super().before_fit()
        # Leaving autocast after the loss matters: inside one autocast region the bf16 copies of the weights are cached,
        # so a region around the backward pass and the step would train on the weights of the first batch, silently
        self.autocast, self.learn.scaler, self.scales = (autocast(device, dtype=torch.bfloat16),
                                                         GradScaler(device, enabled=False), L())


class ChannelsLastInput(Callback):
    "A `channels_last` model fed `channels_last` inputs (fastai's `ChannelsLast` converts the model only)"
    order = 1
    def before_fit(self): self.learn.model.to(memory_format=torch.channels_last)
    def before_batch(self): self.learn.xb = tuple(x.contiguous(memory_format=torch.channels_last) for x in self.xb)
