"Words of messages: a name looked up in a registry, told apart from a misspelt known one by the closest match; counts"
from __future__ import annotations
import difflib

__all__ = ['did_you_mean', 'unknown_name', 'plural', 'listed']


def did_you_mean(names, known) -> str:
    "' (did you mean ...?)' naming the closest of `known` to each of `names` (a name or a list), or '' if none is close"
    names = list(names) if isinstance(names, (list, tuple, set)) else [names]
    close = [m[0] for n in names if (m := difflib.get_close_matches(str(n), [str(k) for k in known], n=1))]
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ''


def unknown_name(what: str, names, known) -> str:
    "The message for `names` (a name or a list) not among the `known` ones of a registry: the closest, then all"
    return f"unknown {what} {names!r}{did_you_mean(names, known)}; known: {list(known)}"


def plural(n: int, noun: str) -> str:
    "`n` and `noun`, plural unless `n` is 1: '1 run', '3 runs'"
    return f"{n} {noun}{'' if n == 1 else 's'}"


def listed(names, most: int = 8) -> str:
    "The first `most` of `names` joined by commas, and how many more: 'a, b and 3 more'"
    names = list(names)
    return ', '.join(map(str, names[:most])) + (f" and {len(names) - most} more" if len(names) > most else '')
