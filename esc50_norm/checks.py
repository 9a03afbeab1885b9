"Checks of arguments before any work: each error names the owner, the argument and the value given"
from __future__ import annotations
import math
from numbers import Integral, Real

__all__ = ['check_positive']


def check_positive(owner: str, whole: bool = False, **values):
    "Each of `values` a finite number above 0 (a whole one with `whole`), not a bool; else a ValueError naming them"
    kind = Integral if whole else Real
    bad = [f"{k}={v!r}" for k, v in values.items()
           if isinstance(v, bool) or not isinstance(v, kind) or not (math.isfinite(v) and v > 0)]
    if bad: raise ValueError(f"{owner} takes {'whole numbers' if whole else 'numbers'} above 0, got {', '.join(bad)}")
