"""Plugins: installed packages that add normalization modes, dataset kinds, study normalizations and presets to
`esc50-norm`, found as pytest finds its plugins, by entry point. A package declares, in its pyproject.toml,

    [project.entry-points."esc50_norm.plugins"]
    mine = "my_package.esc50_plugin"            # a module: importing it registers its additions
    more = "my_package.esc50_plugin:register"   # or a callable: called with no arguments, it registers them

and registers by adding entries to the registries: `MODES`, `KINDS`, `NORMALIZATIONS`, `PRESETS` (and `CHOSEN`)."""
from __future__ import annotations
import os
from importlib.metadata import entry_points
from types import ModuleType

__all__ = ['GROUP', 'NO_PLUGINS', 'PluginError', 'load_plugins']

GROUP = 'esc50_norm.plugins'
"The entry-point group of `esc50-norm` plugins"
NO_PLUGINS = 'ESC50_NORM_NO_PLUGINS'
"The environment variable that, set to anything but '' or 0, turns plugin loading off"

_LOADED: set = set()
"The entry points (name, value) loaded in this process: each is loaded once"


class PluginError(RuntimeError):
    "A plugin that fails to load, or registers an entry that does not fit its registry: the message names it"


def plugin_entry_points() -> list:
    "The installed entry points of `GROUP`, by name (none when $ESC50_NORM_NO_PLUGINS is set)"
    if os.environ.get(NO_PLUGINS, '') not in ('', '0'): return []
    return sorted(entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value))


def _where(ep) -> str:
    "An entry point as its package's metadata declares it, and the distribution it comes from"
    dist = getattr(ep, 'dist', None)
    return f"entry point {ep.name} = {ep.value} in group {GROUP}" + (f" of {dist.name} {dist.version}" if dist else '')


def _registries() -> dict:
    from ..normalize import MODES
    from .datasets import KINDS
    from .normalizations import NORMALIZATIONS
    from .presets import PRESETS
    return dict(MODES=MODES, KINDS=KINDS, NORMALIZATIONS=NORMALIZATIONS, PRESETS=PRESETS)


def _misfit(registry: str, key, value) -> str | None:
    "What is wrong with `registry[key] = value`, or None"
    from ..normalize import MODES
    from .normalizations import FRONTENDS, Normalization
    from .presets import Preset
    if not isinstance(key, str) or not key: return "its key is not a non-empty string"
    if registry == 'MODES':
        missing = [a for a in ('keys', 'options', 'counted', 'units', 'need', 'shape', 'accumulator', 'arrays',
                               'shift_scale') if not hasattr(value, a)]
        return f"a Mode needs {missing}" if missing else None
    if registry == 'KINDS':
        return None if getattr(value, 'kind', None) == key else f"a kind's class needs `kind = {key!r}`"
    if registry == 'NORMALIZATIONS':
        if not isinstance(value, Normalization): return f"not a Normalization but {type(value).__name__}"
        if value.mode is not None and value.mode not in MODES: return f"its mode {value.mode!r} is not in MODES"
        if value.front is not None and value.front not in FRONTENDS: return f"its front end {value.front!r} is unknown"
        return None
    if not isinstance(value, Preset): return f"not a Preset but {type(value).__name__}"
    return None if value.name == key else f"its name is {value.name!r}: a preset's key is its name"


def _check(ep, before: dict):
    "Each entry the plugin of `ep` added or replaced fits its registry"
    for registry, entries in _registries().items():
        for key, value in entries.items():
            if key in before[registry] and before[registry][key] is value: continue
            why = _misfit(registry, key, value)
            if why: raise PluginError(f"plugin {ep.name!r} ({_where(ep)}) registered {registry}[{key!r}]: {why}")


def load_plugin(ep):
    "Load entry point `ep`: import its module, or call its callable; either registers the plugin's additions"
    before = {k: dict(v) for k, v in _registries().items()}
    try:
        obj = ep.load()
        if not isinstance(obj, ModuleType):
            if not callable(obj): raise TypeError(f"it names a {type(obj).__name__}: neither a module nor a callable")
            obj()
    except Exception as e:
        raise PluginError(f"plugin {ep.name!r} ({_where(ep)}) failed to load: {type(e).__name__}: {e}. "
                          f"Fix or uninstall it, or set {NO_PLUGINS}=1 to run without plugins") from e
    _check(ep, before)


def load_plugins() -> list:
    "Load every installed plugin not loaded yet in this process; the names of all loaded"
    for ep in plugin_entry_points():
        if (ep.name, ep.value) in _LOADED: continue
        load_plugin(ep)
        _LOADED.add((ep.name, ep.value))
    return sorted(name for name, _ in _LOADED)
