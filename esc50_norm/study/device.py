"The one place that decides which device a study trains on"
from __future__ import annotations

import torch

__all__ = ['pick_device']


def pick_device(device=None) -> torch.device:
    "`device` as given (checked: a CUDA device asked for must exist), else the GPU when there is one, else the CPU"
    if device is None: return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try: dev = torch.device(device)
    except RuntimeError as e: raise ValueError(f"unknown device {device!r}: {e}") from None
    if dev.type == 'cuda':
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"--device {device} was asked for, but torch {torch.__version__} sees no CUDA GPU "
                             "on this machine")
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"--device {device} does not exist: torch sees {n} GPU(s)")
    return dev
