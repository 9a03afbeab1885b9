"""The normalization study, built on the library. Its modules import only the library and those listed before them:
`tables` (metadata tables checked before any work), `esc50` (the ESC-50 files),
`datasets` (ESC-50, ESC-10, UrbanSound8K, CSV, folder-per-class), `cache` (decode once),
`normalizations` (what the study compares), `sizing` (recipes sized by the data), `presets` (recipes and their grids),
`plugins` (installed packages adding to those registries), `pipelines` (DataLoaders of one fold), `device`, `compat`
(why old results folders still read), `claims` (who runs a run, who rewrites a file), `runs` (the files of a results
folder), `train` (one run), `study` (a preset bound to its folder), `baseline` (the classical baseline), `engines`
(where runs run; `run_study`), `report`, `demo`, `cli`.
Names are imported on first use, so that `esc50-norm report` and `--help` load no training code."""
import importlib

_WHERE = {
    'ESC50Error': 'esc50', 'ENV_VAR': 'esc50', 'esc50_path': 'esc50', 'read_meta': 'esc50',
    'Dataset': 'datasets', 'DatasetError': 'datasets', 'KINDS': 'datasets', 'get_dataset': 'datasets',
    'fold_split': 'datasets', 'subset_per_class': 'datasets', 'clip_duration': 'datasets', 'summary': 'datasets',
    'ClipCache': 'cache', 'load_or_build_cache': 'cache',
    'NORMALIZATIONS': 'normalizations', 'norm_tfms': 'normalizations',
    'Preset': 'presets', 'PRESETS': 'presets', 'get_preset': 'presets', 'Job': 'presets',
    'FoldSplitter': 'pipelines',                          # the library's (esc50_norm.folds), kept here for old imports
    'files_datablock': 'pipelines', 'cached_datablock': 'pipelines', 'device_dataloaders': 'pipelines',
    'fold_dataloaders': 'pipelines',
    'train_one': 'train', 'load_study_data': 'train',
    'size_recipe': 'sizing', 'compute_baseline': 'baseline', 'ensure_baseline': 'baseline', 'read_baseline': 'baseline',
    'read_results': 'runs', 'Study': 'study', 'run_study': 'engines', 'write_report': 'report',
    'compare_report': 'report',
}
__all__ = list(_WHERE)


def __getattr__(name):
    if name not in _WHERE: raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__(): return sorted([*globals(), *__all__])
